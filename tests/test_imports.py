"""The fixer's import handling (``fix/imports.py``): unused imports dropped as pyflakes sees
them, needed ones added where isort (and ruff's I001) wants them."""
import ast
import shutil
import subprocess
import textwrap

import libcst as cst
import pytest

from conftest import run_tool
from redis_pool_lint.fix.imports import Flakes, add_imports, binding_names, drop_unused, spec_names
from redis_pool_lint.fix.isort import sectioner


def _drop(before: str, after: str, planned=(), exported=frozenset()) -> str:
    before, after = textwrap.dedent(before), textwrap.dedent(after)
    old = Flakes(ast.parse(before), "m.py")
    tree, _, _ = drop_unused(cst.parse_module(after), ast.parse(after), "m.py", old, spec_names(planned), exported)
    return tree.code


def test_drops_what_the_rewrite_left_unused_and_keeps_the_rest():
    before = """\
        import os
        import sys
        from redis.asyncio import Redis, ConnectionPool

        def f():
            return Redis(), ConnectionPool(), os.sep
    """
    after = """\
        import os
        import sys
        from redis.asyncio import Redis, ConnectionPool

        def f():
            return Redis(), os.sep
    """
    # sys was unused already: the user's business, not the rewrite's
    assert _drop(before, after) == textwrap.dedent("""\
        import os
        import sys
        from redis.asyncio import Redis

        def f():
            return Redis(), os.sep
    """)


def test_a_statement_left_empty_goes_and_its_blank_line_stays_with_the_next():
    before = """\
        import os

        from redis.asyncio import Redis

        def f():
            return Redis(), os.sep
    """
    after = """\
        import os

        from redis.asyncio import Redis

        def f():
            return os.sep
    """
    assert _drop(before, after) == "import os\n\ndef f():\n    return os.sep\n"


@pytest.mark.parametrize("statement, use", [
    ("import redis.asyncio", "redis.asyncio.Redis()"),
    ("import redis.asyncio as aioredis", "aioredis.Redis()"),
    ("from redis import asyncio as aioredis", "aioredis.Redis()"),
    ("from . import clients", "clients.make()"),
    ("from .clients import make as build", "build()"),
])
def test_every_form_of_import_is_matched(statement, use):
    before = f"{statement}\n\ndef f():\n    return {use}\n"
    after = f"{statement}\n\ndef f():\n    return None\n"
    assert _drop(before, after) == "def f():\n    return None\n"


def test_imports_inside_functions_and_parenthesised_lists():
    before = """\
        def f():
            from redis.asyncio import (
                ConnectionPool,
                Redis,
            )
            return Redis(connection_pool=ConnectionPool())
    """
    after = """\
        def f():
            from redis.asyncio import (
                ConnectionPool,
                Redis,
            )
            return Redis()
    """
    code = _drop(before, after)
    assert "ConnectionPool" not in code and "Redis" in code
    compile(code, "m.py", "exec")


def test_an_import_left_alone_in_a_block_becomes_pass():
    before = "def f():\n    import redis\n    return redis.Redis()\n"
    after = "def f():\n    import redis\n"
    assert _drop(before, after) == "def f():\n    pass\n"


def test_planned_removals_go_even_if_unused_before():
    before = "from redis.asyncio import Redis\n\nx = 1\n"
    assert _drop(before, before) == before
    assert _drop(before, before, [("redis.asyncio", "Redis", None)]) == "x = 1\n"


def test_a_name_other_modules_import_from_here_stays():
    before = "from redis.asyncio import Redis\n\ndef f():\n    return Redis()\n"
    after = "from redis.asyncio import Redis\n\ndef f():\n    return None\n"
    assert _drop(before, after, exported=frozenset({"Redis"})) == after
    # only at module level: a function's own import cannot be imported from elsewhere
    inner_before = "def f():\n    from redis.asyncio import Redis\n    return Redis()\n"
    inner_after = "def f():\n    from redis.asyncio import Redis\n    return None\n"
    assert _drop(inner_before, inner_after, exported=frozenset({"Redis"})) == "def f():\n    return None\n"


def test_the_fixer_keeps_an_import_another_module_takes_from_the_rewritten_one(tmp_path):
    """deps.py's last use of ``Redis`` goes, but main.py imports ``Redis`` from deps.py."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "deps.py").write_text(
        "from redis.asyncio import Redis\n\n\nasync def get_redis():\n    return Redis.from_url('redis://localhost')\n")
    (tmp_path / "main.py").write_text(
        "from fastapi import Depends, FastAPI\n\nfrom deps import Redis, get_redis\n\napp = FastAPI()\n\n\n"
        "@app.get('/')\nasync def index(r: Redis = Depends(get_redis)):\n    return await r.get('k')\n")
    res = run_tool("fix", ".", cwd=tmp_path)
    assert res.returncode == 1 and "changed 2 file(s), fixed 1 finding(s), 0 left" in res.stderr, res.stderr
    deps = (tmp_path / "deps.py").read_text()
    assert "\nfrom redis.asyncio import Redis\n" in deps and "request.app.state.redis" in deps
    assert run_tool("check", ".", cwd=tmp_path).returncode == 0


def test_binding_names_match_pyflakes():
    """The rendering must be pyflakes' own, or nothing would ever match."""
    code = ("import a.b\nimport a.b as c\nimport d as e\nfrom f import g\nfrom f import g as h\n"
            "from . import i\nfrom ..j import k as l\n")
    ours = [name for node in ast.parse(code).body for name in binding_names(node)]
    theirs = sorted(name for _, name in Flakes(ast.parse(code), "m.py").unused.elements())
    assert sorted(ours) == theirs
    assert ours == ["a.b", "a.b as c", "d as e", "f.g", "f.g as h", ".i", "..j.k as l"]


CASES = {
    "joins an existing from-import": "from fastapi import FastAPI\n\napp = FastAPI()\n",
    "after a docstring": '"""Doc."""\nimport os\n\nx = os.sep\n',
    "no imports at all": "x = 1\n",
    "a comment right after the imports": "import os\n# the app\nx = os.sep\n",
    "already imported": "from contextlib import asynccontextmanager\nfrom fastapi import Request\n\nx = 1\n",
    "star import": "from fastapi import *\n\nx = 1\n",
    "future import stays first": "from __future__ import annotations\nimport os\n\nx = 1\n",
    "relative module": "from .deps import get\n\nx = get()\n",
    "imported below some code": "import sys\n\nsys.path.insert(0, '.')\nfrom fastapi import Request\n\nx = Request\n",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_added_imports_are_where_isort_puts_them(case, tmp_path):
    """Each case, sorted as isort sorts it, stays sorted with the imports added: ruff's I001
    finds nothing (``deps`` is first party here, ``.deps`` local)."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the test extras install it)")
    path = tmp_path / "m.py"
    path.write_text(CASES[case])
    command = [ruff, "check", "--isolated", "--select", "I", "--config", "lint.isort.known-first-party=['deps']"]
    subprocess.run([*command, "--fix", "-q", str(path)], capture_output=True)
    source = path.read_text()
    specs = [("fastapi", "Request", None, 0), ("contextlib", "asynccontextmanager", None, 0),
             ("redis.asyncio", "Redis", "AsyncRedis", 0), ("deps", "other", None, 1), ("deps", "DEPS", None, 0),
             ("fastapi", "FastAPI", None, 0), ("redis", "Redis", "SyncRedis", 0), ("os", None, None, 0)]
    ours = add_imports(cst.parse_module(source), specs, sectioner({"deps"})).code
    compile(ours, "m.py", "exec")
    path.write_text(ours)
    res = subprocess.run([*command, str(path)], capture_output=True, text=True)
    assert res.returncode == 0, (source, ours, res.stdout)
    if case == "imported below some code":  # imported again above, pyflakes would call that a redefinition
        assert ours.count("from fastapi import Request") == 1


def test_the_import_unused_all_along_stays_even_when_it_comes_first():
    """Two imports of the same name: the one the rewrite left unused goes, not the first one
    pyflakes happens to list (a local import nobody used, the user's business)."""
    before = """\
        def legacy():
            from redis.asyncio import Redis
            return 1

        from redis.asyncio import Redis

        def f():
            return Redis()
    """
    after = before.replace("return Redis()", "return None")
    code = _drop(before, after)
    assert code == textwrap.dedent("""\
        def legacy():
            from redis.asyncio import Redis
            return 1

        def f():
            return None
    """)


def test_exported_names_stay_at_module_scope_inside_try_and_if():
    before = """\
        try:
            from .settings import REDIS_URL
        except ImportError:
            REDIS_URL = "redis://localhost"
        if True:
            from redis.asyncio import Redis

        def f():
            return Redis.from_url(REDIS_URL)
    """
    after = before.replace("Redis.from_url(REDIS_URL)", "None")
    assert _drop(before, after, exported=frozenset({"REDIS_URL"})) == textwrap.dedent(after).replace(
        "if True:\n    from redis.asyncio import Redis\n", "if True:\n    pass\n")
    # a star import takes every public name
    assert _drop(before, after, exported=frozenset({"*"})) == textwrap.dedent(after)


# deps.py's REDIS_URL import loses its last use in the rewrite; another module (or a test)
# takes REDIS_URL from deps.py in each of these ways.
IMPORTERS = {
    "from-import": ("app/other.py", "from .deps import REDIS_URL\n\nprint(REDIS_URL)\n"),
    "module attribute": ("app/other.py", "from . import deps\n\nprint(deps.REDIS_URL)\n"),
    "dotted module attribute": ("app/other.py", "import app.deps\n\nprint(app.deps.REDIS_URL)\n"),
    "aliased module": ("app/other.py", "import app.deps as d\n\nprint(d.REDIS_URL)\n"),
    "star import": ("app/other.py", "from .deps import *\n\nprint(REDIS_URL)\n"),
    "comment in parentheses": ("app/other.py", "from .deps import (  # shared\n    RedisDep,  # the client\n"
                                               "    REDIS_URL,\n)\n\nprint(REDIS_URL, RedisDep)\n"),
    "backslash continuation": ("app/other.py", "from .deps import RedisDep, \\\n    REDIS_URL\n\n"
                                               "print(REDIS_URL, RedisDep)\n"),
    "a test file": ("tests/test_deps.py", "from app.deps import REDIS_URL\n\n\ndef test_url():\n"
                                          "    assert REDIS_URL\n"),
}


def _deps_project(tmp_path, importer=None):
    (tmp_path / "pyproject.toml").write_text("")
    app = tmp_path / "app"
    (app / "routers").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "routers" / "__init__.py").write_text("")
    (app / "settings.py").write_text("import os\n\nREDIS_URL = os.environ.get('REDIS_URL', 'redis://localhost')\n")
    (app / "deps.py").write_text(
        "from typing import Annotated\n\nfrom fastapi import Depends\nfrom redis.asyncio import Redis\n\n"
        "from .settings import REDIS_URL\n\n\nasync def get_redis():\n    client = Redis.from_url(REDIS_URL)\n"
        "    try:\n        yield client\n    finally:\n        await client.aclose()\n\n\n"
        "RedisDep = Annotated[Redis, Depends(get_redis)]\n")
    (app / "routers" / "counters.py").write_text(
        "from fastapi import APIRouter\n\nfrom ..deps import RedisDep\n\nrouter = APIRouter()\n\n\n"
        "@router.get('/{key}')\nasync def incr(key: str, r: RedisDep) -> dict:\n"
        "    return {'value': await r.incr(key)}\n")
    (app / "main.py").write_text("from fastapi import FastAPI\n\nfrom .routers import counters\n\n"
                                 "app = FastAPI()\napp.include_router(counters.router)\n")
    if importer:
        path, text = importer
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(text)


@pytest.mark.parametrize("case", sorted(IMPORTERS))
def test_a_name_imported_from_the_rewritten_module_in_any_form_stays(tmp_path, case):
    _deps_project(tmp_path, IMPORTERS[case])
    res = run_tool("fix", ".", cwd=tmp_path)
    assert res.returncode == 1 and "changed 2 file(s), fixed 1 finding(s), 0 left" in res.stderr, res.stderr
    deps = (tmp_path / "app" / "deps.py").read_text()
    assert "from .settings import REDIS_URL\n" in deps and "request.app.state.redis" in deps


def test_a_module_read_through_another_name_loses_only_what_nobody_reads(tmp_path):
    _deps_project(tmp_path, ("app/other.py", "from . import deps\n\nprint(deps.get_redis)\n"))
    res = run_tool("fix", ".", cwd=tmp_path)
    assert res.returncode == 1 and "changed 2 file(s)" in res.stderr, res.stderr
    deps = (tmp_path / "app" / "deps.py").read_text()
    assert "REDIS_URL" not in deps.split("async def")[0]  # the import went ...
    assert "REDIS_URL" in (tmp_path / "app" / "main.py").read_text()  # ... to the lifespan's module


@pytest.mark.parametrize("binding, use, reason", [
    ("from urllib import request", "request.pathname2url('a b')", "would hide the module-level name `request`"),
    ("def request(key):\n    return key", "request('k')", "would hide the module-level name `request`"),
    ("request = dict(key='k')", "request['key']", "would hide the module-level name `request`"),
    ("from requests import Request", "Request", "`Request` is `requests.Request` in this module"),
    ("class Request:\n    pass", "Request", "`Request` is `main.Request` in this module"),
])
def test_a_new_request_parameter_never_takes_a_name_the_module_uses(tmp_path, binding, use, reason):
    """The handler reads the module's ``request``/``Request``: adding ``request: Request``
    would silently change what those names mean. The site is left alone, and nothing else of
    its rewrite (the lifespan, the client) happens either; another module's site is fixed."""
    (tmp_path / "pyproject.toml").write_text("")
    source = (f"{binding}\n\nfrom fastapi import FastAPI\nfrom redis.asyncio import Redis\n\nfrom items import router\n\n"
              "app = FastAPI()\napp.include_router(router)\n\n\n"
              "@app.get('/x')\nasync def x():\n    r = Redis.from_url('redis://localhost')\n    try:\n"
              f"        await r.set('k', 'v')\n        return {use}\n    finally:\n        await r.aclose()\n")
    (tmp_path / "main.py").write_text(source)
    (tmp_path / "items.py").write_text(
        "from fastapi import APIRouter, Request\nfrom redis.asyncio import Redis\n\nrouter = APIRouter()\n\n\n"
        "@router.get('/items')\nasync def items(request: Request):\n    r = Redis.from_url('redis://localhost')\n"
        "    try:\n        return await r.get('items')\n    finally:\n        await r.aclose()\n")
    res = run_tool("fix", ".", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert reason in res.stderr and "fixed 1 finding(s), 1 left" in res.stderr, res.stderr
    assert "request.app.state.redis" in (tmp_path / "items.py").read_text()
    main = (tmp_path / "main.py").read_text()
    assert main.split("\n\n@app.get")[1] == source.split("\n\n@app.get")[1]  # the handler is untouched


def test_a_parenthesised_import_keeps_its_comments_when_its_last_name_goes():
    before = """\
        from redis.asyncio import (
            ConnectionPool,  # the pool
            Redis,
        )

        def f():
            return Redis(connection_pool=ConnectionPool())
    """
    after = before.replace("Redis(connection_pool=ConnectionPool())", "ConnectionPool()")
    code = _drop(before, after)
    assert "ConnectionPool,  # the pool\n" in code and "Redis" not in code
    compile(code, "m.py", "exec")


def test_a_one_line_parenthesised_import_loses_its_comma():
    before = "from redis.asyncio import (ConnectionPool, Redis)\n\ndef f():\n    return Redis(ConnectionPool())\n"
    after = before.replace("Redis(ConnectionPool())", "ConnectionPool()")
    assert _drop(before, after) == after.replace("(ConnectionPool, Redis)", "(ConnectionPool)")


def test_names_unused_all_along_stay_when_the_rewrite_joins_their_statement():
    """The rewrite adds ``Request`` to the existing ``from fastapi import ...``: the
    statement changed, but ``Depends``, unused before, is still the user's business."""
    before = "from fastapi import FastAPI, Depends\n\napp = FastAPI()\n"
    after = ("from fastapi import Request, FastAPI, Depends\n\napp = FastAPI()\n\n\n"
             "def f(request: Request):\n    return request\n")
    assert _drop(before, after) == after


def test_an_import_moved_by_an_unwrapped_with_is_still_the_same_import():
    before = """\
        async def f():
            async with make() as r:
                import os
                return r
    """
    after = """\
        async def f():
            r = shared
            import os
            return r
    """
    assert _drop(before, after) == textwrap.dedent(after)
