"""README's commands for a new user, run as they are written: the first screen, the example app
under load before and after the fix, what a fixed app's tests must do, and the CI step."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import FIXTURES, ROOT, free_port
from readme import REPO_URL, SHA, blocks, first_screen, pinned_revs, section

BIN = os.path.dirname(sys.executable)


def shell_env(**extra):
    """The environment of a user who installed the package: its scripts first on PATH."""
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), **extra}
    env.pop("PYTHONPATH", None)
    return env


def test_first_screen_is_install_run_fix(tmp_path):
    install, run, fix = first_screen()
    assert install == "python -m pip install ."
    assert (ROOT / "setup.cfg").exists() and (ROOT / "pyproject.toml").exists()
    if shutil.which("redis-pool-lint", path=BIN) is None:
        pytest.skip("the package's scripts are not installed next to this python")
    project = tmp_path / "shop"
    shutil.copytree(FIXTURES / "example", project)
    res = subprocess.run(run, shell=True, cwd=project, env=shell_env(), capture_output=True, text=True)
    assert res.returncode == 1 and len(res.stdout.splitlines()) == 6, res.stdout + res.stderr
    res = subprocess.run(fix, shell=True, cwd=project, env=shell_env(), capture_output=True, text=True)
    assert res.returncode == 1 and res.stdout.startswith("--- "), res.stdout + res.stderr
    assert "would change 3 file(s), would fix 5 finding(s), 1 left" in res.stderr


def test_install_and_ci_pin_the_same_commit_as_pre_commit():
    revs = pinned_revs()
    assert len(set(revs)) == 1 and SHA.fullmatch(revs[0]), revs
    install = blocks(section("Install"), "sh")[0]
    assert f'python -m pip install "git+{REPO_URL}@{revs[0]}"' in install


def test_the_github_actions_step_is_a_workflow_that_runs_check():
    yaml = pytest.importorskip("yaml")
    [workflow] = blocks(section("Adopting it in an existing codebase"), "yaml")
    steps = yaml.safe_load(workflow)["jobs"]["check"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert runs == [f'python -m pip install "git+{REPO_URL}@{pinned_revs()[0]}"',
                    "redis-pool-lint check --output-format=github ."]


def load_block() -> str:
    [block] = [b for b in blocks(section("Adopting it in an existing codebase"), "sh") if "httpload" in b]
    return block


def test_the_example_app_under_load_as_readme_shows_it(tmp_path):
    """The block, on free ports and in a scratch folder, minus its first line (pip install:
    this environment has all of it already)."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server is not installed (bash .ci/run installs it)")
    pytest.importorskip("uvicorn")
    lines = load_block().splitlines()
    assert lines[0].startswith("python -m pip install . fastapi uvicorn redis")
    redis_port, app_port = free_port(), free_port()
    script = "\n".join(lines[1:]).replace("6390", str(redis_port)).replace("8390", str(app_port))
    script = script.replace("/tmp/shop", str(tmp_path / "shop"))
    env = shell_env()
    try:
        res = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True)
    assert f"--port {redis_port} " in script and f"--port {app_port} " in script
    assert res.returncode == 0, res.stderr[-3000:]
    before, after = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert before["requests"] > 0
    assert (after["requests"], after["ok"], after["errors"]) == (2000, 2000, 0), after
    assert "changed 3 file(s), fixed 5 finding(s), 1 left" in res.stderr
    assert "async def lifespan" in (tmp_path / "shop" / "shop" / "main.py").read_text()


CLIENTS = {
    "bare TestClient": """
        from fastapi.testclient import TestClient
        print(TestClient(app).get("/health").json())
    """,
    "TestClient as a context manager": """
        from fastapi.testclient import TestClient
        with TestClient(app) as client:
            print(client.get("/health").json())
    """,
    "bare AsyncClient": """
        import asyncio, httpx
        async def main():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                print((await c.get("/health")).json())
        asyncio.run(main())
    """,
    "AsyncClient in the lifespan": """
        import asyncio, httpx
        async def main():
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                    print((await c.get("/health")).json())
        asyncio.run(main())
    """,
}


@pytest.fixture(scope="module")
def fixed_example(tmp_path_factory):
    shop = tmp_path_factory.mktemp("fixed") / "shop"
    shutil.copytree(FIXTURES / "example", shop)
    res = subprocess.run([sys.executable, "-m", "redis_pool_lint", "fix", "."], cwd=shop,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 1 and "fixed 5 finding(s)" in res.stderr, res.stderr
    return shop


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_fixed_apps_tests_must_enter_the_lifespan(fixed_example, redis_url, client):
    """What README says of a fixed app's tests: the bare clients fail with the error it quotes."""
    pytest.importorskip("httpx")
    code = "from shop.main import app\n" + textwrap.dedent(CLIENTS[client])
    res = subprocess.run([sys.executable, "-c", code], cwd=fixed_example, capture_output=True, text=True,
                         env={**os.environ, "REDIS_URL": redis_url}, timeout=60)
    text = section("Adopting it in an existing codebase")
    if client.startswith("bare"):
        assert res.returncode == 1
        error = res.stderr.strip().splitlines()[-1]
        assert error == "AttributeError: 'State' object has no attribute 'redis'", res.stderr[-2000:]
        assert f"`{error}`" in re.sub(r"\s+", " ", text)
    else:
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout.replace("'", '"').replace("True", "true")) == {"redis": True}
