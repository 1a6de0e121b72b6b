"""The rewrite in the project's style (``fix/style.py``, ``fix/wrap.py``): its line length read
from the project's configuration, long generated lines wrapped as black wraps them, a factory's
request parameter annotated as the project's Python target allows."""
import shutil
import subprocess

import pytest

from conftest import run_tool
from redis_pool_lint.fix.style import project_style
from redis_pool_lint.fix.wrap import wrap_long_lines

LONG = '''\
async def lifespan(app):
    app.state.redis = Redis.from_pool(BlockingConnectionPool.from_url(get_settings().redis_url, decode_responses=True, max_connections=50, timeout=10))
    app.state.redis_stats = Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=50, timeout=10))
    yield {"redis": Redis.from_pool(BlockingConnectionPool.from_url(REDIS, max_connections=50, timeout=10)), "n": 1}
    r = Redis(connection_pool=BlockingConnectionPool(host="localhost", port=6379, db=0, max_connections=50, timeout=10))
    return {"level": await request.app.state.redis_2.get(f"stock:{item}"), "a_rather_long_key_name": 1}


async def handler(item_id: int, q: str, session: Session = Depends(get_session), request: Request = None) -> Response:
    async with LifespanManager(app) as manager, AsyncClient(transport=ASGITransport(app=manager.app), base_url="x") as c:
        pass
'''


@pytest.mark.parametrize("limit", [79, 88, 100, 120])
def test_long_generated_lines_are_wrapped_as_black_wraps_them(tmp_path, limit):
    if shutil.which("black") is None:
        pytest.skip("black is not installed (the test extras install it)")
    ours = wrap_long_lines(LONG, "", limit)
    path = tmp_path / "m.py"
    path.write_text(ours)
    res = subprocess.run(["black", "--check", "--diff", "-l", str(limit), str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    assert all(len(line) <= limit for line in ours.splitlines())


def test_lines_the_user_wrote_are_left_long():
    assert wrap_long_lines(LONG, LONG, 88) == LONG


@pytest.mark.parametrize("files, length", [
    ({}, 88),
    ({"setup.cfg": "[flake8]\nmax-line-length = 110\n"}, 110),
    ({".flake8": "[flake8]\nmax_line_length = 79\n"}, 79),
    ({"pyproject.toml": "[tool.ruff]\nline-length = 100\n", "setup.cfg": "[flake8]\nmax-line-length = 120\n"}, 100),
    ({"pyproject.toml": "[tool.black]\nline-length = 99\n"}, 99),
    ({"pyproject.toml": "[tool.ruff.lint]\nselect = ['E']\n", "tox.ini": "[flake8]\nmax-line-length = 120\n"}, 88),
    ({"ruff.toml": "line-length = 120\n"}, 120),
])
def test_the_line_length_is_the_projects(tmp_path, files, length):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert project_style(str(tmp_path)).line_length == length


FACTORY = (
    "from redis.asyncio import Redis\n\n\n"
    "def make_client() -> Redis:\n    return Redis.from_url('redis://localhost')\n"
)
MAIN = (
    "from fastapi import FastAPI\n\nfrom cache import make_client\n\napp = FastAPI()\n\n\n"
    "@app.get('/')\nasync def index():\n    return await make_client().get('k')\n\n\n"
    "def cli():\n    return make_client()\n"
)


@pytest.mark.parametrize("union, annotation", [
    (False, "request: Optional[Request] = None"), (True, "request: Request | None = None")])
def test_an_optional_request_is_annotated_for_the_projects_target(union, annotation):
    """Where FastAPI does not inject the parameter, it is typed as optional the way the target allows."""
    from redis_pool_lint.fix.plan import FileEdits
    from redis_pool_lint.fix.style import Style
    from redis_pool_lint.fix.transform import apply_edits

    edits = FileEdits(add_params={4: ("request", "Request", True)}, imports=[("fastapi", "Request", None, 0)])
    new, _, _ = apply_edits(FACTORY, edits, "cache.py", style=Style(union_syntax=union))
    assert f"def make_client({annotation}) -> Redis:" in new, new
    assert ("from typing import Optional\n" in new) == (not union)
    edits = FileEdits(add_params={4: ("request", "Request", True)})
    new, _, _ = apply_edits(FACTORY.replace("()", "(url)", 1), edits, "cache.py",
                            style=Style(union_syntax=union, dependencies=frozenset({"make_client"})))
    assert "def make_client(url, request: Request = None) -> Redis:" in new, new


@pytest.mark.parametrize("files, union", [
    ({}, False), ({"pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.10"\n'}, True),
    ({"pyproject.toml": "[tool.ruff]\ntarget-version = 'py311'\n"}, True),
    ({"pyproject.toml": "[tool.black]\ntarget-version = ['py39', 'py310']\n"}, False),
])
def test_the_python_target_is_the_projects(tmp_path, files, union):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert project_style(str(tmp_path)).union_syntax is union


def test_a_dependency_keeps_the_bare_request_class_fastapi_needs(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "cache.py").write_text(FACTORY)
    (tmp_path / "main.py").write_text(MAIN.replace(
        "async def index():\n    return await make_client().get('k')",
        "async def index(r=Depends(make_client)):\n    return await r.get('k')").replace(
        "import FastAPI", "import Depends, FastAPI"))
    res = run_tool("fix", ".", cwd=tmp_path)
    assert res.returncode == 1 and ", 0 left" in res.stderr, res.stderr
    cache = (tmp_path / "cache.py").read_text()
    assert "def make_client(request: Request = None) -> Redis:" in cache, cache


def test_a_parameter_added_after_self_leaves_no_trailing_comma(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "main.py").write_text(
        "from fastapi import Depends, FastAPI\nfrom redis.asyncio import Redis\n\napp = FastAPI()\n\n\n"
        "class Store:\n    def __init__(self):\n        self.redis = Redis.from_url('redis://localhost')\n\n\n"
        "@app.get('/')\nasync def index(store: Store = Depends()):\n    return await store.redis.get('k')\n")
    res = run_tool("fix", ".", cwd=tmp_path)
    assert res.returncode == 1 and ", 0 left" in res.stderr, res.stderr
    assert "    def __init__(self, request: Request):\n" in (tmp_path / "main.py").read_text()
