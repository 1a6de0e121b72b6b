"""Run the fix over a project: plan, transform, verify everything, then write atomically.

Nothing is written unless the whole project's rewrite passes: every changed file parses, the
re-analysed project has the fixed findings gone and no new ones, pyflakes reports nothing new
in the changed files, and a second planning pass finds nothing more to do.
"""
from __future__ import annotations

import difflib
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..analysis.load import ProjectResult, Settings, build
from ..parallel import pmap, reporter
from .plan import FileEdits, Options, Plan, make_plan
from .transform import apply_edits

BOM = b"\xef\xbb\xbf"


@dataclass
class Decoded:
    text: str
    encoding: str
    bom: bool


@dataclass
class Outcome:
    root: str
    plan: Plan
    new: Dict[str, bytes] = field(default_factory=dict)
    old: Dict[str, bytes] = field(default_factory=dict)
    error: Optional[str] = None

    def diff(self, display) -> str:
        out = []
        for path in sorted(self.new):
            a = self.old[path].decode(_encoding(self.old[path]), "replace").splitlines(keepends=True)
            b = self.new[path].decode(_encoding(self.new[path]), "replace").splitlines(keepends=True)
            name = display(path)
            out.extend(difflib.unified_diff(a, b, f"a/{name}", f"b/{name}"))
        return "".join(out)


def _encoding(data: bytes) -> str:
    import tokenize
    import io

    try:
        return tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError:
        return "utf-8"


def decode(data: bytes) -> Decoded:
    encoding = _encoding(data)
    bom = data.startswith(BOM)
    body = data[len(BOM):] if bom else data
    enc = "utf-8" if encoding == "utf-8-sig" else encoding
    return Decoded(body.decode(enc), enc, bom)


def encode(text: str, original: Decoded) -> bytes:
    data = text.encode(original.encoding)
    return BOM + data if original.bom else data


def _pyflakes(path: str, data: bytes) -> Counter:
    from pyflakes import api, reporter

    class Collect(reporter.Reporter):
        def __init__(self):
            self.items: List[str] = []

        def flake(self, message):
            self.items.append(type(message).__name__ + ":" + (message.message % message.message_args))

        def unexpectedError(self, filename, msg):
            self.items.append("error:" + str(msg))

        def syntaxError(self, filename, msg, lineno, offset, text):
            self.items.append("syntax:" + str(msg))

    collect = Collect()
    api.check(decode(data).text, path, collect)
    return Counter(collect.items)


def _rewrite(_: None, item: "tuple[str, str, FileEdits]") -> "tuple[Optional[str], Optional[str]]":
    """One file's transform (a worker step): the new text, or why libcst refused."""
    path, text, edits = item
    try:
        return apply_edits(text, edits, path), None
    except Exception as exc:  # libcst refuses an edit: report, change nothing
        return None, f"{path}: the rewrite failed ({type(exc).__name__}: {exc})"


def _flakes(_: None, item: "tuple[str, bytes, bytes]") -> Counter:
    """pyflakes warnings the rewrite adds to one file (a worker step)."""
    path, old, new = item
    return _pyflakes(path, new) - _pyflakes(path, old)


def fix_project(root: str, settings: Settings, options: Options, files: Optional[List[str]] = None,
                sources: Optional[Dict[str, bytes]] = None, jobs: int = 1, progress=None) -> Outcome:
    """Plan and verify the fix of one project; write nothing.

    ``sources`` stands in for files' contents on disk (``fix -``)."""
    sources = sources or {}

    def read(path: str) -> bytes:
        if path in sources:
            return sources[path]
        with open(path, "rb") as fh:
            return fh.read()

    result = build(root, settings, files or [], sources=sources, jobs=jobs, progress=progress)
    old: Dict[str, bytes] = {}
    texts: Dict[str, str] = {}
    decoded: Dict[str, Decoded] = {}

    def load(path: str) -> None:
        old[path] = read(path)
        decoded[path] = decode(old[path])
        texts[path] = decoded[path].text

    for path in result.findings:
        load(path)
    plan = make_plan(result, options, texts)
    outcome = Outcome(root, plan)
    if not plan.edits:
        return outcome
    for path in plan.edits:
        if path not in old:
            load(path)
    work = [(path, texts[path], edits) for path, edits in plan.edits.items()]
    new: Dict[str, bytes] = {}
    for (path, _, _), (text, error) in zip(work, pmap(_rewrite, work, jobs, None, reporter(progress, "rewriting", len(work)))):
        if error is not None:
            outcome.error = error
            return outcome
        if text != texts[path]:
            new[path] = encode(text, decoded[path])
    outcome.old, outcome.new = old, new
    outcome.error = verify(root, settings, options, result, plan, old, new, files or [], sources, jobs, progress)
    return outcome


def verify(root, settings, options, before: ProjectResult, plan: Plan, old, new, files,
           sources: Optional[Dict[str, bytes]] = None, jobs: int = 1, progress=None) -> Optional[str]:
    sources = dict(sources or {})
    verifying = (lambda stage, done, total: progress("verifying", done, total)) if progress else None
    after = build(root, settings, files, sources={**sources, **new}, jobs=jobs, progress=verifying)
    for path in new:
        if path in after.errors:
            return f"{path}: the rewritten file does not parse ({after.errors[path].message})"
    counts_before = Counter((f.path, f.code) for fs in before.findings.values() for f in fs)
    counts_after = Counter((f.path, f.code) for fs in after.findings.values() for f in fs)
    fixed = Counter((f.path, f.code) for f in plan.fixed)
    for key, n in counts_after.items():
        if n > counts_before[key] - fixed[key]:
            return f"{key[0]}: after the rewrite {key[1]} is still reported (or new); nothing written"
    checks = [(path, old[path], data) for path, data in new.items()]
    for (path, _, _), added in zip(checks, pmap(_flakes, checks, jobs, None, reporter(verifying, "verifying", len(checks)))):
        if added:
            return f"{path}: the rewrite would add pyflakes warnings ({', '.join(sorted(added))}); nothing written"
    texts = {p: decode(d).text for p, d in new.items()}
    for path in after.findings:
        if path not in texts:
            if path in sources:
                texts[path] = decode(sources[path]).text
                continue
            with open(path, "rb") as fh:
                texts[path] = decode(fh.read()).text
    again = make_plan(after, options, texts)
    if again.edits:
        return "a second run would change more (" + ", ".join(sorted(again.edits)) + "); nothing written"
    return None


def write_atomic(path: str, data: bytes) -> None:
    """Write next to the file, flush, and rename over it, keeping its mode."""
    mode = os.stat(path).st_mode & 0o7777
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rpl-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
