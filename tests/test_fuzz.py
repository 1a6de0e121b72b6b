"""Properties by generation: ``check`` never crashes; ``fix`` leaves a file alone or writes code that
parses, re-lints without the fixed findings and is left alone by a second run; a project without
findings is never written (bytes and mtime). A few examples here; ``benchmarks/fuzz.py`` runs more."""
import os
import random

import pytest

from fuzzing import HANDLER, PRELUDE, corpus, materialize_mutant, run_one, write_module

#: a new draw every run; a failure names its seed (RPL_FUZZ_SEED=<seed> replays it)
BASE_SEED = int(os.environ.get("RPL_FUZZ_SEED") or random.SystemRandom().randrange(10**9))
MUTANTS = 25


@pytest.mark.parametrize("n", range(MUTANTS))
def test_mutated_fixture_apps(n):
    rng = random.Random(BASE_SEED * 1000 + n)
    source = rng.choice(corpus())
    outcome, details = run_one(lambda folder: materialize_mutant(source, folder, rng))
    assert outcome not in ("crash", "violation"), f"RPL_FUZZ_SEED={BASE_SEED} example {n}: {details}"


def test_generated_modules():
    pytest.importorskip("hypothesis")
    hypothesmith = pytest.importorskip("hypothesmith")
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(code=hypothesmith.from_grammar())
    def check(code):
        for source in (code, code + "\n" + PRELUDE + HANDLER):
            outcome, details = run_one(lambda folder: write_module(folder, source))
            assert outcome not in ("crash", "violation"), details

    check()
