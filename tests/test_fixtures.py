"""The eval corpus: every ``# expect:`` marker is found, nothing else is."""
import pytest

from redis_pool_lint.analysis.load import Settings, build
from redis_pool_lint.filters import noqa_filter
from redis_pool_lint.rules import RULES

from conftest import case_files, expected_in, project_dirs, FIXTURES


def findings_of(directory):
    """What ``check --extend-select RPL107,RPL204`` reports: every code, ``# noqa`` applied."""
    result = build(str(directory), Settings())
    assert not result.errors, result.errors
    out = set()
    for path, fs in result.findings.items():
        with open(path, encoding="utf-8") as fh:
            kept = noqa_filter(fs, fh.read())
        out.update((Path_rel(f.path, directory), f.line, f.code) for f in kept)
    return out


def Path_rel(path, directory):
    import os

    return os.path.relpath(path, directory).replace(os.sep, "/")


@pytest.mark.parametrize(
    "name", [f"{p.parent.name}__{p.stem}" for p in case_files()] + [p.name for p in project_dirs()]
)
def test_expected_findings(corpus, name):
    _, dirs = corpus
    src, dest = dirs[name]
    expected = expected_in(dest)
    assert findings_of(dest) == expected


def test_every_code_has_positive_and_negative_cases():
    for rule in RULES:
        folder = FIXTURES / "cases" / rule.code
        bad = list(folder.glob("bad_*.py"))
        ok = list(folder.glob("ok_*.py"))
        assert bad and ok, f"{rule.code} needs bad_*.py and ok_*.py fixtures"
        assert any(rule.code in p.read_text() for p in bad), f"no {rule.code} marker in {folder}"
        for p in ok:
            assert "# expect:" not in p.read_text() or rule.code not in p.read_text(), p


EVAL = FIXTURES / "eval"


@pytest.mark.parametrize("case", sorted(p.name for p in EVAL.iterdir() if p.is_dir()))
def test_eval_case_default_selection(case):
    """Realistic apps (written blind to the detector), with the default selection: exactly the
    marked findings, none else. Each case folder is its own project."""
    from redis_pool_lint.filters import Selection

    directory = EVAL / case
    result = build(str(directory), Settings())
    assert not result.errors, result.errors
    selection = Selection()
    got = set()
    for path, fs in result.findings.items():
        with open(path, encoding="utf-8") as fh:
            kept = noqa_filter([f for f in fs if selection.wants(f.code)], fh.read())
        got.update((Path_rel(f.path, directory), f.line, f.code) for f in kept)
    assert got == expected_in(directory)
