"""What a new user meets on the command line: the help, the hints after a wrong command line,
an empty folder, ``-q``/``-v``, and files that cannot be analysed in CI's format."""
import re

import pytest

from conftest import BAD, run_tool

NOT_ANALYSED = ("redis-pool-lint: 1 file could not be analysed (see above): "
                "fix it, or leave it out with --extend-exclude PATH")


def test_help_is_plain_text_and_names_every_command():
    res = run_tool("--help")
    assert res.returncode == 0
    first = res.stdout.split("\n\n")[1]
    assert first == "Find and fix Redis clients built per request in FastAPI/Starlette apps."
    assert "``" not in res.stdout
    for command in ("check", "fix", "rules", "rule"):
        assert re.search(rf"^    {command} +\w", res.stdout, re.MULTILINE), command
    assert "redis-pool-lint fix --diff ." in res.stdout
    for command in ("check", "fix"):
        res = run_tool(command, "--help")
        assert res.returncode == 0 and "--quiet" in res.stdout and "--verbose" in res.stdout


def test_no_command_prints_the_help_and_exits_2():
    res = run_tool()
    assert res.returncode == 2 and "commands:" in res.stderr and res.stdout == ""


@pytest.mark.parametrize("argv, said", [
    (["check", "--fix", "."], "unrecognized arguments: --fix; to rewrite the code, run 'redis-pool-lint fix' "
                              "('fix --diff' shows the change first)"),
    (["check", "--diff", "."], "unrecognized arguments: --diff; --diff is an option of 'redis-pool-lint fix'"),
    (["fix", "--output-format=json", "."],
     "unrecognized arguments: --output-format=json; --output-format is an option of 'redis-pool-lint check'"),
    (["check", "--frobnicate"], "unrecognized arguments: --frobnicate; see 'redis-pool-lint check --help'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate; see 'redis-pool-lint --help'"),
    (["app.py"], "; to check it, run 'redis-pool-lint check app.py'"),
    (["."], "; to check it, run 'redis-pool-lint check .'"),
    (["rule"], "the following arguments are required: code; e.g. 'redis-pool-lint rule RPL101' "
               "('redis-pool-lint rules' lists the codes)"),
    (["check", "-q", "-v"], "not allowed with argument --quiet/-q; see 'redis-pool-lint check --help'"),
    (["rule", "RPL9"], "unknown rule 'RPL9'; see 'redis-pool-lint rules'"),
])
def test_a_wrong_command_line_says_what_to_run_instead(project, argv, said):
    res = run_tool(*argv, cwd=project)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("redis-pool-lint: error: ") and lines[0].endswith(said), lines
    assert lines[0].count("; see") <= 1


@pytest.mark.parametrize("command", [["check"], ["fix"], ["fix", "--diff"]])
def test_an_empty_folder_warns_as_ruff_does(tmp_path, command):
    (tmp_path / "notes.txt").write_text("no Python here\n")
    res = run_tool(*command, str(tmp_path))
    assert (res.returncode, res.stdout) == (0, "")
    assert res.stderr.splitlines()[0] == "redis-pool-lint: warning: No Python files found under the given path(s)"
    quiet = run_tool(*command, "-q", str(tmp_path))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_everything_excluded_warns_too(project):
    res = run_tool("check", "--extend-exclude=app.py", ".", cwd=project)
    assert (res.returncode, res.stdout) == (0, "")
    assert res.stderr == "redis-pool-lint: warning: No Python files found under the given path(s)\n"


def test_a_tree_without_redis_is_not_empty(tmp_path):
    (tmp_path / "plain.py").write_text("print('hello')\n")
    res = run_tool("check", str(tmp_path))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_quiet_fix_prints_no_summary(project):
    loud = run_tool("fix", "--diff", ".", cwd=project)
    assert loud.returncode == 1 and "redis-pool-lint: would change 1 file(s)" in loud.stderr
    quiet = run_tool("fix", "--diff", "-q", ".", cwd=project)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, loud.stdout, "")


def test_verbose_says_what_was_read_and_how_long_it_took(project):
    (project / "pyproject.toml").write_text('[tool.redis-pool-lint]\nextend-select = ["RPL204"]\n')
    (project / "lib.py").write_text("import os\n")
    res = run_tool("check", "-v", ".", cwd=project)
    assert res.returncode == 1
    plain = run_tool("check", ".", cwd=project)
    assert res.stdout == plain.stdout and plain.stderr == ""
    lines = res.stderr.splitlines()
    assert lines[0] == f"redis-pool-lint: configuration: {project / 'pyproject.toml'}"
    assert re.fullmatch(rf"redis-pool-lint: {re.escape(str(project))}: 2 file\(s\) to check "
                        r"\(2 in the project, 1 parsed\), \d+\.\d\d s", lines[1]), lines[1]
    assert re.fullmatch(r"redis-pool-lint: checked 2 file\(s\) in 1 project\(s\), \d+ job\(s\), \d+\.\d\d s",
                        lines[2]), lines[2]
    assert len(lines) == 3
    res = run_tool("check", "-v", "--isolated", ".", cwd=project)
    assert res.stderr.splitlines()[0] == "redis-pool-lint: configuration: none read (--isolated)"
    res = run_tool("fix", "--diff", "-v", ".", cwd=project)
    assert res.stderr.splitlines()[0] == f"redis-pool-lint: configuration: {project / 'pyproject.toml'}"
    assert re.search(r"^redis-pool-lint: looked at 2 file\(s\) in 1 project\(s\)", res.stderr, re.MULTILINE)


def test_github_format_annotates_files_that_cannot_be_analysed(project):
    (project / "broken.py").write_text("import redis\n\ndef f(:\n")
    res = run_tool("check", "--output-format=github", ".", cwd=project)
    assert res.returncode == 2
    lines = res.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("::error ") for line in lines)
    assert lines[2] == ("::error title=redis-pool-lint (not analysed),file=./broken.py,line=3::"
                        "./broken.py: cannot parse: invalid syntax (line 3)")
    assert res.stderr.splitlines() == ["./broken.py: cannot parse: invalid syntax (line 3)", NOT_ANALYSED]


def test_github_annotation_of_an_unreadable_file_points_at_line_1(project):
    (project / "latin.py").write_bytes(b"import redis\nx = '\xff'\n")
    res = run_tool("check", "--output-format=github", ".", cwd=project)
    assert res.returncode == 2
    last = res.stdout.splitlines()[-1]
    assert last.startswith("::error title=redis-pool-lint (not analysed),file=./latin.py,line=")
    assert "::./latin.py: cannot decode: " in last


def test_fix_says_what_to_do_about_a_file_it_could_not_analyse(project):
    (project / "broken.py").write_text(BAD + "def f(:\n")
    res = run_tool("fix", "--diff", ".", cwd=project)
    assert res.returncode == 2 and res.stdout == ""
    assert NOT_ANALYSED in res.stderr.splitlines()
