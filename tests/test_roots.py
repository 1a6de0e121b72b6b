"""Which project a checked file belongs to, and what flake8 pays for files outside the listing."""
from conftest import BAD, run_flake8

from redis_pool_lint.analysis import load

HELPER = "import redis.asyncio as redis\n\ndef client():\n    return redis.Redis()\n"
USER = (
    "from fastapi import FastAPI\n"
    "from pkg.helpers import client\n"
    "app = FastAPI()\n"
    "@app.get('/')\n"
    "async def index():\n"
    "    return await client().get('k')\n"
)


def installed_tree(tmp_path):
    """A git clone holding a virtual environment with an installed package ``pkg``."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "mine.py").write_text("x = 1\n")
    pkg = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").touch()
    (pkg / "helpers.py").write_text(HELPER)
    (pkg / "app.py").write_text(USER)
    return pkg


def test_installed_package_is_its_own_project(tmp_path):
    pkg = installed_tree(tmp_path)
    assert load.find_root(str(pkg / "app.py")) == str(pkg)
    assert load.find_root(str(pkg.parent / "six.py")) == str(pkg.parent)
    assert load.find_root(str(tmp_path / "mine.py")) == str(tmp_path)


def test_files_of_an_installed_package_share_one_analysis(tmp_path):
    pkg = installed_tree(tmp_path)
    load.clear_cache()
    try:
        results = {id(load.project_for(str(pkg / name), load.Settings())) for name in ("app.py", "helpers.py")}
        result = load.project_for(str(pkg / "app.py"), load.Settings())
    finally:
        load.clear_cache()
    assert len(results) == 1  # not one analysis of the whole clone per file
    assert sorted(result.files) == sorted(str(pkg / n) for n in ("__init__.py", "app.py", "helpers.py"))
    assert [f.code for f in result.findings.get(str(pkg / "app.py"), [])] == ["RPL101"]


def test_flake8_on_an_installed_package_sees_it_whole(tmp_path):
    pkg = installed_tree(tmp_path)
    out = run_flake8("--select=RPL", str(pkg), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert f"{pkg / 'app.py'}:6:" in out.stdout and "RPL101" in out.stdout


def test_excluded_files_reuse_the_project_read(tmp_path, monkeypatch):
    """A file the listing skips (excluded) but flake8 is given is analysed with the project and
    the other skipped files of its folder, read once: the next of them reads nothing, and none
    makes the whole project be read again."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").touch()
    (tmp_path / "pkg" / "helpers.py").write_text(HELPER)
    (tmp_path / "build").mkdir()  # excluded by default
    (tmp_path / "build" / "one.py").write_text(USER)
    (tmp_path / "build" / "two.py").write_text(BAD)
    scanned = []
    real_scan = load._scan
    monkeypatch.setattr(load, "_scan", lambda job, path: scanned.append(path) or real_scan(job, path))
    load.clear_cache()
    try:
        one = load.project_for(str(tmp_path / "build" / "one.py"), load.Settings())
        before = len(scanned)
        two = load.project_for(str(tmp_path / "build" / "two.py"), load.Settings())
    finally:
        load.clear_cache()
    assert [f.code for f in one.findings[str(tmp_path / "build" / "one.py")]] == ["RPL101"]
    assert sorted(f.code for f in two.findings[str(tmp_path / "build" / "two.py")]) == ["RPL101", "RPL102"]
    assert {str(tmp_path / "build" / n) for n in ("one.py", "two.py")} <= set(scanned[:before])
    assert scanned[before:] == []


def test_a_build_folder_inside_a_package_is_source(tmp_path):
    """``build``, ``dist`` and ``env`` are skipped as tool output, but not inside a package
    (``app/features/build/``, a namespace package under ``app.features``): flake8 checks those."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "build" / "lib").mkdir(parents=True)
    (tmp_path / "build" / "lib" / "copy.py").write_text(USER)
    features = tmp_path / "app" / "features"
    (features / "build").mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").touch()
    (features / "__init__.py").touch()
    (features / "build" / "routes.py").write_text(USER)
    files = load.iter_python_files(str(tmp_path), load.Settings())
    assert str(features / "build" / "routes.py") in files
    assert str(tmp_path / "build" / "lib" / "copy.py") not in files


def test_excluded_files_with_the_cache_parse_only_themselves(tmp_path, monkeypatch):
    """With the cache, the files the listing skips are analysed from the project's stored
    summaries, and a folder skipped whole at once: a flake8 run over a ``build/`` of many
    packages parses each of its files once, not the project's analysed modules again for each
    of its folders."""
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").touch()
    (tmp_path / "pkg" / "helpers.py").write_text(HELPER)
    for folder in ("one", "two"):
        (tmp_path / "build" / folder).mkdir(parents=True)  # excluded by default
        (tmp_path / "build" / folder / "user.py").write_text(USER)
    parsed = []
    real_parse = load.parse_source
    monkeypatch.setattr(load, "parse_source", lambda data, path: parsed.append(path) or real_parse(data, path))
    results = []
    load.clear_cache()
    try:
        load.project_for(str(tmp_path / "pkg" / "helpers.py"), load.Settings(), cache=True)
        assert parsed == [str(tmp_path / "pkg" / "helpers.py")]
        for folder in ("one", "two"):
            results.append(load.project_for(str(tmp_path / "build" / folder / "user.py"), load.Settings(), cache=True))
    finally:
        load.clear_cache()
    assert parsed[1:] == [str(tmp_path / "build" / folder / "user.py") for folder in ("one", "two")]
    assert results[0] is results[1]  # one analysis for the folder skipped whole
    for folder, result in zip(("one", "two"), results):
        assert [f.code for f in result.findings[str(tmp_path / "build" / folder / "user.py")]] == ["RPL101"]
