"""``redis-pool-lint check``: exit codes, selection, excludes and bad input."""
import os

import pytest

from conftest import BAD, ROOT, run_tool


def test_findings_exit_1_and_flake8_format(project):
    res = run_tool("check", ".", cwd=project)
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        "./app.py:6:12: RPL102 " + res.stdout.splitlines()[0].split(" RPL102 ")[1],
        "./app.py:7:18: RPL101 " + res.stdout.splitlines()[1].split(" RPL101 ")[1],
    ]


def test_clean_tree_exit_0(tmp_path):
    (tmp_path / "ok.py").write_text("import redis\nclient = redis.Redis()\n")
    res = run_tool("check", str(tmp_path))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


@pytest.mark.parametrize(
    "args, codes",
    [
        (["--select=RPL101"], {"RPL101"}),
        (["--ignore=RPL101"], {"RPL102"}),
        (["--extend-ignore=RPL1"], set()),
        (["--select=RPL1", "--ignore=RPL102"], {"RPL101"}),
        (["--ignore=RPL1", "--extend-select=RPL102"], {"RPL102"}),
    ],
)
def test_select_and_ignore(project, args, codes):
    res = run_tool("check", *args, ".", cwd=project)
    assert {line.split()[1] for line in res.stdout.splitlines()} == codes
    assert res.returncode == (1 if codes else 0)


def test_python_m_entry_point_and_console_script_agree(project):
    import shutil
    import subprocess

    script = shutil.which("redis-pool-lint")
    if script is None:
        pytest.skip("package not installed")
    a = subprocess.run([script, "check", "."], cwd=project, capture_output=True, text=True)
    b = run_tool("check", ".", cwd=project)
    assert a.stdout == b.stdout and a.returncode == b.returncode == 1


def test_excludes(project):
    (project / "vendored").mkdir()
    (project / "vendored" / "app.py").write_text(BAD)
    (project / "venv").mkdir()
    (project / "venv" / "pyvenv.cfg").touch()
    (project / "venv" / "lib.py").write_text(BAD)
    (project / "myenv").mkdir()
    (project / "myenv" / "pyvenv.cfg").touch()
    (project / "myenv" / "lib.py").write_text(BAD)
    res = run_tool("check", ".", cwd=project)
    paths = {line.split(":")[0] for line in res.stdout.splitlines()}
    assert paths == {"./app.py", "./vendored/app.py"}
    res = run_tool("check", "--extend-exclude=vendored", ".", cwd=project)
    assert {line.split(":")[0] for line in res.stdout.splitlines()} == {"./app.py"}


@pytest.mark.parametrize("pattern", ["routers/legacy.py", "./routers/legacy.py", "*/legacy.py", "legacy.py",
                                     "routers/leg*.py"])
@pytest.mark.parametrize("where", [[], ["."], ["routers"]], ids=["no-path", "dot", "subfolder"])
def test_extend_exclude_takes_a_path_from_the_current_folder(project, pattern, where):
    """As flake8: a pattern with a slash is a path from where the command runs, however the
    folder to check is written."""
    (project / "routers").mkdir()
    (project / "routers" / "legacy.py").write_text(BAD)
    (project / "routers" / "orders.py").write_text(BAD)
    res = run_tool("check", f"--extend-exclude={pattern}", *where, cwd=project)
    files = {line.split(":")[0].lstrip("./") for line in res.stdout.splitlines()}
    assert "routers/orders.py" in files and "routers/legacy.py" not in files, res.stdout
    res = run_tool("fix", "--diff", f"--extend-exclude={pattern}", *where, cwd=project)
    # only orders.py's findings: its own app serves them and is fixed; with app.py's too, the
    # two apps serve different routes and the fixer asks, naming routers.orders:app
    assert "routers.orders:app" in res.stderr or "+++ b/routers/orders.py" in res.stdout, res.stderr
    assert "legacy" not in res.stdout + res.stderr, res.stderr


def test_a_folder_pattern_with_a_trailing_slash_excludes_the_folder(project):
    (project / "routers").mkdir()
    (project / "routers" / "legacy.py").write_text(BAD)
    res = run_tool("check", "--extend-exclude=routers/", ".", cwd=project)
    assert res.returncode == 1 and "routers" not in res.stdout


def test_test_files_are_skipped_by_default(project):
    (project / "tests").mkdir()
    (project / "tests" / "test_app.py").write_text(BAD)
    res = run_tool("check", ".", cwd=project)
    assert "tests/" not in res.stdout
    res = run_tool("check", "--include-tests", ".", cwd=project)
    assert "tests/test_app.py" in res.stdout


def test_syntax_error_is_one_line_and_run_goes_on(project):
    (project / "broken.py").write_text("import redis\ndef f(:\n")
    res = run_tool("check", ".", cwd=project)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.splitlines() == [
        "./broken.py: cannot parse: invalid syntax (line 2)",
        "redis-pool-lint: 1 file could not be analysed (see above): fix it, or leave it out with --extend-exclude PATH"]
    assert "RPL101" in res.stdout  # the other file was still checked
    quiet = run_tool("check", "-q", ".", cwd=project)
    assert (quiet.returncode, quiet.stdout) == (2, res.stdout)
    assert quiet.stderr == "./broken.py: cannot parse: invalid syntax (line 2)\n"


def test_undecodable_file(project):
    (project / "latin.py").write_bytes(b"import redis\nx = '\xff\xfe'\n")
    res = run_tool("check", ".", cwd=project)
    assert res.returncode == 2
    assert "./latin.py: cannot" in res.stderr and "Traceback" not in res.stderr


def test_coding_cookie_and_bom_are_read(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "a.py").write_bytes(b"# -*- coding: latin-1 -*-\n" + BAD.encode() + b"x = '\xe9'\n")
    (tmp_path / "b.py").write_bytes(b"\xef\xbb\xbf" + BAD.encode())
    res = run_tool("check", ".", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert {line.split(":")[0] for line in res.stdout.splitlines()} == {"./a.py", "./b.py"}


def test_missing_path_and_unknown_option(tmp_path):
    res = run_tool("check", str(tmp_path / "nope"))
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
    res = run_tool("check", "--frobnicate", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "redis-pool-lint: error: unrecognized arguments: --frobnicate; see 'redis-pool-lint check --help'"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_directory(project):
    locked = project / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        res = run_tool("check", str(locked))
        assert res.returncode == 2 and "permission denied" in res.stderr
    finally:
        locked.chmod(0o755)


def test_single_file_argument_still_sees_the_project(tmp_path):
    """A dependency used from another module is found when only its file is given."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "deps.py").write_text(
        "from redis.asyncio import Redis\n"
        "async def get_redis():\n"
        "    return Redis()\n"
    )
    (tmp_path / "routes.py").write_text(
        "from fastapi import APIRouter, Depends\n"
        "from deps import get_redis\n"
        "router = APIRouter()\n"
        "@router.get('/')\n"
        "async def index(r=Depends(get_redis)):\n"
        "    return await r.get('k')\n"
    )
    res = run_tool("check", "deps.py", cwd=tmp_path)
    assert res.stdout.startswith("deps.py:3:12: RPL103 "), res.stdout


def test_rules_and_rule_commands():
    res = run_tool("rules")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 14
    res = run_tool("rule", "rpl001")
    assert res.returncode == 0 and "shared-pool-closed-per-request" in res.stdout
    res = run_tool("rule", "RPL999")
    assert res.returncode == 2 and res.stderr.count("\n") == 1


def test_readme_rule_section_matches_the_catalogue():
    from redis_pool_lint.docs import sync_readme

    assert sync_readme(str(ROOT / "README.md"), write=False), "run: python -m redis_pool_lint.docs"


def test_rule_pages_match_the_catalogue():
    from redis_pool_lint.docs import SECTIONS, sync_pages
    from redis_pool_lint.rules import RULES

    folder = ROOT / "docs" / "rules"
    assert sync_pages(str(folder), write=False), "run: python -m redis_pool_lint.docs"
    assert sorted(p.stem for p in folder.glob("*.md")) == sorted(r.code for r in RULES)
    for rule in RULES:
        text = (folder / f"{rule.code}.md").read_text()
        assert all(f"**{section}.**" in text for section in SECTIONS), rule.code


def test_every_rule_has_the_five_documentation_sections():
    from redis_pool_lint.docs import SECTIONS, rule_markdown
    from redis_pool_lint.rules import RULES

    for rule in RULES:
        text = rule_markdown(rule)
        for section in SECTIONS:
            assert f"**{section}.**" in text, (rule.code, section)
        assert rule.code in (ROOT / "README.md").read_text()


def test_the_readme_example_says_what_the_readme_says():
    """README "Try it": six findings in three modules, exit 1; the fix changes three files,
    fixes five findings and leaves one, and the helper's caller keeps its ``.get(...)``."""
    res = run_tool("check", "fixtures/example", cwd=ROOT)
    lines = res.stdout.splitlines()
    assert res.returncode == 1 and len(lines) == 6, res.stdout
    assert len({line.split(":")[0] for line in lines}) == 3
    res = run_tool("fix", "--diff", "fixtures/example", cwd=ROOT)
    assert res.returncode == 1 and "would change 3 file(s), would fix 5 finding(s), 1 left" in res.stderr, res.stderr
    assert '+    return {"level": request.app.state.redis_2.get(f"stock:{item}")}\n' in res.stdout
