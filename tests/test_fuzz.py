"""Properties by generation: ``check`` never crashes; ``fix`` leaves a file alone or writes code that
parses, re-lints without the fixed findings and is left alone by a second run; a project without
findings is never written (bytes and mtime). A few examples here; ``benchmarks/fuzz.py`` runs more."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import HANDLER, PRELUDE, corpus, materialize_mutant, run_one, write_module

FEW = settings(max_examples=25, deadline=None, database=None, derandomize=False,
               suppress_health_check=list(HealthCheck))


@FEW
@given(source=st.sampled_from(corpus()), rng=st.randoms(use_true_random=False))
def test_mutated_fixture_apps(source, rng):
    outcome, details = run_one(lambda folder: materialize_mutant(source, folder, rng))
    assert outcome not in ("crash", "violation"), details


def test_generated_modules():
    hypothesmith = pytest.importorskip("hypothesmith")

    @settings(FEW, max_examples=15)
    @given(code=hypothesmith.from_grammar())
    def check(code):
        for source in (code, code + "\n" + PRELUDE + HANDLER):
            outcome, details = run_one(lambda folder: write_module(folder, source))
            assert outcome not in ("crash", "violation"), details

    check()
