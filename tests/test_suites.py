"""Projects with pytest suites (fixtures/suites) pass their tests before and after ``fix``, run
against the session's redis-server: the fix rewrites the test code that would skip the lifespan
(a module-level ``TestClient``, a fixture returning one, a client built in a test, an
``AsyncClient`` over ``ASGITransport``), dependency overrides keep working; the fixed code passes
the checks the project configures (ruff's E501 and I, ruff format or black); and ``fix --diff``
applies with ``git apply`` to give the same tree."""
import os
import shutil
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from conftest import FIXTURES, run_tool

SUITES = sorted(p.name for p in (FIXTURES / "suites").iterdir() if p.is_dir())
#: what each project's configuration asks for, checked on the fixed tree
CHECKS = {
    "module_client": [["ruff", "check", "--select", "E501,I", "."], ["ruff", "format", "--check", "."]],
    "async_client": [["ruff", "check", "--select", "E501,I", "."], ["ruff", "format", "--check", "."]],
    "fixture_client": [["black", "--check", "."], ["ruff", "check", "--isolated", "--line-length", "100",
                                                   "--select", "E501,I", "."]],
    "overrides": [["ruff", "check", "--isolated", "--line-length", "100", "--select", "E501", "."]],
}


def _pytest(project, redis_url):
    url = urlparse(redis_url)
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_HOST": url.hostname, "REDIS_PORT": str(url.port),
           "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.py"))}


@pytest.fixture(scope="module")
def suites(tmp_path_factory, redis_url):
    """name -> (before folder, fixed folder, the fix's run, the diff's bytes)."""
    out = {}
    for name in SUITES:
        base = tmp_path_factory.mktemp(name)
        before, fixed = base / "before", base / "fixed"
        shutil.copytree(FIXTURES / "suites" / name, before)
        shutil.copytree(before, fixed)
        diff = run_tool("fix", "--diff", ".", cwd=before, text=False)
        fix = run_tool("fix", ".", cwd=fixed)
        out[name] = (before, fixed, fix, diff.stdout)
    return out


@pytest.mark.parametrize("name", SUITES)
def test_the_suite_passes_before_and_after_the_fix(suites, redis_url, name):
    before, fixed, fix, _ = suites[name]
    res = _pytest(before, redis_url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert fix.returncode == 1 and ", 0 left" in fix.stderr and "not rewritten" not in fix.stderr, fix.stderr
    assert _tree(fixed) != _tree(before)
    res = _pytest(fixed, redis_url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "request.app.state.redis" in (fixed / "app" / "main.py").read_text()


@pytest.mark.parametrize("name", SUITES)
def test_the_fixed_code_passes_the_projects_checks(suites, name):
    _, fixed, _, _ = suites[name]
    for command in CHECKS[name]:
        if shutil.which(command[0]) is None:
            pytest.skip(f"{command[0]} is not installed (the test extras install it)")
        res = subprocess.run(command, cwd=fixed, capture_output=True, text=True)
        assert res.returncode == 0, (command, res.stdout, res.stderr)


@pytest.mark.parametrize("name", SUITES)
def test_the_diff_applies_and_gives_the_fixed_tree(suites, tmp_path, name):
    before, fixed, _, diff = suites[name]
    copy = tmp_path / "copy"
    shutil.copytree(before, copy)
    (tmp_path / "fix.patch").write_bytes(diff)
    for command in (["git", "apply", "--check"], ["git", "apply"]):
        res = subprocess.run([*command, str(tmp_path / "fix.patch")], cwd=copy, capture_output=True, text=True)
        assert res.returncode == 0, (command, res.stderr)
    assert _tree(copy) == _tree(fixed)


def test_a_place_the_fix_cannot_rewrite_is_reported_with_the_change(tmp_path):
    """A helper reads the module's client: the client stays, and the report says what to do."""
    project = tmp_path / "p"
    shutil.copytree(FIXTURES / "suites" / "module_client", project)
    test = project / "tests" / "test_visits.py"
    test.write_text(test.read_text() + "\n\ndef visit(page):\n    return client.post(f\"/visits/{page}\")\n")
    res = run_tool("fix", "--diff", ".", cwd=project)
    assert "tests/test_visits.py:7: test not rewritten: `client` is read outside tests and fixtures" in res.stderr, \
        res.stderr
    assert "+client = TestClient" not in res.stdout and "test_visits.py" not in res.stdout


@pytest.mark.parametrize("formatter", ["black", "ruff"])
def test_fix_format_hands_the_changed_files_to_the_projects_formatter(tmp_path, formatter):
    if shutil.which(formatter) is None:
        pytest.skip(f"{formatter} is not installed (the test extras install it)")
    project = tmp_path / "p"
    shutil.copytree(FIXTURES / "suites" / "module_client", project)
    (project / "pyproject.toml").write_text(f"[tool.{formatter}]\nline-length = 88\n")
    main = project / "app" / "main.py"
    main.write_text(main.read_text().replace('"/visits/{page}"', "'/visits/{page}'"))  # not formatted
    res = run_tool("fix", "--format", ".", cwd=project)
    assert res.returncode == 1 and ", 0 left" in res.stderr, res.stderr
    assert "'/visits" not in main.read_text()
    check = ["black", "--check", "."] if formatter == "black" else ["ruff", "format", "--check", "."]
    res = subprocess.run(check, cwd=project, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_fix_format_without_a_formatter_is_a_clear_error(tmp_path):
    from redis_pool_lint.fix.style import FormatError, Style, formatter_command

    project = tmp_path / "p"
    shutil.copytree(FIXTURES / "suites" / "overrides", project)  # flake8 only
    before = _tree(project)
    res = run_tool("fix", "--format", ".", cwd=project)
    assert res.returncode == 2 and "--format: the project configures no formatter" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and _tree(project) == before
    with pytest.raises(FormatError, match="not installed"):
        formatter_command(Style(formatter="no-such-formatter"), str(project))


def test_without_asgi_lifespan_the_async_suite_runs_starlettes_lifespan_context(suites, redis_url, tmp_path):
    from redis_pool_lint.fix.tests import rewrite_tests

    before, fixed, _, _ = suites["async_client"]
    project = tmp_path / "p"
    shutil.copytree(fixed, project)
    test = project / "tests" / "test_ping.py"
    done = rewrite_tests((before / "tests" / "test_ping.py").read_text(), lifespan_manager=False)
    assert "    async with app.router.lifespan_context(app):\n        async with AsyncClient(" in done.text
    assert "asgi_lifespan" not in done.text and not done.notes
    test.write_text(done.text)
    res = _pytest(project, redis_url)
    assert res.returncode == 0, res.stdout + res.stderr
    noted = rewrite_tests((before / "tests" / "test_ping.py").read_text(), lifespan_manager=False, state=True)
    assert noted.text == (before / "tests" / "test_ping.py").read_text()
    assert [(line, "pip install asgi-lifespan" in note) for line, note in noted.notes] == [(14, True)]
