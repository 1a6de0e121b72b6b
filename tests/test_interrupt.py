"""``fix`` stopped at a random moment (SIGKILL, SIGINT) or run twice at once: every file is exactly
as before or exactly as fixed (by hash), never truncated, and the next run finishes the job."""
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import FIXTURES, run_tool
from faults import FIX, FIXABLE, census, changing_files, env, full_run_seconds, make_tree, run_and_signal

#: small enough for the test suite, and with the three cases that rewrite two files at once
CASES = ["factory_cli", "helper_cli", "on_event", "routers", "seed_from_pool", "websocket"]


@pytest.fixture(scope="module")
def duration(tmp_path_factory):
    work = tmp_path_factory.mktemp("timing")
    expect = make_tree(work, CASES)
    seconds = full_run_seconds(work)
    done = census(work, expect)
    assert done.ok and done.as_before == 0 and not done.temps, done  # the uninterrupted run fixes all
    return seconds


def test_sigkill_and_sigint_at_random_moments(tmp_path, duration):
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    plan = [(signal.SIGKILL, rng.uniform(0.05, duration)) for _ in range(3)]
    plan += [(signal.SIGINT, rng.uniform(0.3, duration)) for _ in range(2)]
    plan.append((signal.SIGKILL, "first write"))
    results = []
    for i, (sig, when) in enumerate(plan):
        work = tmp_path / f"run{i}"
        work.mkdir()
        expect = make_tree(work, CASES)
        if when == "first write":
            kill = run_and_signal(work, sig, watch=changing_files(work, expect))
        else:
            kill = run_and_signal(work, sig, delay=when)
        state = census(work, expect)
        results.append((sig.name, kill.delay, kill.returncode, state))
        where = f"seed {seed}, {sig.name} at {kill.delay}"
        assert state.ok, (where, state)  # every file: before or fixed, nothing truncated or missing
        assert "Traceback" not in kill.stderr, (where, kill.stderr)
        if sig == signal.SIGINT and kill.signalled and kill.returncode != 1:
            # 130 and one line; a Ctrl-C after the run has said how it ended changes nothing (exit 1)
            assert kill.returncode == 130, (where, kill.returncode, kill.stderr)
            assert kill.stderr.splitlines()[-1] == "redis-pool-lint: interrupted", (where, kill.stderr)
            assert not state.temps, (where, state.temps)  # Ctrl-C cleans up after itself
        if sig == signal.SIGKILL:
            again = subprocess.run([sys.executable, "-m", "redis_pool_lint", "fix", "."], cwd=work,
                                   capture_output=True, text=True, env=env(), timeout=300)
            assert again.returncode in (0, 1) and "Traceback" not in again.stderr, (where, again.stderr)
            finished = census(work, expect)
            assert finished.ok and not finished.temps, (where, finished)
            assert run_tool("check", ".", cwd=work).returncode == 0, where  # the job is finished
    print(results)


def test_sigkill_between_the_renames_of_one_project(tmp_path):
    """The worst moment, made deterministic: the process dies right after the first of the two
    renames of a project. The file renamed first is the app module with the lifespan, so the
    request code still builds its own client (it works) and the next run finishes the fix."""
    work = tmp_path / "w"
    expect = make_tree(work, ["routers"])
    hook = (
        "import os, signal, sys\n"
        "from redis_pool_lint.fix import write\n"
        "real = write.os.replace\n"
        "def replace_then_die(src, dst):\n"
        "    real(src, dst)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "write.os.replace = replace_then_die\n"
        "from redis_pool_lint.cli import main\n"
        "sys.exit(main(['fix', '.']))\n"
    )
    res = subprocess.run([sys.executable, "-c", hook], cwd=work, capture_output=True, text=True, env=env())
    assert res.returncode == -signal.SIGKILL
    state = census(work, expect)
    assert state.ok and state.as_fixed == 1 and state.as_before == 1, state
    fixed_first = (work / "routers_0" / "app" / "main.py").read_bytes()
    assert fixed_first == (FIXTURES / "fix" / "routers" / "after" / "app" / "main.py").read_bytes()
    assert len(state.temps) == 1  # the staged deps.py: not a .py file, so never analysed
    assert run_tool("check", ".", cwd=work).returncode == 1  # the per-request client is still found
    again = run_tool("fix", ".", cwd=work)
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    state = census(work, expect)
    assert not state.temps and not state.extra, state  # the dead run's temporary file is gone
    assert run_tool("check", ".", cwd=work).returncode == 0
    for path in (work / "routers_0").rglob("*.py"):
        compile(path.read_bytes(), str(path), "exec")


#: the fix cases that rewrite more than one file: a SIGKILL can fall between their renames
MULTI_FILE = [case for case in FIXABLE if sum(
    1 for p in (FIX / case / "before").rglob("*")
    if p.is_file() and p.read_bytes() != (FIX / case / "after" / p.relative_to(FIX / case / "before")).read_bytes()) > 1]

DIE_AFTER_RENAME = (
    "import os, signal, sys\n"
    "from redis_pool_lint.fix import write\n"
    "real, done = write.os.replace, []\n"
    "def replace(src, dst):\n"
    "    real(src, dst)\n"
    "    done.append(dst)\n"
    "    sys.stderr.write('renamed ' + os.path.basename(dst) + '\\n')\n"
    "    if len(done) == int(os.environ['RPL_DIE_AFTER']):\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "write.os.replace = replace\n"
    "from redis_pool_lint.cli import main\n"
    "sys.exit(main(['fix', '.']))\n"
)


@pytest.mark.parametrize("case", MULTI_FILE)
def test_the_next_run_finishes_what_a_killed_one_began(tmp_path, case):
    """Killed after each rename but the last, the next run sees its own half-written fix (the
    lifespan already built, a helper already guarded) and ends exactly where one run would."""
    assert len(MULTI_FILE) >= 4, MULTI_FILE
    changed = len([rel for rel, (b, f) in make_tree(tmp_path / "probe", [case]).items() if b != f])
    for k in range(1, changed):
        work = tmp_path / f"k{k}"
        expect = make_tree(work, [case])
        died = subprocess.run([sys.executable, "-c", DIE_AFTER_RENAME], cwd=work / f"{case}_0", capture_output=True,
                              text=True, env={**env(), "RPL_DIE_AFTER": str(k)}, timeout=300)
        assert died.returncode == -signal.SIGKILL, died.stderr
        half = census(work, expect)
        assert half.ok and half.as_fixed == k, half
        again = subprocess.run([sys.executable, "-m", "redis_pool_lint", "fix", "."], cwd=work, capture_output=True,
                               text=True, env=env(), timeout=300)
        assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
        done = census(work, expect)
        assert done.ok and done.as_before == 0 and not done.temps, (case, k, done, again.stderr)


def test_a_helper_is_written_before_the_callers_that_pass_it_the_request(tmp_path):
    """``bump(key, request=request)`` written before ``bump`` takes ``request`` would raise
    TypeError on every request until the next run: the helper's file goes first (until a
    caller passes the request, it builds its own client as before)."""
    expect = make_tree(tmp_path, ["helper_uses_client"])
    died = subprocess.run([sys.executable, "-c", DIE_AFTER_RENAME], cwd=tmp_path / "helper_uses_client_0",
                          capture_output=True, text=True, env={**env(), "RPL_DIE_AFTER": "1"}, timeout=300)
    assert "renamed counters.py" in died.stderr.splitlines(), died.stderr
    assert census(tmp_path, expect).as_fixed == 1
    assert run_tool("check", ".", cwd=tmp_path).returncode == 1  # the caller not passing it is found


def test_two_fix_runs_at_once(tmp_path):
    work = tmp_path / "w"
    expect = make_tree(work, CASES)
    procs = [subprocess.Popen([sys.executable, "-m", "redis_pool_lint", "fix", "."], cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for _ in range(2)]
    time.sleep(0.01)
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode in (0, 1) and "Traceback" not in err, err
    state = census(work, expect)
    assert state.ok and state.as_before == 0 and not state.temps, state  # fixed, and fixed once
    changed = sorted(int(err.split("changed ")[1].split(" ")[0]) for _, err in outs)
    assert sum(changed) == sum(1 for b, f in expect.values() if b != f), outs


PEEK_ROUTE = '''

from fastapi import APIRouter

router = APIRouter()


@router.get("/peek/{key}")
async def peek(key: str):
    client = redis.from_url(REDIS_URL)
    try:
        return {"value": await client.get(key)}
    finally:
        await client.aclose()
'''


def test_a_helper_and_its_caller_in_a_cycle_are_finished_by_the_next_run(tmp_path):
    """The helper's file also has a route that reads the shared client (so it must follow the
    lifespan) and the lifespan's module calls the helper (so it must follow the helper): no
    order fits. Killed between the two, the next run still ends where one run would."""
    trees = {}
    for name in ("whole", "killed"):
        work = tmp_path / name
        shutil.copytree(FIX / "helper_uses_client" / "before", work)
        with open(work / "counters.py", "a") as fh:
            fh.write(PEEK_ROUTE)
        main = (work / "main.py").read_text()
        main = main.replace("from counters import bump", "from counters import bump, router")
        (work / "main.py").write_text(main.replace("app = FastAPI()", "app = FastAPI()\napp.include_router(router)"))
        if name == "killed":
            died = subprocess.run([sys.executable, "-c", DIE_AFTER_RENAME], cwd=work, capture_output=True, text=True,
                                  env={**env(), "RPL_DIE_AFTER": "1"}, timeout=300)
            assert died.returncode == -signal.SIGKILL, died.stderr
        res = run_tool("fix", ".", cwd=work)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        trees[name] = {p.name: p.read_bytes() for p in work.glob("*.py")}
    assert trees["killed"] == trees["whole"]


def _wrapped_interrupt(*args, **kwargs):
    """Ctrl-C during an import arrives wrapped: ``__set_name__`` errors name it as their cause."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc


@pytest.mark.parametrize("command", ["check", "fix"])
def test_a_wrapped_ctrl_c_is_still_an_interruption(command, tmp_path, monkeypatch, capsys):
    from redis_pool_lint import cli
    from redis_pool_lint.fix import apply

    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "app.py").write_text("import redis\n")
    monkeypatch.setattr(cli, "run_check", _wrapped_interrupt)
    monkeypatch.setattr(apply, "fix_project", _wrapped_interrupt)
    assert cli.main([command, str(tmp_path)]) == 130
    assert capsys.readouterr().err == "redis-pool-lint: interrupted\n"
