"""The plugin's own share of a flake8 run, measured inside one process: less noisy than the
ratio of two whole runs on a shared machine (``speed.py --only-real``), which it complements.

    python benchmarks/plugin_share.py [--cache-dir DIR] TREE [TREE ...]

For each tree: ``flake8 --isolated --jobs=1 --select=E,F,W`` in this process, twice, the cache
removed before the first run (cold) and kept for the second (warm). The CPU time spent in the
plugin (``Plugin.run``, which analyses the project on its first call, and its import) is summed
with ``time.process_time`` and set against the whole run's CPU. Needs flake8 and the plugin
importable (e.g. ``PYTHONPATH=. python benchmarks/plugin_share.py ...``).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time


def measure(tree: str, cache: str) -> "tuple[float, float]":
    """(whole flake8 run, plugin) CPU seconds of one run in this process."""
    from flake8.main import cli

    from redis_pool_lint import plugin
    from redis_pool_lint.analysis import load

    load.clear_cache()
    spent = [0.0]
    real_run = plugin.Plugin.run

    def timed_run(self):
        started = time.process_time()
        out = list(real_run(self))
        spent[0] += time.process_time() - started
        return iter(out)

    plugin.Plugin.run = timed_run
    started = time.process_time()
    try:
        with contextlib.suppress(SystemExit):
            cli.main(["--isolated", "--jobs=1", "--select=E,F,W", "--output-file", os.devnull,
                      f"--rpl-cache-dir={cache}", tree])
    finally:
        plugin.Plugin.run = real_run
    return time.process_time() - started, spent[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs="+")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: a temporary one)")
    a = p.parse_args(argv)
    started = time.process_time()
    import redis_pool_lint.plugin  # noqa: F401  (what flake8 imports for every run)

    importing = time.process_time() - started
    print(f"import of the plugin: {importing:.3f} s CPU")
    print("| tree | cache | flake8 CPU s | plugin CPU s | plugin share |")
    print("|---|---|---|---|---|")
    for tree in a.trees:
        cache = a.cache_dir or tempfile.mkdtemp(prefix="rpl-share-")
        shutil.rmtree(cache, ignore_errors=True)
        for state in ("cold", "warm"):
            whole, plugin = measure(os.path.abspath(tree), cache)
            print(f"| {tree} | {state} | {whole:.2f} | {plugin:.3f} | {100 * plugin / whole:.2f} % |", flush=True)
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
