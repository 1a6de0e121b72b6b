"""Where ``redis-pool-lint check`` or ``fix --diff`` spends its time on a generated project.

    python benchmarks/hotspots.py fix --modules 1000 [--top 25]

Runs the command once under cProfile (every thread), single process (``--jobs 1``), with the copy of the
package that ``speed.py`` installed (run ``speed.py`` first; the same ``--work``), on the
generated project of that size (generated if missing). Prints the functions with the largest
share of the run, by own time and by cumulative time, and the share per source file.
"""
from __future__ import annotations

import argparse
import os
import pstats
import re
import subprocess
import sys
from typing import Dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from genproject import generate  # noqa: E402


#: Runs the tool under cProfile in every thread (the fixer rewrites each file in a thread of its
#: own, with a large stack), and writes the merged statistics: argv = [out, tool, args...].
RUNNER = """
import cProfile, pstats, runpy, sys, threading
out, tool = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
profiles = []
plain_run = threading.Thread.run
def run(self):
    p = cProfile.Profile()
    profiles.append(p)
    p.enable()
    try:
        plain_run(self)
    finally:
        p.disable()
threading.Thread.run = run
main = cProfile.Profile()
main.enable()
try:
    runpy.run_path(tool, run_name="__main__")
except SystemExit:
    pass
finally:
    main.disable()
    stats = pstats.Stats(main)
    for p in profiles:
        stats.add(p)
    stats.dump_stats(out)
"""


def short(path: str) -> str:
    """``site-packages/libcst/x.py`` -> ``libcst/x.py``; the stdlib likewise."""
    return "(built-ins)" if path == "~" else re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("check", "fix"))
    p.add_argument("--modules", type=int, default=1000)
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--redis-share", type=float, default=0.15)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/redis-pool-lint-bench"))
    a = p.parse_args()
    venv = os.path.join(a.work, "venvs", "flake8-plugin")
    tool = os.path.join(venv, "bin", "redis-pool-lint")
    if not os.path.exists(tool):
        sys.exit(f"{tool} is missing: run benchmarks/speed.py first (same --work)")
    root = os.path.join(a.work, "trees", f"gen-{a.modules}")
    if not os.path.exists(os.path.join(root, "expected_findings.json")):
        generate(root, a.modules, a.seed, a.redis_share)
    help_text = subprocess.run([tool, a.command, "--help"], capture_output=True, text=True).stdout
    cmd = [a.command] + (["--diff"] if a.command == "fix" else [])
    cmd += ["--jobs", "1"] if "--jobs" in help_text else []
    prof = os.path.join(a.work, f"profile-{a.command}-{a.modules}.prof")
    subprocess.run([os.path.join(venv, "bin", "python"), "-c", RUNNER, prof, tool, *cmd, "."],
                   cwd=root, stdout=subprocess.DEVNULL)
    stats = pstats.Stats(prof)
    # The main thread waiting for a worker thread is not work: leave it out.
    lock = [k for k in stats.stats if k[0] == "~" and "acquire" in k[2]]
    waiting = sum(stats.stats[k][2] for k in lock)
    rows = {k: v for k, v in stats.stats.items() if k not in lock}  # -> (cc, nc, tt, ct, callers)
    total = stats.total_tt - waiting
    print(f"redis-pool-lint {' '.join(cmd)} . on {a.modules} modules: {total:.1f} s under cProfile, "
          f"all threads (not counted: {waiting:.1f} s of waiting on locks)\n")
    for title, col in (("own time", 2), ("cumulative time", 3)):
        print(f"top {a.top} by {title} (share of the whole run):")
        for key, val in sorted(rows.items(), key=lambda kv: -kv[1][col])[:a.top]:
            name = f"{short(key[0])}:{key[1]}:{key[2]}" if key[0] != "~" else key[2]
            print(f"  {100 * val[col] / total:5.1f}%  {val[col]:7.2f}s  {name}")
        print()
    per_file: Dict[str, float] = {}
    for key, val in rows.items():
        per_file[short(key[0])] = per_file.get(short(key[0]), 0.0) + val[2]
    print(f"own time per file, top {a.top}:")
    for name, tt in sorted(per_file.items(), key=lambda kv: -kv[1])[:a.top]:
        print(f"  {100 * tt / total:5.1f}%  {tt:7.2f}s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
