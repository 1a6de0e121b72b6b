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
from .plan import Options, Plan, make_plan
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


def fix_project(root: str, settings: Settings, options: Options, files: Optional[List[str]] = None) -> Outcome:
    """Plan and verify the fix of one project; write nothing."""
    result = build(root, settings, files or [])
    old: Dict[str, bytes] = {}
    texts: Dict[str, str] = {}
    decoded: Dict[str, Decoded] = {}
    for path in result.findings:
        with open(path, "rb") as fh:
            old[path] = fh.read()
        decoded[path] = decode(old[path])
        texts[path] = decoded[path].text
    plan = make_plan(result, options, texts)
    outcome = Outcome(root, plan)
    if not plan.edits:
        return outcome
    new: Dict[str, bytes] = {}
    for path, edits in plan.edits.items():
        if path not in old:
            with open(path, "rb") as fh:
                old[path] = fh.read()
            decoded[path] = decode(old[path])
            texts[path] = decoded[path].text
        try:
            text = apply_edits(texts[path], edits, path)
        except Exception as exc:  # libcst refuses an edit: report, change nothing
            outcome.error = f"{path}: the rewrite failed ({type(exc).__name__}: {exc})"
            return outcome
        if text != texts[path]:
            new[path] = encode(text, decoded[path])
    outcome.old, outcome.new = old, new
    outcome.error = verify(root, settings, options, result, plan, old, new, files or [])
    return outcome


def verify(root, settings, options, before: ProjectResult, plan: Plan, old, new, files) -> Optional[str]:
    after = build(root, settings, files, sources=new)
    for path in new:
        if path in after.errors:
            return f"{path}: the rewritten file does not parse ({after.errors[path].message})"
    counts_before = Counter((f.path, f.code) for fs in before.findings.values() for f in fs)
    counts_after = Counter((f.path, f.code) for fs in after.findings.values() for f in fs)
    fixed = Counter((f.path, f.code) for f in plan.fixed)
    for key, n in counts_after.items():
        if n > counts_before[key] - fixed[key]:
            return f"{key[0]}: after the rewrite {key[1]} is still reported (or new); nothing written"
    for path, data in new.items():
        added = _pyflakes(path, data) - _pyflakes(path, old[path])
        if added:
            return f"{path}: the rewrite would add pyflakes warnings ({', '.join(sorted(added))}); nothing written"
    texts = {p: decode(d).text for p, d in new.items()}
    for path in after.findings:
        if path not in texts:
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
