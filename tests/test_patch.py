"""``fix --diff`` is a patch that applies: ``git apply`` and ``patch -p1`` take it for every file,
with and without a final newline, with CRLF line endings and with a BOM; applied, it gives
what ``fix`` writes."""
import shutil
import subprocess

import pytest

from conftest import BAD, run_tool

MAIN = "from fastapi import FastAPI\nfrom routes import router\napp = FastAPI()\napp.include_router(router)\n"
ROUTES = ("import redis.asyncio as redis\nfrom fastapi import APIRouter\nrouter = APIRouter()\n"
          "@router.get('/')\nasync def index():\n    return await redis.Redis().get('k')\n")


def variants():
    def shape(text, crlf=False, bom=False, final=True):
        text = text if final else text.rstrip("\n")
        data = text.replace("\n", "\r\n") if crlf else text
        return (b"\xef\xbb\xbf" if bom else b"") + data.encode()

    for name, kw in [("plain", {}), ("no-final-newline", {"final": False}), ("crlf", {"crlf": True}),
                     ("bom", {"bom": True}), ("bom-crlf-no-final-newline", {"bom": True, "crlf": True, "final": False})]:
        yield pytest.param({"app.py": shape(BAD, **kw)}, id=name)
        yield pytest.param({"main.py": shape(MAIN, **kw), "routes.py": shape(ROUTES, **kw)}, id=name + "-two-files")


def _project(root, files):
    root.mkdir()
    (root / "pyproject.toml").touch()
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("files", variants())
def test_the_diff_applies_with_git_and_patch(tmp_path, files):
    project = _project(tmp_path / "p", files)
    diff = run_tool("fix", "--diff", ".", cwd=project, text=False)
    assert diff.returncode == 1 and diff.stdout.startswith(b"--- a/"), diff.stderr
    if any(not data.endswith(b"\n") for data in files.values()):
        assert b"\n\\ No newline at end of file\n" in diff.stdout
    (tmp_path / "fix.patch").write_bytes(diff.stdout)
    fixed = _project(tmp_path / "fixed", files)
    run_tool("fix", ".", cwd=fixed)
    for tool in (["git", "apply", "-p1"], ["patch", "-p1", "--quiet", "--batch", "-i"]):
        copy = tmp_path / tool[0]
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".git"))
        check = ["git", "apply", "--check"] if tool[0] == "git" else ["patch", "-p1", "--dry-run", "--batch", "-i"]
        for command in (check, tool):
            res = subprocess.run([*command, str(tmp_path / "fix.patch")], cwd=copy, capture_output=True)
            assert res.returncode == 0, (command, res.stdout, res.stderr)
        for name in files:
            assert (copy / name).read_bytes() == (fixed / name).read_bytes(), (tool[0], name)
            assert (copy / name).read_bytes() != files[name] or name == "main.py"
