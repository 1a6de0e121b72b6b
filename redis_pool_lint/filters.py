"""What a user asked to see: flake8's select/ignore decision and ``# noqa``, for ``check``.

Under flake8, flake8 itself does this; ``check`` must decide the same way.
"""
from __future__ import annotations

import io
import re
import tokenize
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .rules import is_enabled

# flake8's own pattern (flake8.defaults.NOQA_INLINE_REGEX), so both faces read a comment alike.
NOQA = re.compile(r"# noqa(?::[\s]?(?P<codes>([A-Z]+[0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
CODE = re.compile(r"[A-Z]+[0-9]*")


class Selection:
    """flake8's DecisionEngine semantics over prefixes; off-by-default codes need naming."""

    def __init__(self, select: Optional[Sequence[str]] = None, extend_select: Sequence[str] = (),
                 ignore: Optional[Sequence[str]] = None, extend_ignore: Sequence[str] = ()) -> None:
        self.select = tuple(select) if select is not None else None
        self.extend_select = tuple(extend_select)
        self.ignore = tuple(ignore or ()) + tuple(extend_ignore)
        self.explicit = tuple(select or ()) + self.extend_select

    @staticmethod
    def _match(code: str, prefixes: Iterable[str]) -> int:
        return max((len(p) for p in prefixes if code.startswith(p)), default=-1)

    def wants(self, code: str) -> bool:
        if not is_enabled(code, self.select or (), self.extend_select):
            return False
        chosen = (self.select or ("RPL",)) + self.extend_select
        selected = self._match(code, chosen)
        ignored = self._match(code, self.ignore)
        if selected < 0:
            return False
        return ignored < 0 or selected > ignored


def split_codes(values: Iterable[str]) -> List[str]:
    out: List[str] = []
    for value in values:
        out.extend(c.strip().upper() for c in re.split(r"[,\s]+", value) if c.strip())
    return out


def logical_ranges(source: str) -> Dict[int, Tuple[int, int]]:
    """Map each physical line to the line range flake8 searches for its ``# noqa``.

    As flake8 does: a range ends at every NL or NEWLINE token, so it widens only over tokens
    that span lines (multi-line strings, backslash continuations), not over brackets.
    """
    mapping: Dict[int, Tuple[int, int]] = {}
    lo: Optional[int] = None
    hi: Optional[int] = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.ENDMARKER, tokenize.DEDENT):
                continue
            lo = tok.start[0] if lo is None else min(lo, tok.start[0])
            hi = tok.end[0] if hi is None else max(hi, tok.end[0])
            if tok.type in (tokenize.NL, tokenize.NEWLINE):
                for line in range(lo, hi + 1):
                    mapping[line] = (lo, hi)
                lo = hi = None
    except (tokenize.TokenError, SyntaxError):
        return {}
    return mapping


def noqa_filter(findings: list, source: str) -> list:
    """Drop findings silenced by ``# noqa`` anywhere on their logical line (flake8's rule)."""
    if "noqa" not in source.lower():
        return findings
    lines = source.splitlines()
    ranges = logical_ranges(source)
    kept = []
    for f in findings:
        first, last = ranges.get(f.line, (f.line, f.line))
        text = "\n".join(lines[first - 1:last])
        silenced = False
        for m in NOQA.finditer(text):
            codes = m.group("codes")
            if not codes:
                silenced = True
                break
            if any(f.code.startswith(c) for c in CODE.findall(codes.upper())):
                silenced = True
                break
        if not silenced:
            kept.append(f)
    return kept
