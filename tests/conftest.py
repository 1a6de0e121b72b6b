import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>RPL\d{3}(?:\s*,\s*RPL\d{3})*)")

#: a one-file app with a pool (RPL102, line 6) and a client (RPL101, line 7) built per request
BAD = (
    "from fastapi import FastAPI\n"
    "import redis.asyncio as redis\n"
    "app = FastAPI()\n"
    "@app.get('/')\n"
    "async def index():\n"
    "    pool = redis.ConnectionPool()\n"
    "    return await redis.Redis(connection_pool=pool).get('k')\n"
)
#: a route decorator and a client factory only the options make known (RPL101 at 6:18)
CUSTOM = (
    "from myframework import web\n"
    "from myapp.cache import make_client\n"
    "\n"
    "@web.cached_route('/a')\n"
    "async def a():\n"
    "    return await make_client().get('k')\n"
)


@pytest.fixture
def project(tmp_path):
    """A project holding ``BAD`` as ``app.py``."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "app.py").write_text(BAD)
    return tmp_path


def case_files():
    return sorted((FIXTURES / "cases").glob("RPL*/*.py"))


def project_dirs():
    return sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())


def expected_in(directory: Path):
    """{(relative path, line, code)} from ``# expect:`` markers under a directory."""
    out = set()
    for path in sorted(directory.rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = EXPECT.search(line)
            if m:
                for code in re.split(r"\s*,\s*", m.group("codes")):
                    out.add((path.relative_to(directory).as_posix(), lineno, code))
    return out


def materialize(src: Path, dest_root: Path) -> Path:
    """Copy a case file or project into its own project folder (marked by pyproject.toml)."""
    if src.is_file():
        dest = dest_root / f"{src.parent.name}__{src.stem}"
        dest.mkdir(parents=True)
        shutil.copy(src, dest / src.name)
    else:
        dest = dest_root / src.name
        shutil.copytree(src, dest)
    (dest / "pyproject.toml").touch()
    return dest


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Every fixture case and project, each as its own project, under one folder."""
    base = tmp_path_factory.mktemp("corpus")
    dirs = {}
    for src in [*case_files(), *project_dirs()]:
        dest = materialize(src, base)
        dirs[dest.name] = (src, dest)
    return base, dirs


def run_tool(*args, cwd=None, check=False, timeout=None, text=True):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "redis_pool_lint", *args],
        cwd=cwd, capture_output=True, text=text, check=check, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def run_flake8(*args, cwd=None, timeout=120):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def start_in_turn(target, inside, first="first", second="second"):
    """Start ``target(first)`` in a thread, and ``target(second)`` in another once the first has
    set ``inside`` (two processes asking for one analysis, the second while the first is in it)."""
    one = threading.Thread(target=target, args=(first,))
    one.start()
    assert inside.wait(10)
    two = threading.Thread(target=target, args=(second,))
    two.start()
    return one, two


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A throwaway redis-server on a free loopback port, stopped at the end of the session."""
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (bash .ci/run installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--maxclients", "2000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis as redis_py

    deadline = time.time() + 10
    while True:
        try:
            redis_py.Redis(port=port).ping()
            break
        except redis_py.ConnectionError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
