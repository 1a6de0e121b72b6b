"""Both pre-commit hooks, run by real ``pre-commit try-repo`` on a scratch repository, and README's
pre-commit snippets run as written."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from readme import REPO_URL, SHA, blocks, pinned_revs, section

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


# README's pre-commit snippets, run as README shows them in a new git repository: this
# repository's URL stands for a local path of it (pre-commit and pip clone it with git, offline),
# and PyCQA/flake8 for a stand-in with flake8's own hook definition that installs the flake8
# release README names from PyPI.
FLAKE8_URL = "https://github.com/PyCQA/flake8"
#: PyCQA/flake8's .pre-commit-hooks.yaml
FLAKE8_HOOKS = """\
-   id: flake8
    name: flake8
    description: '`flake8` is a command-line utility for enforcing style consistency across Python projects.'
    entry: flake8
    language: python
    types: [python]
    require_serial: true
"""


def readme_configs():
    configs = blocks(section("pre-commit"), "yaml")
    assert len(configs) == 2 and all(c.startswith("repos:\n") for c in configs), configs
    return configs


def the_rev() -> str:
    revs = pinned_revs()
    assert len(revs) >= 3 and len(set(revs)) == 1, f"README pins different revisions: {revs}"
    assert SHA.fullmatch(revs[0]), f"README's rev {revs[0]!r} is not a full commit sha"
    return revs[0]


def require_commit(rev: str) -> None:
    """The revision README pins is in this checkout's history (skipped in a shallow clone that
    does not reach it; a failure anywhere else)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    here = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    if here.returncode != 0:
        pytest.skip("the checkout is not a git work tree")
    if subprocess.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True).returncode:
        if here.stdout.strip() == "true":
            pytest.skip(f"a shallow clone: README's rev {rev} is not in it")
        pytest.fail(f"README's rev {rev} is not a commit of this repository: pin a commit of main")


def test_readme_pins_a_commit_of_main_whose_hooks_are_todays():
    rev = the_rev()
    require_commit(rev)
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", rev, "HEAD"], cwd=ROOT, capture_output=True)
    assert ancestor.returncode == 0, f"README's rev {rev} is not in the history of HEAD: pin a commit of main"
    then = subprocess.run(["git", "show", f"{rev}:.pre-commit-hooks.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert then.stdout == (ROOT / ".pre-commit-hooks.yaml").read_text(), \
        "the hooks changed since README's rev: pin a newer commit of main"


@pytest.fixture(scope="session")
def flake8_standin(tmp_path_factory):
    rev = re.search(rf"repo: {re.escape(FLAKE8_URL)}\n\s+rev: (\S+)", readme_configs()[1]).group(1)
    repo = tmp_path_factory.mktemp("flake8-standin")
    (repo / ".pre-commit-hooks.yaml").write_text(FLAKE8_HOOKS)
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "flake8-standin"\nversion = "0"\ndependencies = ["flake8=={rev}"]\n\n'
        "[tool.setuptools]\npy-modules = []\n")
    git("init", "-q", ".", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "flake8's hook", cwd=repo)
    git("tag", rev, cwd=repo)
    return repo


def run_pre_commit(home, work):
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)


def test_readme_hooks_run_as_shown(pre_commit_home, tmp_path):
    config = readme_configs()[0]
    require_commit(the_rev())
    assert f"repo: {REPO_URL}\n" in config
    work = scratch(tmp_path, {"app.py": BAD, ".pre-commit-config.yaml": config.replace(REPO_URL, str(ROOT))})
    res = run_pre_commit(pre_commit_home, work)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "app.py:9:9: RPL101" in res.stdout and "files were modified by this hook" in res.stdout, res.stdout
    fixed = (work / "app.py").read_text()
    assert "async def lifespan" in fixed and "request.app.state.redis" in fixed
    git("add", "-A", cwd=work)
    res = run_pre_commit(pre_commit_home, work)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (work / "app.py").read_text() == fixed


def test_readme_flake8_hook_runs_as_shown(pre_commit_home, flake8_standin, tmp_path):
    config = readme_configs()[1]
    require_commit(the_rev())
    assert f"repo: {FLAKE8_URL}\n" in config and f'"redis-pool-lint @ git+{REPO_URL}@' in config
    config = config.replace(FLAKE8_URL, str(flake8_standin)).replace(f"git+{REPO_URL}", f"git+file://{ROOT}")
    bad = scratch(tmp_path / "bad", {"app.py": BAD, ".pre-commit-config.yaml": config})
    res = run_pre_commit(pre_commit_home, bad)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "app.py:9:9: RPL101 Redis client built in a route handler" in res.stdout, res.stdout
    good = scratch(tmp_path / "good", {"app.py": GOOD, ".pre-commit-config.yaml": config})
    res = run_pre_commit(pre_commit_home, good)
    assert res.returncode == 0, res.stdout + res.stderr
