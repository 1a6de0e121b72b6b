"""The ``--diff`` output: a unified diff that ``git apply`` and ``patch -p1`` both accept.

It is computed on the files' bytes, not their decoded text, so what a hunk quotes is what the
file holds: a BOM stays on the first line, ``\\r\\n`` endings stay in every line, and a file in
a declared legacy encoding keeps its bytes. A last line without a newline gets the
``\\ No newline at end of file`` marker (without it the next file's header is glued to that
line and both tools call the patch corrupt). Lines are split at ``\\n`` only, as the tools do
(``str.splitlines`` also splits at form feeds and other separators).
"""
from __future__ import annotations

import difflib
from typing import Iterable, List

NO_NEWLINE = b"\\ No newline at end of file\n"


def lines(data: bytes) -> List[bytes]:
    out = data.split(b"\n")
    last = out.pop()
    out = [line + b"\n" for line in out]
    if last:
        out.append(last)
    return out


def file_patch(old: bytes, new: bytes, name: str) -> bytes:
    """The patch that turns ``old`` into ``new`` for the file shown as ``name``."""
    shown = name.encode("utf-8", "surrogateescape")
    out = []
    for line in difflib.diff_bytes(difflib.unified_diff, lines(old), lines(new), b"a/" + shown, b"b/" + shown):
        out.append(line if line.endswith(b"\n") else line + b"\n" + NO_NEWLINE)
    return b"".join(out)


def project_patch(files: Iterable["tuple[str, bytes, bytes]"]) -> bytes:
    """One patch for ``(shown name, old bytes, new bytes)`` of several files."""
    return b"".join(file_patch(old, new, name) for name, old, new in files)
