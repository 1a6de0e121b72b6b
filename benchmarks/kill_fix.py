"""Stop ``redis-pool-lint fix`` with SIGKILL or SIGINT at random moments over a large tree, and check
by hashing that every file is afterwards exactly as before or exactly as fixed.

    PYTHONPATH=. python benchmarks/kill_fix.py [--kills N] [--copies C] [--seed S]

The tree holds C copies of every fixable ``fixtures/fix/*/before`` app, each its own project.
Moments: uniform over one uninterrupted run's duration (SIGKILL from 0.05 s, SIGINT from 0.3 s,
once the tool's own handler is in place), and, for one kill in four, right after the first file
of the run changes (the middle of the write phase). After each SIGKILL a second ``fix`` runs and
must finish the job: no file damaged, no temporary file left, ``check`` clean. Exit status 1
when any file was damaged, a SIGINT left a temporary file or a traceback, or a recovery failed.
"""
from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faults import FIXABLE, census, changing_files, env, fix_command, full_run_seconds, make_tree  # noqa: E402
from faults import run_and_signal  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="rpl-kill-"))
    failures = 0
    try:
        probe = base / "probe"
        expect = make_tree(probe, FIXABLE, args.copies)
        seconds = full_run_seconds(probe)
        done = census(probe, expect)
        changing = sum(1 for b, f in expect.values() if b != f)
        print(f"tree: {len(expect)} files in {len(FIXABLE) * args.copies} projects, {changing} of them "
              f"changed by the fix; an uninterrupted run takes {seconds:.1f} s "
              f"(as fixed {done.as_fixed}, damaged {len(done.damaged)})", flush=True)
        print(f"{'#':>3} {'signal':7} {'moment':>16} {'exit':>5} {'before':>6} {'fixed':>5} {'damaged':>7} "
              f"{'temps':>5} | after a second run: damaged, temps, check", flush=True)
        totals = {"damaged": 0, "sigint_temps": 0, "tracebacks": 0, "recovery_failed": 0}
        for i in range(args.kills):
            sig = signal.SIGKILL if rng.random() < 0.6 else signal.SIGINT
            work = base / f"k{i}"
            work.mkdir()
            expect = make_tree(work, FIXABLE, args.copies)
            if rng.random() < 0.25:
                kill = run_and_signal(work, sig, watch=changing_files(work, expect))
                moment = f"{kill.delay:.2f}s (write)" if kill.signalled else "ended first"
            else:
                kill = run_and_signal(work, sig, delay=rng.uniform(0.05 if sig == signal.SIGKILL else 0.3, seconds))
                moment = f"{kill.delay:.2f}s ({kill.delay / seconds:.0%})" if kill.signalled else "ended first"
            state = census(work, expect)
            line = (f"{i:3d} {sig.name:7} {moment:>16} {kill.returncode:5d} {state.as_before:6d} {state.as_fixed:5d} "
                    f"{len(state.damaged):7d} {len(state.temps):5d}")
            totals["damaged"] += len(state.damaged) + len(state.extra)
            if "Traceback" in kill.stderr:
                totals["tracebacks"] += 1
            if sig == signal.SIGINT and state.temps:
                totals["sigint_temps"] += 1
            again = subprocess.run(fix_command(), cwd=work, capture_output=True, text=True, env=env(), timeout=600)
            finished = census(work, expect)
            check = subprocess.run([sys.executable, "-m", "redis_pool_lint", "check", "."], cwd=work,
                                   capture_output=True, text=True, env=env(), timeout=600)
            ok = finished.ok and not finished.temps and check.returncode == 0 and again.returncode in (0, 1)
            if not ok:
                totals["recovery_failed"] += 1
            line += f" | {len(finished.damaged)}, {len(finished.temps)}, exit {check.returncode}"
            print(line + ("" if ok else "  <- recovery failed"), flush=True)
            shutil.rmtree(work, ignore_errors=True)
        print(f"\n{args.kills} kills (seed {args.seed}): {totals['damaged']} damaged file(s), "
              f"{totals['sigint_temps']} SIGINT run(s) leaving a temporary file, {totals['tracebacks']} "
              f"traceback(s), {totals['recovery_failed']} failed recovery(ies)")
        failures = sum(totals.values())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    start = time.perf_counter()
    status = main()
    print(f"wall time {time.perf_counter() - start:.0f} s")
    sys.exit(status)
