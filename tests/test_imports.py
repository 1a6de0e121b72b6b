"""The fixer's import handling (``fix/imports.py``): unused imports dropped as pyflakes sees
them, needed ones added the way libcst's ``AddImportsVisitor`` adds them."""
import ast
import textwrap

import libcst as cst
import pytest
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, ImportItem

from conftest import run_tool
from redis_pool_lint.fix.imports import Flakes, add_imports, binding_names, drop_unused, spec_names


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
    assert deps.startswith("from redis.asyncio import Redis\n") and "request.app.state.redis" in deps
    assert run_tool("check", ".", cwd=tmp_path).returncode == 0


def test_binding_names_match_pyflakes():
    """The rendering must be pyflakes' own, or nothing would ever match."""
    code = ("import a.b\nimport a.b as c\nimport d as e\nfrom f import g\nfrom f import g as h\n"
            "from . import i\nfrom ..j import k as l\n")
    ours = [name for node in ast.parse(code).body for name in binding_names(node)]
    theirs = sorted(Flakes(ast.parse(code), "m.py").unused_names())
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
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_adding_imports_agrees_with_libcst(case):
    source = CASES[case]
    specs = [("fastapi", "Request", None, 0), ("contextlib", "asynccontextmanager", None, 0),
             ("redis.asyncio", "Redis", "AsyncRedis", 0), ("deps", "other", None, 1)]
    ours = add_imports(cst.parse_module(source), specs).code
    items = [ImportItem(m, obj, asname, level) for m, obj, asname, level in specs]
    theirs = AddImportsVisitor(CodemodContext(), items).transform_module(cst.parse_module(source)).code
    if case == "relative module":  # libcst cannot tell without the package name; we merge it
        assert ours == ("from .deps import other, get\nfrom redis.asyncio import Redis as AsyncRedis\n"
                        "from contextlib import asynccontextmanager\nfrom fastapi import Request\n\nx = get()\n")
    else:
        assert ours == theirs
    compile(ours, "m.py", "exec")
