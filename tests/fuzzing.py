"""Generated input for the properties of ``check`` and ``fix``: mutations of the fixture apps, and a
harness that runs one project through the analysis and the fixer and says what happened.

Used by ``tests/test_fuzz.py`` (a bounded number of examples) and ``benchmarks/fuzz.py`` (more).
"""
from __future__ import annotations

import ast
import io
import keyword
import os
import random
import shutil
import tempfile
import tokenize
import traceback
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

#: A prelude that makes any generated module one the analysis parses and the fixer considers.
PRELUDE = "import redis\nfrom redis.asyncio import Redis\nfrom fastapi import FastAPI, Request\napp = FastAPI()\n"
HANDLER = ("\n\n@app.get('/fuzz')\nasync def fuzz_handler(key: str):\n"
           "    r = Redis.from_url('redis://localhost')\n    return await r.get(key)\n")
DECORATORS = ["@functools.lru_cache(maxsize=None)", "@trace", "@app.get('/extra')", "@router.post('/x')",
              "@staticmethod", "@contextlib.asynccontextmanager", "@pytest.fixture", "@celery.task",
              "@functools.wraps(print)", "@app.middleware('http')", "@app.on_event('startup')"]


# -- the corpus ------------------------------------------------------------------------------------
def corpus() -> List[Path]:
    """Fixture apps to mutate: single files and project folders (each is copied as one project)."""
    out = sorted((FIXTURES / "cases").glob("RPL*/*.py"))
    out += sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())
    out += sorted(p for p in (FIXTURES / "eval").iterdir() if p.is_dir() or p.suffix == ".py")
    out += sorted((FIXTURES / "fix").glob("*/before"))
    return [p for p in out if p.is_dir() or p.suffix == ".py"]


# -- mutations -------------------------------------------------------------------------------------
def _tokens(src: str):
    return list(tokenize.generate_tokens(io.StringIO(src).readline))


def _safe_line_ends(src: str) -> List[int]:
    """Lines (1-based) at whose end a comment may go: not inside a string, not continued by ``\\``."""
    lines = src.splitlines()
    bad = set()
    for tok in _tokens(src):
        if tok.type == tokenize.STRING or getattr(tokenize, "FSTRING_MIDDLE", -1) == tok.type:
            bad.update(range(tok.start[0], tok.end[0]))
    return [i for i, line in enumerate(lines, 1) if i not in bad and not line.rstrip().endswith("\\")]


def rename_identifier(src: str, rng: random.Random) -> str:
    tree = ast.parse(src)
    names = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
                   | {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
                   | {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args})
    if not names:
        return src
    old = rng.choice(names)
    new = rng.choice(["renamed", "r", "client", "request", "app", "pool", "Redis", "_x", "conn"]) + rng.choice(["", "_2"])
    lines = src.splitlines(keepends=True)
    for tok in reversed(_tokens(src)):
        if tok.type == tokenize.NAME and tok.string == old and not keyword.iskeyword(old):
            row, col = tok.start
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new + line[col + len(old):]
    return "".join(lines)


def _statements(tree: ast.AST) -> List[Tuple[int, int]]:
    spans = []
    for node in getattr(tree, "body", []):
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans.append((start, node.end_lineno))
    return spans


def reorder_statements(src: str, rng: random.Random) -> str:
    tree = ast.parse(src)
    candidates = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                         ast.ClassDef))]
    node = rng.choice(candidates)
    spans = _statements(node)
    if len(spans) < 2:
        return src
    i = rng.randrange(len(spans) - 1)
    (a0, a1), (b0, b1) = spans[i], spans[i + 1]
    lines = src.splitlines(keepends=True)
    if a1 >= b0 or any(len(lines) < n for n in (a1, b1)):
        return src
    first, gap, second = lines[a0 - 1:a1], lines[a1:b0 - 1], lines[b0 - 1:b1]
    if not first[-1].endswith("\n") or not second[-1].endswith("\n"):
        return src
    return "".join(lines[:a0 - 1] + second + gap + first + lines[b1:])


def extra_decorator(src: str, rng: random.Random) -> str:
    tree = ast.parse(src)
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    if not defs:
        return src
    node = rng.choice(defs)
    lines = src.splitlines(keepends=True)
    line = lines[node.lineno - 1]
    indent = line[:len(line) - len(line.lstrip())]
    where = rng.choice([node.lineno] + [d.lineno for d in node.decorator_list])
    lines.insert(where - 1, f"{indent}{rng.choice(DECORATORS)}\n")
    return "".join(lines)


def odd_comment(src: str, rng: random.Random) -> str:
    comment = rng.choice(["# noqa", "# type: ignore", "# redis.Redis()", "# )", "#", "# -*- coding: ascii -*-",
                          "# fmt: off", "# \u00e9\u00e8 \u2603"])
    lines = src.splitlines(keepends=True)
    kind = rng.random()
    if kind < 0.4:  # after an opening bracket: the rest of the call on the next line
        opens = [t for t in _tokens(src) if t.type == tokenize.OP and t.string in "([{"]
        if opens:
            tok = rng.choice(opens)
            row, col = tok.end
            line = lines[row - 1]
            lines[row - 1] = line[:col] + "  " + comment + "\n" + " " * (col + 4) + line[col:].lstrip(" ")
            return "".join(lines)
    ends = _safe_line_ends(src)
    if not ends:
        return src
    row = rng.choice(ends)
    line = lines[row - 1]
    body = line.rstrip("\r\n")
    if kind < 0.7:  # at the end of a line
        lines[row - 1] = body + "  " + comment + line[len(body):]
    else:  # a comment line of its own, indented like the next line
        indent = body[:len(body) - len(body.lstrip())]
        lines.insert(row, indent + comment + "\n")
    return "".join(lines)


MUTATIONS: Dict[str, Callable[[str, random.Random], str]] = {
    "rename": rename_identifier, "reorder": reorder_statements, "decorator": extra_decorator,
    "comment": odd_comment,
}


def mutate(src: str, rng: random.Random, rounds: int = 3) -> Tuple[str, List[str]]:
    applied = []
    for _ in range(rng.randint(1, rounds)):
        name = rng.choice(sorted(MUTATIONS))
        try:
            ast.parse(src)
        except SyntaxError:
            break  # a mutation made it unparsable: keep it, the tools must say so
        src = MUTATIONS[name](src, rng)
        applied.append(name)
    return src, applied


def materialize_mutant(source: Path, dest: Path, rng: random.Random) -> List[str]:
    """Copy a corpus entry to ``dest`` as a project and mutate one of its Python files."""
    if source.is_dir():
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        dest.mkdir(parents=True)
        shutil.copy(source, dest / source.name)
    (dest / "pyproject.toml").touch()
    files = sorted(p for p in dest.rglob("*.py"))
    target = rng.choice(files)
    text, applied = mutate(target.read_text(encoding="utf-8"), rng)
    target.write_text(text, encoding="utf-8")
    return [f"{target.relative_to(dest)}: {', '.join(applied)}"]


# -- the properties --------------------------------------------------------------------------------
class Violation(AssertionError):
    """A property does not hold (distinct from a crash: an exception escaping the tools)."""


def _snapshot(folder: Path) -> Dict[str, Tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def check_properties(folder: Path) -> str:
    """Run check and fix on one project (in process) and check the properties; return what
    happened: "unparsable" (check reports an error), "clean" (no finding), "fixed",
    "unchanged" (findings the fixer leaves) or "refused" (the verifier said no).
    A crash propagates; a broken property raises ``Violation``."""
    from redis_pool_lint.analysis.load import Settings, build
    from redis_pool_lint.fix.apply import compile_error, fix_project
    from redis_pool_lint.fix.plan import Options

    root = str(folder)
    settings = Settings(include_tests=True)
    before = build(root, settings)
    counts_before = Counter((f.path, f.code) for fs in before.findings.values() for f in fs)
    snap = _snapshot(folder)
    outcome = fix_project(root, settings, Options(), write=True)
    after_snap = _snapshot(folder)
    for message in [outcome.error or ""] + [m for _, m in outcome.problems]:
        if "\n" in message:
            raise Violation(f"a message of several lines: {message!r}")
    if before.errors and not outcome.new:
        if after_snap != snap:
            raise Violation("an unparsable project was written")
        return "unparsable"
    if not counts_before or outcome.error or not outcome.new:
        if after_snap != snap:  # byte-identical and mtime untouched
            raise Violation(f"nothing to fix, yet files changed: {_changed(snap, after_snap)}")
        return "clean" if not counts_before else ("refused" if outcome.error else "unchanged")
    changed = _changed(snap, after_snap)
    if set(changed) != {os.path.relpath(p, root) for p in outcome.new}:
        raise Violation(f"written {sorted(changed)} != planned {sorted(outcome.new)}")
    for rel in changed:
        try:
            ast.parse((folder / rel).read_bytes())
        except SyntaxError as exc:
            raise Violation(f"{rel}: the fixed file does not parse: {exc}") from None
        fixed_error = compile_error((folder / rel).read_bytes())
        if fixed_error and not compile_error(snap[rel][0]):
            raise Violation(f"{rel}: the fixed file does not compile, the original did: {fixed_error}")
    relinted = build(root, settings)
    if relinted.errors:
        raise Violation(f"errors after the fix: {relinted.errors}")
    counts_after = Counter((f.path, f.code) for fs in relinted.findings.values() for f in fs)
    fixed = Counter((f.path, f.code) for f in outcome.plan.fixed)
    for key, n in counts_after.items():
        if n > counts_before[key] - fixed[key]:
            raise Violation(f"{key} still reported after the fix ({n})")
    again = fix_project(root, settings, Options(), write=True)
    if again.new or _snapshot(folder) != after_snap:
        raise Violation(f"a second run changes more: {sorted(again.new)} {again.error}")
    return "fixed"


def _changed(a: Dict[str, Tuple[bytes, int]], b: Dict[str, Tuple[bytes, int]]) -> List[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def run_one(make: Callable[[Path], object]) -> Tuple[str, Optional[str]]:
    """Build a project with ``make(folder)`` in a fresh folder and check it: (outcome, details)."""
    work = Path(tempfile.mkdtemp(prefix="rpl-fuzz-"))
    try:
        folder = work / "p"
        what = make(folder)
        try:
            return check_properties(folder), None
        except Violation as exc:
            return "violation", f"{what}: {exc}"
        except Exception:  # noqa: BLE001 - a crash is what we are looking for
            return "crash", f"{what}:\n{traceback.format_exc()}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_module(folder: Path, source: str, name: str = "main.py") -> str:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").touch()
    (folder / name).write_text(source, encoding="utf-8")
    return source
