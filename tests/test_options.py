"""Extra route decorators and client factories, from flake8 config and from check flags."""
from conftest import CUSTOM as APP, run_flake8, run_tool


def _project(tmp_path, config=""):
    (tmp_path / "setup.cfg").write_text(config)
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_nothing_without_the_options(tmp_path):
    project = _project(tmp_path)
    assert run_tool("check", ".", cwd=project).stdout == ""


def test_check_flags(tmp_path):
    project = _project(tmp_path)
    res = run_tool("check", "--route-decorators=myframework.web.*_route",
                   "--client-factories=myapp.cache.make_*", ".", cwd=project)
    assert res.stdout.startswith("./app.py:6:18: RPL101 "), res.stdout + res.stderr


def test_flake8_reads_options_from_setup_cfg(tmp_path):
    project = _project(tmp_path, (
        "[flake8]\n"
        "rpl-route-decorators = myframework.web.*_route\n"
        "rpl-client-factories =\n"
        "    myapp.cache.make_*\n"
    ))
    import os
    import subprocess
    import sys

    from conftest import ROOT

    res = subprocess.run([sys.executable, "-m", "flake8", "--select=RPL", "."], cwd=project,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.stdout.startswith("./app.py:6:18: RPL101 "), res.stdout + res.stderr
    assert run_flake8("--select=RPL", ".", cwd=project).stdout == ""  # --isolated ignores config
