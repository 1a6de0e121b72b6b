"""Where an added import goes so that isort and ruff's ``I001`` find nothing to move.

Imports fall in sections, in this order, one blank line apart: ``__future__``, the standard
library, third party, first party (the project's own top-level modules), local (relative). In a
section, ``import x`` statements come before ``from x import y`` ones, each sorted by module
name regardless of case; the names of one ``from`` statement are sorted constants first, then
classes, then the rest (ruff's ``order-by-type``). A new statement joins its section in sorted
position, or opens its section between the ones around it; a new name joins its statement in
sorted position when the statement's names are sorted already, and at their end otherwise.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from typing import AbstractSet, Callable, List, Sequence, Tuple

import libcst as cst

FUTURE, STDLIB, THIRD_PARTY, FIRST_PARTY, LOCAL = range(5)


def _stdlib(top: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    if names is not None:
        return top in names
    if top in sys.builtin_module_names:
        return True
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None) or ""
    stdlib = sysconfig.get_paths()["stdlib"]
    return origin.startswith(stdlib + os.sep) and "site-packages" not in origin


def sectioner(first_party: AbstractSet[str]) -> Callable[[str], int]:
    """The section of an import's module (``.x`` for a relative one)."""
    def section(module: str) -> int:
        if module.startswith("."):
            return LOCAL
        top = module.split(".")[0]
        if top == "__future__":
            return FUTURE
        if top in first_party:
            return FIRST_PARTY
        return STDLIB if _stdlib(top) else THIRD_PARTY
    return section


def name_key(name: str) -> Tuple[int, str, str]:
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name.lower(), name


def statement_key(stmt: cst.SimpleStatementLine, dotted: Callable) -> Tuple:
    """(module, is a ``from`` import, module's sort key, first name's sort key): the order of
    statements in a section, after the module."""
    node = stmt.body[0]
    if isinstance(node, cst.Import):
        module = dotted(node.names[0].name)
        return module, False, module.lower(), ()
    module = "." * len(node.relative) + dotted(node.module)
    first = () if isinstance(node.names, cst.ImportStar) else name_key(node.names[0].evaluated_name)
    return module, True, module.lower(), first


def merge_names(node: cst.ImportFrom, extra: Sequence[cst.ImportAlias]) -> cst.ImportFrom:
    """``node`` with the aliases ``extra`` added, written the way its names already are."""
    names = list(node.names)
    if not extra:
        return node
    keys = [name_key(a.evaluated_name) for a in names]
    merged = names + list(extra)
    if keys == sorted(keys):
        merged.sort(key=lambda a: name_key(a.evaluated_name))
    commas = [a.comma for a in names[:-1] if isinstance(a.comma, cst.Comma)]
    last = names[-1].comma
    if commas:
        sep = commas[0]
    elif isinstance(last, cst.Comma) and isinstance(last.whitespace_after, cst.ParenthesizedWhitespace):
        sep = last  # one name per line, with a trailing comma
    else:
        sep = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    out = [a.with_changes(comma=sep) for a in merged[:-1]] + [merged[-1].with_changes(comma=last)]
    return node.with_changes(names=out)


def _blank(stmt: cst.SimpleStatementLine) -> bool:
    return any(line.comment is None for line in stmt.leading_lines)


def place(block: List[cst.SimpleStatementLine], new: Sequence[cst.SimpleStatementLine],
          section: Callable[[str], int], dotted: Callable) -> List[cst.SimpleStatementLine]:
    """The top block of import statements with the ``new`` ones added in their place."""
    block = list(block)
    for stmt in new:
        module, *order = statement_key(stmt, dotted)
        rank, order = section(module), tuple(order)
        ranks = [section(statement_key(s, dotted)[0]) for s in block]
        same = [i for i, r in enumerate(ranks) if r == rank]
        empty = cst.EmptyLine()
        if same:
            at = next((i for i in same if tuple(statement_key(block[i], dotted)[1:]) > order), same[-1] + 1)
            if at == same[0]:  # the new first of the section takes its blank line
                first = block[at]
                stmt = stmt.with_changes(leading_lines=[ln for ln in first.leading_lines if ln.comment is None])
                block[at] = first.with_changes(leading_lines=[ln for ln in first.leading_lines
                                                              if ln.comment is not None])
            else:
                stmt = stmt.with_changes(leading_lines=[])
        else:
            at = next((i for i, r in enumerate(ranks) if r > rank), len(block))
            if at < len(block):
                nxt = block[at]
                if at == 0:  # the block's first statement: the new one takes its place and lines
                    stmt = stmt.with_changes(leading_lines=nxt.leading_lines)
                    block[at] = nxt.with_changes(leading_lines=[empty])
                else:
                    stmt = stmt.with_changes(leading_lines=[empty])
                    if not _blank(nxt):
                        block[at] = nxt.with_changes(leading_lines=[empty, *nxt.leading_lines])
            else:
                stmt = stmt.with_changes(leading_lines=[empty] if block else [])
        block.insert(at, stmt)
    return block
