"""One pass over one module's ``ast``: what it defines, registers, builds, closes and calls.

The summary is plain data (names, positions, tuples). Everything that needs more than one
module (is this function request scope? is ``app.state.cache`` a Redis client?) is decided
later by the project index, so a summary can be computed per file, in any order, and cached.

Origins name where a value comes from, as tuples:
``("site", i)`` the i-th construction in the same function, ``("state", attr)`` app or
request state, ``("global", qualname)`` a module-level name, ``("param", name)`` a parameter,
``("call", qualname)`` the return value of a call.
"""
from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .resolve import Bindings, Ctor, classify, dotted, is_sentinel, resolve_relative

Origin = Tuple[str, ...]
Pos = Tuple[int, int]

ROUTE_METHODS = frozenset(
    "get post put patch delete options head trace api_route route websocket "
    "websocket_route".split()
)
ADD_ROUTE_METHODS = {
    "add_api_route": "http",
    "add_route": "http",
    "add_websocket_route": "websocket",
    "add_api_websocket_route": "websocket",
}
APP_CLASSES = frozenset(
    {"fastapi.FastAPI", "fastapi.applications.FastAPI", "starlette.applications.Starlette"}
)
OWNER_CLASSES = frozenset(
    {
        "fastapi.FastAPI",
        "fastapi.applications.FastAPI",
        "fastapi.APIRouter",
        "fastapi.routing.APIRouter",
        "starlette.applications.Starlette",
        "starlette.routing.Router",
        "litestar.Litestar",
        "litestar.Router",
        "litestar.app.Litestar",
    }
)
ROUTE_CLASSES = {
    "starlette.routing.Route": "http",
    "starlette.routing.WebSocketRoute": "websocket",
    "fastapi.routing.APIRoute": "http",
    "fastapi.routing.APIWebSocketRoute": "websocket",
}
DEPENDS = frozenset(
    {
        "fastapi.Depends",
        "fastapi.Security",
        "fastapi.params.Depends",
        "fastapi.params.Security",
        "fastapi.param_functions.Depends",
        "fastapi.param_functions.Security",
    }
)
LITESTAR_ROUTES = frozenset(
    f"litestar.{m}" for m in ("get", "post", "put", "patch", "delete", "head", "route", "websocket")
) | frozenset(
    f"litestar.handlers.{m}" for m in ("get", "post", "put", "patch", "delete", "head", "route", "websocket")
)
MIDDLEWARE_CLASS_FACTORIES = frozenset(
    {"starlette.middleware.Middleware", "fastapi.middleware.Middleware"}
)
CACHE_DECORATORS = frozenset(
    {"functools.lru_cache", "functools.cache", "async_lru.alru_cache", "aiocache.cached",
     "cachetools.cached", "cachetools.func.lru_cache", "cachetools.func.ttl_cache"}
)
TASK_DECORATOR_NAMES = frozenset({"task", "shared_task", "actor", "job", "periodic_task", "cron", "on_after_configure"})
CONTEXT_ENTERS = frozenset({"enter_async_context", "enter_context", "push_async_callback"})
CLOSERS = frozenset({"closing", "aclosing"})
#: ``wait_closed``: aioredis 1.x, after ``close()``; a close too (the fixer drops both)
CLOSE_METHODS = frozenset({"aclose", "close", "disconnect", "wait_closed"})
OFF_LOOP = frozenset({"add_task", "run_in_executor", "to_thread", "run_in_threadpool", "run_sync"})


@dataclass
class Site:
    """A Redis client or pool constructor call."""

    line: int
    col: int
    end_line: int
    end_col: int
    ctor: Ctor
    callee: str
    #: for ``from_pool(x)`` and ``connection_pool=x``: where x comes from
    pool_origin: Optional[Origin] = None
    auto_close: bool = False
    blocking_pool: bool = False
    #: where the result was stored: ("global", q) | ("state", attr) | ("attr", name) | ("local", n)
    stores: List[Origin] = field(default_factory=list)
    guarded: bool = False
    #: names the arguments read: (name, qualified target or None when local to the function)
    arg_names: List[Tuple[str, Optional[str]]] = field(default_factory=list)
    #: keyword names given to the constructor (``**kw`` is "**")
    keywords: List[str] = field(default_factory=list)
    #: built only under ``if <param> is None:``: the parameter (a factory's no-request branch)
    none_guard: Optional[str] = None
    #: the callee as the source spells it (``aioredis.from_url``), for messages
    written: str = ""


@dataclass
class Close:
    line: int
    col: int
    origin: Origin
    method: str  # aclose | close | disconnect | with | enter
    text: str
    #: under ``if <param> is None:`` (a helper closing only the client it built itself)
    none_guard: Optional[str] = None


@dataclass
class Command:
    line: int
    col: int
    origin: Origin
    method: str


@dataclass
class Function:
    qualname: str
    name: str
    line: int
    col: int
    is_async: bool
    cls: Optional[str]
    params: List[str] = field(default_factory=list)
    #: parameter -> dependency target (qualified) from Depends()/Annotated
    param_deps: Dict[str, str] = field(default_factory=dict)
    #: parameter -> annotation class (qualified)
    param_types: Dict[str, str] = field(default_factory=dict)
    #: parameters with any annotation (``request: int`` is no Request, whatever its name)
    annotated: Set[str] = field(default_factory=set)
    decorators: List[str] = field(default_factory=list)
    calls: List[Tuple[str, int]] = field(default_factory=list)
    #: the same calls with their column: (callee, line, col)
    call_sites: List[Tuple[str, int, int]] = field(default_factory=list)
    #: what those calls pass, when they pass anything: (line, col) -> (positional count, keyword
    #: names); -1 positional for ``*args``/``**kw`` (may pass anything)
    call_args: Dict[Tuple[int, int], Tuple[int, Tuple[str, ...]]] = field(default_factory=dict)
    sites: List[Site] = field(default_factory=list)
    closes: List[Close] = field(default_factory=list)
    commands: List[Command] = field(default_factory=list)
    returns: List[Origin] = field(default_factory=list)
    nested: List[str] = field(default_factory=list)
    is_cached: bool = False
    is_task: bool = False
    has_yield: bool = False
    #: keys of a dict it yields (a lifespan's state), in order
    yielded_keys: Optional[List[str]] = None
    #: calls made under ``if`` tests that read ``self.<attr>``: (callee, attr), the lazy
    #: singleton whose guard sits in the caller (``if not self.redis: self.connect()``)
    guarded_calls: List[Tuple[str, str]] = field(default_factory=list)
    #: call results kept beyond the call: (callee, where, under an ``if``) (see ``_store_of``)
    call_stores: List[Tuple[str, Origin, bool]] = field(default_factory=list)
    #: project names given as parameter defaults (``session_factory=get_redis``): called by it
    default_refs: List[str] = field(default_factory=list)
    #: classes handed to a call as arguments: (callee, class), instantiated by the callee
    #: (``Service(Cache)`` whose ``__init__`` does ``self.cache = cache_cls()``)
    class_args: List[Tuple[str, str]] = field(default_factory=list)
    #: ``self.<attr>`` it reads: a property of that name runs then
    self_reads: Set[str] = field(default_factory=set)
    is_property: bool = False
    #: a method whose first parameter is the instance (not static, class method or ``__new__``)
    binds_self: bool = False
    #: its first parameter is filled by the call itself (``self``, ``cls``, ``__new__``'s class)
    implicit_first: bool = False
    #: locals assigned exactly once: name -> (span of the value, names the value reads)
    assigns: Dict[str, Optional[Tuple[Tuple[int, int, int, int], List[Tuple[str, Optional[str]]]]]] = \
        field(default_factory=dict)


@dataclass
class Klass:
    qualname: str
    bases: List[str]
    methods: Dict[str, str]
    line: int
    #: ``metaclass=...`` as qualified (a Singleton metaclass makes every call return one object)
    metaclass: Optional[str] = None


@dataclass
class Registration:
    """A function or class registered with a framework: a route, dependency, middleware..."""

    kind: str  # handler | websocket | exception | dependency | middleware | middleware_class
    #          | lifespan | startup | shutdown | endpoint_class | dependency_call
    #          | include (``owner.include_router(target)``) | mount (``owner.mount(path, target)``)
    target: str  # qualified reference, resolved by the index
    line: int
    col: int
    owner: Optional[str] = None  # the receiver of a route decorator, to check it is a route owner
    route: str = ""  # ``GET /items/{id}`` as the decorator writes it, for messages


@dataclass
class AppSite:
    """A ``FastAPI(...)``/``Starlette(...)`` construction: where the lifespan goes."""

    qualname: str  # the variable it is assigned to
    callee: str
    line: int
    col: int
    #: the enclosing factory function, if built inside one
    factory: Optional[str]
    keywords: List[str]


@dataclass
class ModuleSummary:
    name: str
    path: str
    is_package: bool
    functions: Dict[str, Function] = field(default_factory=dict)
    classes: Dict[str, Klass] = field(default_factory=dict)
    registrations: List[Registration] = field(default_factory=list)
    #: module-level name -> qualified target (imports and simple aliases), for re-exports
    exports: Dict[str, str] = field(default_factory=dict)
    #: module-level name -> Ctor of the Redis object it holds
    redis_globals: Dict[str, Ctor] = field(default_factory=dict)
    #: module-level name -> (line, col, keywords, blocking) of its Redis construction
    global_sites: Dict[str, Tuple[int, int, List[str], bool]] = field(default_factory=dict)
    #: module-level name -> class it is an instance of
    instances: Dict[str, str] = field(default_factory=dict)
    #: where each of ``instances`` is built: name -> (line, col, keywords); an instance of a
    #: FastAPI subclass (``app = MyAPI()``) is an app the fixer can give a lifespan
    instance_sites: Dict[str, Tuple[int, int, List[str]]] = field(default_factory=dict)
    #: route owners (FastAPI/APIRouter/Starlette instances): qualified names
    owners: Set[str] = field(default_factory=set)
    #: app/request state attribute -> Ctor stored there anywhere in the module
    state_ctors: Dict[str, Ctor] = field(default_factory=dict)
    #: module-level ``X = Annotated[T, Depends(f)]`` aliases: name -> qualified f
    dep_aliases: Dict[str, str] = field(default_factory=dict)
    imports_framework: bool = False
    apps: List[AppSite] = field(default_factory=list)
    #: module-level import bindings as written: name -> (module text, level, object or None)
    import_forms: Dict[str, Tuple[str, int, Optional[str]]] = field(default_factory=dict)
    #: module-level Sentinel instances: qualified name -> flavor
    sentinels: Dict[str, str] = field(default_factory=dict)
    #: classes defined here that extend a client or pool class: qualified name -> Ctor
    client_classes: Dict[str, Ctor] = field(default_factory=dict)
    #: modules whose names ``from m import *`` re-exports (absolute, as written)
    star_imports: List[str] = field(default_factory=list)
    #: why this Python could not parse the module (it was read through libcst, as newer code):
    #: the fixer cannot verify a rewrite of it here
    newer_syntax: Optional[str] = None


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _toplevel(body: Sequence[ast.stmt]):
    """Statements of a scope, descending into control flow but not into defs."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody"):
            sub = getattr(node, name, None)
            if sub:
                yield from _toplevel(sub)
        for handler in getattr(node, "handlers", ()) or ():
            yield from _toplevel(handler.body)
        for case in getattr(node, "cases", ()) or ():
            yield from _toplevel(case.body)


def state_attr(node: ast.AST) -> Optional[str]:
    """``x`` for ``<anything>.state.x``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "state":
        return node.attr
    return None


def _const_str(node: Optional[ast.AST]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _kw(call: ast.Call, name: str) -> Optional[ast.expr]:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


class _Summarizer:
    def __init__(self, name: str, path: str, is_package: bool, extra_factories: Sequence[str],
                 extra_routes: Sequence[str], client_classes: Optional[Dict[str, Ctor]] = None) -> None:
        self.s = ModuleSummary(name=name, path=path, is_package=is_package)
        self.extra_factories = tuple(extra_factories)
        self.known: Dict[str, Ctor] = dict(client_classes or {})
        self.class_nodes: Dict[str, Tuple[ast.ClassDef, Bindings]] = {}
        self._attr_types: Dict[str, Dict[str, str]] = {}
        self.extra_routes = tuple(extra_routes)
        self.module_bindings = Bindings()

    # -- module level ---------------------------------------------------------------------
    def run(self, tree: ast.Module) -> ModuleSummary:
        b = self.module_bindings
        mod = self.s.name
        body = [n for n in tree.body if not _is_main_guard(n)]
        for node in _toplevel(body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                b.bind_import(node, mod, self.s.is_package)
                self._note_framework(node)
                for alias in node.names:
                    if isinstance(node, ast.ImportFrom) and alias.name == "*":
                        self.s.star_imports.append(
                            resolve_relative(mod, self.s.is_package, node.level, node.module)
                            if node.level else node.module or "")
                    elif isinstance(node, ast.ImportFrom):
                        self.s.import_forms[alias.asname or alias.name] = (node.module or "", node.level, alias.name)
                    elif alias.asname:
                        self.s.import_forms[alias.asname] = (alias.name, 0, None)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                b.names[node.name] = f"{mod}.{node.name}"
        for name, target in b.names.items():
            if not target.startswith(mod + ".") or target.count(".") > mod.count(".") + 1:
                self.s.exports[name] = target
        self._client_subclasses(body, b)
        for node in _toplevel(body):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self._module_assign(target.id, node.value, b)
        self._scope(body, b, None, None)
        return self.s

    def attr_types(self, cls: str) -> Dict[str, str]:
        """``self.<attr>`` -> the class it holds (so ``self.repo.get()`` is ``Repo.get``), read
        from the class the first time a method asks."""
        found = self._attr_types.get(cls)
        if found is None:
            node = self.class_nodes.get(cls)
            found = self._attr_types[cls] = _attr_types(*node) if node else {}
        return found

    def classify(self, qual: Optional[str]) -> Optional[Ctor]:
        """What a call builds: redis-py's own classes, or a project subclass of one
        (``class FailoverRedis(Redis)``, ``TracedRedis.from_pool(pool)``)."""
        found = classify(qual, self.extra_factories)
        if found is not None or not self.known or not qual:
            return found
        if qual in self.known:
            return self.known[qual]
        cls, _, method = qual.rpartition(".")
        base = self.known.get(cls)
        if base is not None and (method in ("from_url", "from_pool") and base.kind == "client"
                                 or method == "from_url" and base.kind == "pool"):
            return Ctor(base.kind, base.flavor, method, base.library)
        return None

    def _client_subclasses(self, body: Sequence[ast.stmt], b: Bindings) -> None:
        """Module-level classes that extend a client or pool class build what their base builds."""
        for node in body:
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    ctor = self.classify(b.qualify(base))
                    if ctor is not None and ctor.method == "init":
                        self.known[f"{self.s.name}.{node.name}"] = ctor
                        self.s.client_classes[f"{self.s.name}.{node.name}"] = ctor
                        break

    def _note_framework(self, node: ast.AST) -> None:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        if any(n.split(".")[0] in ("fastapi", "starlette", "litestar") for n in names):
            self.s.imports_framework = True

    def _module_assign(self, name: str, value: ast.expr, b: Bindings) -> None:
        qual = f"{self.s.name}.{name}"
        inner = value.value if isinstance(value, ast.Await) else value
        if isinstance(inner, ast.Call):
            callee = b.qualify(inner.func)
            ctor = self.classify(callee) or self._master_for(inner, b)
            if ctor is not None:
                self.s.redis_globals[name] = ctor
                self.s.global_sites[name] = (inner.lineno, inner.col_offset,
                                             [k.arg or "**" for k in inner.keywords],
                                             "Blocking" in (callee or ""))
            elif callee in OWNER_CLASSES:
                self.s.owners.add(qual)
                if callee in APP_CLASSES:
                    self.s.apps.append(AppSite(qual, callee, inner.lineno, inner.col_offset, None,
                                               [k.arg or "**" for k in inner.keywords]))
            elif is_sentinel(callee):
                self.s.sentinels[qual] = is_sentinel(callee)
            elif callee:
                self.s.instances[name] = callee
                self.s.instance_sites[name] = (inner.lineno, inner.col_offset, [k.arg or "**" for k in inner.keywords])
        elif isinstance(inner, ast.Subscript) and (b.qualify(inner.value) or "").endswith("Annotated"):
            elts = inner.slice.elts if isinstance(inner.slice, ast.Tuple) else [inner.slice]
            for meta in elts[1:]:
                if isinstance(meta, ast.Call) and b.qualify(meta.func) in DEPENDS:
                    target = meta.args[0] if meta.args else _kw(meta, "dependency")
                    dep = b.qualify(target if target is not None else elts[0])
                    if dep:
                        self.s.dep_aliases[name] = dep
        elif isinstance(inner, (ast.Name, ast.Attribute)):
            target = b.qualify(inner)
            if target:
                self.s.exports[name] = target
        b.names.setdefault(name, qual)
        if b.names[name] != qual and name not in self.s.exports:
            b.names[name] = qual

    def _master_for(self, call: ast.Call, b: Bindings) -> Optional[Ctor]:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("master_for", "slave_for")):
            return None
        recv = func.value
        flavor = None
        if isinstance(recv, ast.Call):
            flavor = is_sentinel(b.qualify(recv.func))
        else:
            flavor = self.s.sentinels.get(b.qualify(recv) or "")
        if flavor is None:
            return None
        return Ctor("client", flavor, "master_for", "redis")

    # -- scopes ---------------------------------------------------------------------------
    def _scope(self, body: Sequence[ast.stmt], b: Bindings, cls: Optional[str], prefix: Optional[str]) -> None:
        """Visit defs and module/class-level expressions of one scope."""
        for node in body:
            if _is_main_guard(node):
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(node, b, cls, prefix)
            elif isinstance(node, ast.ClassDef):
                self._class(node, b, prefix)
            else:
                _ExprScanner(self, b, None).scan(node)
                for sub in ("body", "orelse", "finalbody"):
                    inner = getattr(node, sub, None)
                    if inner and isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                        self._scope_defs_only(inner, b, cls, prefix)
                for handler in getattr(node, "handlers", ()) or ():
                    self._scope_defs_only(handler.body, b, cls, prefix)

    def _scope_defs_only(self, body, b, cls, prefix) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(node, b, cls, prefix)
            elif isinstance(node, ast.ClassDef):
                self._class(node, b, prefix)
            else:
                for sub in ("body", "orelse", "finalbody"):
                    inner = getattr(node, sub, None)
                    if inner and isinstance(inner, list) and isinstance(inner[0], ast.stmt):
                        self._scope_defs_only(inner, b, cls, prefix)
                for handler in getattr(node, "handlers", ()) or ():
                    self._scope_defs_only(handler.body, b, cls, prefix)

    def _class(self, node: ast.ClassDef, b: Bindings, prefix: Optional[str]) -> None:
        qual = f"{prefix or self.s.name}.{node.name}"
        bases = [q for q in (b.qualify(base) for base in node.bases) if q]
        methods = {
            n.name: f"{qual}.{n.name}"
            for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        meta = next((b.qualify(k.value) or dotted(k.value) for k in node.keywords if k.arg == "metaclass"), None)
        self.s.classes[qual] = Klass(qual, bases, methods, node.lineno, meta)
        self.class_nodes[qual] = (node, b)
        for dec in node.decorator_list:
            _ExprScanner(self, b, None).scan(dec)
        for base in node.bases + [k.value for k in node.keywords]:
            _ExprScanner(self, b, None).scan(base)
        class_bindings = Bindings(b)
        for n in node.body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(n, b, qual, qual)  # methods see the enclosing scope, not the class
            elif isinstance(n, ast.ClassDef):
                self._class(n, b, qual)
            else:
                _ExprScanner(self, class_bindings, None).scan(n)
        call = node.body and next(
            (n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "__call__"),
            None,
        )
        if call is not None:
            names = [a.arg for a in call.args.args]
            if names[1:4] == ["scope", "receive", "send"]:
                self.s.registrations.append(Registration("middleware", f"{qual}.__call__", call.lineno, call.col_offset))

    def _function(self, node, b: Bindings, cls: Optional[str], prefix: Optional[str]) -> None:
        qual = f"{prefix or self.s.name}.{node.name}"
        fn = Function(
            qualname=qual,
            name=node.name,
            line=node.lineno,
            col=node.col_offset,
            is_async=isinstance(node, ast.AsyncFunctionDef),
            cls=cls,
        )
        earlier = self.s.functions.pop(qual, None)
        if earlier is not None:
            # ``def f`` again: the name now means this one, but the decorators already ran on the
            # first (two routes both named ``get_item``), so the first stays under a name of its own
            earlier.qualname = f"{qual}@{earlier.line}"
            self.s.functions[earlier.qualname] = earlier
            for reg in self.s.registrations:
                if reg.target == qual and reg.line == earlier.line:
                    reg.target = earlier.qualname
        self.s.functions[qual] = fn
        outer = _ExprScanner(self, b, None)
        for dec in node.decorator_list:
            self._decorator(fn, dec, b)
            outer.scan(dec)
        args = node.args
        all_args = args.posonlyargs + args.args + args.kwonlyargs
        if args.vararg:
            all_args.append(args.vararg)
        if args.kwarg:
            all_args.append(args.kwarg)
        for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
            outer.scan(default)
            if isinstance(default, (ast.Name, ast.Attribute)):
                ref = b.qualify(default)  # session_factory=get_redis: a function it will call
                if ref and "<locals>" not in ref:
                    fn.default_refs.append(ref)
        local = Bindings(b)
        defaults = dict(zip([a.arg for a in (args.posonlyargs + args.args)][-len(args.defaults):] if args.defaults else [], args.defaults))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
        for arg in all_args:
            fn.params.append(arg.arg)
            local.names[arg.arg] = f"{qual}.<locals>.{arg.arg}"
            if arg.annotation is not None:
                fn.annotated.add(arg.arg)
                outer.scan(arg.annotation)
                self._param_annotation(fn, arg.arg, arg.annotation, b)
            default = defaults.get(arg.arg)
            if isinstance(default, ast.Call) and b.qualify(default.func) in DEPENDS:
                target = default.args[0] if default.args else _kw(default, "dependency")
                if target is not None:
                    dep = b.qualify(target)
                    if dep:
                        fn.param_deps[arg.arg] = dep
                elif arg.arg in fn.param_types:
                    fn.param_deps[arg.arg] = fn.param_types[arg.arg]
                    self.s.registrations.append(
                        Registration("dependency", fn.param_types[arg.arg], default.lineno, default.col_offset)
                    )
            ann_type = fn.param_types.get(arg.arg)
            if ann_type in OWNER_CLASSES:
                owner = f"{qual}.<locals>.{arg.arg}"
                self.s.owners.add(owner)
        if node.returns is not None:
            outer.scan(node.returns)
        kinds = {(dotted(d) or "").rsplit(".", 1)[-1] for d in node.decorator_list}
        if cls and all_args and "staticmethod" not in kinds:
            fn.param_types.setdefault(all_args[0].arg, cls)
            fn.implicit_first = True
            fn.binds_self = "classmethod" not in kinds and node.name != "__new__" and cls in self.s.classes
        _FunctionBody(self, fn, local, node).run()
        # nested defs
        for child in _toplevel(node.body):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                fn.nested.append(f"{qual}.<locals>.{child.name}")
                self._function(child, local, None, f"{qual}.<locals>")
            elif isinstance(child, ast.ClassDef):
                self._class(child, local, f"{qual}.<locals>")

    def _param_annotation(self, fn: Function, name: str, ann: ast.expr, b: Bindings) -> None:
        """Record the parameter's class and an ``Annotated[X, Depends(f)]`` dependency."""
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return
        if isinstance(ann, ast.Subscript) and (b.qualify(ann.value) or "").endswith("Annotated"):
            elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            if not elts:
                return
            base = b.qualify(elts[0])
            if base:
                fn.param_types[name] = base
            for meta in elts[1:]:
                if isinstance(meta, ast.Call) and b.qualify(meta.func) in DEPENDS:
                    target = meta.args[0] if meta.args else _kw(meta, "dependency")
                    dep = b.qualify(target) if target is not None else base
                    if dep:
                        fn.param_deps[name] = dep
                        if target is None:
                            self.s.registrations.append(Registration("dependency", dep, meta.lineno, meta.col_offset))
            return
        if isinstance(ann, ast.BinOp):  # X | None
            ann = ann.left
        if isinstance(ann, ast.Subscript) and (b.qualify(ann.value) or "").rsplit(".", 1)[-1] == "Optional":
            ann = ann.slice  # Optional[X]
        qual = b.qualify(ann)
        if qual:
            fn.param_types[name] = qual
            # an Annotated alias defined elsewhere: resolved by the index
            fn.param_deps.setdefault(name, "alias:" + qual)

    def _decorator(self, fn: Function, dec: ast.expr, b: Bindings) -> None:
        call = dec if isinstance(dec, ast.Call) else None
        func = call.func if call else dec
        qual = b.qualify(func)
        if qual:
            fn.decorators.append(qual)
        if qual in CACHE_DECORATORS:
            fn.is_cached = True
        last = (qual or dotted(func) or "").rsplit(".", 1)[-1]
        if last in TASK_DECORATOR_NAMES:
            fn.is_task = True
        if last in ("property", "cached_property"):
            fn.is_property = True
        reg = lambda kind, owner=None: self.s.registrations.append(  # noqa: E731
            Registration(kind, fn.qualname, fn.line, fn.col, owner)
        )
        if qual in LITESTAR_ROUTES:
            reg("websocket" if qual.endswith("websocket") else "handler")
            return
        if qual and any(_fnmatch(qual, p) for p in self.extra_routes):
            reg("handler")
            return
        if not isinstance(func, ast.Attribute) or call is None:
            return
        recv = func.value
        owner = b.qualify(recv) or dotted(recv)
        attr = func.attr
        if attr in ROUTE_METHODS:
            reg("websocket" if attr.startswith("websocket") else "handler", owner)
            path = _const_str(call.args[0] if call.args else _kw(call, "path"))
            if path is not None:
                verb = "WS" if attr.startswith("websocket") else attr.upper() if attr not in (
                    "api_route", "route") else "ROUTE"
                self.s.registrations[-1].route = f"{verb} {path}"
        elif attr == "middleware" and _const_str(call.args[0] if call.args else None) == "http":
            reg("middleware")
        elif attr == "on_event":
            event = _const_str(call.args[0] if call.args else _kw(call, "event_type"))
            if event in ("startup", "shutdown"):
                reg(event, owner)
        elif attr == "exception_handler":
            reg("exception", owner)


def _annotation_class(ann: Optional[ast.expr], b: Bindings) -> Optional[str]:
    """The class an annotation names: ``T``, ``Optional[T]``, ``T | None``, ``Annotated[T, ...]``."""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            ann = ast.parse(ann.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(ann, ast.BinOp):
        ann = ann.left if not (isinstance(ann.left, ast.Constant) and ann.left.value is None) else ann.right
    if isinstance(ann, ast.Subscript):
        head = (b.qualify(ann.value) or "").rsplit(".", 1)[-1]
        if head in ("Optional", "Annotated"):
            inner = ann.slice
            return _annotation_class(inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner, b)
        return None
    qual = b.qualify(ann) if ann is not None else None
    return qual if qual and qual.rsplit(".", 1)[-1][:1].isupper() else None


def _attr_types(node: ast.ClassDef, b: Bindings) -> Dict[str, str]:
    """``self.<attr>`` -> class, read from the class body and its methods' assignments."""
    out: Dict[str, str] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            found = _annotation_class(stmt.annotation, b)
            if found:
                out[stmt.target.id] = found
    for method in node.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) or not method.args.args:
            continue
        this = method.args.args[0].arg
        params: Dict[str, str] = {}
        args = method.args
        positional = args.posonlyargs + args.args
        defaults = dict(zip([a.arg for a in positional][len(positional) - len(args.defaults):], args.defaults))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
        for arg in positional + args.kwonlyargs:
            found = _annotation_class(arg.annotation, b)
            default = defaults.get(arg.arg)
            if found is None and isinstance(default, ast.Call) and default.args \
                    and b.qualify(default.func) in DEPENDS:
                found = _annotation_class(default.args[0], b)  # repo = Depends(Repo)
            if found:
                params[arg.arg] = found
        for sub in _toplevel(method.body):  # statements only: an assignment is one
            if isinstance(sub, ast.Assign):
                targets, value, ann = sub.targets, sub.value, None
            elif isinstance(sub, ast.AnnAssign):
                targets, value, ann = [sub.target], sub.value, sub.annotation
            else:
                continue
            for target in targets:
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == this):
                    continue
                found = _annotation_class(ann, b) if ann is not None else None
                if found is None and isinstance(value, ast.Name):
                    found = params.get(value.id)
                inner = value.value if isinstance(value, ast.Await) else value
                if found is None and isinstance(inner, ast.Call):
                    found = _annotation_class(inner.func, b)
                if found:
                    out.setdefault(target.attr, found)
    return out


def _fnmatch(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def _returns(body: Sequence[ast.stmt]):
    """Every ``return`` statement in ``body``, at any depth (only statements hold statements:
    the expressions in between are not walked)."""
    for stmt in body:
        if isinstance(stmt, ast.Return):
            yield stmt
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(stmt, name, None)
            if inner:
                for item in inner:
                    if isinstance(item, ast.stmt):
                        yield from _returns([item])
                    else:  # an except handler, a match case: their bodies
                        yield from _returns(item.body)


#: nodes no visitor here looks into: contexts, operators and constants (``ast.NodeVisitor``
#: visits each, through a deprecation check for constants)
_LEAVES = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop, ast.Constant)


class _Visitor(ast.NodeVisitor):
    """``ast.NodeVisitor`` with its method lookup kept per node class, and leaves skipped: the
    summary walks every function of every module it parses, where the stdlib's lookup and field
    iteration were most of its time. The table holds functions, not bound methods: a visitor
    must not refer to itself, or it and the tree it walked would wait for the cycle collector."""

    def visit(self, node: ast.AST):
        try:
            method = self._methods[node.__class__]
        except AttributeError:  # the first node: the table is per instance (``visit_Attribute`` may be)
            self._methods: Dict[type, Callable] = {}
            return self.visit(node)
        except KeyError:
            cls = type(self)
            method = self._methods[node.__class__] = getattr(cls, "visit_" + node.__class__.__name__,
                                                             cls.generic_visit)
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                        self.visit(item)
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                self.visit(value)


class _ExprScanner(_Visitor):
    """Registrations made by expressions: Depends(), routes, middleware, lifespan=, on_startup."""

    def __init__(self, owner: _Summarizer, b: Bindings, fn: Optional[Function]) -> None:
        self.o = owner
        self.b = b
        self.fn = fn

    def scan(self, node: ast.AST) -> None:
        self.visit(node)

    def held_class(self, node: ast.AST) -> Optional[str]:
        """The class ``self.<attr>`` holds, in a method whose class says so."""
        fn = self.fn
        if fn is None or not fn.cls or not fn.params or fn.cls not in self.o.s.classes:
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == fn.params[0]:
            return self.o.attr_types(fn.cls).get(node.attr)
        return None

    def visit_FunctionDef(self, node):  # nested defs are their own scope
        return

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        self.register(node)

    def register(self, node: ast.Call) -> None:
        """Record what this one call registers (no recursion)."""
        s = self.o.s
        b = self.b
        qual = b.qualify(node.func)
        add = s.registrations.append
        if qual in DEPENDS:
            target = node.args[0] if node.args else _kw(node, "dependency")
            if isinstance(target, ast.Call):  # Depends(Limiter(5)): the instance's __call__
                dep = b.qualify(target.func)
                if dep:
                    add(Registration("dependency_instance", dep, target.lineno, target.col_offset))
            elif target is not None:
                dep = b.qualify(target)
                if dep:
                    add(Registration("dependency", dep, target.lineno, target.col_offset))
            return
        if qual in OWNER_CLASSES:
            life = _kw(node, "lifespan")
            if life is not None:
                for item in life.elts if isinstance(life, (ast.List, ast.Tuple)) else [life]:
                    ref = b.qualify(item)
                    if ref:
                        add(Registration("lifespan", ref, item.lineno, item.col_offset))
            for key, kind in (("on_startup", "startup"), ("on_shutdown", "shutdown")):
                seq = _kw(node, key)
                if isinstance(seq, (ast.List, ast.Tuple)):
                    for item in seq.elts:
                        ref = b.qualify(item)
                        if ref:
                            add(Registration(kind + "_item", ref, item.lineno, item.col_offset))
            for key in ("middleware",):
                seq = _kw(node, key)
                if isinstance(seq, (ast.List, ast.Tuple)):
                    for item in seq.elts:
                        if isinstance(item, ast.Call) and item.args:
                            ref = b.qualify(item.args[0])
                            if ref:
                                add(Registration("middleware_class", ref, item.lineno, item.col_offset))
            return
        if qual in ROUTE_CLASSES:
            endpoint = node.args[1] if len(node.args) > 1 else _kw(node, "endpoint")
            if endpoint is not None:
                ref = b.qualify(endpoint)
                if ref:
                    add(Registration(ROUTE_CLASSES[qual] if ROUTE_CLASSES[qual] != "http" else "handler",
                                     ref, endpoint.lineno, endpoint.col_offset, owner="*route*"))
            return
        if qual in MIDDLEWARE_CLASS_FACTORIES and node.args:
            ref = b.qualify(node.args[0])
            if ref:
                add(Registration("middleware_class", ref, node.lineno, node.col_offset))
            return
        life = _kw(node, "lifespan")
        if life is not None and qual and not isinstance(life, (ast.List, ast.Tuple)):
            ref = b.qualify(life)  # ``MyAPI(lifespan=...)``: a subclass of FastAPI, most likely
            if ref:
                add(Registration("lifespan", ref, life.lineno, life.col_offset))
        func = node.func
        if not isinstance(func, ast.Attribute):
            return
        attr = func.attr
        owner = self.held_class(func.value) or b.qualify(func.value) or dotted(func.value)
        if attr in ADD_ROUTE_METHODS:
            endpoint = node.args[1] if len(node.args) > 1 else _kw(node, "endpoint")
            if endpoint is not None:
                ref = b.qualify(endpoint)
                if ref:
                    kind = "websocket" if ADD_ROUTE_METHODS[attr] == "websocket" else "handler"
                    add(Registration(kind, ref, endpoint.lineno, endpoint.col_offset, owner))
        elif attr in ("include_router", "mount", "host"):
            # which app serves which routes: the fixer puts the lifespan on the app that runs it
            target = node.args[0] if attr == "include_router" and node.args else (
                node.args[1] if len(node.args) > 1 else _kw(node, "app" if attr != "include_router" else "router"))
            ref = b.qualify(target) or dotted(target) if target is not None else None
            if ref and owner:
                owner = owner[: -len(".router")] if owner.endswith(".router") else owner
                add(Registration("include" if attr == "include_router" else "mount", ref, node.lineno,
                                 node.col_offset, owner))
        elif attr == "add_middleware" and node.args:
            ref = b.qualify(node.args[0])
            if ref:
                add(Registration("middleware_class", ref, node.lineno, node.col_offset))
        elif attr == "add_event_handler" and len(node.args) >= 2:
            event = _const_str(node.args[0])
            ref = b.qualify(node.args[1])
            if event in ("startup", "shutdown") and ref:
                add(Registration(event + "_item", ref, node.args[1].lineno, node.args[1].col_offset))
        elif attr == "add_exception_handler" and len(node.args) >= 2:
            ref = b.qualify(node.args[1])
            if ref:
                add(Registration("exception", ref, node.lineno, node.col_offset, owner))


class _FunctionBody(_Visitor):
    """Walks one function body in order, tracking where local values come from."""

    def __init__(self, owner: _Summarizer, fn: Function, b: Bindings, node) -> None:
        self.o = owner
        self.fn = fn
        self.b = b
        self.node = node
        self.local: Dict[str, Origin] = {}
        self.site_of: Dict[int, int] = {}
        self.globals: Set[str] = set()
        self.if_depth = 0
        #: stores an earlier ``if <it> ...: return <it>`` guards (a lazy singleton's early return)
        self.early_guards: Set[Origin] = set()
        self.scanner = _ExprScanner(owner, b, fn)
        self.none_guards: List[Optional[str]] = []
        self.guard_attrs: List[List[str]] = []
        if not fn.cls:  # ``self.<attr>`` reads matter in methods only: skip the visit elsewhere
            self._methods = {ast.Attribute: type(self).generic_visit}

    def run(self) -> None:
        # locals: names bound in the body shadow module-level names
        for child in _toplevel(self.node.body):
            if isinstance(child, ast.Global):
                self.globals.update(child.names)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                self.b.bind_import(child, self.o.s.name, self.o.s.is_package)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.b.names[child.name] = f"{self.fn.qualname}.<locals>.{child.name}"
        for stmt in self.node.body:
            self.visit(stmt)

    # -- scope boundaries -------------------------------------------------------------
    def visit_FunctionDef(self, node):
        for dec in node.decorator_list:
            self.visit(dec)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        return

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self.if_depth += 1
        self.guard_attrs.append([sub.attr for sub in ast.walk(node.test)
                                 if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                                 and self._is_self(sub.value.id)] if self.fn.binds_self else [])
        test = node.test
        guard = None
        if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1
                and isinstance(test.ops[0], ast.Is) and isinstance(test.comparators[0], ast.Constant)
                and test.comparators[0].value is None and test.left.id in self.fn.params):
            guard = test.left.id
        self.none_guards.append(guard)
        tested = None
        for ret in _returns(node.body):
            # ``if _client is not None: return _client`` then ``_client = Redis(...)``: built once
            if not isinstance(ret.value, (ast.Name, ast.Attribute)):
                continue
            if tested is None:
                tested = {ast.dump(n) for n in ast.walk(test) if isinstance(n, (ast.Name, ast.Attribute))}
            if ast.dump(ret.value) in tested:
                kept = self._store_of(ret.value)
                if kept is not None and kept[0] != "local":
                    self.early_guards.add(kept)
        for stmt in node.body:
            self.visit(stmt)
        self.none_guards[-1] = None
        for stmt in node.orelse:
            self.visit(stmt)
        self.none_guards.pop()
        self.guard_attrs.pop()
        self.if_depth -= 1

    # -- origins ------------------------------------------------------------------------
    def origin(self, node: Optional[ast.AST]) -> Optional[Origin]:
        if node is None:
            return None
        if isinstance(node, ast.Await):
            return self.origin(node.value)
        if isinstance(node, ast.NamedExpr):
            return self.origin(node.value)
        if isinstance(node, ast.Call):
            idx = self.site_of.get(id(node))
            if idx is not None:
                return ("site", str(idx))
            callee = self.callee(node.func)
            return ("call", callee) if callee else None
        if isinstance(node, ast.Name):
            if node.id in self.local:
                return self.local[node.id]
            if node.id in self.fn.params:
                return ("param", node.id)
            qual = self.b.qualify(node)
            if qual and "<locals>" not in qual:
                return ("global", qual)
            return None
        if isinstance(node, ast.Attribute):
            path = dotted(node)
            if path is not None and path in self.local:
                return self.local[path]
        attr = state_attr(node)
        if attr is not None:
            return ("state", attr)
        if isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name) and base.id in self.fn.param_types and base.id in self.fn.params:
                cls = self.fn.param_types[base.id]
                if base.id == (self.fn.params[0] if self.fn.params else None) and self.fn.cls:
                    return ("attr", cls, node.attr)
            qual = self.b.qualify(node)
            if qual and "<locals>" not in qual:
                return ("global", qual)
        return None

    def callee(self, func: ast.AST) -> Optional[str]:
        """Qualified callee, with methods on typed locals/params resolved to their class."""
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            name = func.value.id
            cls = None
            if name in self.local and self.local[name][0] == "instance":
                cls = self.local[name][1]
            elif name in self.fn.param_types and name not in self.local:
                cls = self.fn.param_types[name]
            if cls:
                return f"{cls}.{func.attr}"
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) \
                and isinstance(func.value.value, ast.Name) and self._is_self(func.value.value.id):
            held = self.o.attr_types(self.fn.cls).get(func.value.attr)
            if held:
                return f"{held}.{func.attr}"
        return self.b.qualify(func)

    def _is_self(self, name: str) -> bool:
        """``name`` is the instance a method was called on (not ``cls``, not a static method)."""
        fn = self.fn
        return fn.binds_self and name == fn.params[0]

    # -- statements ---------------------------------------------------------------------
    def visit_For(self, node) -> None:
        self.visit(node.iter)
        self._bind(node.target, None, node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_Global(self, node):
        self.globals.update(node.names)

    def _bind(self, target: ast.AST, origin: Optional[Origin], value: ast.AST) -> None:
        site = self._site(origin)
        if isinstance(target, ast.Name) and isinstance(value, ast.Call) and \
                self.b.qualify(value.func) in OWNER_CLASSES:
            owner = f"{self.fn.qualname}.<locals>.{target.id}"
            self.o.s.owners.add(owner)
            callee = self.b.qualify(value.func)
            if callee in APP_CLASSES:
                self.o.s.apps.append(AppSite(owner, callee, value.lineno, value.col_offset,
                                             self.fn.qualname, [k.arg or "**" for k in value.keywords]))
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._bind(elt, None, elt)
            return
        store = self._store_of(target)
        if site is not None and store is not None:
            site.stores.append(store)
            if store[0] != "local":
                site.guarded = site.guarded or self.if_depth > 0 or store in self.early_guards
            if store[0] == "state":
                self.o.s.state_ctors[store[1]] = site.ctor
        elif origin is not None and origin[0] == "call" and store is not None and store[0] != "local":
            # what a factory returned, kept: ``if _client is None: _client = make_client()``
            self.fn.call_stores.append((origin[1], store, self.if_depth > 0))
        if isinstance(target, ast.Name) and target.id not in self.globals:
            # a local from here on: it shadows a module-level name of the same spelling
            self.b.names[target.id] = f"{self.fn.qualname}.<locals>.{target.id}"
            if target.id in self.fn.assigns or value is target or isinstance(value, ast.Name) and value is target:
                self.fn.assigns[target.id] = None  # assigned more than once
            elif isinstance(value, ast.expr) and value is not target:
                span = (value.lineno, value.col_offset, getattr(value, "end_lineno", value.lineno),
                        getattr(value, "end_col_offset", value.col_offset))
                self.fn.assigns[target.id] = (span, self._names_in([value]))
            if origin is not None:
                self.local[target.id] = origin
            else:
                inst = self._instance(value)
                sentinel = is_sentinel(inst)
                if sentinel:
                    self.local[target.id] = ("sentinel", sentinel)
                elif inst:
                    self.local[target.id] = ("instance", inst)
                else:
                    self.local.pop(target.id, None)
        elif isinstance(target, ast.Attribute):
            path = dotted(target)
            if path is not None and origin is not None:
                self.local[path] = origin

    def _store_of(self, target: ast.AST) -> Optional[Origin]:
        """Where an assignment keeps a value: ("local", n) | ("global", q) | ("state", attr) |
        ("self", attr) | ("attr", attr) | ("item", container); ``self._clients[url] = ...`` is
        ("self", "[]"), a keyed cache."""
        if isinstance(target, ast.Name):
            if target.id in self.globals:
                return ("global", f"{self.o.s.name}.{target.id}")
            return ("local", target.id)
        if isinstance(target, ast.Attribute):
            attr = state_attr(target)
            if attr is not None:
                return ("state", attr)
            if isinstance(target.value, ast.Name) and self._is_self(target.value.id):
                return ("self", target.attr)
            qual = self.b.qualify(target) if isinstance(target.value, ast.Name) else None
            if qual and "<locals>" not in qual:
                return ("global", qual)  # cache.client = Redis(...)
            return ("attr", target.attr)
        if isinstance(target, ast.Subscript):
            root = target.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name):
                if self._is_self(root.id):
                    return ("self", "[]")
                if root.id in self.fn.params or root.id in self.globals or root.id not in self.fn.assigns:
                    return ("item", root.id)  # cls, a module-level dict, a registry handed in
        return None

    def _instance(self, value: ast.AST) -> Optional[str]:
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Call):
            qual = self.b.qualify(value.func)
            if qual and qual[:1].isalpha() and qual.rsplit(".", 1)[-1][:1].isupper():
                return qual
        return None

    def _site(self, origin: Optional[Origin]) -> Optional[Site]:
        if origin and origin[0] == "site":
            return self.fn.sites[int(origin[1])]
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        origin = self.origin(node.value)
        for target in node.targets:
            self._attr_flag(target, node.value)
            self.visit_target(target)
            self._bind(target, origin, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._bind(node.target, self.origin(node.value), node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target, self.origin(node.value), node.value)

    def visit_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Attribute):
            self.visit(target.value)
        elif isinstance(target, ast.Subscript):
            self.visit(target.value)
            self.visit(target.slice)

    def _attr_flag(self, target: ast.AST, value: ast.AST) -> None:
        """``r.auto_close_connection_pool = True`` makes r own its pool."""
        if (
            isinstance(target, ast.Attribute)
            and target.attr == "auto_close_connection_pool"
            and isinstance(value, ast.Constant)
            and value.value is True
        ):
            site = self._site(self.origin(target.value))
            if site is not None:
                site.auto_close = True

    def _with(self, node) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            origin = self.origin(item.context_expr)
            if origin is not None:
                expr = item.context_expr
                self.fn.closes.append(
                    Close(expr.lineno, expr.col_offset, origin, "with", _text(expr))
                )
            if item.optional_vars is not None and origin is not None:
                self._bind(item.optional_vars, origin, item.context_expr)
        for stmt in node.body:
            self.visit(stmt)

    visit_With = _with
    visit_AsyncWith = _with

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.visit(node.value)
            origin = self.origin(node.value)
            if origin:
                self.fn.returns.append(origin)

    def _yield(self, node) -> None:
        self.fn.has_yield = True
        if node.value is not None:
            self.visit(node.value)
            origin = self.origin(node.value)
            if origin:
                self.fn.returns.append(origin)
            if isinstance(node.value, ast.Dict):
                self.fn.yielded_keys = [_const_str(k) or "" for k in node.value.keys]
                for key, val in zip(node.value.keys, node.value.values):
                    name = _const_str(key)
                    site = self._site(self.origin(val))
                    if name and site is not None:
                        site.stores.append(("state", name))
                        self.o.s.state_ctors[name] = site.ctor

    visit_Yield = _yield
    visit_YieldFrom = _yield

    # -- expressions --------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        for child in [node.func, *node.args, *[k.value for k in node.keywords]]:
            self.visit(child)
        self.scanner.register(node)
        callee_qual = self.b.qualify(node.func)
        ctor = self.o.classify(callee_qual) or self._master_for(node)
        if ctor is not None:
            self._new_site(node, ctor, callee_qual or _text(node.func))
            return
        func = node.func
        if isinstance(func, ast.Attribute):
            attr = func.attr
            recv = func.value
            if attr in CLOSE_METHODS:
                target = recv
                if isinstance(recv, ast.Attribute) and recv.attr == "connection_pool" and attr == "disconnect":
                    target = recv.value
                origin = self.origin(target)
                if origin is not None:
                    self.fn.closes.append(Close(node.lineno, node.col_offset, origin, attr, _text(recv),
                                                next((g for g in reversed(self.none_guards) if g), None)))
                    return
            if attr in CONTEXT_ENTERS and node.args:
                origin = self.origin(node.args[0])
                if origin is not None:
                    self.fn.closes.append(Close(node.lineno, node.col_offset, origin, "enter", _text(node.args[0])))
            if attr in OFF_LOOP:
                for arg in node.args:
                    ref = self.callee(arg) if isinstance(arg, (ast.Name, ast.Attribute)) else None
                    if ref:
                        self.fn.calls.append((ref, node.lineno))
            origin = self.origin(recv)
            if origin is not None and origin[0] in ("site", "state", "global", "param", "call", "attr"):
                self.fn.commands.append(Command(node.lineno, node.col_offset, origin, attr))
        if callee_qual and callee_qual.rsplit(".", 1)[-1] in CLOSERS and node.args:
            origin = self.origin(node.args[0])
            if origin is not None:
                self.fn.closes.append(Close(node.lineno, node.col_offset, origin, "enter", _text(node.args[0])))
        callee = self.callee(func)
        if callee:
            for arg in node.args:
                name = arg.id if isinstance(arg, ast.Name) else arg.attr if isinstance(arg, ast.Attribute) else ""
                if name[:1].isupper():
                    ref = self.b.qualify(arg)
                    if ref and "<locals>" not in ref:
                        self.fn.class_args.append((callee, ref))
            self.fn.calls.append((callee, node.lineno))
            self.fn.call_sites.append((callee, node.lineno, node.col_offset))
            if node.args or node.keywords:
                star = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
                passed = (-1 if star else len(node.args), tuple(k.arg for k in node.keywords if k.arg))
                at = (node.lineno, node.col_offset)
                # ``f(a).g(b)``: both calls start at f; which passed what is unknown, so anything
                self.fn.call_args[at] = passed if self.fn.call_args.get(at, passed) == passed else (-1, ())
            for attrs in self.guard_attrs:
                self.fn.guarded_calls.extend((callee, attr) for attr in attrs)

    def _master_for(self, node: ast.Call) -> Optional[Ctor]:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("master_for", "slave_for")):
            return None
        recv = func.value
        if isinstance(recv, ast.Call):
            flavor = is_sentinel(self.b.qualify(recv.func))
        else:
            origin = self.origin(recv)
            if origin and origin[0] == "sentinel":
                flavor = origin[1]
            else:
                flavor = self.o.s.sentinels.get(self.b.qualify(recv) or "")
        return Ctor("client", flavor, "master_for", "redis") if flavor else None

    def _new_site(self, node: ast.Call, ctor: Ctor, callee: str) -> None:
        pool_arg = None
        if ctor.method == "from_pool":
            pool_arg = node.args[0] if node.args else _kw(node, "connection_pool")
        elif ctor.kind == "client":
            pool_arg = _kw(node, "connection_pool")
        auto = _kw(node, "auto_close_connection_pool")
        blocking = False
        if ctor.kind == "pool":
            blocking = "Blocking" in callee
        elif pool_arg is not None:
            inner = pool_arg.value if isinstance(pool_arg, ast.Await) else pool_arg
            if isinstance(inner, ast.Call):
                blocking = "Blocking" in (self.b.qualify(inner.func) or "")
            else:
                psite = self._site(self.origin(inner))
                blocking = bool(psite and psite.ctor.kind == "pool" and "Blocking" in psite.callee)
        pool_class = _kw(node, "connection_pool_class")
        if pool_class is not None and "Blocking" in (_text(pool_class)):
            blocking = True
        site = Site(
            line=node.lineno,
            col=node.col_offset,
            end_line=getattr(node, "end_lineno", node.lineno) or node.lineno,
            end_col=getattr(node, "end_col_offset", node.col_offset) or node.col_offset,
            ctor=ctor,
            callee=callee,
            pool_origin=self.origin(pool_arg) if pool_arg is not None else None,
            auto_close=isinstance(auto, ast.Constant) and auto.value is True,
            blocking_pool=blocking,
        )
        if pool_arg is not None and site.pool_origin is None:
            site.pool_origin = ("unknown",)
        site.keywords = [k.arg or "**" for k in node.keywords]
        site.written = _text(node.func)
        site.arg_names = self._names_in([*node.args, *[k.value for k in node.keywords]])
        site.none_guard = next((g for g in reversed(self.none_guards) if g), None)
        self.site_of[id(node)] = len(self.fn.sites)
        self.fn.sites.append(site)

    def _names_in(self, nodes) -> List[Tuple[str, Optional[str]]]:
        """Names the expressions read, with their qualified target (None: local to the function)."""
        out = []
        for arg in nodes:
            for sub in _walk_names(arg):
                if isinstance(sub.ctx, ast.Load):
                    qual = self.b.qualify(sub)
                    if sub.id in self.fn.params or (qual and "<locals>" in qual):
                        qual = None
                    elif qual is None and sub.id not in _BUILTINS:
                        qual = None
                    elif qual is None:
                        qual = "builtins." + sub.id
                    out.append((sub.id, qual))
        return out

    def visit_Lambda(self, node):
        self.visit(node.body)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) and self._is_self(node.value.id):
            self.fn.self_reads.add(node.attr)
        self.generic_visit(node)


_BUILTINS = frozenset(dir(__import__("builtins")))


def _walk_names(node: ast.AST) -> Iterator[ast.Name]:
    """The ``Name`` nodes under ``node``, in ``ast.walk``'s order, at a third of its cost (every
    local assignment's value is walked, and ``ast.walk`` visits each context and operator)."""
    todo = deque([node])
    while todo:
        node = todo.popleft()
        if node.__class__ is ast.Name:
            yield node
            continue
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                todo.extend(item for item in value if isinstance(item, ast.AST) and not isinstance(item, _LEAVES))
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                todo.append(value)


def _text(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node the parser makes
        return "<expr>"


def summarize(tree: ast.Module, name: str, path: str, is_package: bool = False,
              extra_factories: Sequence[str] = (), extra_routes: Sequence[str] = (),
              client_classes: Optional[Dict[str, Ctor]] = None) -> ModuleSummary:
    """``client_classes``: subclasses of client and pool classes defined in other modules of
    the project (qualified name -> what they build), found by a first pass."""
    return _Summarizer(name, path, is_package, extra_factories, extra_routes, client_classes).run(tree)
