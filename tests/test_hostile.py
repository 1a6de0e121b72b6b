"""Hostile input for ``check``, ``fix``, ``fix --diff`` and the flake8 plugin: every outcome is one
clear line per problem, exit 0/1/2, never a traceback, never a damaged file."""
import ast
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_flake8, run_tool

APP = (FIXTURES / "fix" / "websocket" / "before" / "main.py").read_text()
APP_FIXED = (FIXTURES / "fix" / "websocket" / "after" / "main.py").read_text()


def needs(version: str, construct: str) -> str:
    return (f"; it uses Python {version} syntax ({construct}): "
            f"run redis-pool-lint with Python {version} or newer")


def refused(data: bytes, then: str = "") -> "str | None":
    """What `check` says of code this Python's parser refuses: its words, our hint; None when
    this Python reads it (newer syntax under a newer Python)."""
    try:
        ast.parse(data)
    except SyntaxError as exc:
        return f"cannot parse: {exc.msg} (line {exc.lineno}){then}"
    return None


def too_deep(data: bytes) -> str:
    """Python's parser gives up on a long sum before 3.13, and the analysis from 3.13 on."""
    try:
        ast.parse(data)
    except RecursionError:
        return "cannot parse: nested too deeply for Python's parser (RecursionError)" + TOO_DEEP
    return "cannot analyse: expressions nested too deeply" + TOO_DEEP


TOO_DEEP = "; split the expression up, or leave the file out (--extend-exclude)"
NOT_ANALYSED_1 = ("redis-pool-lint: 1 file could not be analysed (see above): "
                  "fix it, or leave it out with --extend-exclude PATH")
PEP695_ALIAS = b"import redis\ntype Alias = int\n"
PEP695_GENERIC = b"import redis\ndef first[T](xs: list[T]) -> T:\n    return xs[0]\n"
PEP701 = b"import redis\nname = 'x'\nmsg = f\"{\"nested\" + name}\"\n"
EXCEPT_STAR = b"import redis\ntry:\n    pass\nexcept* ValueError:\n    pass\n"
MATCH = b"import redis\nmatch name:\n    case 'x':\n        pass\n"
TYPO_NEWER = b"import redis\ndef f(x):\n    return x +\nmatch x:\n    case 1:\n        pass\n"
LONG_SUM = b"import redis\nx = " + b"1+" * 5000 + b"1\n"

# (file name, bytes, what `check` says about it, the whole line: None for nothing)
UNPARSABLE = [
    ("syntax.py", b"import redis\ndef f(:\n", "cannot parse: invalid syntax (line 2)"),
    # a typo beside newer syntax is a typo: no hint
    ("typo_newer.py", TYPO_NEWER, refused(TYPO_NEWER)),
    # newer syntax is read through libcst under any Python (analysis/downlevel.py)
    ("pep695_alias.py", PEP695_ALIAS, None),
    ("pep695_generic.py", PEP695_GENERIC, None),
    ("pep701_fstring.py", PEP701, None),
    ("pep758_except.py", b"import redis\ntry:\n    pass\nexcept ValueError, KeyError:\n    pass\n", None),
    # what it cannot read that way names the Python that reads it (under 3.9 and 3.10)
    ("except_star.py", EXCEPT_STAR, refused(EXCEPT_STAR, needs("3.11", "PEP 654 except*"))),
    ("match.py", MATCH, refused(MATCH, needs("3.10", "PEP 634 match statement"))),
    ("empty.py", b"", None),
    ("parens.py", b"import redis\nx = " + b"(" * 250 + b"1" + b")" * 250 + b"\n",
     "cannot parse: too many nested parentheses (line 2) (nested too deeply for Python's parser)" + TOO_DEEP),
    ("long_sum.py", LONG_SUM, too_deep(LONG_SUM)),
    ("unary.py", b"import redis\nx = " + b"-" * 100000 + b"1\n",
     "cannot parse: nested too deeply for Python's parser (MemoryError)" + TOO_DEEP),
    ("nots.py", b"import redis\nasync def h():\n    return " + b"not " * 600 + b"x\n",
     "cannot analyse: expressions nested too deeply" + TOO_DEEP),
    ("undecodable.py", b"import redis\nx = '\xff\xfe'\n", "cannot decode: (unicode error) 'utf-8' codec"),
    ("bad_cookie.py", b"# -*- coding: klingon -*-\nimport redis\n", "cannot decode: unknown encoding: klingon"),
    ("nul.py", b"import redis\nx = 1\0\n", "cannot parse: source code string cannot contain null bytes"),
]
#: messages whose end is the interpreter's own wording (a position, a codec's words)
OPEN_ENDED = {"undecodable.py", "nul.py"}

#: flake8 itself fails on these before any plugin runs (its own parser or pyflakes): not ours to test
FLAKE8_CANNOT = {"long_sum.py", "unary.py", "nots.py", "fifo.py"}
try:
    ast.parse(b"x = 1\0\n")
except ValueError:  # before 3.11.?: flake8 itself stops with a traceback on a null byte
    FLAKE8_CANNOT.add("nul.py")
except SyntaxError:
    pass


def no_crash(res):
    assert res.returncode in (0, 1, 2), (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-3000:]
    assert "internal error" not in res.stderr, res.stderr


def snapshot(folder: Path) -> dict:
    """The user's files (not bytecode, not the analysis cache ``check`` keeps)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
            and ".redis_pool_lint_cache" not in p.parts}


def make_project(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").touch()
    for name, data in files.items():
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return folder


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """One project: the app, every unparsable file above, a FIFO and a dangling link."""
    work = make_project(tmp_path_factory.mktemp("zoo") / "p", {"main.py": APP, **{n: d for n, d, _ in UNPARSABLE}})
    os.mkfifo(work / "fifo.py")
    (work / "dangling.py").symlink_to(work / "nowhere.py")
    return work


def test_check_names_every_unparsable_file_on_one_line(zoo):
    res = run_tool("check", ".", cwd=zoo, timeout=120)
    no_crash(res)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    for name, _, expected in UNPARSABLE:
        mine = [line for line in lines if line.startswith(f"./{name}: ")]
        if expected is None:
            assert not mine, mine
        else:
            assert len(mine) == 1, (name, mine)
            if name in OPEN_ENDED:
                assert mine[0].startswith(f"./{name}: {expected}"), (name, mine)
            else:
                assert mine[0] == f"./{name}: {expected}", (name, mine)
    assert "./fifo.py: cannot read: not a regular file" in lines
    assert "./dangling.py: cannot read: No such file or directory" in lines
    unanalysed = sum(1 for *_, e in UNPARSABLE if e) + 2
    assert len(lines) == unanalysed + 1, lines
    assert lines[-1] == (f"redis-pool-lint: {unanalysed} files could not be analysed (see above): "
                         "fix them, or leave them out with --extend-exclude PATH")
    assert [line.split(": RPL")[0] for line in res.stdout.splitlines()] == ["./main.py:12:16", "./main.py:20:13"]


@pytest.mark.parametrize("diff", [True, False], ids=["diff", "write"])
def test_fix_refuses_a_project_it_could_not_fully_read(zoo, diff):
    before = snapshot(zoo)
    res = run_tool("fix", *(["--diff"] if diff else []), ".", cwd=zoo, timeout=120)
    no_crash(res)
    assert res.returncode == 2 and res.stdout == ""
    assert snapshot(zoo) == before
    assert "fifo.py: cannot read: not a regular file" in res.stderr.splitlines()
    assert f"long_sum.py: {too_deep(LONG_SUM)}" in res.stderr.splitlines()
    assert "could not be analysed; nothing written" in res.stderr


def python_reads(data: bytes) -> bool:
    """flake8 reads only what this Python parses (newer syntax is its E999 here)."""
    import ast

    try:
        ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def test_flake8_plugin_on_hostile_files(zoo):
    res = run_flake8("--select=RPL,E9", "main.py", cwd=zoo)  # the plugin analyses the whole zoo
    no_crash(res)
    assert [line.split(": RPL")[0] for line in res.stdout.splitlines()] == ["main.py:12:16", "main.py:20:13"]
    names = sorted(n for n, *_ in UNPARSABLE if n not in FLAKE8_CANNOT)
    res = run_flake8("--select=RPL,E9", *names, cwd=zoo)
    no_crash(res)
    by_file = {}
    for line in res.stdout.splitlines():
        by_file.setdefault(line.split(":")[0], []).append(line)
    for name, data, expected in UNPARSABLE:
        if name in FLAKE8_CANNOT:
            continue
        if expected is None and python_reads(data):
            assert name not in by_file, by_file[name]
        else:  # flake8's E999, or our one line when flake8 could read what we cannot
            assert len(by_file[name]) == 1 and (" E999 " in by_file[name][0] or " RPL000 " in by_file[name][0])
    assert "RPL000 redis-pool-lint cannot decode: unknown encoding: klingon" in by_file["bad_cookie.py"][0]


def test_flake8_plugin_reports_what_it_cannot_analyse(tmp_path):
    """flake8 (and pyflakes) read 500 nested lambdas; the analysis cannot: one RPL000 line."""
    work = make_project(tmp_path / "p", {"lambdas.py": "import redis\nasync def h():\n    return "
                                         + "lambda: " * 500 + "1\n"})
    res = run_flake8("--select=RPL", "lambdas.py", cwd=work)
    no_crash(res)
    said = "cannot analyse: expressions nested too deeply" + TOO_DEEP
    assert res.stdout == f"lambdas.py:1:1: RPL000 redis-pool-lint {said}\n"
    res = run_tool("check", ".", cwd=work)
    assert (res.returncode, res.stderr) == (2, f"./lambdas.py: {said}\n{NOT_ANALYSED_1}\n")


def _variants():
    """The app, written in every way the fixer must keep: (name, bytes, check of the fixed bytes)."""
    lines = APP.split("\n")
    mixed = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines[:-1]))
    return [
        ("crlf", APP.replace("\n", "\r\n").encode(), lambda d: d.count(b"\r\n") == d.count(b"\n") > 20),
        ("cr", APP.replace("\n", "\r").encode(), lambda d: b"\n" not in d and d.count(b"\r") > 20),
        ("mixed", mixed.encode(), lambda d: b"\r\n" in d and b"\n" in d.replace(b"\r\n", b"")),
        ("tabs", APP.replace("    ", "\t").encode(), lambda d: b"\tr = request.app.state.redis" in d),
        ("no_final_newline", APP.rstrip("\n").encode(), lambda d: not d.endswith(b"\n")),
        ("bom", b"\xef\xbb\xbf" + APP.encode(), lambda d: d.startswith(b"\xef\xbb\xbf") and d.count(b"\xef\xbb\xbf") == 1),
        ("latin1", b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + APP.encode() + b"SIGN = '\xa7'\n",
         lambda d: b"# caf\xe9\n" in d and b"SIGN = '\xa7'" in d and _not_utf8(d)),
        ("utf8_text", APP.replace("import os", "import os  # \u00e9t\u00e9 \u2603").encode(),
         lambda d: "# \u00e9t\u00e9 \u2603".encode() in d),
    ]


def _not_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_encodings_line_endings_and_tabs_are_kept(tmp_path):
    variants = _variants()
    for name, data, _ in variants:
        make_project(tmp_path / name, {"main.py": data})
    before = snapshot(tmp_path)
    res = run_tool("check", ".", cwd=tmp_path)
    no_crash(res)
    assert res.returncode == 1 and res.stderr == ""
    found = {line.split(":")[0] for line in res.stdout.splitlines()}
    assert found == {f"./{name}/main.py" for name, *_ in variants}
    lint = run_flake8("--select=RPL", ".", cwd=tmp_path)
    no_crash(lint)
    assert sorted(lint.stdout.splitlines()) == sorted(res.stdout.splitlines())
    diff = run_tool("fix", "--diff", ".", cwd=tmp_path, text=False)  # each file's own bytes
    diff.stdout, diff.stderr = diff.stdout.decode("utf-8", "replace"), diff.stderr.decode("utf-8", "replace")
    no_crash(diff)
    assert diff.returncode == 1 and diff.stdout.count("+++ b/") == len(variants)
    assert snapshot(tmp_path) == before
    fixed = run_tool("fix", ".", cwd=tmp_path)
    no_crash(fixed)
    assert fixed.returncode == 1, fixed.stderr
    assert f"changed {len(variants)} file(s), fixed {2 * len(variants)} finding(s), 0 left" in fixed.stderr
    for name, data, kept in variants:
        out = (tmp_path / name / "main.py").read_bytes()
        assert out != data and kept(out), (name, out[:300])
        compile(out, name, "exec")  # still Python, in its own encoding
        text = out.decode("latin-1" if name == "latin1" else "utf-8-sig")
        assert text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ").rstrip("\n") == \
            APP_FIXED.rstrip("\n") or name in ("latin1", "utf8_text"), name
    after = snapshot(tmp_path)
    again = run_tool("fix", ".", cwd=tmp_path)
    assert again.returncode == 0 and snapshot(tmp_path) == after, again.stderr


def test_a_100000_line_file(tmp_path):
    """Realistic code for check; for the fixer (libcst needs minutes for 100k lines of code),
    100k lines whose bulk is one string, with the app at the end (findings past line 99 000)."""
    filler = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(25000))
    code = make_project(tmp_path / "code", {"main.py": filler + APP})
    res = run_tool("check", ".", cwd=code, timeout=300)
    no_crash(res)
    assert [line.split(": RPL")[0] for line in res.stdout.splitlines()] == ["./main.py:100012:16", "./main.py:100020:13"]
    imports, rest = APP.split("\n\nREDIS_URL", 1)
    rest = "\n\nREDIS_URL" + rest
    bulk = "\nDOC = \"\"\"\n" + "".join(f"line {i}\n" for i in range(100000 - 3 - APP.count("\n"))) + "\"\"\"\n"
    text = make_project(tmp_path / "text", {"main.py": imports + bulk + rest})
    assert (imports + bulk + rest).count("\n") == 100000
    first = next(i for i, line in enumerate((imports + bulk + rest).split("\n"), 1) if "Redis.from_url" in line)
    res = run_flake8("--select=RPL", "main.py", cwd=text)
    no_crash(res)
    assert [line.split(": RPL")[0] for line in res.stdout.splitlines()] == [f"main.py:{first}:16", f"main.py:{first + 8}:13"]
    diff = run_tool("fix", "--diff", ".", cwd=text, timeout=300)
    no_crash(diff)
    assert diff.returncode == 1 and "+    r = request.app.state.redis" in diff.stdout
    res = run_tool("fix", ".", cwd=text, timeout=300)
    no_crash(res)
    assert res.returncode == 1 and "changed 1 file(s), fixed 2 finding(s), 0 left" in res.stderr
    out = (text / "main.py").read_text()
    assert bulk in out and out.endswith(APP_FIXED.split("app = FastAPI(lifespan=lifespan)")[1])
    assert run_tool("check", ".", cwd=text).returncode == 0


def test_a_chain_libcst_cannot_parse_is_refused_not_a_crash(tmp_path):
    """``a and b and ...`` is one ast node but a 20 000-deep chain for libcst, whose native parser
    would crash the process (SIGSEGV): the fixer declines, in one line."""
    src = APP + "\n\n@app.get('/and')\nasync def both(x):\n    ok = " + " and ".join(["x"] * 20000) + \
        "\n    r = Redis.from_url(REDIS_URL)\n    return await r.get('k') if ok else None\n"
    work = make_project(tmp_path / "p", {"main.py": src})
    res = run_tool("check", ".", cwd=work)
    no_crash(res)
    assert res.returncode == 1 and len(res.stdout.splitlines()) == 3
    for args in (["--diff"], []):
        res = run_tool("fix", *args, ".", cwd=work)
        no_crash(res)
        assert res.returncode == 1 and res.stdout == ""
        assert "the rewrite failed (nested too deeply to rewrite safely (depth 2000" in res.stderr
        assert (work / "main.py").read_text() == src


def test_missing_paths(tmp_path):
    for args in (["check"], ["fix", "--diff"], ["fix"]):
        res = run_tool(*args, "nope.py", "nodir/", cwd=tmp_path)
        no_crash(res)
        assert res.returncode == 2
        assert res.stderr.splitlines()[:2] == ["nope.py: cannot read: no such file or directory",
                                               "nodir/: cannot read: no such file or directory"]
    res = run_flake8("--select=RPL,E9", "nope.py", cwd=tmp_path)
    no_crash(res)
    assert res.returncode == 1 and "nope.py:0:1: E902 FileNotFoundError" in res.stdout


def test_non_python_files_given_by_name(tmp_path):
    work = make_project(tmp_path / "p", {"README.md": "# hello\n", "logo.png": b"\x89PNG\r\n\x1a\n\0\0",
                                         "serve": "#!/usr/bin/env python3\n" + APP})
    for args in (["check"], ["fix", "--diff"], ["fix"]):
        res = run_tool(*args, "README.md", "logo.png", cwd=work)
        no_crash(res)
        assert res.returncode == 2
        assert res.stderr.splitlines()[:2] == [
            "README.md: skipped: not a Python file (no .py suffix or python #! line)",
            "logo.png: skipped: not a Python file (no .py suffix or python #! line)"]
    res = run_tool("check", "serve", cwd=work)  # a script with a python #! line is Python
    assert res.returncode == 1 and res.stdout.startswith("serve:13:16: RPL101 "), res.stderr
    res = run_flake8("--select=RPL,E9", "README.md", cwd=work)
    no_crash(res)


def _unprivileged():
    """A command prefix that runs without the right to read or write other's files: root without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (so modes apply to root, as in CI), else nothing."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"] if setpriv else None
    if prefix is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE (setpriv)")
    return prefix


def run_as_user(*args, cwd):
    return subprocess.run([*_unprivileged(), sys.executable, "-m", "redis_pool_lint", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_unreadable_directory_and_file(tmp_path):
    work = make_project(tmp_path / "p", {"main.py": APP})
    (work / "locked").mkdir()
    (work / "locked" / "routes.py").write_text("import redis\n")
    (work / "secret.py").write_text("import redis\n")
    try:
        (work / "locked").chmod(0)
        (work / "secret.py").chmod(0)
        before = snapshot(work)
        res = run_as_user("check", ".", cwd=work)
        no_crash(res)
        assert res.returncode == 2
        assert res.stderr.splitlines() == ["./locked: cannot read: permission denied",
                                           "./secret.py: cannot read: Permission denied", NOT_ANALYSED_1]
        res = run_as_user("check", "locked", cwd=work)
        assert (res.returncode, res.stderr) == (2, "locked: cannot read: permission denied\n")
        for args in (["--diff"], []):
            res = run_as_user("fix", *args, ".", cwd=work)
            no_crash(res)
            assert res.returncode == 2 and res.stdout == ""
            assert "secret.py: cannot read: Permission denied" in res.stderr
            assert res.stderr.count("locked: cannot read: permission denied") == 1, res.stderr
            assert "could not be analysed; nothing written" in res.stderr
        (work / "locked").chmod(0o755)
        (work / "secret.py").chmod(0o644)
        assert snapshot(work) == before
    finally:
        (work / "locked").chmod(0o755)
        (work / "secret.py").chmod(0o644)


def test_read_only_file_is_reported_and_nothing_is_written(tmp_path):
    """Even root (who can write anything) leaves a file without write bits alone, and the
    project's other files too: a half-applied fix would break the app."""
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "fix" / "routers" / "before", work)
    ro = work / "app" / "deps.py"
    assert ro.exists()
    ro.chmod(0o444)
    before = snapshot(work)
    res = run_tool("fix", ".", cwd=work)
    no_crash(res)
    assert res.returncode == 2
    assert "app/deps.py: read-only file: not written" in res.stderr.splitlines()
    assert "not fixed: the project cannot be written safely; nothing written" in res.stderr
    assert snapshot(work) == before and stat.S_IMODE(ro.stat().st_mode) == 0o444
    diff = run_tool("fix", "--diff", ".", cwd=work)  # showing the diff writes nothing: fine
    assert diff.returncode == 1 and "+++ b/app/deps.py" in diff.stdout
    ro.chmod(0o644)
    res = run_tool("fix", ".", cwd=work)
    assert res.returncode == 1 and snapshot(work) == snapshot(FIXTURES / "fix" / "routers" / "after")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_owner_and_mode_are_kept(tmp_path):
    work = make_project(tmp_path / "p", {"main.py": APP})
    os.chown(work / "main.py", 65534, 65534)
    (work / "main.py").chmod(0o604)
    res = run_tool("fix", ".", cwd=work)
    assert res.returncode == 1
    st = (work / "main.py").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o604)
    assert (work / "main.py").read_text() == APP_FIXED


def test_symlinks(tmp_path):
    """A link to a file of the tree: the real file is fixed once and the link stays a link. A link
    pointing out of the tree is never written through."""
    inside = make_project(tmp_path / "inside", {"main.py": APP})
    (inside / "alias.py").symlink_to("main.py")
    res = run_tool("fix", ".", cwd=inside)
    no_crash(res)
    assert res.returncode == 1 and "changed 1 file(s), fixed 2 finding(s), 0 left" in res.stderr, res.stderr
    assert (inside / "alias.py").is_symlink() and os.readlink(inside / "alias.py") == "main.py"
    assert (inside / "main.py").read_text() == APP_FIXED

    elsewhere = make_project(tmp_path / "elsewhere", {"shared.py": APP})
    outside = make_project(tmp_path / "outside", {})
    (outside / "main.py").symlink_to(elsewhere / "shared.py")
    for args in (["--diff"], []):
        res = run_tool("fix", *args, ".", cwd=outside)
        no_crash(res)
        if args:
            assert res.returncode == 1 and "+    r = request.app.state.redis" in res.stdout
        else:
            assert res.returncode == 2
            assert f"main.py: symbolic link to {elsewhere / 'shared.py'}, outside the project: not written through" \
                in res.stderr.splitlines()
    assert (elsewhere / "shared.py").read_text() == APP and (outside / "main.py").is_symlink()
    res = run_flake8("--select=RPL", ".", cwd=inside)
    assert res.returncode == 0 and res.stdout == ""


def test_a_file_changed_between_read_and_write_is_not_overwritten(tmp_path, monkeypatch, capfd):
    from redis_pool_lint import cli
    from redis_pool_lint.fix import apply

    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "fix" / "routers" / "before", work)
    edited = work / "app" / "main.py"
    real_verify = apply.verify

    def verify_then_someone_edits(*args, **kwargs):
        verdict = real_verify(*args, **kwargs)
        edited.write_text(edited.read_text() + "\n# edited meanwhile\n")
        return verdict

    monkeypatch.setattr(apply, "verify", verify_then_someone_edits)
    monkeypatch.chdir(work)
    before = snapshot(work)
    status = cli.main(["fix", "."])
    err = capfd.readouterr().err
    assert status == 2
    assert "app/main.py: changed since it was read: not written" in err.splitlines()
    now = snapshot(work)
    assert now.pop("app/main.py").endswith(b"# edited meanwhile\n")
    before.pop("app/main.py")
    assert now == before  # the other files of the project were not written either
    assert not [p for p in work.rglob("*") if ".rpl-tmp-" in p.name]


def test_no_finding_means_no_write(tmp_path):
    """Round trip: files without findings (clean ones, fixed ones) keep their bytes and mtime."""
    work = tmp_path / "w"
    for case in ("routers", "websocket", "state_dict"):
        shutil.copytree(FIXTURES / "fix" / case / "after", work / case)
    for src in sorted((FIXTURES / "cases").glob("RPL*/ok_*.py")):
        dest = work / "ok" / f"{src.parent.name}_{src.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    (work / "ok" / "pyproject.toml").touch()
    old = 1_000_000_000
    for p in work.rglob("*.py"):
        os.utime(p, ns=(old, old))
    stamps = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in work.rglob("*.py")}
    res = run_tool("fix", ".", cwd=work)
    no_crash(res)
    assert res.returncode in (0, 1) and "changed 0 file(s)" in res.stderr, res.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in work.rglob("*.py")} == stamps


def test_broken_pipe_is_quiet(tmp_path):
    work = make_project(tmp_path / "p", {f"m{i}.py": APP for i in range(40)})
    proc = subprocess.Popen([sys.executable, "-m", "redis_pool_lint", "check", "."], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "internal error" not in err, err


def test_file_name_that_is_not_utf8(tmp_path):
    """A name with a byte that is not UTF-8 prints as its bytes, even with a strict output encoding."""
    work = make_project(tmp_path / "p", {})
    name = os.fsdecode(b"caf\xe9.py")
    (work / name).write_text(APP)
    for args in (["check"], ["fix"]):
        res = subprocess.run([sys.executable, "-m", "redis_pool_lint", *args, "."], cwd=work, capture_output=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"})
        assert res.returncode == 1 and b"Traceback" not in res.stderr and b"internal error" not in res.stderr
        if args == ["check"]:
            assert res.stdout.startswith(b"./caf\xe9.py:12:16: RPL101 "), res.stdout
    assert (work / name).read_text() == APP_FIXED


def test_a_rewrite_the_compiler_refuses_is_not_written(tmp_path, monkeypatch):
    """The ast accepts ``def f(a, a)`` and a ``global`` after an assignment; ``compile`` does not.
    A rewrite that turns a compiling file into one that does not is refused."""
    from redis_pool_lint.analysis.load import Settings
    from redis_pool_lint.fix import apply
    from redis_pool_lint.fix.plan import Options

    work = make_project(tmp_path / "p", {"main.py": APP})
    real = apply.rewrite
    def rewrite(*args):
        text, added = real(*args)
        return text + "\ndef broken(a, a):\n    pass\n", added

    monkeypatch.setattr(apply, "rewrite", rewrite)
    outcome = apply.fix_project(str(work), Settings(), Options(), write=True)
    assert outcome.error == (f"{work / 'main.py'}: the rewritten file does not compile (duplicate argument 'a' "
                             "in function definition); nothing written")
    assert (work / "main.py").read_text() == APP


def test_project_modules_do_not_shadow_the_tools_own(tmp_path):
    """``python -m`` puts the current folder first on sys.path: a project's ``secrets.py`` or a
    vendored ``libcst`` must not be what the fixer imports."""
    boom = "raise RuntimeError('the project module was imported by the tool')\n"
    work = make_project(tmp_path / "p", {"main.py": APP, "secrets.py": boom, "difflib.py": boom})
    (work / "libcst").mkdir()
    (work / "libcst" / "__init__.py").write_text(boom)
    diff = run_tool("fix", "--diff", ".", cwd=work)
    no_crash(diff)
    assert diff.returncode == 1 and "+    r = request.app.state.redis" in diff.stdout, diff.stderr
    res = run_tool("fix", ".", cwd=work)
    no_crash(res)
    assert res.returncode == 1 and (work / "main.py").read_text() == APP_FIXED
