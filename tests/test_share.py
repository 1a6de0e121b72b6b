"""Processes that need the same first analysis at once split it (``analysis/share.py``): the
helper's work lands in the leader's result, which is the result of an analysis alone, and a
helper that dies holding a block costs the leader that block, never its result."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from conftest import ROOT, start_in_turn

from redis_pool_lint.analysis import load

#: modules that each build a client per request: every one a seed, so the first round of
#: summaries holds them all
HANDLER = (
    "import redis\n"
    "from fastapi import APIRouter\n"
    "\n"
    "router = APIRouter()\n"
    "\n"
    "@router.get('/{n}')\n"
    "def read_{n}():\n"
    "    return redis.Redis().get('{n}')\n"
)


def many_seeds(tmp_path, count=12):
    tmp_path.mkdir()
    (tmp_path / "pyproject.toml").touch()
    for n in range(count):
        (tmp_path / f"h{n}.py").write_text(HANDLER.format(n=n))
    return tmp_path


def slowed(monkeypatch, delay, on_call=None):
    """Make each summary take ``delay`` seconds, recording which thread made it."""
    real = load._summarize
    made = []

    def step(job, item):
        made.append((threading.get_ident(), item[0]))
        if on_call is not None:
            on_call()
        time.sleep(delay)
        return real(job, item)

    monkeypatch.setattr(load, "_summarize", step)
    monkeypatch.setitem(load.STEPS, "summarize", (step, 1))
    return made


def codes(result):
    return {os.path.basename(p): [f.code for f in fs] for p, fs in result.findings.items()}


def test_a_waiting_process_helps_and_the_result_is_the_same(tmp_path, monkeypatch):
    root = many_seeds(tmp_path / "app")
    alone = load.build(str(root), load.Settings())
    assert sorted(codes(alone)) == sorted(f"h{n}.py" for n in range(12))
    started = threading.Event()
    made = slowed(monkeypatch, 0.05, started.set)
    cache = str(tmp_path / "cache")
    results = {}

    def analyse(name):
        results[name] = load.build(str(root), load.Settings(), cache=cache)

    leader, helper = start_in_turn(analyse, started, "leader", "helper")
    leader.join(30)
    helper.join(30)
    assert not results["leader"].cached and results["helper"].cached
    assert codes(results["leader"]) == codes(results["helper"]) == codes(alone)
    workers = {ident for ident, _ in made}
    assert workers == {leader.ident, helper.ident}  # both made summaries
    assert sorted(path for _, path in made) == sorted(str(root / f"h{n}.py") for n in range(12))  # each once
    assert not [n for n in os.listdir(cache) if ".board" in n]  # the board is gone with the analysis


HELPER_THAT_DIES = textwrap.dedent("""
    import os, signal, sys
    from redis_pool_lint.analysis import load

    def die(job, item):
        os.kill(os.getpid(), signal.SIGKILL)  # killed holding a block

    load._summarize = die
    load.STEPS["summarize"] = (die, 1)
    load.build(sys.argv[1], load.Settings(), cache=sys.argv[2])
""")


def test_a_helper_killed_holding_a_block_costs_the_leader_only_that_block(tmp_path, monkeypatch):
    root = many_seeds(tmp_path / "app")
    alone = load.build(str(root), load.Settings())
    cache = str(tmp_path / "cache")
    started = threading.Event()
    made = slowed(monkeypatch, 0.3, started.set)
    results = {}

    def lead():
        results["leader"] = load.build(str(root), load.Settings(), cache=cache)

    leader = threading.Thread(target=lead)
    leader.start()
    assert started.wait(10)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    helper = subprocess.run([sys.executable, "-c", HELPER_THAT_DIES, str(root), cache], env=env, timeout=60)
    assert helper.returncode == -signal.SIGKILL
    leader.join(60)
    assert not leader.is_alive()
    assert codes(results["leader"]) == codes(alone)
    assert len(made) == 12  # the leader made the dead helper's summary too
    warm = load.build(str(root), load.Settings(), cache=cache)
    assert warm.cached and codes(warm) == codes(alone)


def test_a_board_left_by_a_killed_leader_is_cleared_by_the_next_analysis(tmp_path):
    root = many_seeds(tmp_path / "app")
    cache = tmp_path / "cache"
    load.build(str(root), load.Settings(), cache=str(cache))
    (lock,) = [n for n in os.listdir(cache) if n.endswith(".lock")]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = cache / (lock[: -len(".lock")] + f".board-{gone.stdout.strip()}-1")  # its leader was killed
    stale.mkdir()
    (stale / "task-0").write_bytes(b"left behind")
    (root / "h0.py").write_text(HANDLER.format(n="zero"))  # an edit: the next run analyses again
    again = load.build(str(root), load.Settings(), cache=str(cache))
    assert not again.cached and "h0.py" in codes(again)
    assert not [n for n in os.listdir(cache) if ".board" in n]


def test_blocks_nobody_took_are_worked_at_once(tmp_path, monkeypatch):
    """The leader's own ticket fails (a full disk, say) after its first block: the blocks nobody
    holds are worked at once, not after waiting for a helper that never took them."""
    from redis_pool_lint.analysis import share

    root = many_seeds(tmp_path / "app")
    alone = load.build(str(root), load.Settings())
    real = share._ticket
    calls = []

    def failing(fd):
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(share, "_ticket", failing)
    started = time.monotonic()
    result = load.build(str(root), load.Settings(), cache=str(tmp_path / "cache"))
    assert time.monotonic() - started < share.PATIENCE  # 11 blocks at 2 s each before
    assert len(calls) >= 2 and codes(result) == codes(alone)
