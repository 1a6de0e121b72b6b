"""Which newer Python a file needs, when neither this interpreter's parser nor the analysis's
libcst reading of newer syntax (``analysis/downlevel.py``) can take it.

downlevel rewrites what detection can do without (type parameters, f-strings, ...); a
``match`` statement or ``except*`` under 3.9 or 3.10, or a module it cannot rewrite, stays a
syntax error. libcst's native parser reads the grammars up to 3.14 whatever Python runs it: a
file it parses, whose refused line holds a construct newer than this Python, needs that newer
Python. Only then is it said; a typo gets no such hint.
"""
from __future__ import annotations

import ast
import io
import sys
import tokenize
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Tuple

Version = Tuple[int, int]

#: libcst's native parser recurses on the C stack (a deep enough module crashes the process)
#: and is quadratic in bracket depth: it is only handed modules that stay well inside both.
MAX_BYTES = 1_000_000
MAX_BRACKETS = 100
MAX_CHAIN = 300
#: operator and keyword tokens that may each add a level of nesting in libcst's tree
_NESTING = {"and", "or", "not", "lambda", "if", "await", "."} | {
    "+", "-", "*", "/", "//", "%", "@", "**", "<<", ">>", "&", "|", "^", "~"}


def newer_syntax(data: bytes, lineno: int) -> Optional[Tuple[Version, str]]:
    """The Python version and the construct (``(3, 12), "PEP 701 f-string"``) that the code
    on line ``lineno`` needs, when it is newer than the running Python; None otherwise."""
    if sys.version_info[:2] >= max(v for v, _, _ in FEATURES) or not shallow(data):
        return None
    try:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = cst.parse_module(data)
            positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    except (Exception, RecursionError):  # libcst cannot read it either: not (only) newer syntax
        return None
    found: List[Tuple[Version, str]] = []
    for node in positions:
        for version, label, spans in FEATURES:
            if version <= sys.version_info[:2]:
                continue
            for first, last in spans(node, positions):
                if first <= lineno <= last:
                    found.append((version, label))
    return max(found) if found else None


def shallow(data: bytes) -> bool:
    """Small enough, and no logical line nested (or chained) deeper than libcst safely reads."""
    if len(data) > MAX_BYTES:
        return False
    brackets = chain = 0
    try:
        for tok in tokenize.tokenize(io.BytesIO(data).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                brackets += 1
                if brackets > MAX_BRACKETS:
                    return False
            elif tok.type == tokenize.OP and tok.string in ")]}":
                brackets = max(brackets - 1, 0)
            elif tok.type == tokenize.NEWLINE:
                brackets = chain = 0
            if tok.string in _NESTING:
                chain += 1
                if chain > MAX_CHAIN:
                    return False
    except (SyntaxError, tokenize.TokenError, ValueError, UnicodeDecodeError, LookupError):
        return False
    return True


Spans = Callable[[object, Dict], Iterator[Tuple[int, int]]]


def _whole(kind: str) -> Spans:
    def spans(node, positions):
        if type(node).__name__ == kind:
            pos = positions[node]
            yield pos.start.line, pos.end.line
    return spans


def _header(kind: str, part: str) -> Spans:
    """A block statement's first line to the end of its ``part`` (``match x:``, ``except* E:``)."""
    def spans(node, positions):
        if type(node).__name__ == kind and getattr(node, part, None) is not None:
            yield positions[node].start.line, positions[getattr(node, part)].end.line
    return spans


def _type_param_default(node, positions):
    if type(node).__name__ == "TypeParam" and getattr(node, "default", None) is not None:
        pos = positions[node]
        yield pos.start.line, pos.end.line


def _starred_index(node, positions):
    kind = type(node).__name__
    if (kind == "Index" and getattr(node, "star", None)) or (
            kind == "Annotation" and type(node.annotation).__name__ == "StarredElement"):
        pos = positions[node]
        yield pos.start.line, pos.end.line


def _bare_except_tuple(node, positions):
    if type(node).__name__ in ("ExceptHandler", "ExceptStarHandler"):
        caught = node.type
        if type(caught).__name__ == "Tuple" and not caught.lpar:
            yield positions[node].start.line, positions[caught].end.line


def _refused_fstring(node, positions):
    """An f-string this Python's parser refuses on its own (PEP 701: the outer quotes reused
    inside, a backslash or a comment in a replacement field, one spanning lines)."""
    if type(node).__name__ != "FormattedString":
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse("(" + _code(node) + ")")
    except SyntaxError:
        pos = positions[node]
        yield pos.start.line, pos.end.line
    except (ValueError, RecursionError, MemoryError):
        return


def _code(node) -> str:
    import libcst as cst

    return cst.Module(body=[]).code_for_node(node)


#: (the first Python that reads it, what it is called, where it is in a module)
FEATURES: List[Tuple[Version, str, Spans]] = [
    ((3, 10), "PEP 634 match statement", _header("Match", "subject")),
    ((3, 11), "PEP 654 except*", _header("ExceptStarHandler", "type")),
    ((3, 11), "PEP 646 star expression in a subscript or annotation", _starred_index),
    ((3, 12), "PEP 695 type statement", _whole("TypeAlias")),
    ((3, 12), "PEP 695 type parameters", _whole("TypeParameters")),
    ((3, 12), "PEP 701 f-string", _refused_fstring),
    ((3, 13), "PEP 696 type parameter default", _type_param_default),
    ((3, 14), "PEP 750 template string", _whole("TemplatedString")),
    ((3, 14), "PEP 758 except without parentheses", _bare_except_tuple),
]


def hint(data: Optional[bytes], lineno: Optional[int]) -> str:
    """``; it uses Python 3.12 syntax (PEP 701 f-string): run redis-pool-lint with Python 3.12
    or newer``, or nothing."""
    if data is None or not lineno:
        return ""
    found = newer_syntax(data, lineno)
    if found is None:
        return ""
    (major, minor), label = found
    return (f"; it uses Python {major}.{minor} syntax ({label}): "
            f"run redis-pool-lint with Python {major}.{minor} or newer")
