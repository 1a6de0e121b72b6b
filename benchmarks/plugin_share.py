"""The plugin's own share of a flake8 run, measured inside the run: less noisy than the ratio
of two whole runs on a shared machine (``speed.py --only-real``), which it complements.

    python benchmarks/plugin_share.py [--rounds N] TREE [TREE ...]

For each tree, N rounds of three ``flake8 --isolated --jobs=1 --select=E,F,W`` runs, each in a
fresh process: with the plugin's ``run`` answering nothing (the baseline), with its cache removed
(cold), and kept (warm, after the cold one); the rounds rotate their order, since runs later in a
round go slower on this machine. Inside each run the CPU time spent in the plugin (``Plugin.run``,
which analyses the project on its first call) is summed with ``time.process_time``; so is the
time in Python's cycle collector (``gc.callbacks``), since what the plugin keeps alive is walked
by every full collection for the rest of the run, and the number of objects the collector tracks
when the run ends. The plugin's cost is its own CPU plus the collector time beyond what the
baseline's collector share predicts for the rest of the run (the collector takes the same share
of every run: when the machine's speed drifts, the share holds and the seconds do not); medians
over the rounds. Needs flake8 and the plugin importable (e.g. ``PYTHONPATH=. python
benchmarks/plugin_share.py ...``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import os
import shutil
import sys
import tempfile
import time


def measure(tree: str, cache: str, baseline: bool = False) -> "tuple[float, float, float, int]":
    """(whole flake8 run, plugin, cycle collector) CPU seconds of one run in this process, and
    the objects the collector tracks after it."""
    import gc

    from flake8.main import cli

    from redis_pool_lint import plugin
    from redis_pool_lint.analysis import load

    load.clear_cache()
    spent = [0.0]
    collecting = [0.0, 0.0]
    real_run = plugin.Plugin.run

    def timed_run(self):
        started = time.process_time()
        out = [] if baseline else list(real_run(self))
        spent[0] += time.process_time() - started
        return iter(out)

    def collector(phase, info):
        if phase == "start":
            collecting[1] = time.process_time()
        else:
            collecting[0] += time.process_time() - collecting[1]

    plugin.Plugin.run = timed_run
    gc.collect()
    gc.callbacks.append(collector)
    started = time.process_time()
    try:
        with contextlib.suppress(SystemExit):
            cli.main(["--isolated", "--jobs=1", "--select=E,F,W", "--output-file", os.devnull,
                      f"--rpl-cache-dir={cache}", tree])
    finally:
        whole = time.process_time() - started
        gc.callbacks.remove(collector)
        plugin.Plugin.run = real_run
        tracked = len(gc.get_objects())
        load.clear_cache()
    return whole, spent[0], collecting[0], tracked


#: The order of the runs in each round, in turn (a warm run after its cold one): the baseline
#: goes first, last and in the middle.
ORDERS = (("baseline", "cold", "warm"), ("cold", "warm", "baseline"), ("cold", "baseline", "warm"))


def collector_excess(run: dict, base: dict) -> float:
    """The collector time of ``run`` beyond what the baseline's collector share predicts for
    flake8's own work in it (its CPU outside the collector and the plugin)."""
    rest, base_rest = run["whole"] - run["gc"] - run["plugin"], base["whole"] - base["gc"] - base["plugin"]
    return max(0.0, run["gc"] - rest * base["gc"] / base_rest) if base_rest > 0 else 0.0


def one(mode: str, tree: str, cache: str) -> dict:
    """One run in a fresh process (this script with ``--one``): no run inherits another's heap."""
    out = subprocess.run([sys.executable, __file__, "--one", mode, cache, tree], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs="*")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--one", nargs=2, metavar=("MODE", "CACHE"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        mode, cache = a.one
        started = time.process_time()
        import redis_pool_lint.plugin  # noqa: F401  (what flake8 imports for every run)

        importing = time.process_time() - started
        whole, plugin, collecting, tracked = measure(os.path.abspath(a.trees[0]), cache, baseline=mode == "baseline")
        print(json.dumps({"whole": whole, "plugin": plugin, "gc": collecting, "tracked": tracked,
                          "import": importing}))
        return 0
    print("| tree | cache | flake8 CPU s (baseline) | plugin CPU s | collector s (baseline) "
          "| objects tracked after (baseline) | plugin + collector excess | share | installed / not |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tree in a.trees:
        runs: "dict[str, list]" = {"baseline": [], "cold": [], "warm": []}
        for n in range(a.rounds):
            cache = tempfile.mkdtemp(prefix="rpl-share-")
            shutil.rmtree(cache)
            for mode in ORDERS[n % len(ORDERS)]:
                runs[mode].append(one(mode, tree, cache))
            shutil.rmtree(cache, ignore_errors=True)

        def med(mode: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[mode])

        base, base_gc, base_objects = med("baseline", "whole"), med("baseline", "gc"), med("baseline", "tracked")
        for state in ("cold", "warm"):
            costs = [r["plugin"] + collector_excess(r, b) for r, b in zip(runs[state], runs["baseline"])]
            cost = statistics.median(costs)
            print(f"| {tree} | {state} | {med(state, 'whole'):.2f} ({base:.2f}) | {med(state, 'plugin'):.3f} | "
                  f"{med(state, 'gc'):.2f} ({base_gc:.2f}) | {med(state, 'tracked'):,.0f} ({base_objects:,.0f}) | "
                  f"{cost:.3f} | {100 * cost / base:.2f} % | {(base + cost) / base:.3f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
