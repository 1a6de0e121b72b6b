"""Wrap the lines the rewrite wrote that are longer than the project allows, as black would.

The rewrite builds its statements on one line (``app.state.redis = Redis.from_pool(...)``, a
handler's ``def`` line gaining ``request: Request``). A line of the new text that is too long
and was not in the old text is re-rendered when it holds one whole statement or a ``def``
header: the last bracket pair opens a block of its own (``head(`` / body / ``)``); the body
stays on one line when it fits, is split again when it is a single call, and otherwise goes
one item per line with a trailing comma. That is black's right-hand split and delimiter split
for the shapes the rewrite produces (a collection literal of several items always goes one
item per line, as black's magic trailing comma has it); lines it cannot split (no brackets, a comment, several
statements) stay as they are. Lines the user wrote are never touched.
"""
from __future__ import annotations

import ast
from typing import Dict, List, Optional, Sequence

import libcst as cst

_EMPTY = cst.Module([])


def _code(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node)


def _bare(item: cst.CSTNode) -> cst.CSTNode:
    """An argument, parameter or element without its comma."""
    return item.with_changes(comma=cst.MaybeSentinel.DEFAULT) if hasattr(item, "comma") else item


class _Render:
    def __init__(self, indent: str, unit: str, limit: int) -> None:
        self.indent, self.unit, self.limit = indent, unit, limit

    def at(self, depth: int, text: str) -> str:
        return self.indent + self.unit * depth + text

    def fits(self, depth: int, text: str) -> bool:
        return len(self.at(depth, text)) <= self.limit

    def expr(self, prefix: str, node: cst.BaseExpression, suffix: str, depth: int) -> List[str]:
        one = prefix + _code(node) + suffix
        if self.fits(depth, one):
            return [self.at(depth, one)]
        if isinstance(node, cst.Await) and not node.lpar:
            return self.expr(prefix + "await ", node.expression, suffix, depth)
        if isinstance(node, cst.Call) and not node.lpar:
            return self.brackets(prefix + _code(node.func) + "(", node.args, ")" + suffix, depth)
        if isinstance(node, (cst.Dict, cst.List, cst.Set)) and not getattr(node, "lpar", None):
            opening = "[" if isinstance(node, cst.List) else "{"
            closing = "]" if isinstance(node, cst.List) else "}"
            return self.brackets(prefix + opening, node.elements, closing + suffix, depth, explode=True)
        return [self.at(depth, one)]

    def brackets(self, head: str, items: Sequence[cst.CSTNode], tail: str, depth: int,
                 explode: bool = False) -> List[str]:
        """``head`` / the items / ``tail``; the items on one line if they fit, unless ``explode``
        (a collection literal of several items: black always gives each its own line)."""
        if not items:
            return [self.at(depth, head + tail)]
        texts = [_code(_bare(item)) for item in items]
        joined = ", ".join(texts)
        if self.fits(depth + 1, joined) and not (explode and len(items) > 1):
            body = [self.at(depth + 1, joined)]
        elif len(items) == 1 and isinstance(items[0], cst.Arg) and not items[0].keyword and not items[0].star:
            body = self.expr("", items[0].value, "", depth + 1)
        else:
            body = []
            for item, text in zip(items, texts):
                body.extend(self.item(item, text, depth + 1))
        return [self.at(depth, head), *body, self.at(depth, tail)]

    def item(self, item: cst.CSTNode, text: str, depth: int) -> List[str]:
        if self.fits(depth, text + ","):
            return [self.at(depth, text + ",")]
        if isinstance(item, cst.Arg):
            prefix = item.star + (item.keyword.value + "=" if item.keyword else "")
            return self.expr(prefix, item.value, ",", depth)
        if isinstance(item, cst.DictElement):
            return self.expr(_code(item.key) + ": ", item.value, ",", depth)
        if isinstance(item, cst.Element):
            return self.expr("", item.value, ",", depth)
        return [self.at(depth, text + ",")]


def _statement(render: _Render, text: str) -> Optional[List[str]]:
    """``text`` (one statement or a ``def`` header, without its indent) wrapped, or None."""
    if text.startswith(("def ", "async def ")) and text.endswith(":"):
        fn = cst.parse_statement(text + "\n" + render.unit + "pass\n")
        if not isinstance(fn, cst.FunctionDef) or fn.decorators:
            return None
        p = fn.params
        items = [*p.posonly_params, *([p.posonly_ind] if isinstance(p.posonly_ind, cst.ParamSlash) else []),
                 *p.params, *([p.star_arg] if isinstance(p.star_arg, (cst.Param, cst.ParamStar)) else []),
                 *p.kwonly_params, *([p.star_kwarg] if p.star_kwarg is not None else [])]
        head = ("async " if fn.asynchronous else "") + f"def {fn.name.value}("
        tail = ")" + (f" -> {_code(fn.returns.annotation)}" if fn.returns else "") + ":"
        return render.brackets(head, items, tail, 0)
    if text.startswith(("with ", "async with ")) and text.endswith(":"):
        return _with(render, cst.parse_statement(text + "\n" + render.unit + "pass\n"))
    stmt = cst.parse_statement(text + "\n")
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1 or stmt.trailing_whitespace.comment:
        return None
    small = stmt.body[0]
    value = getattr(small, "value", None)
    if isinstance(value, cst.Yield) and not value.lpar and isinstance(value.value, cst.BaseExpression):
        value = value.value
    if not isinstance(value, cst.BaseExpression):
        return None
    code, rhs = _code(small), _code(value)
    if not code.endswith(rhs):
        return None
    return render.expr(code[:len(code) - len(rhs)], value, "", 0)


def _with(render: _Render, stmt: cst.BaseStatement) -> Optional[List[str]]:
    """``with a as x, f(...) as y:``: the last item's call opens the block, as black splits it."""
    if not isinstance(stmt, cst.With) or isinstance(stmt.lpar, cst.LeftParen) or not isinstance(stmt.items[-1].item, cst.Call):
        return None
    last = stmt.items[-1]
    before = "".join(_code(_bare(item)) + ", " for item in stmt.items[:-1])
    head = ("async " if stmt.asynchronous else "") + "with " + before + _code(last.item.func) + "("
    tail = ")" + (f" as {_code(last.asname.name)}" if last.asname else "") + ":"
    return render.brackets(head, last.item.args, tail, 0)


def _indent_unit(text: str) -> str:
    for line in text.splitlines():
        stripped = line.lstrip(" \t")
        if stripped and stripped != line and not stripped.startswith("#"):
            return line[:len(line) - len(stripped)]
    return "    "


def wrap_long_lines(new: str, old: str, limit: int) -> str:
    """``new`` with its too-long lines that are not in ``old`` wrapped (see the module's doc)."""
    lines = new.splitlines(keepends=True)
    before = set(old.splitlines())
    long = [i for i, line in enumerate(lines)
            if len(line.rstrip("\r\n")) > limit and line.rstrip("\r\n") not in before]
    if not long:
        return new
    try:
        tree = ast.parse(new)
    except SyntaxError:
        return new
    starts: Dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            starts.setdefault(node.lineno, node)
    unit = _indent_unit(new)
    out = list(lines)
    for i in reversed(long):
        node = starts.get(i + 1)
        line = lines[i]
        body = line.rstrip("\r\n")
        ending = line[len(body):] or "\n"
        indent = body[:len(body) - len(body.lstrip(" \t"))]
        header = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.With, ast.AsyncWith))
        if node is None or not (header or getattr(node, "end_lineno", 0) == i + 1):
            continue
        try:
            wrapped = _statement(_Render(indent, unit, limit), body.strip())
        except (cst.ParserSyntaxError, ValueError, RecursionError):
            continue
        if wrapped and len(wrapped) > 1:
            out[i] = ending.join(wrapped) + ending
    text = "".join(out)
    try:
        ast.parse(text)
    except SyntaxError:
        return new
    return text
