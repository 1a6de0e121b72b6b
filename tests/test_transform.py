"""The edit applier (``fix/transform.py``) on its own: edits land wherever the plan puts them."""
from redis_pool_lint.fix.plan import FileEdits
from redis_pool_lint.fix.transform import apply_edits


def test_an_edit_inside_a_decorator_is_applied():
    """libcst's position of a definition starts at ``def``, below its decorators: the walk that
    skips untouched subtrees must still enter a definition whose decorator holds an edit."""
    source = ('from redis.asyncio import Redis\nimport deco\n\n\n@deco.use(Redis.from_url("redis://"))\n'
              "def f():\n    return 1\n")
    new, _, _ = apply_edits(source, FileEdits(replace_calls={(5, 10): "request.app.state.redis"}), "m.py")
    assert new == "import deco\n\n\n@deco.use(request.app.state.redis)\ndef f():\n    return 1\n"


def test_an_untouched_decorated_definition_is_left_as_it_is():
    source = ('from redis.asyncio import Redis\nimport deco\n\n\n@deco.use(1)  # keep\ndef f():\n'
              "    return Redis()\n\n\ndef g():\n    return Redis.from_url('redis://')\n")
    new, _, _ = apply_edits(source, FileEdits(replace_calls={(11, 11): "request.app.state.redis"}), "m.py")
    assert new == source.replace("Redis.from_url('redis://')", "request.app.state.redis")


def test_a_call_on_the_replaced_call_keeps_its_method_and_arguments():
    """``stock_client().get(key)``: both calls start at the same position; only the helper
    call becomes the shared client, the ``.get(key)`` on it stays."""
    source = "def level(item):\n    return {'level': stock_client().get(f'stock:{item}')}\n"
    new, _, _ = apply_edits(source, FileEdits(replace_calls={(2, 21): "request.app.state.redis"}), "m.py")
    assert new == source.replace("stock_client()", "request.app.state.redis")
