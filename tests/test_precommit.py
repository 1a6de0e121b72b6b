"""Both pre-commit hooks, run by real ``pre-commit try-repo`` on a scratch repository."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("pre_commit")

BAD = (
    "from fastapi import FastAPI\n"
    "from redis.asyncio import Redis\n"
    "\n"
    "app = FastAPI()\n"
    "\n"
    "\n"
    "@app.get('/')\n"
    "async def index():\n"
    "    r = Redis(host='localhost')\n"
    "    return await r.get('k')\n"
)
GOOD = "import os\n\nprint(os.sep)\n"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false",
       "-c", "init.defaultBranch=main"]


def git(*args, cwd):
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory):
    """The checkout as it is now (uncommitted edits included), committed in a repository of its own,
    so every run below installs the hooks from one revision, once."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("hookrepo")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    names = listed.stdout.splitlines() if listed.returncode == 0 else []
    if not names:
        pytest.skip("the checkout is not a git work tree")
    for name in names:
        src = ROOT / name
        if src.is_file() and not name.startswith(("fixtures/", "tests/")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    git("init", "-q", ".", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "hooks", cwd=repo)
    return repo


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory):
    return tmp_path_factory.mktemp("pre-commit-home")


def scratch(tmp_path, files):
    work = tmp_path / "scratch"
    work.mkdir(parents=True)
    for name, text in files.items():
        (work / name).write_text(text)
    git("init", "-q", ".", cwd=work)
    git("add", "-A", cwd=work)
    return work


def try_repo(hook_repo, home, hook, work):
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), hook, "--all-files"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)


def test_check_hook_fails_on_a_bad_file_and_passes_on_a_good_one(hook_repo, pre_commit_home, tmp_path):
    bad = scratch(tmp_path / "bad", {"app.py": BAD})
    res = try_repo(hook_repo, pre_commit_home, "redis-pool-lint", bad)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "app.py:9:9: RPL101" in res.stdout, res.stdout
    good = scratch(tmp_path / "good", {"app.py": GOOD})
    res = try_repo(hook_repo, pre_commit_home, "redis-pool-lint", good)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (good / "app.py").read_text() == GOOD


def test_fix_hook_rewrites_then_passes(hook_repo, pre_commit_home, tmp_path):
    work = scratch(tmp_path, {"app.py": BAD})
    res = try_repo(hook_repo, pre_commit_home, "redis-pool-lint-fix", work)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "files were modified by this hook" in res.stdout
    fixed = (work / "app.py").read_text()
    assert fixed != BAD and "async def lifespan" in fixed and "request.app.state.redis" in fixed
    compile(fixed, "app.py", "exec")
    git("add", "-A", cwd=work)
    res = try_repo(hook_repo, pre_commit_home, "redis-pool-lint-fix", work)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (work / "app.py").read_text() == fixed
    res = try_repo(hook_repo, pre_commit_home, "redis-pool-lint", work)
    assert res.returncode == 0, res.stdout + res.stderr
