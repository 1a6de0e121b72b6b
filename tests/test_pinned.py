"""Apps pinned to old client libraries (fixtures/pinned), fixed and served by the version they pin.

A rewrite that uses API the project's redis-py lacks (``from_pool``, ``aclose``: 5.0.1) fails at
startup or at every shutdown. Each app is fixed with this checkout, then served by uvicorn from a
throwaway venv that has exactly its ``requirements.txt`` (cached under ``.ci-venvs/pinned``),
loaded against the session's real redis-server, and stopped: every request must succeed, the
counter must count each, and the server must log no error, shutdown included.
"""
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

spec = importlib.util.spec_from_file_location("rpl_benchmark_load_pinned", ROOT / "benchmarks" / "load.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

PINNED = FIXTURES / "pinned"
#: aioredis 2.0 cannot be imported on Python 3.11 (TimeoutError's bases clash), 1.3 needs 3.9's asyncio
OLD_PYTHONS = ("3.9", "3.10")
REQUESTS, CONCURRENCY = 200, 20


def old_python():
    """An interpreter old enough for aioredis: pyenv's, then the PATH's, then this one."""
    for version in OLD_PYTHONS:
        pyenv = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*"))
        for found in [str(p / "bin" / "python") for p in pyenv] + [shutil.which(f"python{version}")]:
            if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
                return found
    return sys.executable if sys.version_info < (3, 11) else None


def venv_for(app: Path) -> str:
    """A venv with the app's requirements (made once per requirements and interpreter)."""
    base = old_python()
    if base is None:
        pytest.skip(f"no Python {' or '.join(OLD_PYTHONS)} on this machine to run aioredis")
    requirements = (app / "requirements.txt").read_bytes()
    key = hashlib.sha256(requirements + base.encode()).hexdigest()[:10]
    venv = ROOT / ".ci-venvs" / "pinned" / f"{app.name}-{key}"
    python = venv / "bin" / "python"
    if not (venv / "ready").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        made = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "-r", str(app / "requirements.txt")], capture_output=True, text=True, timeout=600)
        if made.returncode != 0:
            pytest.fail(f"could not install {app.name}'s requirements: {made.stderr[-1500:]}")
        (venv / "ready").touch()
    return str(python)


def fixed_copy(app: Path, tmp_path: Path) -> Path:
    dest = tmp_path / app.name
    shutil.copytree(app, dest)
    res = subprocess.run([sys.executable, "-m", "redis_pool_lint", "fix", "."], cwd=dest, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 1, res.stderr  # files changed
    assert "0 left" in res.stderr, res.stderr
    return dest


@pytest.mark.parametrize("name", sorted(p.name for p in PINNED.iterdir() if p.is_dir()))
def test_fixed_app_runs_on_the_version_it_pins(name, tmp_path, redis_url):
    app = PINNED / name
    python = venv_for(app)
    folder = fixed_copy(app, tmp_path)
    text = (folder / "main.py").read_text()
    if "redis==4" in (app / "requirements.txt").read_text() or "aioredis" in name:
        assert ".from_pool(" not in text and ".aclose(" not in text, text
    target = bench.App(name, "main:app", "/hits/home", f"pinned:{name.split('_')[0]}:home", "", 1.0)
    procs = bench.Processes()
    log = tmp_path / "server.log"
    try:
        result = _serve(procs, folder, target, redis_url, python, log)
    finally:
        procs.stop_all()
    assert result["errors"] == 0 and result["ok"] == REQUESTS, result
    assert result["counted"] == REQUESTS, result
    assert result["new_connections"] <= 55, result  # one bounded pool (aioredis 1.x: 10), not one per request
    logged = log.read_text(errors="replace")
    assert "Traceback" not in logged and "ERROR" not in logged, logged[-3000:]
    assert "shutdown complete" in logged.lower() or "Finished server process" in logged, logged[-3000:]


def _serve(procs, folder, target, redis_url, python, log):
    """bench.measure with uvicorn at info level, so the end of its shutdown shows in the log
    (``stop`` sends SIGINT: the lifespan's teardown runs, and would log its error)."""
    return bench.measure(procs, folder, target, redis_url, CONCURRENCY, REQUESTS, 20.0, log, python=python,
                         log_level="info")
