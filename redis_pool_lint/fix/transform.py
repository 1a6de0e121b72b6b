"""Carry out one file's planned edits with libcst, finding nodes by the positions in the plan.

Positions come from the ``ast`` (byte columns); they are turned into libcst's character
columns once per file. Imports are added with libcst's ``AddImportsVisitor`` after the
transform; the ones the rewrite leaves unused are then dropped as pyflakes sees them
(``imports.py``). The transform is a plain ``CSTTransformer`` run once over the module: a
codemod command would rebuild libcst's matcher tables for each file, which cost more than
the pass itself.
"""
from __future__ import annotations

import ast
import bisect
from typing import Dict, FrozenSet, List, Optional, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .imports import Flakes, add_imports, drop_unused, spec_names
from .edits import FileEdits
from .isort import sectioner
from .style import Style
from .wrap import wrap_long_lines

Pos = Tuple[int, int]


def char_positions(source: str, positions) -> Dict[Pos, Pos]:
    """Map (line, byte column) to (line, character column)."""
    lines = source.splitlines(keepends=True)
    out = {}
    for line, col in positions:
        if 0 < line <= len(lines):
            out[(line, col)] = (line, len(lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace")))
    return out


class ApplyEdits(cst.CSTTransformer):
    """Apply a ``FileEdits`` to one module; collects the imports it needs and the ones it
    may have left unused."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: FileEdits, source: str, style: Style = Style()) -> None:
        super().__init__()
        self.e = edits
        self.style = style
        conv = char_positions(source, [
            *edits.replace_calls, *edits.remove_closes, *edits.unwrap_withs, *edits.renames,
            *([edits.app_call] if edits.app_call else []), *edits.make_blocking,
            *edits.guard_assigns, *edits.guard_closes, *edits.add_kwargs,
        ])
        self.guard_assigns = {conv[k]: v for k, v in edits.guard_assigns.items() if k in conv}
        self.guard_closes = {conv[k] for k in edits.guard_closes if k in conv}
        self.add_kwargs = {conv[k]: v for k, v in edits.add_kwargs.items() if k in conv}
        self.blocking = {conv[k]: v for k, v in edits.make_blocking.items() if k in conv}
        self.replace = {conv[k]: v for k, v in edits.replace_calls.items() if k in conv}
        self.closes = {conv[k] for k in edits.remove_closes if k in conv}
        self.withs = {conv[k]: v for k, v in edits.unwrap_withs.items() if k in conv}
        self.renames = {conv[k] for k in edits.renames if k in conv}
        self.app_call = conv.get(edits.app_call) if edits.app_call else None
        self.replaced_calls: Set[int] = set()
        self.done: Set[int] = set()  # positions of the calls already left
        self.emptied: Set[int] = set()
        self.lifespan_depth = 0
        # Lines something happens on: subtrees that span none of them are left unvisited.
        e = edits
        self.lines = sorted({line for line, _ in (*e.replace_calls, *e.remove_closes, *e.unwrap_withs, *e.renames,
                                                  *e.make_blocking, *([e.app_call] if e.app_call else []),
                                                  *e.guard_assigns, *e.guard_closes, *e.add_kwargs)}
                            | {*e.add_params, *e.guard_factories, *e.drop_unused, *e.drop_event_decorators,
                               *([e.merge_lifespan[0]] if e.merge_lifespan else [])})
        self.imports: List[Tuple[str, Optional[str], Optional[str], int]] = []
        self.unused: List[Tuple[str, Optional[str], Optional[str]]] = list(edits.unused_imports)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if not self.lifespan_depth and not isinstance(node, cst.Module):
            span = self.get_metadata(PositionProvider, node, None)
            if span is not None:
                start = span.start.line
                if isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node.decorators:
                    # libcst's span of a definition starts at ``def``, below its decorators
                    first = self.get_metadata(PositionProvider, node.decorators[0], None)
                    start = min(start, first.start.line) if first is not None else 0
                i = bisect.bisect_left(self.lines, start)
                if i == len(self.lines) or self.lines[i] > span.end.line:
                    return False  # nothing to do in here (its leave_* still runs, on the node as it is)
        return super().on_visit(node)

    def _pos(self, node: cst.CSTNode) -> Pos:
        start = self.get_metadata(PositionProvider, node).start
        return start.line, start.column

    # -- expressions ----------------------------------------------------------------------
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        pos = self._pos(original)
        if pos in self.done:
            # ``helper().get(k)`` starts where ``helper()`` does: the edit belongs to the inner
            # call, which is left first; the call on its result keeps its method and arguments
            return updated
        self.done.add(pos)
        if pos in self.replace:
            self.replaced_calls.add(id(original))
            return cst.parse_expression(self.replace[pos])
        if pos in self.add_kwargs:
            name, value = self.add_kwargs[pos]
            arg = cst.Arg(keyword=cst.Name(name), value=cst.parse_expression(value),
                          equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
            return updated.with_changes(args=_append_args(list(updated.args), [arg]))
        if pos in self.renames and isinstance(updated.func, cst.Attribute):
            return updated.with_changes(func=updated.func.with_changes(attr=cst.Name("aclose")))
        if pos == self.app_call:
            return self._app_call(updated)
        if pos in self.blocking:
            return self._blocking(original, updated, *self.blocking[pos])
        return updated

    def _blocking(self, original: cst.Call, call: cst.Call, bound, wait) -> cst.Call:
        """``ConnectionPool[.from_url](...)`` -> ``BlockingConnectionPool[...](..., max_connections=, timeout=)``."""
        func = call.func
        cls = func.value if isinstance(func, cst.Attribute) and func.attr.value == "from_url" else func
        renamed = cls
        if isinstance(cls, cst.Name) and cls.value == "ConnectionPool":
            renamed = cst.Name("BlockingConnectionPool")
            module = self.e.blocking_module
            if module:
                self.imports.append((module, "BlockingConnectionPool", None, 0))
                self.unused.append((module, "ConnectionPool", None))
        elif isinstance(cls, cst.Attribute) and cls.attr.value == "ConnectionPool":
            renamed = cls.with_changes(attr=cst.Name("BlockingConnectionPool"))
        func = func.with_changes(value=renamed) if func is not cls else renamed
        extra = [cst.Arg(keyword=cst.Name(k), value=cst.parse_expression(v),
                         equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
                 for k, v in (("max_connections", bound), ("timeout", wait)) if v is not None]
        return call.with_changes(func=func, args=_append_args(list(call.args), extra))

    def leave_Await(self, original: cst.Await, updated: cst.Await) -> cst.BaseExpression:
        if id(original.expression) in self.replaced_calls:
            return updated.expression  # the shared client is not awaitable
        return updated

    def _app_call(self, call: cst.Call) -> cst.Call:
        args = [a for a in call.args if not (a.keyword and a.keyword.value in self.e.drop_app_kwargs)]
        if len(args) < len(call.args) and args:  # the dropped one may have been last
            args[-1] = args[-1].with_changes(comma=call.args[-1].comma,
                                             whitespace_after_arg=call.args[-1].whitespace_after_arg)
        extra = []
        if self.e.app_kwarg:
            extra.append(cst.Arg(keyword=cst.Name("lifespan"), value=cst.Name(self.e.app_kwarg),
                                 equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))))
        return call.with_changes(args=_append_args(args, extra))

    # -- statements -------------------------------------------------------------------------
    def _close_call(self, stmt: cst.BaseSmallStatement) -> Optional[cst.Call]:
        if not isinstance(stmt, cst.Expr):
            return None
        value = stmt.value
        if isinstance(value, cst.Await):
            value = value.expression
        return value if isinstance(value, cst.Call) else None

    def _guarded(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        """``x = <client>`` -> ``if request is None: x = <client>`` / ``else: x = <shared>``; a
        close of it -> ``if request is None: <close>``. None if this statement is neither."""
        if len(original.body) != 1:
            return None
        stmt = original.body[0]
        shared = None
        target = None
        if isinstance(stmt, cst.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0].target
        elif isinstance(stmt, cst.AnnAssign) and stmt.value is not None:
            target = stmt.target
        if isinstance(target, cst.Name):
            value = stmt.value.expression if isinstance(stmt.value, cst.Await) else stmt.value
            if isinstance(value, cst.Call) and self._pos(value) in self.guard_assigns:
                shared = f"{target.value} = {self.guard_assigns[self._pos(value)]}"
        call = self._close_call(stmt)
        if shared is None and (call is None or self._pos(call) not in self.guard_closes):
            return None
        code = cst.Module([]).code_for_node(updated.with_changes(leading_lines=[]))
        text = "if request is None:  # called outside a request: a client of its own\n    " + code
        if shared is not None:
            text += f"else:\n    {shared}\n"
        else:
            text = "if request is None:\n    " + code
        return cst.parse_statement(text).with_changes(leading_lines=updated.leading_lines)

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        if self.guard_assigns or self.guard_closes:
            guarded = self._guarded(original, updated)
            if guarded is not None:
                return guarded
        keep = []
        for orig, new in zip(original.body, updated.body):
            call = self._close_call(orig)
            if call is not None and self._pos(call) in self.closes:
                continue
            keep.append(new)
        if not keep:
            return cst.RemoveFromParent()
        if self.lifespan_depth and self._is_yield(updated):
            return self._wrap_yield(updated)
        return updated.with_changes(body=keep)

    @staticmethod
    def _is_yield(stmt: cst.SimpleStatementLine) -> bool:
        return len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.Yield)

    def _wrap_yield(self, stmt: cst.SimpleStatementLine):
        """Build the clients right before the lifespan's yield (after its own set-up, which may
        create what they use) and close them right after it, in a ``finally``."""
        _, setup, teardown = self.e.merge_lifespan
        self.lifespan_depth = 0  # only the first yield
        final = [cst.parse_statement(code) for code in teardown]
        first = [cst.parse_statement(code) for code in setup]
        if first:
            first[0] = first[0].with_changes(leading_lines=stmt.leading_lines)
            stmt = stmt.with_changes(leading_lines=[])
        if self.e.state_keys and isinstance(stmt.body[0].value.value, cst.Dict):
            state = stmt.body[0].value.value
            elements = list(state.elements)
            if elements and elements[-1].comma is cst.MaybeSentinel.DEFAULT:
                elements[-1] = elements[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            quote = "'" if any(isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)
                               and e.key.value.startswith("'") for e in elements) else '"'
            for key, expr in self.e.state_keys:
                elements.append(cst.DictElement(cst.SimpleString(f"{quote}{key}{quote}"), cst.parse_expression(expr)))
            stmt = stmt.with_changes(body=[stmt.body[0].with_changes(
                value=stmt.body[0].value.with_changes(value=state.with_changes(elements=elements)))])
        wrapped = cst.Try(body=cst.IndentedBlock(body=[stmt]),
                          finalbody=cst.Finally(body=cst.IndentedBlock(body=final)))
        return cst.FlattenSentinel([*first, wrapped])

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        if not updated.body:
            self.emptied.add(id(updated))
            return updated.with_changes(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
        return updated

    def leave_Try(self, original: cst.Try, updated: cst.Try):
        final = updated.finalbody
        if final is None or not _only_pass(final.body) or _only_pass(original.finalbody.body):
            return updated
        if updated.handlers:
            return updated.with_changes(finalbody=None)
        if updated.orelse is not None:
            return updated
        # try/finally whose finally only closed the client: the body stands alone
        body = list(updated.body.body)
        body[0] = body[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(body)

    def leave_With(self, original: cst.With, updated: cst.With):
        items = []
        binds: List[cst.BaseStatement] = []
        for orig_item, new_item in zip(original.items, updated.items):
            pos = self._pos(orig_item.item)
            if pos in self.withs:
                if new_item.asname is not None:
                    target = new_item.asname.name
                    binds.append(cst.SimpleStatementLine(body=[cst.Assign(
                        targets=[cst.AssignTarget(target=target)],
                        value=cst.parse_expression(self.withs[pos]))]))
                continue
            items.append(new_item)
        if len(items) == len(updated.items):
            return updated
        body = list(updated.body.body) if isinstance(updated.body, cst.IndentedBlock) else [updated.body]
        if not items:
            stmts = binds + body
            stmts[0] = stmts[0].with_changes(leading_lines=updated.leading_lines)
            return cst.FlattenSentinel(stmts)
        items[-1] = items[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        new = updated.with_changes(items=items, body=updated.body.with_changes(body=binds + body))
        return new

    # -- functions ----------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self.e.merge_lifespan and self._def_line(node) == self.e.merge_lifespan[0]:
            self.lifespan_depth = 1

    def _def_line(self, node: cst.FunctionDef) -> int:
        return self.get_metadata(PositionProvider, node.name).start.line

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef):
        line = self._def_line(original)
        if line in self.e.guard_factories:
            updated = self._guard(updated, *self.e.guard_factories[line])
        if line in self.e.add_params:
            name, annotation, optional = self.e.add_params[line]
            param = cst.Param(name=cst.Name(name), annotation=cst.Annotation(self._annotation(annotation, optional, updated.name.value)),
                              comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                              default=cst.Name("None") if optional else None,
                              equal=cst.AssignEqual(cst.SimpleWhitespace(" "), cst.SimpleWhitespace(" "))
                              if optional else cst.MaybeSentinel.DEFAULT)
            params = list(updated.params.params)
            at = 1 if params and params[0].name.value in ("self", "cls") else 0
            if optional:
                at = len(params)
                if params and params[-1].comma is cst.MaybeSentinel.DEFAULT:
                    params[-1] = params[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            star = updated.params.star_arg
            if at == len(params) and not isinstance(star, (cst.Param, cst.ParamStar)) \
                    and not updated.params.kwonly_params and not isinstance(updated.params.star_kwarg, cst.Param):
                param = param.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            params.insert(at, param)
            updated = updated.with_changes(params=updated.params.with_changes(params=params))
        if self.e.drop_event_decorators:
            keep = [d for d in updated.decorators if not _is_event_decorator(d)]
            if len(keep) != len(updated.decorators) and line in self.e.drop_event_decorators:
                updated = updated.with_changes(decorators=keep)
        if self.e.merge_lifespan and line == self.e.merge_lifespan[0]:
            self.lifespan_depth = 0
        if line in self.e.drop_unused:
            updated = _drop_unread(updated, self.e.drop_unused[line])
        return updated

    def _annotation(self, name: str, optional: bool, function: str) -> cst.BaseExpression:
        """``Request``; for a parameter that defaults to None, ``Optional[Request]``, or
        ``Request | None`` where the project targets Python 3.10+; but ``Request`` alone in a
        function handed to ``Depends``: FastAPI injects the request only into a parameter
        annotated with the class itself."""
        if not optional or function in self.style.dependencies:
            return cst.Name(name)
        if self.style.union_syntax:
            return cst.parse_expression(f"{name} | None")
        self.imports.append(("typing", "Optional", None, 0))
        return cst.parse_expression(f"Optional[{name}]")

    def _guard(self, fn: cst.FunctionDef, site, shared: str) -> cst.FunctionDef:
        """``return <client>`` -> ``if request is None: return <client>`` + ``return <shared>``."""
        body = list(fn.body.body)
        for i, stmt in enumerate(body):
            if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 \
                    and isinstance(stmt.body[0], cst.Return) and stmt.body[0].value is not None:
                expr = cst.Module([]).code_for_node(stmt.body[0].value)
                guard = cst.parse_statement(
                    "if request is None:  # called outside a request: a client of its own\n"
                    f"    return {expr}\n")
                guard = guard.with_changes(leading_lines=stmt.leading_lines)
                body[i:i + 1] = [guard, cst.parse_statement(f"return {shared}\n")]
                return fn.with_changes(body=fn.body.with_changes(body=body))
        return fn

    # -- the module -----------------------------------------------------------------------
    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        if not self.e.new_lifespan:
            return updated
        line, code = self.e.new_lifespan
        body = list(updated.body)
        for i, stmt in enumerate(original.body):
            rng = self.get_metadata(PositionProvider, stmt)
            if rng.start.line <= line <= rng.end.line or rng.start.line > line:
                break
        else:
            i = len(body)
        func = cst.parse_statement(code, config=updated.config_for_parsing)
        func = func.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        if i < len(body):
            nxt = body[i]
            body[i] = nxt.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]
                                       + [ln for ln in nxt.leading_lines if ln.comment is not None])
            kept_comments = [ln for ln in nxt.leading_lines if ln.comment is not None]
            if kept_comments:
                body[i] = nxt.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()] + kept_comments)
        body.insert(i, func)
        return updated.with_changes(body=body)


def _append_args(args: List[cst.Arg], extra: List[cst.Arg]) -> List[cst.Arg]:
    """Append arguments the way a person would: one per line if the call is written so,
    otherwise inline, keeping the line break before the closing bracket and a trailing comma."""
    if not extra:
        return args
    if not args:
        return extra
    last = args[-1]
    trailing = isinstance(last.comma, cst.Comma)
    closing = last.comma.whitespace_after if trailing else last.whitespace_after_arg
    prev = args[-2].comma if len(args) > 1 else None
    one_per_line = isinstance(prev, cst.Comma) and isinstance(prev.whitespace_after, cst.ParenthesizedWhitespace)
    sep = prev.whitespace_after if one_per_line else cst.SimpleWhitespace(" ")
    if not one_per_line and len(args) == 1 and trailing and isinstance(closing, cst.ParenthesizedWhitespace):
        one_per_line, sep = False, cst.SimpleWhitespace(" ")
    empty = cst.SimpleWhitespace("")
    out = args[:-1] + [last.with_changes(comma=cst.Comma(whitespace_after=sep), whitespace_after_arg=empty)]
    out += [a.with_changes(comma=cst.Comma(whitespace_after=sep)) for a in extra[:-1]]
    if trailing:
        out.append(extra[-1].with_changes(comma=cst.Comma(whitespace_after=closing), whitespace_after_arg=empty))
    else:
        out.append(extra[-1].with_changes(whitespace_after_arg=closing))
    return out


def _drop_unread(fn: cst.FunctionDef, names) -> cst.FunctionDef:
    """Remove ``name = <expr>`` statements whose name nothing in the function reads any more."""
    reads = set()

    class Reads(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            node.value.visit(self)
            return False

        def visit_Name(self, node: cst.Name) -> None:
            reads.add(node.value)

    fn.body.visit(Reads())
    unread = {n for n in names if n not in reads}
    if not unread:
        return fn

    class Drop(cst.CSTTransformer):
        def leave_SimpleStatementLine(self, original, updated):
            stmt = updated.body[0] if len(updated.body) == 1 else None
            if isinstance(stmt, cst.Assign) and len(stmt.targets) == 1 \
                    and isinstance(stmt.targets[0].target, cst.Name) and stmt.targets[0].target.value in unread:
                return cst.RemoveFromParent()
            return updated

    return fn.with_changes(body=fn.body.visit(Drop()))


def _only_pass(block: cst.BaseSuite) -> bool:
    body = block.body if isinstance(block, cst.IndentedBlock) else []
    return bool(body) and all(
        isinstance(s, cst.SimpleStatementLine) and all(isinstance(x, cst.Pass) for x in s.body)
        and not s.leading_lines for s in body
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.SimpleString))


def _is_event_decorator(dec: cst.Decorator) -> bool:
    call = dec.decorator
    return (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "on_event")


def apply_edits(source: str, edits: FileEdits, filename: str = "", syntax: Optional[ast.Module] = None,
                before: Optional[Flakes] = None, exported: FrozenSet[str] = frozenset(),
                style: Style = Style()) -> Tuple[str, Flakes, Set[str]]:
    """The module's new text; pyflakes' view of it; the imports left unused but kept because
    other modules import those names from this one (``exported``). ``syntax`` and ``before``
    are the ``ast`` and pyflakes' view of ``source``, when the caller has them already. The
    new code follows the project's ``style``: imports in their isort place, lines within its
    length (pyflakes' view does not change with either)."""
    if syntax is None:
        syntax = ast.parse(source, filename or "<unknown>")
    if before is None:
        before = Flakes(syntax, filename)
    module = cst.parse_module(source)
    applier = ApplyEdits(edits, source, style)
    tree = MetadataWrapper(module, unsafe_skip_copy=True).visit(applier)
    imports = dict.fromkeys([*edits.imports, *applier.imports])
    if imports:
        tree = add_imports(tree, list(imports), sectioner(style.first_party))
    draft = tree.code
    tree, after, kept = drop_unused(tree, ast.parse(draft, filename or "<unknown>"), filename, before,
                                    spec_names(applier.unused), exported)
    text = draft if after is not None else tree.code
    if after is None:
        after = Flakes(ast.parse(text, filename or "<unknown>"), filename)
    return wrap_long_lines(text, source, style.line_length), after, kept
