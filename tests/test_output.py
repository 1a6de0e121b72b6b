"""``check``'s output formats and modes, and stdin for ``check -`` and ``fix -``."""
import json
import re
import subprocess
import sys

import pytest

from conftest import BAD, ROOT, run_tool

FIELDS = {"code", "name", "message", "filename", "location", "end_location", "fix", "url"}


def text_positions(project):
    res = run_tool("check", ".", cwd=project)
    return [tuple(m.groups()) for m in re.finditer(r"^(\S+?):(\d+):(\d+): (RPL\d+)", res.stdout, re.M)]


def test_json_carries_every_field(project):
    from redis_pool_lint.rules import BY_CODE

    res = run_tool("check", "--output-format=json", ".", cwd=project)
    assert res.returncode == 1
    items = json.loads(res.stdout)
    assert [(i["filename"], str(i["location"]["row"]), str(i["location"]["column"]), i["code"])
            for i in items] == text_positions(project)
    for i in items:
        assert set(i) == FIELDS
        rule = BY_CODE[i["code"]]
        assert i["name"] == rule.name and i["fix"]["applicability"] == rule.fix.value
        assert i["url"].endswith(f"/docs/rules/{i['code']}.md")
        assert (ROOT / "docs" / "rules" / f"{i['code']}.md").is_file()
        start, end = i["location"], i["end_location"]
        assert (end["row"], end["column"]) > (start["row"], start["column"])
    line7 = BAD.splitlines()[6]
    client = next(i for i in items if i["code"] == "RPL101")
    assert line7[client["location"]["column"] - 1:client["end_location"]["column"] - 1] == \
        "redis.Redis(connection_pool=pool)"


def test_json_with_nothing_found_is_an_empty_list(tmp_path):
    (tmp_path / "ok.py").write_text("x = 1\n")
    res = run_tool("check", "--output-format=json", ".", cwd=tmp_path)
    assert (res.returncode, json.loads(res.stdout)) == (0, [])


def test_github_annotations(project):
    res = run_tool("check", "--output-format=github", ".", cwd=project)
    lines = res.stdout.splitlines()
    assert len(lines) == 2 and res.returncode == 1
    pattern = re.compile(r"^::error title=redis-pool-lint \((RPL\d{3})\),file=([^,]+),line=(\d+),col=(\d+),"
                         r"endLine=(\d+),endColumn=(\d+)::\2:\3:\4: \1 [^\n%]+$")
    for line in lines:
        assert pattern.match(line), line
    assert [(m[2], m[3], m[4], m[1]) for m in map(pattern.match, lines)] == text_positions(project)


def test_github_escapes_workflow_command_characters():
    from redis_pool_lint.report import Item, write_github
    import io

    out = io.StringIO()
    write_github([Item("a,b:c%.py", "RPL101", "RPL101 50%\ndone", 1, 2, 1, 3)], out)
    assert out.getvalue() == ("::error title=redis-pool-lint (RPL101),file=a%2Cb%3Ac%25.py,line=1,col=2,"
                              "endLine=1,endColumn=3::a,b:c%25.py:1:2: RPL101 50%25%0Adone\n")


SARIF_REQUIRED = {
    # our reading of the SARIF 2.1.0 schema: required keys, and every key we may emit, per object
    "log": ({"version", "runs"}, {"$schema", "version", "runs"}),
    "run": ({"tool"}, {"tool", "results", "invocations", "originalUriBaseIds"}),
    "driver": ({"name"}, {"name", "version", "informationUri", "rules"}),
    "rule": ({"id"}, {"id", "name", "shortDescription", "fullDescription", "help", "helpUri",
                      "defaultConfiguration", "properties"}),
    "result": ({"message"}, {"ruleId", "ruleIndex", "level", "message", "locations"}),
    "region": (set(), {"startLine", "startColumn", "endLine", "endColumn"}),
}


def _keys(obj, kind):
    required, allowed = SARIF_REQUIRED[kind]
    assert required <= set(obj) <= allowed, (kind, set(obj))


def test_sarif_has_the_required_structure(project):
    (project / "broken.py").write_text("import redis\ndef f(:\n")
    res = run_tool("check", "--output-format=sarif", ".", cwd=project)
    assert res.returncode == 2
    log = json.loads(res.stdout)
    _keys(log, "log")
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    _keys(run, "run")
    driver = run["tool"]["driver"]
    _keys(driver, "driver")
    from redis_pool_lint.rules import RULES

    assert [r["id"] for r in driver["rules"]] == [r.code for r in RULES]
    for rule in driver["rules"]:
        _keys(rule, "rule")
        assert rule["shortDescription"]["text"] and rule["help"]["text"] and rule["helpUri"].startswith("https://")
        assert rule["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
    assert len(run["results"]) == 2
    for result in run["results"]:
        _keys(result, "result")
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"] and result["level"] == "error"
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "app.py"
        _keys(physical["region"], "region")
        assert all(isinstance(v, int) and v >= 1 for v in physical["region"].values())
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert "cannot parse" in note["message"]["text"]


def test_sarif_validates_against_a_schema_of_the_required_structure(project):
    jsonschema = pytest.importorskip("jsonschema")
    text = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    schema = {
        "type": "object", "required": ["version", "runs"],
        "properties": {
            "version": {"const": "2.1.0"},
            "runs": {"type": "array", "items": {
                "type": "object", "required": ["tool"],
                "properties": {
                    "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                        "type": "object", "required": ["name"], "properties": {"rules": {"type": "array", "items": {
                            "type": "object", "required": ["id"],
                            "properties": {"shortDescription": text, "fullDescription": text, "help": text,
                                           "helpUri": {"type": "string", "format": "uri"}}}}}}}},
                    "results": {"type": "array", "items": {
                        "type": "object", "required": ["message"],
                        "properties": {"message": text, "ruleIndex": {"type": "integer", "minimum": -1},
                                       "level": {"enum": ["none", "note", "warning", "error"]},
                                       "locations": {"type": "array", "items": {"type": "object"}}}}},
                },
            }},
        },
    }
    res = run_tool("check", "--output-format=sarif", ".", cwd=project)
    jsonschema.validate(json.loads(res.stdout), schema)


def test_output_file_statistics_and_exit_zero(project):
    out = project / "report.json"
    res = run_tool("check", "--output-format=json", f"--output-file={out}", "--statistics", "--exit-zero",
                   ".", cwd=project)
    assert res.returncode == 0 and res.stdout == ""
    assert len(json.loads(out.read_text())) == 2
    assert re.findall(r"^1\s+(RPL\d+) ", res.stderr, re.M) == ["RPL101", "RPL102"]
    res = run_tool("check", "--statistics", ".", cwd=project)
    assert res.returncode == 1 and res.stdout.splitlines()[-2:] == [
        line for line in res.stdout.splitlines() if re.match(r"^1\s+RPL10[12] ", line)]


def test_show_fixes_marks_fixable_findings(project):
    res = run_tool("check", "--show-fixes", ".", cwd=project)
    assert re.search(r"^\./app\.py:7:18: RPL101 \[\*\] ", res.stdout, re.M), res.stdout
    assert res.stdout.rstrip().endswith("[*] 2 fixable with `redis-pool-lint fix`")
    res = run_tool("fix", "--show-fixes", ".", cwd=project)
    assert "Fixed 2 finding(s):\n- app.py:\n    1 × RPL101 (client-per-request)\n" in res.stderr, res.stderr


def _pipe(args, data, cwd):
    return subprocess.run([sys.executable, "-m", "redis_pool_lint", *args], input=data, cwd=cwd,
                          capture_output=True)


def test_check_reads_stdin_as_the_file_named(project):
    (project / "app.py").write_text("x = 1\n")  # what is on disk does not count
    res = _pipe(["check", "-", "--stdin-filename", "app.py"], BAD.encode(), project)
    assert res.returncode == 1
    assert [line.split(": ")[0] for line in res.stdout.decode().splitlines()] == ["app.py:6:12", "app.py:7:18"]
    res = _pipe(["check", "-"], BAD.encode(), project)
    assert res.stdout.decode().startswith("-:6:12: RPL102 ")


def test_fix_stdin_prints_the_fixed_code_and_writes_nothing(project):
    before = sorted(p.name for p in project.iterdir())
    res = _pipe(["fix", "-", "--stdin-filename", "app.py"], BAD.encode(), project)
    assert res.returncode == 1, res.stderr
    fixed = res.stdout.decode()
    assert "async def lifespan" in fixed and "request.app.state.redis" in fixed
    compile(fixed, "app.py", "exec")
    assert (project / "app.py").read_text() == BAD and sorted(p.name for p in project.iterdir()) == before
    again = _pipe(["fix", "-", "--stdin-filename", "app.py"], fixed.encode(), project)
    assert (again.returncode, again.stdout.decode()) == (0, fixed)


def test_fix_stdin_refuses_a_fix_that_needs_other_files(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "main.py").write_text("from fastapi import FastAPI\nfrom routes import router\n"
                                      "app = FastAPI()\napp.include_router(router)\n")
    routes = ("from fastapi import APIRouter\nfrom redis.asyncio import Redis\nrouter = APIRouter()\n"
              "@router.get('/')\nasync def index():\n    return await Redis().get('k')\n")
    (tmp_path / "routes.py").write_text(routes)
    res = _pipe(["fix", "-", "--stdin-filename", "routes.py"], routes.encode(), tmp_path)
    assert res.returncode == 1 and res.stdout.decode() == routes
    assert "also changes main.py" in res.stderr.decode()


def test_jobs_do_not_change_the_results(tmp_path):
    """A project big enough for the worker pool: the same findings and the same diff either way."""
    (tmp_path / "pyproject.toml").touch()
    pkg = tmp_path / "svc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    routes = []
    for n in range(70):
        if n % 3 == 0:
            body = (f"from fastapi import APIRouter\nfrom redis.asyncio import Redis\nrouter = APIRouter()\n"
                    f"@router.get('/r{n}')\nasync def r{n}():\n    return await Redis(db={n % 4}).get('k')\n")
            routes.append(n)
        else:
            body = f"def helper{n}(x):\n    return x + {n}\n"
        (pkg / f"m{n}.py").write_text(body)
    (pkg / "main.py").write_text("from fastapi import FastAPI\n" + "".join(
        f"from svc.m{n} import router as router{n}\n" for n in routes) + "app = FastAPI()\n" + "".join(
        f"app.include_router(router{n})\n" for n in routes))
    one = run_tool("check", "--jobs=1", ".", cwd=tmp_path)
    two = run_tool("check", "--jobs=2", ".", cwd=tmp_path)
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout and one.stdout.count("RPL101") == len(routes)
    diff1 = run_tool("fix", "--diff", "--jobs=1", ".", cwd=tmp_path)
    diff2 = run_tool("fix", "--diff", "--jobs=2", ".", cwd=tmp_path)
    assert diff1.stdout == diff2.stdout and diff1.stdout.count("+++ b/") == len(routes) + 1, diff1.stderr


def test_fix_shows_progress_only_on_a_terminal(project):
    import os
    import pty

    res = run_tool("fix", "--diff", ".", cwd=project)
    assert "\r" not in res.stderr
    pid, fd = pty.fork()
    if pid == 0:  # the child: stderr is the terminal
        os.chdir(project)
        os.execv(sys.executable, [sys.executable, "-m", "redis_pool_lint", "fix", "--diff", "."])
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "\rredis-pool-lint: verifying" in shown and "would change 1 file(s)" in shown


def test_flake8_and_check_agree_on_stdin(project):
    (project / "app.py").write_text("x = 1\n")
    via_check = _pipe(["check", "-", "--stdin-filename", "app.py"], BAD.encode(), project)
    via_flake8 = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select=RPL",
                                 "--stdin-display-name=app.py", "-"], input=BAD.encode(), cwd=project,
                                capture_output=True)
    assert via_check.stdout and via_check.stdout == via_flake8.stdout, via_flake8.stderr


def test_diff_says_would_fix(project):
    res = run_tool("fix", "--diff", "--show-fixes", ".", cwd=project)
    assert "Would fix 2 finding(s):\n" in res.stderr and "Fixed" not in res.stderr, res.stderr
    assert "would change 1 file(s), would fix 2 finding(s), 0 left" in res.stderr, res.stderr


def test_a_finding_left_has_a_true_reason(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "app.py").write_text(
        "import redis\nfrom fastapi import FastAPI\napp = FastAPI()\nr = redis.Redis()\n"
        "@app.get('/')\nasync def index():\n    return r.get('k')\n")
    res = run_tool("fix", "--diff", ".", cwd=tmp_path)
    line = next(ln for ln in res.stderr.splitlines() if "RPL205 not fixed" in ln)
    assert "none fix" not in line and "redis.asyncio" in line, res.stderr


def test_rule_messages_shown_without_a_finding_have_a_placeholder():
    from redis_pool_lint.docs import rule_table
    from redis_pool_lint.rules import RULES

    assert "shared client `<name>`;" in rule_table()
    for rule in RULES:
        assert "  " not in rule.summary and " ;" not in rule.summary, rule.code
