"""The client library version a project pins, and what the analysis and the fixer make of it."""
import json
import re
import subprocess
import sys

import pytest

from redis_pool_lint.analysis.versions import lower_bound, read_pins

from conftest import ROOT


UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "celery"
version = "5.4.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "redis" },
]

[package.optional-dependencies]
redis = [
    { name = "redis" },
]

[[package]]
name = "redis"
version = "5.2.1"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://example.invalid/redis-5.2.1.tar.gz", hash = "sha256:00" }
wheels = [
    { url = "https://example.invalid/redis-5.2.1-py3-none-any.whl", hash = "sha256:00" },
]

[package.optional-dependencies]
hiredis = [
    { name = "hiredis" },
]

[[package]]
name = "redis-om"
version = "0.3.1"
"""


@pytest.mark.parametrize("files, expected", [
    ({"requirements.txt": "fastapi\nredis[hiredis]==4.5.4  # cache\n"}, (4, 5, 4)),
    ({"requirements/base.txt": "redis>=4.2,<5\n"}, (4, 2, 0)),
    ({"pyproject.toml": '[project]\ndependencies = ["redis~=5.0.1"]\n'}, (5, 0, 1)),
    ({"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\nredis = "^4.6.0"\n'}, (4, 6, 0)),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nredis = {version = "^5.2", extras = ["hiredis"]}\n'},
     (5, 2, 0)),
    ({"setup.cfg": "[options]\ninstall_requires =\n    fastapi\n    redis >= 4.3\n"}, (4, 3, 0)),
    ({"setup.py": "setup(install_requires=['redis==4.1.0', 'fastapi'])\n"}, (4, 1, 0)),
    ({"Pipfile": '[packages]\nredis = "==4.4.2"\n'}, (4, 4, 2)),
    # a lock says what is installed, whatever the ranges allow
    ({"requirements.txt": "redis>=4\n",
      "poetry.lock": '[[package]]\nname = "redis"\nversion = "5.0.8"\n'}, (5, 0, 8)),
    ({"uv.lock": '[[package]]\nname = "redis"\nversion = "4.6.0"\n'}, (4, 6, 0)),
    # a real lock's layout: other packages depend on redis, the table has sub-tables, CRLF
    ({"uv.lock": UV_LOCK}, (5, 2, 1)),
    ({"uv.lock": UV_LOCK.replace("\n", "\r\n")}, (5, 2, 1)),
    ({"Pipfile.lock": json.dumps({"default": {"redis": {"version": "==4.5.1"}}})}, (4, 5, 1)),
    # two files that disagree: the oldest, since the rewrite must run under each
    ({"requirements.txt": "redis==5.0.4\n", "backend/requirements.txt": "redis==4.5.4\n"}, (4, 5, 4)),
])
def test_the_pinned_version_is_read(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    pin = read_pins(str(tmp_path))["redis"]
    assert pin.version == expected, pin


def test_a_stated_version_wins_and_a_bare_name_falls_back_to_the_installed_one(tmp_path):
    (tmp_path / "requirements.txt").write_text("redis==5.0.4\n")
    assert read_pins(str(tmp_path), "4.2")["redis"].version == (4, 2, 0)
    (tmp_path / "requirements.txt").write_text("redis\n")
    pin = read_pins(str(tmp_path))["redis"]
    assert pin.source.startswith("installed") and pin.version >= (5, 0, 1)  # the test extras' redis
    assert read_pins(str(tmp_path))["aioredis"].version is None  # not installed: unknown


@pytest.mark.parametrize("spec, bound", [
    ("==4.5.4", (4, 5, 4)), (">=4.2,<5", (4, 2, 0)), ("<5", None), (">4.5.4", (4, 5, 5)), ("^5.0", (5, 0, 0)),
    ("~5.0.1", (5, 0, 1)), ("*", None), ("", None), ("!=4.5.0", None),
])
def test_lower_bound(spec, bound):
    assert lower_bound(spec)[1] == bound


APP = (
    "from fastapi import FastAPI\n"
    "from redis.asyncio import Redis\n"
    "app = FastAPI()\n"
    "@app.get('/x')\n"
    "async def x():\n"
    "    r = Redis.from_url('redis://localhost')\n"
    "    try:\n"
    "        return await r.get('k')\n"
    "    finally:\n"
    "        await r.close()\n"
)


def run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "redis_pool_lint", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("pin, modern", [("redis==4.5.4", False), ("redis>=5.0.1", True)])
def test_fix_and_check_follow_the_pin(tmp_path, pin, modern):
    (tmp_path / "requirements.txt").write_text(pin + "\n")
    (tmp_path / "main.py").write_text(APP)
    check = run(tmp_path, "check", ".")
    assert ("RPL203" in check.stdout) is modern, check.stdout  # close() is the only way before 5.0.1
    fix = run(tmp_path, "fix", "--diff", ".")
    assert (".from_pool(" in fix.stdout and ".aclose()" in fix.stdout) is modern, fix.stdout
    if not modern:
        flat = re.sub(r"\s+", "", fix.stdout.replace("\n+", ""))  # as black may wrap it
        assert "Redis(connection_pool=BlockingConnectionPool.from_url(" in flat, fix.stdout
        assert "await app.state.redis.connection_pool.disconnect()" in fix.stdout
    assert f"redis-py {'5.0.1' if modern else '4.5.4'} from requirements.txt" in fix.stderr, fix.stderr


def test_rpl203_is_left_with_its_reason_when_the_version_lacks_aclose(tmp_path):
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\nfrom redis.asyncio import Redis\n"
        "from contextlib import asynccontextmanager\n"
        "@asynccontextmanager\nasync def lifespan(app):\n"
        "    app.state.r = Redis.from_url('redis://localhost')\n    yield\n    await app.state.r.close()\n"
        "app = FastAPI(lifespan=lifespan)\n")
    assert "RPL203" not in run(tmp_path, "check", "--redis-version", "4.6.0", ".").stdout
    assert "RPL203" in run(tmp_path, "check", "--redis-version", "5.0.1", ".").stdout
    bad = run(tmp_path, "check", "--redis-version", "five", ".")
    assert bad.returncode == 2 and "invalid redis-py version 'five'" in bad.stderr and "Traceback" not in bad.stderr


def test_a_new_pin_changes_the_cached_result(tmp_path):
    """The cache keys on the files the version is read from: pinning 4.x drops RPL203 at once."""
    (tmp_path / "requirements.txt").write_text("redis==5.0.4\n")
    (tmp_path / "main.py").write_text(APP)
    assert "RPL203" in run(tmp_path, "check", ".").stdout
    assert "RPL203" in run(tmp_path, "check", ".").stdout  # from the cache
    (tmp_path / "requirements.txt").write_text("redis==4.5.4\n")
    assert "RPL203" not in run(tmp_path, "check", ".").stdout
