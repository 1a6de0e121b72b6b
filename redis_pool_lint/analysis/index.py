"""The project index: module summaries joined, names resolved across modules, request scope.

Request scope is computed once per project, breadth first from the framework's entry points
(routes, dependencies, middleware), so each function gets the shortest call chain that makes
it run per request. Lifespan and startup functions are never entry points.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from .resolve import LIBRARIES, Ctor
from .summary import OWNER_CLASSES, Function, Klass, ModuleSummary, Origin

MIDDLEWARE_BASES = ("starlette.middleware.base.BaseHTTPMiddleware",)
ENDPOINT_BASES = ("starlette.endpoints.HTTPEndpoint", "starlette.endpoints.WebSocketEndpoint")
ENDPOINT_METHODS = frozenset(
    "get post put patch delete head options on_connect on_receive on_disconnect".split()
)

# Role precedence: the most direct reason a function runs per request names its finding.
ROLES = ("handler", "dependency", "middleware", "helper")


@dataclass(frozen=True)
class Scope:
    """Why a function runs per request."""

    role: str  # handler | dependency | middleware | helper
    chain: Tuple[str, ...]  # qualnames from the entry point to this function
    websocket: bool = False


class ModuleNames:
    """Find a project module by its dotted name, or by a suffix of it.

    The root a tool is run from is not always the root of the import path (``backend/app``
    imported as ``app``), and one tree may hold several projects: a suffix match picks the
    candidate that shares the longest package prefix with the importing module. An import path
    may also start inside a package (an app run from its own ``app/`` folder imports
    ``dependencies.redis``): such a suffix counts only for modules under that package, and never
    for the name of a client library.
    """

    def __init__(self, names: Iterable[str], packages: Iterable[str] = ()) -> None:
        self.exact = set(names)
        packages = set(packages)
        self.suffixes: Dict[str, List[str]] = {}
        self.inner: Dict[str, List[Tuple[str, str]]] = {}
        for name in self.exact:
            parts = name.split(".")
            for i in range(1, len(parts)):
                suffix = ".".join(parts[i:])
                prefix = ".".join(parts[:i])
                if prefix in packages:
                    if parts[i] not in LIBRARIES:
                        self.inner.setdefault(suffix, []).append((name, prefix))
                    continue
                self.suffixes.setdefault(suffix, []).append(name)

    def may_find(self, dotted_name: str) -> bool:
        """``find`` may answer for this name from some module (False: from none)."""
        return dotted_name in self.exact or dotted_name in self.suffixes or dotted_name in self.inner

    def find(self, dotted_name: str, near: str) -> Optional[str]:
        if dotted_name in self.exact:
            return dotted_name
        candidates = self.suffixes.get(dotted_name)
        if not candidates:
            inside = [name for name, prefix in self.inner.get(dotted_name, ()) if near.startswith(prefix + ".")]
            if not inside:
                return None
            return max(sorted(inside), key=len)  # the import root nearest the importing module
        if len(candidates) == 1:
            return candidates[0]
        near_parts = near.split(".")

        def shared(name: str) -> Tuple[int, int]:
            parts = name.split(".")
            n = 0
            while n < min(len(parts), len(near_parts)) and parts[n] == near_parts[n]:
                n += 1
            return n, -len(parts)

        return max(sorted(candidates), key=shared)


class Project:
    def __init__(self, summaries: Iterable[ModuleSummary], packages: Optional[Iterable[str]] = None) -> None:
        self.modules: Dict[str, ModuleSummary] = {}
        for summary in summaries:
            self.modules[summary.name] = summary
        self.functions: Dict[str, Tuple[ModuleSummary, Function]] = {}
        self.classes: Dict[str, Klass] = {}
        self.owners = set()
        self.redis_globals: Dict[str, Ctor] = {}
        self.instances: Dict[str, str] = {}
        self.state_ctors: Dict[str, Ctor] = {}
        if packages is None:
            packages = [m.name for m in self.modules.values() if m.is_package]
        self.names = ModuleNames(self.modules, packages)
        for mod in self.modules.values():
            for qual, fn in mod.functions.items():
                self.functions[qual] = (mod, fn)
            self.classes.update(mod.classes)
            self.owners.update(mod.owners)
            for name, ctor in mod.redis_globals.items():
                self.redis_globals[f"{mod.name}.{name}"] = ctor
            for name, cls in mod.instances.items():
                self.instances[f"{mod.name}.{name}"] = cls
            for attr, ctor in mod.state_ctors.items():
                self.state_ctors.setdefault(attr, ctor)
        self._canon: Dict[Tuple[str, str], str] = {}
        self._resolving: set = set()
        self.scopes: Dict[str, Scope] = {}
        self.lifespans: Dict[str, Tuple[int, int]] = {}
        self.startups: List[Tuple[str, str, int, int]] = []  # (kind, qualname, line, col)
        self.shutdowns: List[str] = []
        self._callers: Optional[Dict[str, List[Tuple[str, int, int]]]] = None
        #: handler -> ``GET /items/{id}``, as its decorator writes it (for messages)
        self.routes: Dict[str, str] = {}
        self._compute_scope()

    # -- names ------------------------------------------------------------------------------
    def _module_for(self, dotted_name: str, near: str) -> Optional[str]:
        return self.names.find(dotted_name, near)

    def canonical(self, qual: str, near: str = "") -> str:
        """Follow module re-exports, module-path suffixes and instances to a defined name."""
        key = (qual, near)
        cached = self._canon.get(key)
        if cached is not None:
            return cached
        result = qual
        for _ in range(8):
            if result in self.functions or result in self.classes or result in self.owners \
                    or result in self.redis_globals or result in self.instances:
                break
            parts = result.split(".")
            rewritten = None
            for cut in range(len(parts), 0, -1):
                mod = self._module_for(".".join(parts[:cut]), near)
                if mod is None:
                    continue
                rest = parts[cut:]
                if not rest:
                    # ``pkg.name`` where pkg's __init__ rebinds ``name`` (a function re-exported
                    # from the submodule of the same name): the package attribute wins.
                    parent = self.modules.get(mod.rpartition(".")[0])
                    export = parent.exports.get(parts[-1]) if parent else None
                    if export and export != result and export not in self._resolving \
                            and self._canonical_guarded(export, parent.name) != mod:
                        rewritten = export
                        near = parent.name
                    else:
                        rewritten = mod
                    break
                summary = self.modules[mod]
                head = rest[0]
                star = self._star_source(summary, head)
                if head in summary.exports and summary.exports[head] != f"{mod}.{head}":
                    rewritten = ".".join([summary.exports[head], *rest[1:]])
                    near = mod
                elif star is not None:
                    rewritten = ".".join([star, *rest])
                    near = mod
                else:
                    inst = self.instances.get(f"{mod}.{head}")
                    if inst and len(rest) > 1:
                        rewritten = ".".join([self.canonical(inst, mod), *rest[1:]])
                    else:
                        rewritten = ".".join([mod, *rest])
                break
            if rewritten is None or rewritten == result:
                # a method of a class: Class.method may live on a base class
                result = self.inherited(result, near) or result
                break
            result = rewritten
        self._canon[key] = result
        return result

    def _star_source(self, summary: ModuleSummary, name: str) -> Optional[str]:
        """The module a name not defined in ``summary`` comes from through ``from m import *``."""
        if not summary.star_imports or self._defines(summary, name):
            return None
        for star in summary.star_imports:
            found = self._module_for(star, summary.name)
            if found is not None and found != summary.name and self._defines(self.modules[found], name):
                return found
        return None

    def _defines(self, summary: ModuleSummary, name: str) -> bool:
        qual = f"{summary.name}.{name}"
        return (qual in self.functions or qual in self.classes or qual in self.owners
                or qual in self.redis_globals or qual in self.instances or name in summary.exports
                or name in summary.dep_aliases)

    def _canonical_guarded(self, qual: str, near: str) -> str:
        self._resolving.add(qual)
        try:
            return self.canonical(qual, near)
        finally:
            self._resolving.discard(qual)

    def inherited(self, qual: str, near: str) -> Optional[str]:
        cls, _, method = qual.rpartition(".")
        seen = set()
        while cls in self.classes and cls not in seen:
            seen.add(cls)
            klass = self.classes[cls]
            if method in klass.methods:
                return klass.methods[method]
            if not klass.bases:
                return None
            cls = self.canonical(klass.bases[0], near)
        return None

    def function(self, qual: str, near: str = "") -> Optional[Function]:
        entry = self.functions.get(self.canonical(qual, near))
        return entry[1] if entry else None

    def module_of(self, fn: Function) -> ModuleSummary:
        return self.functions[fn.qualname][0]

    def is_subclass(self, cls: str, bases: Tuple[str, ...], near: str = "") -> bool:
        seen = set()
        stack = [cls]
        while stack:
            cur = self.canonical(stack.pop(), near)
            if cur in bases:
                return True
            if cur in seen or cur not in self.classes:
                continue
            seen.add(cur)
            stack.extend(self.classes[cur].bases)
        return False

    def callable_targets(self, qual: str, near: str, call_method: str = "__init__") -> List[str]:
        """Functions that run when ``qual`` is called: itself, or a class's __init__/__call__."""
        canon = self.canonical(qual, near)
        if canon in self.functions:
            return [canon]
        if canon in self.classes:
            found = self.inherited(f"{canon}.{call_method}", near)
            return [found] if found else []
        if canon in self.instances:  # a module-level instance used as a callable
            cls = self.canonical(self.instances[canon], near)
            found = self.inherited(f"{cls}.__call__", near)
            return [found] if found else []
        return []

    # -- request scope ----------------------------------------------------------------------
    def _is_owner(self, owner: Optional[str], mod: ModuleSummary) -> bool:
        if owner is None:
            return False
        if owner == "*route*" or owner in self.owners:
            return True
        canon = self.canonical(owner, mod.name)
        if canon in self.owners:
            return True
        if canon in OWNER_CLASSES or canon in self.classes and self.is_subclass(canon, OWNER_CLASSES, mod.name):
            return True  # ``self.api.add_route(...)`` where ``self.api = Starlette()``: the class it holds
        if canon in self.instances:  # an instance of a subclass: class InternalAPI(FastAPI)
            return self.is_subclass(self.instances[canon], OWNER_CLASSES, mod.name)
        if canon in self.functions or canon in self.classes or canon in self.redis_globals:
            return False  # something we know, and not a route owner (a Flask app, a cache...)
        # an owner we cannot see (a parameter, an import from outside the tree) in framework code
        last = canon.rsplit(".", 1)[-1]
        return mod.imports_framework and (last in _OWNER_NAMES or last.endswith(("router", "app")))

    def _compute_scope(self) -> None:
        """Breadth first from the entry points, most direct role first."""
        seeds = self._entry_points()
        order = {role: i for i, role in enumerate(ROLES)}
        seeds.sort(key=lambda item: order[item[1].role])
        queue = deque()
        for qual, scope in seeds:
            if qual in self.scopes or qual in self.lifespans:
                continue
            _, fn = self.functions.get(qual, (None, None))
            if fn is None or fn.is_task:
                continue
            self.scopes[qual] = scope
            queue.append(qual)
        while queue:
            qual = queue.popleft()
            mod, fn = self.functions[qual]
            scope = self.scopes[qual]
            if fn.is_cached:
                continue  # its body runs once; what it calls does too
            for target in self._callees(fn, mod):
                if target in self.scopes or target in self.lifespans:
                    continue
                _, callee = self.functions[target]
                if callee.is_task:
                    continue
                self.scopes[target] = Scope("helper", scope.chain + (target,), scope.websocket)
                queue.append(target)

    def param_dependency(self, fn: Function, param: str, near: str) -> Optional[str]:
        """The dependency a parameter receives, through ``Annotated`` aliases defined anywhere."""
        dep = fn.param_deps.get(param)
        if dep is None or not dep.startswith("alias:"):
            return dep
        canon = self.canonical(dep[len("alias:"):], near)
        mod_name, _, name = canon.rpartition(".")
        mod = self.modules.get(mod_name)
        return mod.dep_aliases.get(name) if mod else None

    def _entry_points(self) -> List[Tuple[str, Scope]]:
        """Routes, dependencies and middleware, each with its role; lifespans and startup
        handlers are recorded on the way (they are never entry points)."""
        seeds: List[Tuple[str, Scope]] = []
        for mod in self.modules.values():
            near = mod.name
            for reg in mod.registrations:
                kind = reg.kind
                if kind in ("handler", "websocket", "exception"):
                    if kind != "exception" and reg.owner is not None and not self._is_owner(reg.owner, mod):
                        continue
                    canon = self.canonical(reg.target, near)
                    if canon in self.classes and self.is_subclass(canon, ENDPOINT_BASES, near):
                        for name, method in self.classes[canon].methods.items():
                            if name in ENDPOINT_METHODS:
                                seeds.append((method, Scope("handler", (method,), "WebSocket" in str(self.classes[canon].bases))))
                        continue
                    for target in self.callable_targets(reg.target, near):
                        seeds.append((target, Scope("handler", (target,), kind == "websocket")))
                        if reg.route:
                            self.routes.setdefault(target, reg.route)
                elif kind == "dependency":
                    for target in self._dependency_targets(reg.target, near):
                        seeds.append((target, Scope("dependency", (target,))))
                elif kind == "dependency_instance":
                    canon = self.canonical(reg.target, near)
                    if canon in self.functions:
                        # Depends(make_dep(...)): the factory returns one of its nested functions
                        for inner in self.functions[canon][1].nested:
                            seeds.append((inner, Scope("dependency", (inner,))))
                        continue
                    found = self.inherited(f"{canon}.__call__", near)
                    if found and found in self.functions:
                        seeds.append((found, Scope("dependency", (found,))))
                elif kind == "middleware":
                    for target in self.callable_targets(reg.target, near):
                        seeds.append((target, Scope("middleware", (target,))))
                elif kind == "middleware_class":
                    canon = self.canonical(reg.target, near)
                    for method in ("dispatch", "__call__"):
                        found = self.inherited(f"{canon}.{method}", near)
                        if found and found in self.functions:
                            seeds.append((found, Scope("middleware", (found,))))
                            break
                elif kind == "lifespan":
                    canon = self.canonical(reg.target, near)
                    if canon in self.functions:
                        self.lifespans[canon] = (reg.line, reg.col)
                elif kind in ("startup", "startup_item"):
                    canon = self.canonical(reg.target, near)
                    if canon in self.functions:
                        self.startups.append((kind, canon, reg.line, reg.col))
                elif kind in ("shutdown", "shutdown_item"):
                    canon = self.canonical(reg.target, near)
                    if canon in self.functions:
                        self.shutdowns.append(canon)
            for cls in mod.classes.values():
                if cls.bases and self.is_subclass(cls.qualname, MIDDLEWARE_BASES, near):
                    found = self.inherited(f"{cls.qualname}.dispatch", near)
                    if found and found in self.functions:
                        seeds.append((found, Scope("middleware", (found,))))
                if cls.bases and self.is_subclass(cls.qualname, ENDPOINT_BASES, near):
                    for name, method in cls.methods.items():
                        if name in ENDPOINT_METHODS:
                            seeds.append((method, Scope("handler", (method,))))
        # Lifespan-ish functions named so and decorated as context managers count too.
        for qual, (mod, fn) in self.functions.items():
            if fn.name == "lifespan" and any(d.endswith("asynccontextmanager") for d in fn.decorators):
                self.lifespans.setdefault(qual, (fn.line, fn.col))

        return seeds

    def _dependency_targets(self, ref: str, near: str) -> List[str]:
        canon = self.canonical(ref, near)
        if canon in self.classes:
            found = self.inherited(f"{canon}.__init__", near)
            return [found] if found and found in self.functions else []
        return self.callable_targets(ref, near)

    def _callees(self, fn: Function, mod: ModuleSummary) -> List[str]:
        out: List[str] = []
        for callee, _line in fn.calls:
            out.extend(self.callable_targets(callee, mod.name))
        # sub-dependencies declared in the signature run per request too
        for param in fn.param_deps:
            dep = self.param_dependency(fn, param, mod.name)
            if dep:
                out.extend(self._dependency_targets(dep, mod.name))
        # a function given as a parameter's default is there to be called
        for ref in fn.default_refs:
            canon = self.canonical(ref, mod.name)
            if canon in self.functions:
                out.append(canon)
        # a class handed to a project callable is built by it
        for callee, ref in fn.class_args:
            if self.canonical(ref, mod.name) in self.classes and self.callable_targets(callee, mod.name):
                out.extend(self._dependency_targets(ref, mod.name))
        # ``self.client`` runs a property of that name
        if fn.cls:
            for attr in fn.self_reads:
                found = self.inherited(f"{fn.cls}.{attr}", mod.name)
                if found in self.functions and self.functions[found][1].is_property:
                    out.append(found)
        # a decorator defined in the project wraps the function: its innermost defs run per call
        for dec in fn.decorators:
            target = self.function(dec, mod.name)
            if target is None:
                continue
            wrappers = self._wrappers(target)
            out.extend(wrappers)
            if fn.cls:
                # a method's wrapper is called with the instance: its ``self.x()`` is ``Class.x``
                for leaf in wrappers:
                    wfn = self.functions[leaf][1]
                    if not wfn.params:
                        continue
                    this = f"{leaf}.<locals>.{wfn.params[0]}."
                    for callee, _line in wfn.calls:
                        if callee.startswith(this):
                            out.extend(self.callable_targets(fn.cls + "." + callee[len(this):], mod.name))
        return [t for t in out if t in self.functions]

    def _wrappers(self, deco: Function) -> List[str]:
        leaves: List[str] = []
        stack = list(deco.nested)
        while stack:
            qual = stack.pop()
            entry = self.functions.get(qual)
            if entry is None:
                continue
            if entry[1].nested:
                stack.extend(entry[1].nested)
            else:
                leaves.append(qual)
        return leaves

    def callers_in_scope(self) -> Dict[str, List[Tuple[str, int, int]]]:
        """Function -> the request-scope call sites that reach it: (caller, line, col)."""
        if self._callers is None:
            self._callers = {}
            for qual in self.scopes:
                cmod, caller = self.functions[qual]
                for callee, line, col in caller.call_sites:
                    for target in self.callable_targets(callee, cmod.name):
                        self._callers.setdefault(target, []).append((qual, line, col))
        return self._callers

    # -- what values are --------------------------------------------------------------------
    def returns_of(self, qual: str, near: str, depth: int = 0) -> List[Tuple[Function, Origin]]:
        """Origins a function returns or yields, following calls a few levels deep."""
        fn = self.function(qual, near)
        if fn is None or depth > 3:
            return []
        out = []
        for origin in fn.returns:
            if origin[0] == "call":
                out.extend(self.returns_of(origin[1], self.module_of(fn).name, depth + 1))
            else:
                out.append((fn, origin))
        return out


_OWNER_NAMES = frozenset({"app", "router", "api", "api_router", "application", "v1", "v2"})
