"""Standalone configuration: ``[tool.redis-pool-lint]``, flake8's section, ``--config``, ``--isolated``."""
import pytest

from conftest import BAD, CUSTOM, run_tool


def codes(res):
    return sorted(line.split(": ")[1].split()[0] for line in res.stdout.splitlines())


def write(folder, name, text):
    (folder / name).write_text(text)
    return folder


def test_defaults_without_configuration(project):
    write(project, "pyproject.toml", "[project]\nname = 'x'\n")
    assert codes(run_tool("check", ".", cwd=project)) == ["RPL101", "RPL102"]


def test_pyproject_setting_changes_what_check_reports(project):
    write(project, "pyproject.toml", '[tool.redis-pool-lint]\nignore = ["RPL102"]\n')
    res = run_tool("check", ".", cwd=project)
    assert codes(res) == ["RPL101"] and res.returncode == 1


def test_pyproject_select_and_command_line_override(project):
    write(project, "pyproject.toml", '[tool.redis-pool-lint]\nselect = ["RPL102"]\n')
    assert codes(run_tool("check", ".", cwd=project)) == ["RPL102"]
    assert codes(run_tool("check", "--select=RPL101", ".", cwd=project)) == ["RPL101"]


def test_extend_lists_add_up_across_file_and_command_line(project):
    write(project, "pyproject.toml", '[tool.redis-pool-lint]\nextend-ignore = ["RPL101"]\n')
    assert codes(run_tool("check", ".", cwd=project)) == ["RPL102"]
    assert codes(run_tool("check", "--extend-ignore=RPL102", ".", cwd=project)) == []


def test_flake8_section_is_shared_and_other_plugins_codes_are_dropped(project):
    write(project, "setup.cfg", "[flake8]\nselect = E,F,W,B\nextend-ignore = RPL102,E501\nmax-line-length = 99\n")
    assert codes(run_tool("check", ".", cwd=project)) == ["RPL101"]


def test_pyproject_overrides_flake8_section(project):
    write(project, "tox.ini", "[flake8]\nselect = RPL102\n")
    assert codes(run_tool("check", ".", cwd=project)) == ["RPL102"]
    write(project, "pyproject.toml", '[tool.redis-pool-lint]\nselect = ["RPL1"]\n')
    assert codes(run_tool("check", ".", cwd=project)) == ["RPL101", "RPL102"]


def test_flake8_rpl_options_and_pyproject_options_reach_the_analysis(tmp_path):
    write(tmp_path, "app.py", CUSTOM)
    assert run_tool("check", ".", cwd=tmp_path).stdout == ""
    write(tmp_path, ".flake8", "[flake8]\nrpl-route-decorators = myframework.web.*_route\n")
    write(tmp_path, "pyproject.toml", '[tool.redis-pool-lint]\nclient-factories = ["myapp.cache.make_*"]\n')
    assert codes(run_tool("check", ".", cwd=tmp_path)) == ["RPL101"]


def test_found_by_walking_up_from_the_paths_given(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.redis-pool-lint]\nignore = ["RPL102"]\n')
    sub = tmp_path / "svc" / "api"
    sub.mkdir(parents=True)
    write(sub, "app.py", BAD)
    elsewhere = tmp_path.parent
    assert codes(run_tool("check", str(sub), cwd=elsewhere)) == ["RPL101"]
    assert codes(run_tool("check", str(sub / "app.py"), cwd=elsewhere)) == ["RPL101"]


def test_exclude_patterns_with_a_slash_are_relative_to_the_config_file(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.redis-pool-lint]\nextend-exclude = ["legacy/old"]\n')
    for folder in ("legacy/old", "legacy/new"):
        (tmp_path / folder).mkdir(parents=True)
        write(tmp_path / folder, "app.py", BAD)
    for args, cwd in (([str(tmp_path)], tmp_path.parent), ([], tmp_path), (["."], tmp_path),
                      (["new"], tmp_path / "legacy")):
        res = run_tool("check", *args, cwd=cwd)
        assert res.stdout and all("legacy/new/app.py" in line or line.startswith("new/app.py")
                                  for line in res.stdout.splitlines()), (args, res.stdout)


def test_config_option_uses_only_that_file_and_isolated_ignores_all(project, tmp_path_factory):
    write(project, "pyproject.toml", '[tool.redis-pool-lint]\nignore = ["RPL102"]\n')
    other = tmp_path_factory.mktemp("cfg") / "lint.toml"
    other.write_text('[tool.redis-pool-lint]\nignore = ["RPL101"]\n')
    assert codes(run_tool("check", f"--config={other}", ".", cwd=project)) == ["RPL102"]
    ini = other.with_name("lint.cfg")
    ini.write_text("[flake8]\nextend-ignore = RPL1\n")
    assert codes(run_tool("check", f"--config={ini}", ".", cwd=project)) == []
    assert codes(run_tool("check", "--isolated", ".", cwd=project)) == ["RPL101", "RPL102"]


def test_fix_reads_its_options_from_pyproject(project):
    write(project, "pyproject.toml", "[tool.redis-pool-lint]\nmax-connections = 7\npool-timeout = 2.5\n")
    res = run_tool("fix", ".", cwd=project)
    assert res.returncode == 1, res.stderr
    text = (project / "app.py").read_text()
    assert "max_connections=7" in text and "timeout=2.5" in text


@pytest.mark.parametrize("text, fragment", [
    ('[tool.redis-pool-lint]\nignor = ["RPL102"]\n', "unknown option 'ignor' (did you mean 'ignore'?)"),
    ('[tool.redis-pool-lint]\nqux = 1\n', "unknown option 'qux'; the options are select, extend-select, ignore, "),
    ('[tool.redis-pool-lint]\nselect = "RPL999"\n', "unknown rule selector 'RPL999'"),
    ('[tool.redis-pool-lint]\nselect = ["E501"]\n', "unknown rule selector 'E501'"),
    ("[tool.redis-pool-lint]\nmax-connections = 0\n", "'max-connections' must be a positive integer"),
    ("[tool.redis-pool-lint]\ninclude-tests = 'yes'\n", "'include-tests' must be true or false"),
    ("[tool.redis-pool-lint]\nselect = [1]\n", "'select' must be a list of strings"),
    ("[tool.redis-pool-lint\nselect = 1\n", "invalid TOML"),
])
def test_bad_configuration_is_one_line_and_exit_2(project, text, fragment):
    write(project, "pyproject.toml", text)
    for command in ("check", "fix"):
        res = run_tool(command, ".", cwd=project)
        assert res.returncode == 2, res.stderr
        assert res.stderr.count("\n") == 1 and fragment in res.stderr, res.stderr
        assert "pyproject.toml" in res.stderr and "Traceback" not in res.stderr
    assert (project / "app.py").read_text() == BAD


def test_bad_command_line_values_are_one_line_and_exit_2(project):
    for args in (["--select=XYZ1"], ["--extend-select=RPL9"], ["--jobs=0"], ["--config=/nonexistent.toml"],
                 ["--output-format=xml"], ["-", "."]):
        res = run_tool("check", *args, ".", cwd=project) if args[0] != "-" else run_tool("check", *args, cwd=project)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, (args, res.stderr)
