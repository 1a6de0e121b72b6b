"""Read code written for a newer Python than the one running: libcst's parser knows the newer
grammars, and a few rewrites that keep every line where it was turn it into code this Python's
``ast`` parses.

Detection needs names, calls and positions, not type parameters or f-string internals, so:
``except A, B:`` (PEP 758) gains its parentheses, ``def f[T]()`` and ``class C[T]`` (PEP 695/696)
lose their type parameters, ``type X = Y`` becomes ``X = Y``, and f-strings a older parser refuses
(PEP 701) and t-strings (PEP 750) become plain strings of the same number of lines.
"""
from __future__ import annotations

import ast
import functools
import re
from typing import Optional


@functools.lru_cache(maxsize=None)
def _downlevel():
    """The libcst rewrite, defined on first use: importing libcst costs more than analysing a
    small project, and the text rewrites (``_quick``) read most newer code without it."""
    import libcst as cst

    class _Downlevel(cst.CSTTransformer):
        def leave_ExceptHandler(self, original, updated):
            return self._parenthesize(updated)

        def leave_ExceptStarHandler(self, original, updated):
            return self._parenthesize(updated)

        @staticmethod
        def _parenthesize(handler):
            kind = handler.type
            if isinstance(kind, cst.Tuple) and not kind.lpar:
                return handler.with_changes(type=kind.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
            return handler

        def leave_FunctionDef(self, original, updated):
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_ClassDef(self, original, updated):
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_TypeAlias(self, original, updated):
            return cst.Assign(targets=[cst.AssignTarget(updated.name)], value=updated.value)

        def leave_FormattedString(self, original, updated):
            return _placeholder(original)

        def leave_TemplatedString(self, original, updated):  # libcst >= 1.8
            return _placeholder(original)

    def _placeholder(node: cst.CSTNode) -> cst.SimpleString:
        lines = cst.Module(body=[]).code_for_node(node).count("\n")
        return cst.SimpleString('"""' + "\n" * lines + '"""' if lines else '""')

    return cst, _Downlevel


_EXCEPT = re.compile(rb"^([ \t]*except\*?[ \t]+)(?!\()([^:#\n]+?,[^:#\n]+?)([ \t]*:)", re.M)
_TYPE_ALIAS = re.compile(rb"^([ \t]*)type[ \t]+([A-Za-z_]\w*)[ \t]*(\[[^=\n]*\])?[ \t]*=", re.M)
_GENERIC = re.compile(rb"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+[A-Za-z_]\w*(\[)", re.M)


def _quick(data: bytes) -> bytes:
    """The common cases by text, line for line (libcst costs 0.2 s a file): unparenthesised
    ``except``, ``type`` aliases, type parameters closed on their own line."""
    data = _EXCEPT.sub(rb"\1(\2)\3", data)
    data = _TYPE_ALIAS.sub(rb"\1\2 =", data)
    out, last = [], 0
    for m in _GENERIC.finditer(data):
        depth, i = 0, m.start(1)
        while i < len(data) and data[i:i + 1] != b"\n":
            depth += {b"[": 1, b"]": -1}.get(data[i:i + 1], 0)
            if depth == 0:
                break
            i += 1
        if depth == 0 and i < len(data):
            out.append(data[last:m.start(1)])
            last = i + 1
    out.append(data[last:])
    return b"".join(out)


def parse_newer(data: bytes, path: str) -> Optional[ast.Module]:
    """The module as this Python's ``ast`` would see it, if libcst reads it; else None."""
    try:
        return ast.parse(_quick(data), filename=path, type_comments=False)
    except (SyntaxError, ValueError):
        pass
    from ..grammar import shallow

    if not shallow(data):
        return None  # too big or too deep for libcst's native parser to read safely
    try:
        cst, transformer = _downlevel()
        module = cst.parse_module(data)
        code = module.visit(transformer()).code
        return ast.parse(code, filename=path, type_comments=False)
    except Exception:  # libcst refuses it too (a real syntax error), or the rewrite was not enough
        return None
