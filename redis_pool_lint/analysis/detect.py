"""Findings from a project index: the one place that decides which code a site gets.

Every face (flake8, ``check``, the fixer) consumes these findings; none detects on its own.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Set, Tuple

from ..rules import BY_CODE
from .index import Project, Scope
from .resolve import Ctor
from .summary import Close, Function, ModuleSummary, Origin, Site
from .versions import FROM_POOL, Pin

REQUEST_CLASSES = frozenset({"Request", "WebSocket", "HTTPConnection"})

# Client methods that do no I/O: calling them from async code does not block the loop.
NON_IO = frozenset(
    {"pipeline", "pubsub", "lock", "client", "get_encoder", "get_connection_kwargs",
     "register_script", "set_response_callback", "monitor", "aclose", "close", "disconnect"}
)


@dataclass(frozen=True)
class Finding:
    code: str
    path: str
    line: int
    col: int
    message: str
    #: facts for the fixer: the function holding the site, its role, the site's span.
    function: str = ""
    role: str = ""
    span: Tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def rule(self):
        return BY_CODE[self.code]


Resolved = Tuple[str, object, object]  # ("site", fn, Site) | ("state", attr, ctor) | ("global", q, ctor)


def outside_request(fn: Function, guard: Optional[str]) -> bool:
    """Under ``if request is None:`` (``guard`` a Request parameter): runs only when called
    outside a request, or by a request-scope caller that leaves the request out."""
    return bool(guard) and fn.param_types.get(guard, "").rsplit(".", 1)[-1] in REQUEST_CLASSES


def passes(fn: Function, caller: Function, line: int, col: int, param: str) -> bool:
    """``caller``'s call of ``fn`` at (line, col) passes ``param``: by name, by position, or
    maybe through ``*args``/``**kw``."""
    count, keywords = caller.call_args.get((line, col), (0, ()))
    index = fn.params.index(param) - (1 if fn.implicit_first else 0) if param in fn.params else -1
    return count < 0 or param in keywords or 0 <= index < count


def short(qual: str) -> str:
    """``app.routers.items.Service.__init__`` -> ``Service.__init__`` (no module, no <locals>)."""
    parts = [p.partition("@")[0] for p in qual.split(".") if p != "<locals>"]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return ".".join(parts[-2:])
    return parts[-1]


class _Detector:
    def __init__(self, project: Project, root: str = "",
                 pins: Optional[Callable[[], Dict[str, Pin]]] = None) -> None:
        self.p = project
        self.root = root
        self.pins = pins
        self.out: Dict[str, List[Finding]] = {}
        self.seen: Set[Tuple[str, int, int, str]] = set()
        self.at: Set[Tuple[str, int, int]] = set()
        self._guarded: Optional[Dict[str, Set[str]]] = None
        self._per_request: Optional[Set[str]] = None

    def emit(self, code: str, mod: ModuleSummary, line: int, col: int, detail: str = "",
             fn: Optional[Function] = None, role: str = "", site: Optional[Site] = None) -> None:
        key = (mod.path, line, col, code)
        if key in self.seen:
            return
        self.seen.add(key)
        self.at.add((mod.path, line, col))
        span = (site.line, site.col, site.end_line, site.end_col) if site else (0, 0, 0, 0)
        self.out.setdefault(mod.path, []).append(
            Finding(code, mod.path, line, col, BY_CODE[code].format(detail),
                    fn.qualname if fn else "", role, span)
        )

    # -- values -----------------------------------------------------------------------------
    def resolve(self, fn: Function, origin: Optional[Origin], depth: int = 0) -> List[Resolved]:
        if origin is None or depth > 4:
            return []
        kind = origin[0]
        near = self.p.module_of(fn).name
        if kind == "site":
            return [("site", fn, fn.sites[int(origin[1])])]
        if kind == "state":
            ctor = self.p.state_ctors.get(origin[1])
            if ctor is None and any(w in origin[1].lower() for w in ("redis", "valkey")):
                ctor = Ctor("client", "unknown", "init", "redis")
            return [("state", origin[1], ctor)] if ctor else []
        if kind == "global":
            canon = self.p.canonical(origin[1], near)
            ctor = self.p.redis_globals.get(canon)
            return [("global", canon, ctor)] if ctor else []
        if kind == "param":
            dep = self.p.param_dependency(fn, origin[1], near)
            if not dep:
                return []
            return self._returns(dep, near, depth)
        if kind == "call":
            return self._returns(origin[1], near, depth)
        return []

    def _returns(self, qual: str, near: str, depth: int) -> List[Resolved]:
        out: List[Resolved] = []
        for target in self.p.callable_targets(qual, near):
            _, callee = self.p.functions[target]
            for origin in callee.returns:
                out.extend(self.resolve(callee, origin, depth + 1))
        return out

    def pool_is_shared(self, fn: Function, site: Site) -> bool:
        """Whether the pool a client is given was made outside this call (app state, a global...)."""
        origin = site.pool_origin
        if origin is None:
            return site.ctor.method == "from_pool"
        if origin[0] == "site":
            return False
        if origin[0] == "call":
            near = self.p.module_of(fn).name
            for target in self.p.callable_targets(origin[1], near):
                _, callee = self.p.functions[target]
                if not callee.is_cached and any(o[0] == "site" for o in callee.returns):
                    return False
        return True

    def owns_shared_pool(self, fn: Function, site: Site) -> bool:
        if site.ctor.kind != "client":
            return False
        if site.ctor.method == "from_pool" or site.auto_close:
            return self.pool_is_shared(fn, site)
        return False

    # -- lifetimes --------------------------------------------------------------------------
    def lazy_singleton(self, fn: Function, site: Site) -> bool:
        """Built once and kept: under a guard, in a keyed cache, on a long-lived object.

        A guard is not a singleton by itself: ``if not self.redis: self.redis = Redis(...)`` on
        an instance made per request still builds a client per request.
        """
        return self.kept_once(fn, site.stores, site.guarded)

    def kept_once(self, fn: Function, stores, guarded: bool) -> bool:
        """Stored where it outlives the request, and only built when not there yet."""
        kinds = {kind for kind, _ in stores}
        if "item" in kinds or guarded and kinds & {"global", "state", "attr"}:
            return True
        on_self = [name for kind, name in stores if kind == "self"]
        if not on_self:
            return False
        guarded = guarded or "[]" in on_self or bool(
            set(on_self) & self.guarded_callers().get(fn.qualname, set()))
        return guarded and fn.cls not in self.per_request_classes()

    def guarded_callers(self) -> Dict[str, Set[str]]:
        """Function -> the ``self`` attributes its callers test before calling it."""
        if self._guarded is None:
            self._guarded = {}
            for qual, (mod, caller) in self.p.functions.items():
                for callee, attr in caller.guarded_calls:
                    for target in self.p.callable_targets(callee, mod.name):
                        self._guarded.setdefault(target, set()).add(attr)
        return self._guarded

    def per_request_classes(self) -> Set[str]:
        """Classes instantiated per request: dependency classes, classes built in request scope."""
        if self._per_request is None:
            found: Set[str] = set()
            classes = self.p.classes
            for qual in self.p.scopes:
                mod, fn = self.p.functions[qual]
                if fn.name == "__init__" and fn.cls:
                    found.add(fn.cls)
                refs = [c for c, _ in fn.calls] + [d for d in (self.p.param_dependency(fn, prm, mod.name)
                                                               for prm in fn.param_deps) if d]
                for ref in refs:
                    canon = self.p.canonical(ref, mod.name)
                    if canon in classes:
                        found.add(canon)
            for mod in self.p.modules.values():
                for reg in mod.registrations:
                    if reg.kind in ("dependency", "dependency_instance"):
                        canon = self.p.canonical(reg.target, mod.name)
                        if canon in classes:
                            found.add(canon)
            # a class whose ``__new__`` or metaclass hands out one instance is never per request
            self._per_request = {c for c in found if not self._one_instance(c)}
        return self._per_request

    def _one_instance(self, cls: str) -> bool:
        if self.p.inherited(f"{cls}.__new__", cls.rpartition(".")[0]):
            return True
        seen = set()
        while cls in self.p.classes and cls not in seen:
            seen.add(cls)
            klass = self.p.classes[cls]
            if klass.metaclass and "singleton" in klass.metaclass.lower():
                return True
            if not klass.bases:
                break
            cls = self.p.canonical(klass.bases[0], cls.rpartition(".")[0])
        return False

    # -- passes -----------------------------------------------------------------------------
    def run(self) -> Dict[str, List[Finding]]:
        scopes = self.p.scopes
        closed_elsewhere: Dict[int, List[Tuple[ModuleSummary, Close]]] = {}
        for qual, scope in scopes.items():
            mod, fn = self.p.functions[qual]
            for close in fn.closes:
                if close.origin[0] == "site":
                    continue
                for kind, a, b in self.resolve(fn, close.origin):
                    if kind == "site":
                        closed_elsewhere.setdefault(id(b), []).append((mod, close))
        for qual, scope in scopes.items():
            mod, fn = self.p.functions[qual]
            if not fn.is_cached:
                self.request_sites(mod, fn, scope, closed_elsewhere)
            self.request_closes(mod, fn)
            if fn.is_async:
                self.blocking_commands(mod, fn)
        self.startup()
        self.deprecated_close()
        for findings in self.out.values():
            findings.sort(key=lambda f: (f.line, f.col, f.code))
        return self.out

    def request_sites(self, mod, fn: Function, scope: Scope, closed_elsewhere) -> None:
        at_callers: Set[str] = set()  # sites a factory returns, reported at its callers instead
        # backwards: a client comes after the pool it is built over, and the pool goes with it
        for i, site in reversed(list(enumerate(fn.sites))):
            if self.lazy_singleton(fn, site):
                continue
            if outside_request(fn, site.none_guard) and self.callers_pass(fn, site.none_guard):
                continue  # `if request is None:` runs only when called outside a request
            if self.owns_shared_pool(fn, site):
                closes = [c for c in fn.closes if c.origin == ("site", str(i))]
                closes_far = closed_elsewhere.get(id(site), [])
                for close in closes:
                    if close.method != "wait_closed":
                        self.emit("RPL001", mod, close.line, close.col, f" in `{short(fn.qualname)}`", fn, scope.role, site)
                for far_mod, close in closes_far:
                    self.emit("RPL001", far_mod, close.line, close.col,
                              f" (built in `{short(fn.qualname)}`)", fn, scope.role, site)
                if closes or closes_far:
                    continue
                if site.ctor.flavor == "async":
                    self.emit("RPL106", mod, site.line, site.col, f" in `{short(fn.qualname)}`", fn, scope.role, site)
                else:
                    self.emit("RPL001", mod, site.line, site.col,
                              f" in `{short(fn.qualname)}` (a sync client closes its pool when "
                              "garbage-collected)", fn, scope.role, site)
                continue
            if site.ctor.kind == "client" and site.pool_origin is not None and site.ctor.method == "init" \
                    and self.pool_is_shared(fn, site):
                # a long-lived object handing out light clients over the pool it holds (a per-tenant
                # wrapper over a singleton's pool) is its own design, not a client per request
                if not self._own_pool(fn, site):
                    self.emit("RPL107", mod, site.line, site.col, f" in `{short(fn.qualname)}`", fn, scope.role, site)
                continue
            if scope.role == "helper" and not _uses(fn, i) and any(
                    other.pool_origin == ("site", str(i)) for j, other in enumerate(fn.sites) if str(j) in at_callers):
                continue  # the pool of a client reported at the factory's callers
            reported, kept = self.factory_callers(mod, fn, site, scope.role) if ("site", str(i)) in fn.returns \
                else (0, 0)
            if (reported or kept) and scope.role == "helper" and not _uses(fn, i):
                # a factory and nothing else: its callers are where the bug was written (or they
                # keep what it returns once: a lazy singleton one call away)
                at_callers.add(str(i))
                continue
            code, detail = self.role_code(scope.role, site, fn, scope.chain)
            self.emit(code, mod, site.line, site.col, detail, fn, scope.role, site)

    def factory_callers(self, mod: ModuleSummary, fn: Function, site: Site, role: str) -> Tuple[int, int]:
        """Report a factory's client where request-scope code calls the factory and uses what
        it returns (through callers that only pass it on), with the caller's role: the line a
        reviewer of that file must change, whatever ``noqa`` the factory carries. How many were
        reported, and how many callers keep the result once (a lazy singleton: no finding)."""
        count = kept = 0
        built = f"`{site.written or site.callee}`"
        todo = [(fn.qualname, (fn.qualname,))]
        seen = {fn.qualname}
        while todo:
            factory, via = todo.pop()
            for caller_qual, line, col in self.p.callers_in_scope().get(factory, ()):
                if caller_qual in seen:
                    continue
                cmod, caller = self.p.functions[caller_qual]
                cscope = self.p.scopes[caller_qual]
                if caller.is_cached:
                    continue
                stores = [(store, guarded) for callee, store, guarded in caller.call_stores
                          if factory in self.p.callable_targets(callee, cmod.name)]
                if stores and self.kept_once(caller, [st for st, _ in stores], any(g for _, g in stores)):
                    kept += 1
                    continue
                passes_on = any(o[0] == "call" and factory in self.p.callable_targets(o[1], cmod.name)
                                for o in caller.returns)
                if passes_on and cscope.role == "helper" and len(via) < 5:
                    seen.add(caller_qual)
                    todo.append((caller_qual, (caller_qual,) + via))
                    continue
                through = " -> ".join(f"`{short(q)}()`" for q in via)
                where = f"{built} at " + (f"line {site.line}" if cmod.path == mod.path
                                          else f"{self.rel(mod.path)}:{site.line}")
                code, _ = self.role_code(cscope.role, site, caller, cscope.chain)
                if cscope.role == "handler":
                    detail = f" {self.chain((caller_qual,))} through {through}, built by {where}"
                elif cscope.role in ("dependency", "middleware"):
                    name = _dep_name(caller) if cscope.role == "dependency" else short(caller_qual)
                    detail = f"`{name}` (through {through}, built by {where})"
                else:
                    detail = f"{self.chain(cscope.chain)} calling {through} (built by {where})"
                self.emit(code, cmod, line, col, detail, fn, role, site)
                count += 1
        return count, kept

    def role_code(self, role: str, site: Site, fn: Function, chain: Tuple[str, ...]) -> Tuple[str, str]:
        """The code and detail of a client built per request, by the role of the function."""
        if role == "handler":
            return ("RPL101" if site.ctor.kind == "client" else "RPL102"), f" `{short(fn.qualname)}`"
        if role == "dependency":
            return "RPL103", f"`{_dep_name(fn)}`"
        if role == "middleware":
            return "RPL104", f"`{short(fn.qualname)}`"
        return "RPL105", self.chain(chain)

    def chain(self, quals: Tuple[str, ...]) -> str:
        """``read_item` (GET /items/{id}) -> `load`: the route a chain starts at, as written."""
        out = []
        for q in quals:
            route = self.p.routes.get(q)
            out.append(f"`{short(q)}`" + (f" ({route})" if route else ""))
        return " -> ".join(out)

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root) if self.root else path

    def request_closes(self, mod, fn: Function) -> None:
        for close in fn.closes:
            if close.origin[0] == "site" or close.method == "wait_closed" or outside_request(fn, close.none_guard):
                continue
            for kind, a, b in self.resolve(fn, close.origin):
                if kind in ("state", "global"):
                    self.emit("RPL002", mod, close.line, close.col, f"client `{close.text}`", fn, "", None)
                    break

    def blocking_commands(self, mod, fn: Function) -> None:
        for cmd in fn.commands:
            if cmd.method in NON_IO or cmd.method.startswith("_"):
                continue
            for kind, a, b in self.resolve(fn, cmd.origin):
                ctor = b.ctor if kind == "site" else b
                if ctor is not None and ctor.kind == "client" and ctor.flavor == "sync":
                    self.emit("RPL205", mod, cmd.line, cmd.col, f" `.{cmd.method}()`", fn)
                    break

    def deprecated_close(self) -> None:
        for qual, (mod, fn) in self.p.functions.items():
            for close in fn.closes:
                if close.method != "close" or (mod.path, close.line, close.col) in self.at:
                    continue
                for kind, a, b in self.resolve(fn, close.origin):
                    ctor = b.ctor if kind == "site" else b
                    if ctor is not None and ctor.flavor == "async" and self._has_aclose(ctor.library):
                        self.emit("RPL203", mod, close.line, close.col, f" (`{close.text}.close()`)", fn)
                        break

    def callers_pass(self, fn: Function, param: str) -> bool:
        """Every request-scope call of ``fn`` passes ``param``: a caller that leaves it out runs
        the ``is None`` branch per request."""
        return all(passes(fn, self.p.functions[qual][1], line, col, param)
                   for qual, line, col in self.p.callers_in_scope().get(fn.qualname, ()))

    def _own_pool(self, fn: Function, site: Site) -> bool:
        """A long-lived object that builds a pool itself and hands out light clients over it (a
        per-tenant wrapper over a singleton's pool): its own design, not a client per request. A
        pool handed to the object (a middleware given the app's pool) is not its own."""
        origin = site.pool_origin
        if not (origin and origin[0] == "attr" and fn.cls) or fn.cls not in self.p.classes \
                or fn.cls in self.per_request_classes():
            return False
        attr = origin[-1]
        for method in self.p.classes[fn.cls].methods.values():
            entry = self.p.functions.get(method)
            if entry is None:
                continue
            built = entry[1]
            if any(s.ctor.kind == "pool" and any(name == attr for _, name in s.stores) for s in built.sites):
                return True
            if any(store[-1] == attr for _, store, _ in built.call_stores):  # self._pool = make_pool()
                return True
        return False

    def _has_aclose(self, library: str) -> bool:
        """Unless the project pins a redis-py older than 5.0.1, where ``close()`` is the only way."""
        if library != "redis" or self.pins is None:
            return True
        return self.pins()["redis"].has(FROM_POOL) is not False

    # -- lifespan and startup ---------------------------------------------------------------
    def startup(self) -> None:
        shutdown_closes: List[Close] = []
        for qual in self.p.shutdowns:
            shutdown_closes.extend(self.p.functions[qual][1].closes)
        for kind, qual, line, col in self.p.startups:
            if kind not in ("startup", "startup_item"):
                continue
            mod, fn = self.p.functions[qual]
            if fn.sites or self._indirect_sites(fn, mod):
                self.emit("RPL201", mod, line, col, f" `{short(fn.qualname)}`", fn, "startup")
        singleton_fns = list(self.p.lifespans) + [q for k, q, _, _ in self.p.startups if k.startswith("startup")]
        done = set()
        for qual in singleton_fns:
            if qual in done or qual in self.p.scopes:
                continue
            done.add(qual)
            mod, fn = self.p.functions[qual]
            closes = fn.closes + shutdown_closes
            owned = {other.pool_origin for other in fn.sites
                     if other.pool_origin and (other.ctor.method == "from_pool" or other.auto_close)}
            for i, site in enumerate(fn.sites):
                # a pool owned by a client built here is reported, and closed, with that client
                if ("site", str(i)) not in owned and not self._closed(fn, i, site, closes):
                    self.emit("RPL202", mod, site.line, site.col, f" in `{short(fn.qualname)}`", fn, "lifespan", site)
                if self._unbounded(fn, site):
                    self.emit("RPL204", mod, site.line, site.col, "", fn, "lifespan", site)

    def _indirect_sites(self, fn: Function, mod: ModuleSummary) -> bool:
        for callee, _line in fn.calls:
            for target in self.p.callable_targets(callee, mod.name):
                if any(o[0] == "site" for o in self.p.functions[target][1].returns):
                    return True
        return False

    def _closed(self, fn: Function, i: int, site: Site, closes: List[Close], depth: int = 0) -> bool:
        stores = set(site.stores)
        near = self.p.module_of(fn).name
        for close in closes:
            origin = close.origin
            if origin == ("site", str(i)) and close in fn.closes:
                return True
            if origin[0] == "state" and ("state", origin[1]) in stores:
                return True
            if origin[0] == "global" and any(
                s[0] == "global" and self.p.canonical(s[1], near) == self.p.canonical(origin[1], near)
                for s in stores
            ):
                return True
        if depth:
            return False
        # a pool is closed with the client that owns it or is built over it
        for j, other in enumerate(fn.sites):
            if other.pool_origin == ("site", str(i)) and self._closed(fn, j, other, closes, 1):
                return True
        # a client over a pool that is disconnected at shutdown leaves nothing open
        if site.pool_origin and site.pool_origin[0] == "site":
            j = int(site.pool_origin[1])
            if self._closed(fn, j, fn.sites[j], closes, 1):
                return True
        return False

    def _unbounded(self, fn: Function, site: Site) -> bool:
        if site.ctor.library != "redis" or site.ctor.flavor not in ("sync", "async") \
                or "Cluster" in site.callee:
            return False
        if site.ctor.kind == "pool":
            return not site.blocking_pool
        if site.ctor.method not in ("init", "from_url"):
            return False
        if site.pool_origin is not None and site.pool_origin[0] == "site":
            return False  # the pool's own site is what is reported
        if site.pool_origin is not None:
            return False  # a pool from elsewhere: judged where it is built
        return not site.blocking_pool


def _uses(fn: Function, index: int) -> bool:
    """Whether ``fn`` does more with the client it built than return it."""
    origin = ("site", str(index))
    return any(c.origin == origin for c in fn.commands) or any(c.origin == origin for c in fn.closes)


def _dep_name(fn: Function) -> str:
    if fn.name == "__init__" and fn.cls:
        return fn.cls.rsplit(".", 1)[-1]
    return short(fn.qualname)


def detect(project: Project, root: str = "",
           pins: Optional[Callable[[], Dict[str, Pin]]] = None) -> Dict[str, List[Finding]]:
    """All findings of a project, by module path, each list sorted by position; messages show
    paths relative to ``root``. ``pins`` gives the client libraries' versions, read only when a
    rule depends on them (RPL203 needs ``aclose()``, which redis-py has from 5.0.1)."""
    return _Detector(project, root, pins).run()
