"""flake8 and ``check`` report the same findings on the same tree, by construction."""
import ast
import re

from conftest import run_flake8, run_tool

LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>RPL\d+) ")


def parse(output, base=None):
    """Findings as tuples; with ``base``, not in files this Python cannot parse (flake8 stops at
    E999 there, while ``check`` reads newer syntax through libcst)."""
    return sorted(
        (m["path"].lstrip("./"), int(m["line"]), int(m["col"]), m["code"])
        for m in map(LINE.match, output.splitlines()) if m and (base is None or parses(base / m["path"]))
    )


def parses(path):
    try:
        ast.parse(path.read_bytes())
    except SyntaxError:
        return False
    return True


def test_flake8_and_check_agree_on_the_whole_corpus(corpus):
    base, _ = corpus
    flake = run_flake8("--select=RPL", ".", cwd=base)
    check = run_tool("check", ".", cwd=base)
    assert flake.returncode == 1, flake.stderr
    assert check.returncode == 1, check.stderr
    assert parse(flake.stdout) == parse(check.stdout, base)
    assert len(parse(check.stdout)) > 50


def test_agree_with_off_by_default_codes_enabled(corpus):
    base, _ = corpus
    flake = run_flake8("--select=RPL", "--extend-select=RPL107,RPL204", ".", cwd=base)
    check = run_tool("check", "--extend-select=RPL107,RPL204", ".", cwd=base)
    got = parse(check.stdout)
    assert parse(flake.stdout) == parse(check.stdout, base)
    assert {"RPL107", "RPL204"} <= {code for *_, code in got}


def test_off_by_default_codes_need_naming(corpus):
    base, _ = corpus
    for out in (run_flake8("--select=RPL", ".", cwd=base).stdout, run_tool("check", ".", cwd=base).stdout,
                run_flake8(".", cwd=base).stdout):
        codes = {code for *_, code in parse(out)}
        assert "RPL107" not in codes and "RPL204" not in codes
        assert "RPL101" in codes


def test_flake8_honours_noqa_like_check(tmp_path):
    """noqa scope is flake8's: the physical line, widened only by multi-line tokens."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "app.py").write_text(
        "from fastapi import FastAPI\n"
        "from redis.asyncio import Redis\n"
        "app = FastAPI()\n"
        "@app.get('/a')\n"
        "async def a():\n"
        "    return await Redis().get('k')  # noqa: RPL101\n"
        "@app.get('/b')\n"
        "async def b():\n"
        "    r = Redis(  # noqa\n"
        "        host='h',\n"
        "    )\n"
        "    return await r.get('k')\n"
        "@app.get('/c')\n"
        "async def c():\n"
        "    return await Redis().get('k')  # noqa: E501\n"
        "@app.get('/d')\n"
        "async def d():\n"
        "    r = Redis(host=\"\"\"h\n"
        "\"\"\")  # noqa: RPL1\n"
        "    return await r.get('k')\n"
        "@app.get('/e')\n"
        "async def e():\n"
        "    r = Redis(\n"
        "        host='h',\n"
        "    )  # noqa\n"
        "    return await r.get('k')\n"
    )
    flake = parse(run_flake8("--select=RPL", ".", cwd=tmp_path).stdout)
    check = parse(run_tool("check", ".", cwd=tmp_path).stdout)
    assert flake == check == [("app.py", 15, 18, "RPL101"), ("app.py", 23, 9, "RPL101")]
    assert len(parse(run_tool("check", "--disable-noqa", ".", cwd=tmp_path).stdout)) == 5
