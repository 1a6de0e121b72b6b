"""The analysis cache: same results with and without it, never stale, safe for concurrent
processes, silent about damage, and absent with --no-cache."""
import ast
import gc
import os
import subprocess
import sys
import threading

import pytest
from conftest import BAD, ROOT, run_flake8, run_tool, start_in_turn
from test_agreement import parse

from redis_pool_lint.analysis import load
from redis_pool_lint.analysis.cache import FOLDER
from redis_pool_lint.analysis.summary import ModuleSummary, summarize

#: a factory in one module, called per request from another: RPL101 in routes.py
DEPS = (
    "import redis.asyncio as redis\n"
    "\n"
    "def get_redis():\n"
    "    return redis.Redis(host='localhost')\n"
)
#: the same module once fixed: one client for the process (same size as DEPS is not needed)
DEPS_SHARED = (
    "import redis.asyncio as redis\n"
    "\n"
    "CLIENT = redis.Redis(host='localhost')\n"
    "\n"
    "def get_redis():\n"
    "    return CLIENT\n"
)
ROUTES = (
    "from fastapi import FastAPI\n"
    "from deps import get_redis\n"
    "\n"
    "app = FastAPI()\n"
    "\n"
    "@app.get('/')\n"
    "async def index():\n"
    "    return await get_redis().get('k')\n"
)


def two_modules(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "deps.py").write_text(DEPS)
    (tmp_path / "routes.py").write_text(ROUTES)
    return tmp_path


def cached(result):
    """Did ``check -v`` read the project's findings from the cache?"""
    return "from the cache" in result.stderr


def test_same_results_with_and_without_the_cache(corpus, tmp_path):
    base, _ = corpus
    cache = str(tmp_path / "cache")
    fresh = run_tool("check", "--no-cache", ".", cwd=base)
    cold = run_tool("check", "-v", "--cache-dir", cache, ".", cwd=base)
    warm = run_tool("check", "-v", "--cache-dir", cache, ".", cwd=base)
    assert fresh.returncode == cold.returncode == warm.returncode == 1
    assert parse(fresh.stdout) == parse(cold.stdout) == parse(warm.stdout)
    assert len(parse(fresh.stdout)) > 50
    assert not cached(cold) and cached(warm)


def test_flake8_and_check_agree_with_the_cache_on(corpus, tmp_path):
    base, _ = corpus
    cache = str(tmp_path / "cache")
    flake_cold = run_flake8("--select=RPL", "-j2", f"--rpl-cache-dir={cache}", ".", cwd=base, timeout=600)
    check = run_tool("check", "-v", "--cache-dir", cache, ".", cwd=base)
    flake_warm = run_flake8("--select=RPL", "-j2", f"--rpl-cache-dir={cache}", ".", cwd=base, timeout=600)
    assert cached(check)  # flake8 filled it; check read it
    assert parse(flake_cold.stdout) == parse(flake_warm.stdout) == parse(check.stdout, base)
    assert len(parse(flake_warm.stdout)) > 50


def test_an_edit_changes_the_result(project):
    assert run_tool("check", ".", cwd=project).returncode == 1
    assert (project / FOLDER / ".gitignore").read_text().splitlines()[-1] == "*"
    (project / "app.py").write_text(BAD.replace("redis.Redis(connection_pool=pool)", "request.app.state.r"))
    after = run_tool("check", "-v", ".", cwd=project)
    assert [code for *_, code in parse(after.stdout)] == ["RPL102"], after.stdout  # the client is gone
    assert not cached(after)


def test_an_edit_of_the_same_size_and_mtime_changes_the_result(project):
    """Coarse timestamps: a rewrite within one mtime tick is caught by content."""
    app = project / "app.py"
    assert run_tool("check", ".", cwd=project).returncode == 1
    st = app.stat()
    lines = BAD.splitlines(True)
    for n, code in ((5, "    pool = None  #"), (6, "    return None  #")):
        lines[n] = code.ljust(len(lines[n]) - 1, "x") + "\n"
    app.write_text("".join(lines))
    os.utime(app, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (app.stat().st_size, app.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    after = run_tool("check", ".", cwd=project)
    assert after.returncode == 0, after.stdout


def test_an_edit_in_another_module_changes_the_findings_of_this_one(tmp_path):
    root = two_modules(tmp_path)
    before = run_flake8("--select=RPL", "routes.py", cwd=root)
    assert [code for *_, code in parse(before.stdout)] == ["RPL101"], before.stdout
    assert parse(run_flake8("--select=RPL", "routes.py", cwd=root).stdout) == parse(before.stdout)  # warm
    (root / "deps.py").write_text(DEPS_SHARED)
    after = run_flake8("--select=RPL", "routes.py", cwd=root)
    assert after.returncode == 0 and after.stdout == "", after.stdout
    check = run_tool("check", ".", cwd=root)
    assert check.returncode == 0, check.stdout


def test_a_new_file_is_seen(tmp_path):
    root = two_modules(tmp_path)
    (root / "deps.py").write_text(DEPS_SHARED)
    assert run_tool("check", ".", cwd=root).returncode == 0
    (root / "more.py").write_text(BAD)
    after = run_tool("check", ".", cwd=root)
    assert after.returncode == 1 and "more.py" in after.stdout


def test_concurrent_runs_agree_and_leave_the_cache_intact(corpus, tmp_path):
    base, _ = corpus
    cache = str(tmp_path / "cache")
    expected = parse(run_tool("check", "--no-cache", ".", cwd=base).stdout)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flake8 = [sys.executable, "-m", "flake8", "--isolated", "--select=RPL", "-j2", f"--rpl-cache-dir={cache}", "."]
    check = [sys.executable, "-m", "redis_pool_lint", "check", "-j2", "--cache-dir", cache, "."]
    procs = [subprocess.Popen(cmd, cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in (flake8, flake8, check, check)]
    outs = [p.communicate(timeout=600) for p in procs]
    for (out, err), p in zip(outs, procs):
        assert p.returncode == 1, err
        assert "Traceback" not in err
    assert parse(outs[0][0]) == parse(outs[1][0]) == parse(outs[2][0], base) == parse(outs[3][0], base)
    assert parse(outs[2][0]) == expected
    assert not [n for n in os.listdir(cache) if n.startswith(".tmp-")]  # no write left half-done
    warm = run_tool("check", "-v", "--cache-dir", cache, ".", cwd=base)
    assert cached(warm) and parse(warm.stdout) == expected


def test_a_second_process_waits_for_the_analysis_instead_of_repeating_it(tmp_path, monkeypatch):
    root = two_modules(tmp_path)
    calls = []
    inside = threading.Event()
    release = threading.Event()
    real = load._run

    def slow_run(*args, **kwargs):
        calls.append(1)
        inside.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "_run", slow_run)
    results = {}

    def analyse(name):
        results[name] = load.build(str(root), load.Settings(), cache=str(tmp_path / "cache"))

    first, second = start_in_turn(analyse, inside)
    second.join(0.5)
    assert second.is_alive()  # waiting for the lock (ready to help with what is posted)
    release.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 1
    assert results["second"].cached and not results["first"].cached
    assert results["first"].findings == results["second"].findings
    assert [f.code for f in results["second"].findings[str(root / "routes.py")]] == ["RPL101"]


def test_a_corrupt_cache_is_recomputed_silently(project):
    assert run_tool("check", ".", cwd=project).returncode == 1
    folder = project / FOLDER
    damaged = [p for p in folder.iterdir() if p.suffix in (".files", ".findings")]
    assert len(damaged) == 2
    for n, path in enumerate(damaged):
        path.write_bytes(b"\x80\x04garbage" if n else b"")
    again = run_tool("check", "-v", ".", cwd=project)
    assert again.returncode == 1 and "RPL101" in again.stdout and "RPL102" in again.stdout
    assert "Traceback" not in again.stderr and not cached(again)
    assert cached(run_tool("check", "-v", ".", cwd=project))  # and written anew


def test_an_unreadable_cache_is_ignored(project, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    flake = run_flake8("--select=RPL", f"--rpl-cache-dir={blocked / 'sub'}", ".", cwd=project)
    assert flake.returncode == 1 and "RPL101" in flake.stdout, flake.stderr
    assert "Traceback" not in flake.stderr


def test_no_cache_writes_nothing(project):
    assert run_tool("check", "--no-cache", ".", cwd=project).returncode == 1
    assert run_flake8("--select=RPL", "--rpl-no-cache", ".", cwd=project).returncode == 1
    env_off = subprocess.run([sys.executable, "-m", "redis_pool_lint", "check", "."], cwd=project,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "REDIS_POOL_LINT_NO_CACHE": "1"})
    assert env_off.returncode == 1
    assert sorted(os.listdir(project)) == ["app.py", "pyproject.toml"]


def test_flake8_reads_the_cache_options_from_its_config(project, tmp_path):
    (project / "setup.cfg").write_text("[flake8]\nrpl-no-cache = true\n")
    assert run_tool("check", ".", cwd=project).returncode == 1
    assert subprocess.run([sys.executable, "-m", "flake8", "--select=RPL", "."], cwd=project, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode == 1
    assert not (project / FOLDER).exists()
    (project / "setup.cfg").write_text("[flake8]\nrpl-cache-dir = elsewhere\n")
    assert run_tool("check", ".", cwd=project).returncode == 1
    assert (project / "elsewhere" / ".gitignore").exists() and not (project / FOLDER).exists()


def test_a_cache_dir_that_is_a_file_is_a_usage_error(project):
    (project / "file").write_text("")
    bad = run_tool("check", "--cache-dir", "file", ".", cwd=project)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"redis-pool-lint: error: --cache-dir {project / 'file'}: not a folder"]


def test_the_word_redis_alone_parses_nothing(tmp_path):
    """A settings module with a ``RedisDsn`` field builds no client: nothing to analyse."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "settings.py").write_text(
        "from pydantic import BaseModel, RedisDsn\n\nclass Settings(BaseModel):\n    redis_url: RedisDsn\n")
    (tmp_path / "main.py").write_text("from settings import Settings\nsettings = Settings()\n")
    result = load.build(str(tmp_path), load.Settings())
    assert result.parsed == 0 and result.summaries == {}
    (tmp_path / "cache.py").write_text("import redis\n\nclient = redis.Redis()\n")
    assert load.build(str(tmp_path), load.Settings()).parsed >= 1


MIDDLEWARE_AND_HANDLER = (
    "from fastapi import FastAPI, Request\n\napp = FastAPI()\n\n\n"
    "@app.middleware('http')\nasync def session(request: Request, call_next):\n"
    "    try:\n        return await call_next(request)\n    finally:\n        request.state.db.close()\n\n\n"
    "@app.get('/')\nasync def index(request: Request):\n    await request.app.state.{name}.aclose()\n")


def test_closing_state_is_a_seed_only_where_a_client_is_built(tmp_path):
    """``request.state.db.close()`` ends many apps' database sessions: in a tree that builds no
    client it parses nothing; beside a module that builds one, the closing module is analysed
    (the lifespan's client closed per request is a finding). App state named for a client is
    taken for one without its construction (the detector's rule), so its close starts alone."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "main.py").write_text(MIDDLEWARE_AND_HANDLER.format(name="cache"))
    result = load.build(str(tmp_path), load.Settings())
    assert result.parsed == 0 and result.findings == {}
    (tmp_path / "lifespan.py").write_text(
        "from contextlib import asynccontextmanager\n\nfrom redis.asyncio import Redis\n\n\n"
        "@asynccontextmanager\nasync def lifespan(app):\n    app.state.cache = Redis()\n    yield\n"
        "    await app.state.cache.aclose()\n")
    result = load.build(str(tmp_path), load.Settings())
    assert [(f.line, f.code) for f in result.findings[str(tmp_path / "main.py")]] == [(16, "RPL002")]
    (tmp_path / "lifespan.py").unlink()
    (tmp_path / "main.py").write_text(MIDDLEWARE_AND_HANDLER.format(name="redis"))
    result = load.build(str(tmp_path), load.Settings())
    assert [(f.line, f.code) for f in result.findings[str(tmp_path / "main.py")]] == [(16, "RPL002")]


def test_another_version_of_the_tool_reads_nothing_it_did_not_write(tmp_path, monkeypatch):
    from redis_pool_lint.analysis import cache

    root = two_modules(tmp_path)
    where = str(tmp_path / "cache")
    assert not load.build(str(root), load.Settings(), cache=where).cached
    assert load.build(str(root), load.Settings(), cache=where).cached
    monkeypatch.setattr(cache, "code_version", lambda: "an upgrade")
    again = load.build(str(root), load.Settings(), cache=where)
    assert not again.cached and [f.code for f in again.findings[str(root / "routes.py")]] == ["RPL101"]


def test_each_file_is_read_once_per_run(tmp_path, monkeypatch):
    """With one job, the bytes the pre-filter fingerprints are the bytes the import scan reads
    and the parse summarises: one read per file, so an edit during the run cannot split them."""
    two_modules(tmp_path)
    (tmp_path / "other.py").write_text("import os\n")
    reads = []
    real = load.read_stat
    monkeypatch.setattr(load, "read_stat", lambda path: reads.append(path) or real(path))
    monkeypatch.setattr(load, "read_source", lambda path: reads.append(path) or real(path)[0])
    result = load.build(str(tmp_path), load.Settings())
    assert [f.code for f in result.findings[str(tmp_path / "routes.py")]] == ["RPL101"]
    assert result.parsed == 2
    assert sorted(reads) == sorted(str(tmp_path / n) for n in ("deps.py", "routes.py", "other.py"))


def test_the_cycle_collector_is_off_during_the_analysis_only(tmp_path, monkeypatch):
    """Off while the analysis runs (it keeps millions of objects alive, which the collector
    walked over and over), back on after it, also when it fails; a caller that turned it off
    keeps it off."""
    two_modules(tmp_path)
    seen = []
    real = load._build

    def spy(*args):
        seen.append(gc.isenabled())
        return real(*args)

    monkeypatch.setattr(load, "_build", spy)
    was = gc.isenabled()
    try:
        gc.enable()
        load.build(str(tmp_path), load.Settings())
        assert seen == [False] and gc.isenabled()

        def broken(*args):
            raise RuntimeError("boom")

        monkeypatch.setattr(load, "_build", broken)
        with pytest.raises(RuntimeError):
            load.build(str(tmp_path), load.Settings())
        assert gc.isenabled()
        monkeypatch.setattr(load, "_build", spy)
        gc.disable()
        load.build(str(tmp_path), load.Settings())
        assert seen[-1] is False and not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_a_summarised_tree_is_freed_without_the_cycle_collector():
    """What makes turning the collector off safe: nothing the summary leaves behind is a cycle
    that holds the tree (a visitor keeping its own bound methods did, and doubled the peak)."""
    source = DEPS + ROUTES + (
        "\n"
        "class Cache:\n"
        "    def __init__(self):\n"
        "        self.client = redis.Redis()\n"
        "\n"
        "    async def get(self, key):\n"
        "        if self.client is None:\n"
        "            self.client = redis.Redis()\n"
        "        return await self.client.get(key)\n"
    )
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        tree = ast.parse(source)
        summary = summarize(tree, "app.routes", "routes.py", False, (), ())
        assert summary.functions
        del tree
        gc.collect()
        held = [o for o in gc.garbage if isinstance(o, ast.AST)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        (gc.enable if was else gc.disable)()
    assert held == []


def test_flake8_keeps_the_findings_not_the_analysis(tmp_path):
    """What a flake8 process keeps for the rest of its run holds no summary: the cycle collector
    would walk them on every full collection, on every file after the first."""
    root = two_modules(tmp_path)
    load.clear_cache()
    gc.collect()
    before = sum(isinstance(o, ModuleSummary) for o in gc.get_objects())
    try:
        result = load.project_for(str(root / "routes.py"), load.Settings())
        gc.collect()
        kept = sum(isinstance(o, ModuleSummary) for o in gc.get_objects())
        assert [f.code for f in result.findings[str(root / "routes.py")]] == ["RPL101"]
    finally:
        load.clear_cache()
    assert result.parsed == 2 and kept == before
