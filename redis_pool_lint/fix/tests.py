"""Test code that would skip the lifespan the fix relies on, rewritten so that it runs it.

After the fix, handlers read ``request.app.state.redis``, which the app's lifespan sets. A
``TestClient(app)`` runs the lifespan only when entered (``with TestClient(app) as client``),
and ``httpx``'s ``ASGITransport`` never runs it. So, in the project's test files:

- a module-level ``client = TestClient(app)`` becomes a module-scoped pytest fixture that
  enters it, and the tests (and fixtures) that read ``client`` take it as a parameter;
- ``client = TestClient(app)`` in a test or fixture body becomes ``with TestClient(app) as
  client:`` around the rest of the body (a fixture's final ``return client``, ``yield client``);
- a fixture's ``return``/``yield TestClient(app)`` becomes ``with ... as client: yield client``;
- ``async with AsyncClient(transport=ASGITransport(app=app)) as c`` goes inside
  ``async with LifespanManager(app) as manager:``, and the transport gets ``manager.app``,
  when ``asgi_lifespan`` is installed; else inside ``async with
  app.router.lifespan_context(app):`` (Starlette's own), unless the lifespan yields a state.

Anything else (a client handed around, a helper function reading the module's client, an
``ASGITransport`` outside ``async with`` or without asgi-lifespan) is left as it is and
reported at its line with the change to make.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from typing import List, Optional, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .imports import add_imports
from .isort import sectioner
from .style import Style
from .wrap import wrap_long_lines

#: a test module worth parsing: one that builds a test client or an ASGI transport
MENTIONS = re.compile(r"\b(?:TestClient|ASGITransport)\b")


@dataclass
class TestRewrite:
    text: str
    #: (line, what to change by hand) for the places left as they were
    notes: List[Tuple[int, str]] = field(default_factory=list)


def _tail(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return ""


def _call_of(node: Optional[cst.CSTNode], name: str) -> bool:
    return isinstance(node, cst.Call) and _tail(node.func) == name


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _is_fixture(fn: cst.FunctionDef) -> bool:
    for dec in fn.decorators:
        target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        if _tail(target) == "fixture":
            return True
    return False


def _is_test(fn: cst.FunctionDef) -> bool:
    return fn.name.value.startswith("test") or _is_fixture(fn)


class _Reads(cst.CSTVisitor):
    """Does a function read ``name`` as a free name (not a parameter, not assigned in it)?"""

    def __init__(self, name: str) -> None:
        self.name, self.read, self.bound = name, False, False

    def visit_Param(self, node: cst.Param) -> None:
        if node.name.value == self.name:
            self.bound = True

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if isinstance(node.target, cst.Name) and node.target.value == self.name:
            self.bound = True

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)  # a keyword is no read
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name:
            self.read = True


def _reads(fn: cst.CSTNode, name: str) -> Tuple[bool, bool]:
    seen = _Reads(name)
    fn.visit(seen)
    return seen.read, seen.bound


def _add_param(fn: cst.FunctionDef, name: str) -> cst.FunctionDef:
    params = list(fn.params.params)
    if params and isinstance(params[-1].comma, cst.Comma) and not fn.params.kwonly_params \
            and not isinstance(fn.params.star_arg, (cst.Param, cst.ParamStar)):
        last = params[-1]
        params[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        new = cst.Param(cst.Name(name), comma=last.comma.with_changes(whitespace_before=cst.SimpleWhitespace("")))
        params.append(new)
    else:
        params.append(cst.Param(cst.Name(name)))
    return fn.with_changes(params=fn.params.with_changes(params=params))


def _fixture(name: str, call: cst.Call, leading) -> cst.FunctionDef:
    """The fixture that stands for a module's client: module-scoped, as the client was shared."""
    fn = cst.parse_statement(
        f'@pytest.fixture(scope="module")\ndef {name}():\n'
        f"    with {_code(call)} as {name}:\n        yield {name}\n")
    comments = [line for line in leading if line.comment is not None]
    return fn.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine(), *comments])


def _enters_lifespan(node: cst.BaseExpression) -> bool:
    """``LifespanManager(app)`` or ``app.router.lifespan_context(app)``."""
    return _call_of(node, "LifespanManager") or _call_of(node, "lifespan_context")


class _Rewrite(cst.CSTTransformer):
    """Run the lifespan around an ``AsyncClient`` over an ``ASGITransport`` (with ``transform``),
    or note the test clients that still skip it (without). ``how``: "manager" (asgi-lifespan's
    ``LifespanManager``), "router" (Starlette's own ``app.router.lifespan_context(app)``, where
    asgi-lifespan is not installed and the lifespan yields no state: it sets ``app.state``, which
    requests see without the ASGI lifespan protocol) or None (only notes)."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, how: Optional[str], transform: bool) -> None:
        super().__init__()
        self.how, self.transform = how, transform
        self.notes: List[Tuple[int, str]] = []  # (line, what to change)
        self.imports: List[Tuple[str, Optional[str], Optional[str], int]] = []
        self.entered: Set[int] = set()  # ids of calls that are with-items already
        self.managed = 0  # depth of ``async with LifespanManager(...)`` and the like

    # -- calls in with statements are entered already ---------------------------------------
    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            self.entered.add(id(item.item))
            if _enters_lifespan(item.item):
                self.managed += 1

    def leave_With(self, original: cst.With, updated: cst.With) -> cst.BaseStatement:
        self.managed -= sum(1 for item in original.items if _enters_lifespan(item.item))
        if not (self.transform and self.how) or self.managed or original.asynchronous is None:
            return updated
        items = list(updated.items)
        for i, (orig, item) in enumerate(zip(original.items, updated.items)):
            transport = self._transport(orig.item)
            if transport is None:
                continue
            app = self._app_arg(transport)
            if app is None:
                continue
            # a ``with`` of its own around the client's: one ``async with a, b:`` line would
            # be too long, and black and ruff format wrap it differently
            target = _code(app.value)
            if self.how == "manager":
                items[i] = item.with_changes(item=_swap_app(item.item, cst.parse_expression("manager.app")))
                self.imports.append(("asgi_lifespan", "LifespanManager", None, 0))
                enter = f"LifespanManager({target}) as manager"
            else:
                enter = f"{target}.router.lifespan_context({target})"
            inner = updated.with_changes(items=items, leading_lines=[])
            outer = cst.parse_statement(f"async with {enter}:\n    pass\n")
            return outer.with_changes(body=cst.IndentedBlock([inner]), leading_lines=updated.leading_lines)
        return updated

    @staticmethod
    def _transport(node: cst.BaseExpression) -> Optional[cst.Call]:
        if not isinstance(node, cst.Call):
            return None
        for arg in node.args:
            if _call_of(arg.value, "ASGITransport"):
                return arg.value
        return None

    @staticmethod
    def _app_arg(transport: cst.Call) -> Optional[cst.Arg]:
        for arg in transport.args:
            if (arg.keyword and arg.keyword.value == "app") or (arg.keyword is None and not arg.star):
                return arg
        return None

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    # -- what is left: reported ---------------------------------------------------------------
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if self.transform or id(original) in self.entered:
            return updated
        if _tail(original.func) == "TestClient":
            self.notes.append((self._line(original), "the app's lifespan does not run: enter the client, "
                               f"`with {_code(original)} as client:`"))
        elif _tail(original.func) == "ASGITransport" and not self.managed:
            how = ("" if self.how == "manager" else " (pip install asgi-lifespan)")
            self.notes.append((self._line(original), "the app's lifespan does not run under ASGITransport: "
                               f"`async with LifespanManager(app) as manager:`{how} around the client, "
                               "and `ASGITransport(app=manager.app)`"))
        return updated


def _swap_app(node: cst.BaseExpression, new_app: cst.BaseExpression) -> cst.BaseExpression:
    """``AsyncClient(transport=ASGITransport(app=X))`` with ``new_app`` for X."""
    class Swap(cst.CSTTransformer):
        def leave_Call(self, original, updated):
            if not _call_of(updated, "ASGITransport"):
                return updated
            args = [a.with_changes(value=new_app) if (a.keyword and a.keyword.value == "app")
                    or (a.keyword is None and not a.star and i == 0) else a for i, a in enumerate(updated.args)]
            return updated.with_changes(args=args)
    return node.visit(Swap())


class _Functions(cst.CSTTransformer):
    """``client = TestClient(app)`` and ``return TestClient(app)`` in tests and fixtures."""

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if not _is_test(original) or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        body = list(updated.body.body)
        fixture = _is_fixture(original)
        for i, stmt in enumerate(body):
            name, call = _client_assignment(stmt)
            if name is not None:
                rest = body[i + 1:]
                if fixture and rest and _returns(rest[-1], name):
                    rest[-1] = cst.SimpleStatementLine([cst.Expr(cst.Yield(cst.Name(name)))],
                                                       leading_lines=rest[-1].leading_lines)
                if fixture and any(_has_return(s) for s in rest):
                    return updated
                block = cst.With(items=[cst.WithItem(call, asname=cst.AsName(cst.Name(name)))],
                                 body=cst.IndentedBlock(rest or [cst.SimpleStatementLine([cst.Pass()])]),
                                 leading_lines=stmt.leading_lines)
                return updated.with_changes(body=updated.body.with_changes(body=[*body[:i], block]))
            value = _returned_client(stmt) if fixture else None
            if value is not None:
                block = cst.parse_statement("with x as client:\n    yield client\n").with_changes(
                    leading_lines=stmt.leading_lines)
                block = block.with_changes(items=[block.items[0].with_changes(item=value)])
                return updated.with_changes(body=updated.body.with_changes(body=[*body[:i], block, *body[i + 1:]]))
        return updated


def _client_assignment(stmt: cst.CSTNode) -> Tuple[Optional[str], Optional[cst.Call]]:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Assign):
        assign = stmt.body[0]
        if len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name) \
                and _call_of(assign.value, "TestClient"):
            return assign.targets[0].target.value, assign.value
    return None, None


def _returned_client(stmt: cst.CSTNode) -> Optional[cst.Call]:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        value = small.value if isinstance(small, cst.Return) else (
            small.value.value if isinstance(small, cst.Expr) and isinstance(small.value, cst.Yield) else None)
        if _call_of(value, "TestClient"):
            return value
    return None


def _returns(stmt: cst.CSTNode, name: str) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Return)
            and isinstance(stmt.body[0].value, cst.Name) and stmt.body[0].value.value == name)


def _has_return(stmt: cst.CSTNode) -> bool:
    found = []

    class Find(cst.CSTVisitor):
        def visit_Return(self, node):
            found.append(node)

        def visit_FunctionDef(self, node):
            return False
    stmt.visit(Find())
    return bool(found)


def _module_client(module: cst.Module) -> Tuple[cst.Module, List[Tuple[str, cst.CSTNode]], bool]:
    """Module-level ``client = TestClient(app)``: a fixture, and the functions that read it take
    it as a parameter. Returns the module, the places that keep the module's client (a
    non-test function reads it: left alone), and whether ``pytest`` is now needed."""
    body = list(module.body)
    blockers: List[Tuple[str, cst.CSTNode]] = []
    changed = False
    for i, stmt in enumerate(body):
        name, call = _client_assignment(stmt)
        if name is None:
            continue
        readers = []
        for j, other in enumerate(body):
            if j == i:
                continue
            for k, fn in _functions(other):
                read, bound = _reads(fn, name)
                if read and not bound:
                    if not _is_test(fn):
                        blockers.append((name, stmt))
                    readers.append((j, k, fn))
            if not isinstance(other, (cst.FunctionDef, cst.ClassDef)) and _reads(other, name)[0]:
                blockers.append((name, stmt))
        if any(n == name for n, _ in blockers):
            continue
        changed = True
        body[i] = _fixture(name, call, stmt.leading_lines)
        for j, k, fn in readers:
            body[j] = _replace_function(body[j], k, _add_param(fn, name))
    return module.with_changes(body=body), blockers, changed


def _functions(stmt: cst.CSTNode) -> List[Tuple[int, cst.FunctionDef]]:
    """A top-level function, or the methods of a top-level class, with their index (-1: itself)."""
    if isinstance(stmt, cst.FunctionDef):
        return [(-1, stmt)]
    if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
        return [(k, s) for k, s in enumerate(stmt.body.body) if isinstance(s, cst.FunctionDef)]
    return []


def _replace_function(stmt: cst.CSTNode, k: int, fn: cst.FunctionDef) -> cst.CSTNode:
    if k < 0:
        return fn
    body = list(stmt.body.body)
    body[k] = fn
    return stmt.with_changes(body=stmt.body.with_changes(body=body))


def lifespan_manager_available() -> bool:
    return importlib.util.find_spec("asgi_lifespan") is not None


def rewrite_tests(text: str, style: Style = Style(), lifespan_manager: Optional[bool] = None,
                  state: bool = False) -> TestRewrite:
    """The test module ``text`` rewritten to run the app's lifespan, and the places left.
    ``lifespan_manager``: is asgi-lifespan installed (None: look); ``state``: the lifespan
    yields a state dict, which only the ASGI lifespan protocol hands to requests."""
    if not MENTIONS.search(text):
        return TestRewrite(text)
    if lifespan_manager is None:
        lifespan_manager = lifespan_manager_available()
    module = cst.parse_module(text)
    module, blockers, needs_pytest = _module_client(module)
    module = module.visit(_Functions())
    how = "manager" if lifespan_manager else None if state else "router"
    rewrite = _Rewrite(how, transform=True)
    module = MetadataWrapper(module).visit(rewrite)
    specs = list(rewrite.imports) + ([("pytest", None, None, 0)] if needs_pytest else [])
    if specs:
        module = add_imports(module, specs, sectioner(style.first_party))
    new = wrap_long_lines(module.code, text, style.line_length)
    look = _Rewrite(how, transform=False)
    MetadataWrapper(cst.parse_module(new)).visit(look)
    notes = look.notes
    for name in dict.fromkeys(n for n, _ in blockers):  # said once per client, at its line
        line = _line_of(new, f"{name} = ")
        notes = [(ln, msg) for ln, msg in notes if ln != line]
        notes.append((line, f"`{name}` is read outside tests and fixtures: make it a fixture that enters "
                      f"the client (`with TestClient(app) as {name}: yield {name}`) and pass it down"))
    return TestRewrite(new, sorted(notes))


def _line_of(text: str, start: str) -> int:
    """The first line of ``text`` that starts with ``start`` (1 if none does)."""
    return next((n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start)), 1)
