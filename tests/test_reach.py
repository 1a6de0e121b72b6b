"""Which modules the analysis parses (``analysis/reach.py``): those that import a name that can
reach a client, at the level it reaches it. Nothing a finding is made of may be left out."""
import os

from redis_pool_lint.analysis import load

PROJECT = {
    # the seed: a lazy singleton (hands out the shared client), a builder (a client per call),
    # a shared sync client, and a plain constant
    "app/cache.py": (
        "import redis\n"
        "import redis.asyncio as aredis\n\n"
        "Redis = aredis.Redis\n"
        "TTL = 30\n"
        "_client = None\n"
        "sync_client = redis.Redis()\n"
        "shared = aredis.Redis()\n\n\n"
        "def get_client() -> Redis:\n"
        "    global _client\n"
        "    if _client is None:\n"
        "        _client = aredis.Redis.from_url('redis://localhost')\n"
        "    return _client\n\n\n"
        "def new_client() -> Redis:\n"
        "    return aredis.Redis.from_url('redis://localhost')\n"
    ),
    # uses the shared async client it is handed, and calls the getter for its result: neither
    # builds, closes nor blocks
    "app/queue.py": (
        "from app.cache import Redis, get_client\n\n\n"
        "class Queue:\n"
        "    async def push(self, r: Redis, item):\n"
        "        async with r.pipeline() as pipe:\n"
        "            await pipe.rpush('q', item).execute()\n\n"
        "    def close(self):\n"
        "        self.closed = True\n\n\n"
        "async def enqueue(item):\n"
        "    await Queue().push(get_client(), item)\n"
    ),
    # what calls only ``enqueue`` (and imports from the queue module) cannot make a finding
    "app/orders.py": "from app.queue import enqueue\n\n\nasync def place(order):\n    await enqueue(order)\n",
    "app/billing.py": "from app.orders import place\n\n\nasync def bill(order):\n    await place(order)\n",
    "app/limits.py": "from app.cache import TTL\n\nLIMIT = TTL * 2\n",
    "app/helpers.py": (
        "from app.cache import new_client, shared, sync_client\n\n\n"
        "async def fetch():\n"
        "    return await new_client().get('k')\n\n\n"
        "async def shutdown():\n"
        "    await shared.aclose()\n\n\n"
        "async def count():\n"
        "    return sync_client.dbsize()\n"
    ),
    "app/services.py": "from app import helpers\n\n\nasync def load():\n    return await helpers.fetch()\n",
    "app/main.py": (
        "from fastapi import FastAPI\n"
        "from app.helpers import count, shutdown\n"
        "from app.services import load\n\n"
        "app = FastAPI()\n\n\n"
        "@app.get('/a')\n"
        "async def a():\n"
        "    return await load()\n\n\n"
        "@app.get('/b')\n"
        "async def b():\n"
        "    await shutdown()\n\n\n"
        "@app.get('/c')\n"
        "async def c():\n"
        "    return await count()\n"
    ),
}


def build(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "__init__.py").touch()
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(text)
    result = load.build(str(tmp_path), load.Settings())
    parsed = {os.path.relpath(p, tmp_path) for p in result.summaries}
    codes = {(os.path.relpath(p, tmp_path), f.line, f.code) for p, fs in result.findings.items() for f in fs}
    return parsed, codes


def test_callers_of_a_helper_that_only_uses_the_shared_client_are_not_parsed(tmp_path):
    parsed, _ = build(tmp_path)
    # the queue module imports the seed's names; what imports only its harmless names is skipped,
    # and so is what imports from those
    assert "app/queue.py" in parsed
    assert not {"app/orders.py", "app/billing.py"} & parsed


def test_importing_a_constant_of_a_relevant_module_still_parses(tmp_path):
    """A module-level variable of a module that reaches a client may hold one (values are not summarised)."""
    parsed, _ = build(tmp_path)
    assert "app/limits.py" in parsed


def test_findings_through_chains_across_modules_are_kept(tmp_path):
    parsed, codes = build(tmp_path)
    assert {"app/cache.py", "app/helpers.py", "app/services.py", "app/main.py"} <= parsed
    # a client built per call, two modules down; the shared client closed by a helper; a sync
    # command through a sync helper, in async request scope
    assert ("app/helpers.py", 5, "RPL105") in codes
    assert ("app/helpers.py", 9, "RPL002") in codes
    assert ("app/helpers.py", 13, "RPL205") in codes


def test_results_match_parsing_every_module(tmp_path, monkeypatch):
    """The selection changes the work, never the findings."""
    _, selected = build(tmp_path)
    from redis_pool_lint.analysis import reach

    monkeypatch.setattr(reach.Reach, "to_parse",
                        lambda self, changed, done: sorted(p for p in self.by_name.values() if not done(p)))
    parsed, everything = build(tmp_path)
    assert "app/orders.py" in parsed
    assert selected == everything


def test_the_client_library_s_own_source_is_no_user_of_it(tmp_path):
    """redis-py's modules import their own package: nothing there builds a client for an app."""
    lib = tmp_path / "site-packages" / "redis"
    (lib / "asyncio").mkdir(parents=True)
    (lib / "__init__.py").write_text("from redis.client import Redis\n")
    (lib / "client.py").write_text("from redis.connection import ConnectionPool\n\nclass Redis:\n    pass\n")
    (lib / "connection.py").write_text("class ConnectionPool:\n    pass\n")
    (lib / "asyncio" / "__init__.py").write_text("from redis.asyncio.client import Redis\n")
    (lib / "asyncio" / "client.py").write_text("import redis\n\nclass Redis:\n    pass\n")
    assert load.find_root(str(lib / "client.py")) == str(lib)
    assert load.build(str(lib), load.Settings()).parsed == 0
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "app.py").write_text("import redis\n\nclient = redis.Redis()\n")
    assert load.build(str(tmp_path), load.Settings()).parsed == 1  # an app importing it is one
