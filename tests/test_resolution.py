"""Cross-module name resolution: re-exports, package attributes, suffix matching."""
from redis_pool_lint.analysis.load import Settings, build


def write(root, files):
    (root / "pyproject.toml").touch()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def codes(root):
    result = build(str(root), Settings())
    assert not result.errors
    return sorted(
        (f.path[len(str(root)) + 1:], f.line, f.code) for fs in result.findings.values() for f in fs
    )


DEP = "from redis.asyncio import Redis\nasync def rate_limit():\n    return Redis()\n"
ROUTE = (
    "from fastapi import APIRouter, Depends\n"
    "from ..deps import rate_limit\n"
    "router = APIRouter(dependencies=[Depends(rate_limit)])\n"
)


def test_package_attribute_beats_submodule_of_the_same_name(tmp_path):
    write(tmp_path, {
        "app/__init__.py": "",
        "app/deps/__init__.py": "from .rate_limit import rate_limit\n",
        "app/deps/rate_limit.py": DEP,
        "app/routes/__init__.py": "",
        "app/routes/r.py": ROUTE,
    })
    assert codes(tmp_path) == [("app/deps/rate_limit.py", 3, "RPL103")]


def test_package_re_exporting_its_own_submodule_terminates(tmp_path):
    write(tmp_path, {
        "app/__init__.py": "",
        "app/deps/__init__.py": "from . import rate_limit\nfrom . import rate_limit as rl\n",
        "app/deps/rate_limit.py": DEP,
        "app/routes/__init__.py": "",
        "app/routes/r.py": ROUTE.replace("import rate_limit", "import rate_limit as m").replace(
            "Depends(rate_limit)", "Depends(m.rate_limit)"),
    })
    assert codes(tmp_path) == [("app/deps/rate_limit.py", 3, "RPL103")]


def test_suffix_match_prefers_the_nearest_project(tmp_path):
    """Two projects in one tree (no markers between) with the same package names do not mix."""
    for name, body in (("one", DEP), ("two", DEP.replace("return Redis()", "return None"))):
        for rel, text in {
            f"{name}/app/__init__.py": "",
            f"{name}/app/deps/__init__.py": "",
            f"{name}/app/deps/rate_limit.py": body,
            f"{name}/app/routes/__init__.py": "",
            f"{name}/app/routes/r.py": ROUTE.replace("..deps", "app.deps.rate_limit"),
        }.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (tmp_path / "pyproject.toml").touch()
    assert codes(tmp_path) == [("one/app/deps/rate_limit.py", 3, "RPL103")]


def test_stdlib_names_do_not_match_modules_inside_packages(tmp_path):
    """``import json`` is not ``vendor.lib.json`` (imports start outside packages)."""
    write(tmp_path, {
        "vendor/__init__.py": "",
        "vendor/json.py": "from redis.asyncio import Redis\ndef loads():\n    return Redis()\n",
        "main.py": (
            "import json\n"
            "from fastapi import FastAPI\n"
            "app = FastAPI()\n"
            "@app.get('/')\n"
            "async def index():\n"
            "    return json.loads('1')\n"
        ),
    })
    assert codes(tmp_path) == []


def _view(result):
    return (sorted((f.path, f.line, f.col, f.code, f.message) for fs in result.findings.values() for f in fs),
            sorted(result.errors), sorted(result.summaries), sorted(result.sources))


def test_a_rebuild_that_reuses_the_unchanged_files_sees_what_a_fresh_one_sees():
    """The fixer re-analyses its rewrite with ``build(reuse=...)``: only the rewritten files are
    read and parsed again, and the result is the one a build from scratch gives."""
    import pathlib

    fixtures = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "fix"
    reused_somewhere = False
    for case in ("routers", "helper_cli", "middleware_and_classes", "two_configs"):
        before = fixtures / case / "before"
        first = build(str(before), Settings(), keep_sources=True)
        assert first.findings and first.summaries
        # the rewrite of every changed file, standing in for it as the fixer's does
        new = {}
        for path in first.sources:
            after = fixtures / case / "after" / pathlib.Path(path).relative_to(before)
            if after.exists() and after.read_bytes() != first.sources[path]:
                new[path] = after.read_bytes()
        assert new, case
        sources = {**first.sources, **new}
        again = build(str(before), Settings(), sources=sources, keep_sources=True, reuse=first)
        fresh = build(str(before), Settings(), sources=sources, keep_sources=True)
        assert _view(again) == _view(fresh), case
        reused = [p for p in again.summaries if again.summaries[p] is first.summaries.get(p)]
        assert not set(reused) & set(new), case
        reused_somewhere = reused_somewhere or bool(reused)
    assert reused_somewhere
