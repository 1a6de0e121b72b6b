"""Fuzz ``check`` and ``fix`` with a larger budget than the test suite, and print the numbers.

    PYTHONPATH=. python benchmarks/fuzz.py [--mutants N] [--generated N] [--seed S]

Two generators: mutations of the fixture apps (renamed identifiers, reordered statements, extra
decorators, comments in odd places; ``tests/fuzzing.py``) and valid Python from ``hypothesmith``
(each module alone, and followed by a FastAPI app with a per-request client so the fixer has to
rewrite a file containing it). Each example is one project; the outcomes are
clean (no finding: nothing may be written), fixed (the rewrite parses, re-lints without the fixed
findings and a second run changes nothing), unchanged (findings the fixer leaves), refused (the
verifier said no), unparsable (the tools report the file), crash (an exception escaped) and
violation (a property failed). Exit status 1 when there is any crash or violation.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import HANDLER, PRELUDE, corpus, materialize_mutant, run_one, write_module  # noqa: E402

KINDS = ("clean", "fixed", "unchanged", "refused", "unparsable", "crash", "violation")


def report(name: str, counts: Counter, seconds: float) -> None:
    total = sum(counts.values())
    parts = ", ".join(f"{k} {counts[k]}" for k in KINDS)
    print(f"{name}: {total} examples in {seconds:.0f} s: {parts}", flush=True)


def mutants(n: int, seed: int, problems: list) -> Counter:
    counts: Counter = Counter()
    entries = corpus()
    rng = random.Random(seed)
    for i in range(n):
        source = rng.choice(entries)
        local = random.Random(rng.randrange(2**32))
        outcome, details = run_one(lambda folder: materialize_mutant(source, folder, local))
        counts[outcome] += 1
        if details:
            problems.append(f"mutant {i} of {source.relative_to(source.parents[2])}: {details}")
    return counts


def generated(n: int, seed: int, problems: list) -> Counter:
    import hypothesmith
    from hypothesis import HealthCheck, given, seed as hseed, settings

    counts: Counter = Counter()

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(code=hypothesmith.from_grammar())
    def one(code):
        for source in (code, code + "\n" + PRELUDE + HANDLER):
            outcome, details = run_one(lambda folder: write_module(folder, source))
            counts[outcome] += 1
            if details:
                problems.append(f"generated module:\n{source}\n{details}")

    one()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=2000)
    parser.add_argument("--generated", type=int, default=500, help="hypothesmith modules (each run twice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore", SyntaxWarning)  # hypothesmith compiles odd but valid code
    problems: list = []
    total: Counter = Counter()
    start = time.perf_counter()
    got = mutants(args.mutants, args.seed, problems)
    report("mutated fixture apps", got, time.perf_counter() - start)
    total += got
    if args.generated:
        start2 = time.perf_counter()
        got = generated(args.generated, args.seed, problems)
        report("hypothesmith modules", got, time.perf_counter() - start2)
        total += got
    report("total", total, time.perf_counter() - start)
    for p in problems[:20]:
        print("-" * 72)
        print(p)
    return 1 if total["crash"] or total["violation"] else 0


if __name__ == "__main__":
    sys.exit(main())
