"""From findings to a plan of edits across files: the fixer never detects on its own.

The plan says, per file, which construction becomes the shared client, which closes go, which
``async with`` blocks unwrap, which parameter a handler gains, and, in the app's module, how
the lifespan is created or merged. ``transform.py`` carries it out with libcst.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Set, Tuple

from ..analysis.detect import Finding, short as short_name
from ..analysis.index import Project
from ..analysis.load import ProjectResult
from ..analysis.summary import AppSite, Function, ModuleSummary, Site
from ..filters import Selection, noqa_filter
from ..rules import BY_CODE, Fix

SITE_CODES = ("RPL001", "RPL101", "RPL102", "RPL103", "RPL104", "RPL105", "RPL106", "RPL107")
REQUEST_TYPES = {
    "fastapi.Request": "Request",
    "fastapi.requests.Request": "Request",
    "starlette.requests.Request": "Request",
    "fastapi.WebSocket": "WebSocket",
    "fastapi.websockets.WebSocket": "WebSocket",
    "starlette.websockets.WebSocket": "WebSocket",
    "starlette.requests.HTTPConnection": "HTTPConnection",
    "fastapi.requests.HTTPConnection": "HTTPConnection",
}
# Client keyword arguments that mean the same thing on a connection pool.
POOL_KEYWORDS = frozenset(
    "host port db username password socket_timeout socket_connect_timeout socket_keepalive "
    "socket_keepalive_options decode_responses encoding encoding_errors client_name "
    "health_check_interval retry_on_timeout retry_on_error retry protocol".split()
)
# Keywords of ``Redis.from_url`` that configure the client, not the pool.
CLIENT_ONLY = frozenset({"single_connection_client", "auto_close_connection_pool"})


@dataclass
class Options:
    selection: Selection = field(default_factory=Selection)
    unsafe: bool = False
    app: Optional[str] = None
    max_connections: int = 50
    pool_timeout: float = 10.0
    disable_noqa: bool = False
    #: fix only the findings in these files (the paths the user named); None: all of them
    only: Optional[FrozenSet[str]] = None


@dataclass
class Singleton:
    """One shared client built in the lifespan."""

    name: str
    key: Tuple
    lib: str  # the module the client classes come from: redis.asyncio, redis, valkey...
    build: str  # template with the R_, P_ and APP_ placeholders
    close: str  # "await {x}.aclose()" or "{x}.close()"
    imports: List[Tuple[str, Optional[str], Optional[str], int]]  # (module, obj, asname, level)


@dataclass
class FileEdits:
    """Positions are (line, byte column) from the ``ast``; the transform maps them."""

    replace_calls: Dict[Tuple[int, int], str] = field(default_factory=dict)
    remove_closes: Set[Tuple[int, int]] = field(default_factory=set)
    unwrap_withs: Dict[Tuple[int, int], str] = field(default_factory=dict)
    add_params: Dict[int, Tuple[str, str, bool]] = field(default_factory=dict)  # def line -> (name, annotation, optional)
    #: factories also called outside requests: def line -> (site position, shared expression)
    guard_factories: Dict[int, Tuple[Tuple[int, int], str]] = field(default_factory=dict)
    #: imports to remove if the rewrite leaves them unused: (absolute module, object, asname)
    unused_imports: List[Tuple[str, Optional[str], Optional[str]]] = field(default_factory=list)
    #: locals whose value moved into the lifespan: def line -> names to drop if now unread
    drop_unused: Dict[int, Set[str]] = field(default_factory=dict)
    module: str = ""
    is_package: bool = False
    renames: Set[Tuple[int, int]] = field(default_factory=set)
    #: pool constructions to make bounded and blocking: position -> (max_connections, timeout) text
    make_blocking: Dict[Tuple[int, int], Tuple[Optional[str], Optional[str]]] = field(default_factory=dict)
    imports: List[Tuple[str, Optional[str], Optional[str], int]] = field(default_factory=list)
    # app module
    app_call: Optional[Tuple[int, int]] = None
    app_kwarg: Optional[str] = None
    drop_app_kwargs: Tuple[str, ...] = ()
    drop_event_decorators: Set[int] = field(default_factory=set)
    new_lifespan: Optional[Tuple[int, str]] = None  # (line of statement to insert before, code)
    merge_lifespan: Optional[Tuple[int, List[str], List[str]]] = None  # (def line, setup, teardown)
    #: module to import BlockingConnectionPool from when a bare ``ConnectionPool`` is renamed
    blocking_module: str = ""
    #: entries to add to the dict the lifespan yields: (key, expression)
    state_keys: Tuple[Tuple[str, str], ...] = ()

    def copy(self) -> "FileEdits":
        """A copy with containers of its own (what they hold is immutable, but for the sets of
        ``drop_unused``): the planner takes one per site it plans, so it must cost far less
        than ``deepcopy``, which made planning a file of 4,000 handlers eight times slower."""
        out = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, dict):
                value = {k: set(v) if isinstance(v, set) else v for k, v in value.items()}
            elif isinstance(value, (set, list)):
                value = type(value)(value)
            elif name == "merge_lifespan" and value is not None:
                value = (value[0], list(value[1]), list(value[2]))
            setattr(out, name, value)
        return out

    def empty(self) -> bool:
        return not (self.replace_calls or self.remove_closes or self.unwrap_withs or self.renames
                    or self.app_call or self.new_lifespan or self.merge_lifespan or self.guard_factories
                    or self.make_blocking)


@dataclass
class Plan:
    edits: Dict[str, FileEdits] = field(default_factory=dict)
    fixed: List[Finding] = field(default_factory=list)
    skipped: List[Tuple[Finding, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    #: while a site is planned: each file's edits as they were before it first touched them
    saved: Optional[Dict[str, Optional[FileEdits]]] = field(default=None, repr=False, compare=False)

    def file(self, path: str, module: Optional[ModuleSummary] = None) -> FileEdits:
        if self.saved is not None and path not in self.saved:
            self.saved[path] = self.edits[path].copy() if path in self.edits else None
        edits = self.edits.setdefault(path, FileEdits())
        if module is not None:
            edits.module, edits.is_package = module.name, module.is_package
        return edits


# Placeholders in build templates; NUL never occurs in source text, so user code (an f-string's
# braces) can never be mistaken for one.
R_, P_, APP_ = "\0R\0", "\0P\0", "\0APP\0"


def fill(template: str, app: str) -> str:
    return template.replace(APP_, app)


class Skip(Exception):
    """A finding the fixer leaves alone, with the reason the user is told."""


def _module_path(project: Project, qualname: str) -> Tuple[ModuleSummary, Function]:
    return project.functions[qualname]


def _site_of(fn: Function, finding: Finding) -> Optional[Tuple[int, Site]]:
    for i, site in enumerate(fn.sites):
        if (site.line, site.col, site.end_line, site.end_col) == finding.span:
            return i, site
    return None


class Planner:
    def __init__(self, result: ProjectResult, options: Options, sources: Dict[str, str]) -> None:
        self.r = result
        self.p: Project = result.project
        self.o = options
        self.sources = sources
        self.plan = Plan()
        self.singletons: Dict[Tuple, Singleton] = {}
        self.app: Optional[Tuple[ModuleSummary, AppSite]] = None
        self.lifespan_findings: List[Finding] = []
        self.pools_taken: Set[int] = set()  # per-request pools fixed with their client
        self.state_dict: Optional[Function] = None  # an existing lifespan that yields its state
        # project-wide lookups, built on first use (once per plan, not once per finding)
        self._outside: Optional[Dict[str, List[str]]] = None
        self._foreign_closes: Optional[Dict[int, List[Tuple[ModuleSummary, Any]]]] = None
        self._state_pools: Optional[Dict[str, List[Tuple[ModuleSummary, Function, Site]]]] = None

    # -- project-wide lookups -------------------------------------------------------------
    def callers_outside(self) -> Dict[str, List[str]]:
        """Function -> the functions outside request scope that call it, in project order."""
        if self._outside is None:
            self._outside = {}
            for qual, (mod, caller) in self.p.functions.items():
                if qual in self.p.scopes:
                    continue
                for callee, _line in caller.calls:
                    for target in self.p.callable_targets(callee, mod.name):
                        found = self._outside.setdefault(target, [])
                        if not found or found[-1] != qual:
                            found.append(qual)
        return self._outside

    def foreign_closes(self, site: Site) -> List[Tuple[ModuleSummary, Any]]:
        """Closes in request scope of ``site``'s client that came from elsewhere (a parameter, a
        call): each close is resolved once, for all sites."""
        if self._foreign_closes is None:
            from ..analysis.detect import _Detector

            detector = _Detector(self.p)
            self._foreign_closes = {}
            for rmod, rfn in (self.p.functions[q] for q in self.p.scopes):
                for close in rfn.closes:
                    if close.origin[0] not in ("param", "call"):
                        continue
                    targets = {id(b) for kind, _, b in detector.resolve(rfn, close.origin) if kind == "site"}
                    for target in targets:
                        self._foreign_closes.setdefault(target, []).append((rmod, close))
        return self._foreign_closes.get(id(site), [])

    def state_pools(self, attr: str) -> List[Tuple[ModuleSummary, Function, Site]]:
        """The pools stored on ``app.state.<attr>``, wherever they are built."""
        if self._state_pools is None:
            self._state_pools = {}
            for mod, fn in self.p.functions.values():
                for site in fn.sites:
                    if site.ctor.kind == "pool":
                        for name in dict.fromkeys(name for kind, name in site.stores if kind == "state"):
                            self._state_pools.setdefault(name, []).append((mod, fn, site))
        return self._state_pools.get(attr, [])

    # -- entry --------------------------------------------------------------------------
    def run(self) -> Plan:
        if self.p is None:
            return self.plan
        findings = self._wanted()
        site_groups: Dict[Tuple[str, int], List[Finding]] = {}
        for f in findings:
            rule = BY_CODE[f.code]
            if rule.fix in (Fix.NONE, Fix.DISPLAY) or (rule.fix is Fix.UNSAFE and not self.o.unsafe):
                self.plan.skipped.append((f, rule.left_because(self.o.unsafe)))
                continue
            if f.code in SITE_CODES and f.function:
                site_groups.setdefault((f.function, f.span[0] * 100000 + f.span[1]), []).append(f)
            elif f.code == "RPL203":
                self.plan.file(f.path).renames.add((f.line, f.col))
                self.plan.fixed.append(f)
            elif f.code == "RPL002":
                self._shared_close(f)
            elif f.code in ("RPL201", "RPL202"):
                self.lifespan_findings.append(f)
            elif f.code == "RPL204":
                self._unbounded(f)
            else:
                self.plan.skipped.append((f, "not fixed automatically yet"))
        if site_groups or self.lifespan_findings:
            try:
                self.app = self._find_app()
            except Skip as exc:
                for group in site_groups.values():
                    self.plan.skipped.extend((f, str(exc)) for f in group)
                self.plan.skipped.extend((f, str(exc)) for f in self.lifespan_findings)
                site_groups, self.lifespan_findings = {}, []
            else:
                existing = self._existing_lifespan()
                if existing and self.p.functions[existing][1].yielded_keys is not None:
                    self.state_dict = self.p.functions[existing][1]
        # clients first: a per-request pool is fixed together with the client built over it
        ordered = sorted(site_groups.values(), key=lambda g: g[0].code == "RPL102")
        for group in ordered:
            try:
                with self._all_or_nothing():
                    self._site(group)
                self.plan.fixed.extend(group)
            except Skip as exc:
                self.plan.skipped.extend((f, str(exc)) for f in group)
        if self.singletons or self.lifespan_findings:
            try:
                self._lifespan()
            except Skip as exc:
                # without a lifespan, no site may change: drop those edits
                self._drop_site_edits(str(exc))
                self.plan.skipped.extend((f, str(exc)) for f in self.lifespan_findings)
        by_path = {m.path: m for m in self.p.modules.values()}
        for path, edits in self.plan.edits.items():
            if path in by_path:
                edits.module, edits.is_package = by_path[path].name, by_path[path].is_package
        self.plan.edits = {k: v for k, v in self.plan.edits.items() if not v.empty()}
        return self.plan

    @contextlib.contextmanager
    def _all_or_nothing(self):
        """A site skipped half way leaves no trace: no shared client nobody uses, no parameter
        or import for a rewrite that does not happen (a second run would find them to undo)."""
        self.plan.saved = {}
        singletons, pools = dict(self.singletons), set(self.pools_taken)
        try:
            yield
        except Skip:
            for path, edits in self.plan.saved.items():
                if edits is None:
                    self.plan.edits.pop(path, None)
                else:
                    self.plan.edits[path] = edits
            self.singletons, self.pools_taken = singletons, pools
            raise
        finally:
            self.plan.saved = None

    def _wanted(self) -> List[Finding]:
        out = []
        for path, fs in self.r.findings.items():
            if self.o.only is not None and path not in self.o.only:
                continue
            fs = [f for f in fs if self.o.selection.wants(f.code)]
            if fs and not self.o.disable_noqa:
                fs = noqa_filter(fs, self.sources.get(path, ""))  # noqa'd findings are never fixed
            out.extend(fs)
        return out

    # -- the app --------------------------------------------------------------------------
    def _find_app(self) -> Tuple[ModuleSummary, AppSite]:
        apps = [(m, a) for m in self.p.modules.values() for a in m.apps]
        if self.o.app:
            mod_name, _, attr = self.o.app.partition(":")
            for m, a in apps:
                if m.name.endswith(mod_name) and (a.qualname == f"{m.name}.{attr}"
                                                  or (a.factory or "").endswith(f".{attr}")):
                    return m, a
            raise Skip(f"--app {self.o.app}: no FastAPI()/Starlette() construction there")
        if not apps:
            raise Skip("no FastAPI()/Starlette() app found to hold the lifespan")
        if len(apps) > 1:
            names = ", ".join(f"{m.name}:{a.qualname.rsplit('.', 1)[-1]}" for m, a in apps)
            raise Skip(f"several apps ({names}): choose one with --app module:attr")
        return apps[0]

    # -- one construction site ----------------------------------------------------------
    def _site(self, group: List[Finding]) -> None:
        # the construction's own finding; the others are the callers of a factory that builds it
        home = self.p.functions[group[0].function][0].path
        f = next((g for g in group if (g.path, g.line, g.col) == (home, *g.span[:2])), None)
        if f is None:  # a factory reported at its callers only: the edit lands in the factory
            f = group[0]
            at_factory = dataclasses.replace(f, path=home, line=f.span[0], col=f.span[1], code="RPL105")
            if not self.o.disable_noqa and not noqa_filter([at_factory], self.sources.get(home, "")):
                raise Skip(f"`{short_name(f.function)}`, which builds the client, is marked noqa")
        mod, fn = _module_path(self.p, f.function)
        found = _site_of(fn, f)
        if found is None:
            raise Skip("construction not found")
        index, site = found
        if f.role == "helper":
            return self._helper(mod, fn, index, site)
        if site.ctor.kind == "pool":
            if id(site) in self.pools_taken:
                return
            raise Skip("a pool per request is fixed with the client built over it; none found")
        pool_site = None
        if site.pool_origin and site.pool_origin[0] == "site" and site.ctor.method in ("init", "from_pool"):
            pool_site = fn.sites[int(site.pool_origin[1])]
            extra = [k for k in site.keywords if k != "connection_pool"]
            if pool_site.ctor.kind != "pool" or extra or any(
                    q is None for _, q in pool_site.arg_names):
                raise Skip("a client over a per-request pool with options of its own: fix by hand")
        shared_pool = site.pool_origin and site.pool_origin[0] == "state" and (
            site.ctor.method == "from_pool" or site.auto_close or f.code == "RPL107")
        inline = {} if shared_pool else self._inlinable(fn, site)
        locals_used = sorted({n for n, q in site.arg_names if q is None and n not in inline})
        if shared_pool:
            locals_used = []  # the argument is the shared pool itself, not a configuration
        if locals_used:
            raise Skip("constructor arguments depend on the request ("
                       + ", ".join(f"`{n}`" for n in locals_used) + "): cannot build it once")
        singleton = self._singleton(mod, pool_site or site, fn, inline)
        edits = self.plan.file(mod.path)
        if pool_site is not None:
            self._drop_pool(mod, fn, pool_site, edits)
        if inline:
            edits.drop_unused.setdefault(fn.line, set()).update(inline)
            for value_names in (v[1] for v in inline.values()):
                for name, qual in value_names:
                    form = mod.import_forms.get(name)
                    if form and qual:  # drop its import too if that leaves it unused
                        module = qual.rsplit(".", 1)[0] if form[2] else qual
                        edits.unused_imports.append((module, form[2], None if form[2] in (None, name) else name))
        outside = self._outside_callers(fn) if f.role == "dependency" else []
        if outside:
            self._guard_factory(mod, fn, site, singleton, outside)
            return
        conn = self._connection(mod, fn, f.role)
        if self.state_dict is not None:  # lifespan state: request.state.<name>
            if not conn.endswith(".app"):
                raise Skip("lifespan state is not reachable from here")
            conn = conn[: -len(".app")]
        shared = f"{conn}.state.{singleton.name}"
        origin = ("site", str(index))
        withs = [c for c in fn.closes if c.origin == origin and c.method == "with" and (c.line, c.col) == (site.line, site.col)]
        if withs:
            edits.unwrap_withs[(site.line, site.col)] = shared
        else:
            edits.replace_calls[(site.line, site.col)] = shared
        for close in fn.closes:
            if close.origin != origin or (close.line, close.col) == (site.line, site.col):
                continue
            if close.method == "with":
                edits.unwrap_withs[(close.line, close.col)] = close.text
            elif close.method in ("aclose", "close", "disconnect"):
                edits.remove_closes.add((close.line, close.col))
            else:
                raise Skip(f"closed through `{close.text}` in a way the fixer does not rewrite")
        # closes of this client made by callers (a yield dependency's user closing it)
        for rmod, close in self.foreign_closes(site):
            target = self.plan.file(rmod.path)
            if close.method == "with":
                target.unwrap_withs[(close.line, close.col)] = close.text
            else:
                target.remove_closes.add((close.line, close.col))

    def _helper(self, mod: ModuleSummary, fn: Function, index: int, site: Site) -> None:
        """A helper that only returns a new client: its request-scope call sites become the
        shared client, and the helper stays as it is for its other callers."""
        if fn.has_yield or fn.returns != [("site", str(index))] or len(fn.sites) != 1 or fn.closes:
            raise Skip("the helper does more than build and return a client: pass the shared client "
                       "down by hand")
        if any(q is None for _, q in site.arg_names):
            raise Skip("constructor arguments depend on the helper's parameters: cannot build it once")
        callers = []
        reached: Dict[str, List[Tuple[int, int]]] = {}
        for qual, line, col in self.p.callers_in_scope().get(fn.qualname, []):
            reached.setdefault(qual, []).append((line, col))
        for qual, sites in reached.items():
            scope = self.p.scopes[qual]
            cmod, caller = self.p.functions[qual]
            if sites:
                if scope.role == "helper":
                    raise Skip(f"called from `{caller.name}`, itself a helper: pass the shared client down by hand")
                callers.append((cmod, caller, scope.role, sites))
        if not callers:
            raise Skip("no request-scope caller found")
        single = self._singleton(mod, site)
        for cmod, caller, role, sites in callers:
            shared = f"{self._connection(cmod, caller, role)}.state.{single.name}"
            edits = self.plan.file(cmod.path)
            withs = {(c.line, c.col) for c in caller.closes if c.method == "with"}
            for pos in sites:
                if pos in withs:
                    edits.unwrap_withs[pos] = shared
                else:
                    edits.replace_calls[pos] = shared
            for close in caller.closes:
                if close.origin[0] != "call" or (close.line, close.col) in sites:
                    continue
                if fn.qualname not in self.p.callable_targets(close.origin[1], cmod.name):
                    continue
                if close.method == "with":
                    edits.unwrap_withs[(close.line, close.col)] = close.text
                elif close.method in ("aclose", "close", "disconnect"):
                    edits.remove_closes.add((close.line, close.col))

    def _drop_pool(self, mod: ModuleSummary, fn: Function, pool: Site, edits: FileEdits) -> None:
        """The per-request pool goes with its client: its closes, its variable, its import."""
        j = fn.sites.index(pool)
        for close in fn.closes:
            if close.origin == ("site", str(j)):
                if close.method == "with":
                    raise Skip("the per-request pool is used as a context manager: fix by hand")
                edits.remove_closes.add((close.line, close.col))
        names = [s[1] for s in pool.stores if s[0] == "local"]
        if names:
            edits.drop_unused.setdefault(fn.line, set()).update(names)
        head = pool.callee.split(".")
        for name, form in mod.import_forms.items():
            if form[2] and f"{form[0]}.{form[2]}" in (".".join(head[:-1]), pool.callee) and not form[1]:
                edits.unused_imports.append((form[0], form[2], None if form[2] == name else name))
        self.pools_taken.add(id(pool))

    def _outside_callers(self, fn: Function) -> List[str]:
        """Functions outside request scope (a CLI, a worker, the lifespan) that call ``fn``."""
        return list(self.callers_outside().get(fn.qualname, []))

    def _guard_factory(self, mod: ModuleSummary, fn: Function, site: Site, single: Singleton,
                       outside: List[str]) -> None:
        """Keep the factory working for its other callers: with no request, it builds a client
        of its own as before; in a request, it returns the shared one."""
        if fn.has_yield or len(fn.returns) != 1 or fn.returns[0] != ("site", "0") or len(fn.sites) != 1:
            raise Skip("factory also called outside requests (" + ", ".join(f"`{q.rsplit('.', 1)[-1]}`" for q in outside)
                       + ") and not a plain `return <client>`: split it by hand")
        if "request" in fn.params:
            raise Skip("a parameter named `request` is in the way")
        self._add_request_param(mod, fn, optional=True)
        self.plan.file(mod.path).guard_factories[fn.line] = ((site.line, site.col), f"request.app.state.{single.name}")

    def _connection(self, mod: ModuleSummary, fn: Function, role: str) -> str:
        """The expression that reaches the app in this function; add a parameter if needed."""
        for param in fn.params:
            kind = REQUEST_TYPES.get(fn.param_types.get(param, ""))
            if kind:
                return f"{param}.app"
        if role == "middleware" and fn.name == "__call__" and "scope" in fn.params:
            return 'scope["app"]'
        untyped = [p for p in fn.params if p not in fn.annotated and p not in fn.param_deps]
        if fn.cls and untyped and untyped[0] == fn.params[0]:
            untyped = untyped[1:]
        if role in ("handler", "middleware") and untyped and untyped[0] in ("request", "websocket", "req", "ws"):
            return f"{untyped[0]}.app"
        if role not in ("handler", "dependency"):
            raise Skip("no Request/WebSocket in reach to find the app's state")
        if "request" in fn.params:
            raise Skip("a parameter named `request` that is not a Request is in the way")
        self._add_request_param(mod, fn, optional=False)
        return "request.app"

    def _add_request_param(self, mod: ModuleSummary, fn: Function, optional: bool) -> None:
        """Give ``fn`` a ``request: Request`` parameter, unless one of the two names already
        means something else in the module: the parameter would hide a module-level
        ``request`` (``from urllib import request``) from the function's body, and a new
        ``Request`` import would rebind the module's own ``Request`` for every line below it."""
        bound = module_bindings(mod)
        source = self.sources.get(mod.path, "")
        for name in ("request", "Request"):
            if name not in bound and assigned_at_top(source, name):
                bound[name] = f"{mod.name}.{name}"
        if "request" in bound:
            raise Skip("a new `request` parameter would hide the module-level name `request`: fix by hand")
        edits = self.plan.file(mod.path)
        edits.add_params[fn.line] = ("request", "Request", optional)
        current = bound.get("Request")
        if current is None:
            edits.imports.append((self._request_module(), "Request", None, 0))
        elif REQUEST_TYPES.get(current) != "Request":
            raise Skip(f"`Request` is `{current}` in this module, not a request class: fix by hand")

    def _inlinable(self, fn: Function, site: Site) -> Dict[str, Tuple]:
        """Locals assigned once from module-level names only (``settings = get_settings()``):
        their expression can stand in for them in the lifespan."""
        out = {}
        for name, qual in site.arg_names:
            if qual is not None or name in out:
                continue
            assigned = fn.assigns.get(name)
            if assigned and all(q is not None for _, q in assigned[1]):
                out[name] = assigned
        return out

    def _request_module(self) -> str:
        return "fastapi" if self.app and self.app[1].callee.startswith("fastapi") else "starlette.requests"

    def _singleton(self, mod: ModuleSummary, site: Site, fn: Function = None, inline=None) -> Singleton:
        ctor = site.ctor
        if ctor.library not in ("redis", "valkey") or ctor.flavor not in ("async", "sync"):
            raise Skip(f"{ctor.library} {ctor.flavor} clients are not rewritten automatically")
        if ctor.method not in ("init", "from_url", "from_pool") or (
                ctor.kind != "client" and ctor.method == "from_pool"):
            raise Skip("only Redis(...), from_url(...) and from_pool(...) clients are rewritten")
        if "Cluster" in site.callee:
            raise Skip("cluster clients are not rewritten automatically")
        if "**" in site.keywords:
            raise Skip("constructor takes **kwargs: cannot tell which options it passes")
        lib = ctor.library + (".asyncio" if ctor.flavor == "async" else "")
        source = self._call_source(mod, site)
        args, kwargs = source
        if inline:
            args, kwargs = self._substitute(mod, args, kwargs, inline)
        over_shared = ctor.method == "from_pool" or site.auto_close or (
            ctor.method == "init" and site.pool_origin is not None and site.keywords == ["connection_pool"])
        if over_shared and site.pool_origin and site.pool_origin[0] == "global":
            pool = self._bound_global_pool(mod, site.pool_origin[1])
            key = ("from_pool_global", lib, pool)
            build = f"{R_}.from_pool({pool.rsplit('.', 1)[-1]})  # owns it: closed at shutdown"
        elif over_shared and site.pool_origin and site.pool_origin[0] == "state" or ctor.method == "from_pool":
            if site.pool_origin is None or site.pool_origin[0] != "state":
                raise Skip("from_pool() over a pool that is not on the app's state")
            pool_attr = site.pool_origin[1]
            self._bound_state_pool(pool_attr)
            key = ("from_pool", lib, pool_attr)
            build = f"{R_}(connection_pool={APP_}.state.{pool_attr})"
        else:
            key, build = self._owned_pool_template(site, lib, args, kwargs)
        existing = self.singletons.get(key)
        if existing:
            return existing
        name = self._state_name(key)
        imports = self._name_imports(mod, site.arg_names + [n for v in (inline or {}).values() for n in v[1]])
        close = "await {x}.aclose()" if ctor.flavor == "async" else "{x}.close()"
        single = Singleton(name, key, lib, build, close, imports)
        self.singletons[key] = single
        return single

    def _owned_pool_template(self, site: Site, lib: str, args: str, kwargs: str) -> Tuple[Tuple, str]:
        """``from_url(u, **kw)``/``Redis(**kw)`` -> a client owning a bounded blocking pool."""
        bound = ", ".join(f"{k}={v}" for k, v in (("max_connections", self.o.max_connections),
                                                  ("timeout", f"{self.o.pool_timeout:g}"))
                          if k not in site.keywords)
        allowed = POOL_KEYWORDS | ({"max_connections", "timeout"} if site.ctor.kind == "pool" else set())
        if site.ctor.method == "from_url":
            bad = [k for k in site.keywords if k in CLIENT_ONLY]
            if bad:
                raise Skip(f"`{bad[0]}=` configures the client itself: fix by hand")
            if not args:
                raise Skip("from_url() without a URL argument")
            extra = ", ".join([args] + [x for x in (kwargs, bound) if x])
            return ("from_url", lib, args, kwargs), f"{R_}.from_pool({P_}.from_url({extra}))"
        bad = [k for k in site.keywords if k not in allowed]
        if bad or args:
            raise Skip("constructor options the pool rewrite does not map ("
                       + ", ".join(f"`{b}`" for b in (bad or ["positional arguments"])) + ")")
        return ("init", lib, kwargs), f"{R_}.from_pool({P_}({', '.join(x for x in (kwargs, bound) if x)}))"

    def _unbounded(self, f: Finding) -> None:
        """RPL204 (unsafe, asked for): the lifespan's client gets a bounded blocking pool."""
        mod, fn = _module_path(self.p, f.function)
        found = _site_of(fn, f)
        if found is None or not self._bound_site(mod, found[1]):
            self.plan.skipped.append((f, "cannot rewrite this pool"))
            return
        self.plan.fixed.append(f)

    def _bound_startup_clients(self, mod: ModuleSummary, fn: Function) -> None:
        """A client a startup handler builds on a default pool fails past 100 in-flight commands
        on redis-py 8: moving it into the lifespan gives it the bounded blocking pool too."""
        for site in fn.sites:
            self._bound_site(mod, site)

    def _bound_site(self, mod: ModuleSummary, site: Site) -> bool:
        """Rewrite one construction onto a bounded blocking pool; False if it cannot be."""
        edits = self.plan.file(mod.path)
        ctor = site.ctor
        if ctor.library not in ("redis", "valkey") or ctor.flavor not in ("async", "sync") \
                or "Cluster" in site.callee or "**" in site.keywords:
            return False
        lib = ctor.library + (".asyncio" if ctor.flavor == "async" else "")
        if ctor.kind == "pool" and ctor.method in ("init", "from_url") and not (
                site.blocking_pool and "max_connections" in site.keywords):
            edits.make_blocking[(site.line, site.col)] = (
                None if "max_connections" in site.keywords else str(self.o.max_connections),
                None if "timeout" in site.keywords else f"{self.o.pool_timeout:g}")
            edits.blocking_module = lib
            return True
        if ctor.kind == "client" and ctor.method in ("init", "from_url") and site.pool_origin is None \
                and not site.blocking_pool and not any(n for n, q in site.arg_names if q is None):
            try:
                args, kwargs = self._call_source(mod, site)
                _, template = self._owned_pool_template(site, lib, args, kwargs)
                probe = Singleton("_", (), lib, template, "", [])
                builds, imports = self._classes(mod, [probe])
            except Skip:
                return False
            edits.replace_calls[(site.line, site.col)] = builds["_"]
            edits.imports.extend(imports)
            return True
        return False

    def _bound_state_pool(self, attr: str) -> None:
        """The app-state pool a shared client will use must wait for a free connection rather
        than fail (redis-py 8's default pool raises past 100): make it a bounded blocking pool."""
        sites = self.state_pools(attr)
        if not sites:
            raise Skip(f"cannot find where app.state.{attr} is built")
        for mod, fn, site in sites:
            if site.blocking_pool and "max_connections" in site.keywords:
                continue
            if site.ctor.library not in ("redis", "valkey") or site.ctor.method not in ("init", "from_url"):
                raise Skip(f"app.state.{attr} is not a pool the fixer can bound")
            bound = None if "max_connections" in site.keywords else str(self.o.max_connections)
            wait = None if "timeout" in site.keywords else f"{self.o.pool_timeout:g}"
            edits = self.plan.file(mod.path)
            edits.make_blocking[(site.line, site.col)] = (bound, wait)
            edits.blocking_module = site.ctor.library + (".asyncio" if site.ctor.flavor == "async" else "")

    def _bound_global_pool(self, mod: ModuleSummary, qual: str) -> str:
        """A module-level pool behind per-request clients: bounded and blocking, like app state."""
        canon = self.p.canonical(qual, mod.name)
        owner_name, _, name = canon.rpartition(".")
        owner = self.p.modules.get(owner_name)
        if owner is None or name not in owner.global_sites or owner.redis_globals[name].kind != "pool":
            raise Skip("from_pool() over a pool the fixer cannot find")
        line, col, keywords, blocking = owner.global_sites[name]
        ctor = owner.redis_globals[name]
        if ctor.library not in ("redis", "valkey") or ctor.method not in ("init", "from_url"):
            raise Skip("from_pool() over a pool the fixer cannot bound")
        if not (blocking and "max_connections" in keywords):
            edits = self.plan.file(owner.path)
            edits.make_blocking[(line, col)] = (
                None if "max_connections" in keywords else str(self.o.max_connections),
                None if "timeout" in keywords else f"{self.o.pool_timeout:g}")
            edits.blocking_module = ctor.library + (".asyncio" if ctor.flavor == "async" else "")
        return canon

    def _call_source(self, mod: ModuleSummary, site: Site) -> Tuple[str, str]:
        """The call's positional and keyword arguments, as the user wrote them."""
        import libcst as cst

        lines = self.sources.get(mod.path, "").splitlines(keepends=True)
        try:
            call = cst.parse_expression(_segment(lines, site).strip())
        except cst.ParserSyntaxError:
            raise Skip("could not read the constructor call")
        if isinstance(call, cst.Await):
            call = call.expression
        if not isinstance(call, cst.Call) or site.ctor.method == "from_pool":
            return "", ""
        code = cst.Module([]).code_for_node
        args = ", ".join(code(a.value) for a in call.args if a.keyword is None and not a.star)
        kwargs = ", ".join(f"{a.keyword.value}={code(a.value)}" for a in call.args if a.keyword is not None)
        return args, kwargs

    def _substitute(self, mod: ModuleSummary, args: str, kwargs: str, inline) -> Tuple[str, str]:
        """Replace each inlinable local by its (parenthesised) expression, with libcst."""
        import libcst as cst

        lines = self.sources.get(mod.path, "").splitlines(keepends=True)
        values = {}
        for name, (span, _names) in inline.items():
            fake = Site(span[0], span[1], span[2], span[3], None, "")  # type: ignore[arg-type]
            values[name] = cst.parse_expression(_segment(lines, fake).strip())

        class Swap(cst.CSTTransformer):
            def leave_Name(self, original, updated):
                value = values.get(updated.value)
                if value is None:
                    return updated
                simple = isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
                return value if simple else value.with_changes(
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()])

        def swap(text: str) -> str:
            if not text:
                return text
            call = cst.parse_expression(f"f({text})")
            return cst.Module([]).code_for_node(call.visit(Swap()))[2:-1]

        return swap(args), swap(kwargs)

    def _name_imports(self, mod: ModuleSummary, names):
        """Imports the lifespan's module needs for the names the arguments read."""
        app_mod = self.app[0]
        out = []
        for name, qual in names:
            if qual is None or qual.startswith("builtins."):
                continue
            if app_mod.name == mod.name or self._binds(app_mod, name) == self.p.canonical(qual, mod.name):
                continue
            form = mod.import_forms.get(name)
            asname = None
            if form is not None and not form[1]:
                module, _, obj = form
                out.append((module, obj, None if obj in (None, name) else name, 0))
                continue
            if form is not None:  # relative in the site's module: relative from the app's too
                obj = form[2]
                target = qual.rsplit(".", 1)[0] if obj else qual
                asname = None if obj == name else name
            else:  # defined in the site's module itself
                target, obj = mod.name, name
            out.append(self._relative(app_mod, target, obj, asname))
        return out

    def _binds(self, where: ModuleSummary, name: str) -> Optional[str]:
        """What ``name`` already refers to at the top of ``where`` (canonical), if anything."""
        from ..analysis.resolve import resolve_relative

        form = where.import_forms.get(name)
        if form is None:
            return None
        module, level, obj = form
        base = resolve_relative(where.name, where.is_package, level, module or None) if level else module
        target = f"{base}.{obj}" if obj else base
        return self.p.canonical(target, where.name)

    @staticmethod
    def _relative(app_mod: ModuleSummary, target: str, obj: Optional[str], asname: Optional[str]):
        """``from <target> import obj`` written relative to the app's module when they share a package."""
        package = app_mod.name.split(".") if app_mod.is_package else app_mod.name.split(".")[:-1]
        parts = target.split(".")
        k = 0
        while k < min(len(package), len(parts)) and package[k] == parts[k]:
            k += 1
        if k == 0:
            return (target, obj, asname, 0)
        return (".".join(parts[k:]), obj, asname, len(package) - k + 1)

    def _state_name(self, key: Tuple) -> str:
        """``redis`` first; later configurations are named after their URL (``redis_stats``)."""
        taken = {s.name for s in self.singletons.values()} | set(self.p.state_ctors)
        base = "redis"
        first = key[2].split(",")[0].strip() if key[0] == "from_url" and key[2] else ""
        if taken & {"redis"} and re.fullmatch(r"[A-Za-z_][\w.]*", first):
            # named after the URL's variable: STATS_URL, settings.cache_redis_url -> redis_stats, redis_cache
            stem = re.sub(r"(?i)(^.*\.)|(_?(redis_)?url$)|(_redis$)", "", first).strip("_").lower()
            if stem and stem != "redis":
                base = f"redis_{stem}"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        return name

    # -- shared closes --------------------------------------------------------------------
    def _shared_close(self, f: Finding) -> None:
        mod, fn = _module_path(self.p, f.function)
        edits = self.plan.file(mod.path)
        for close in fn.closes:
            if (close.line, close.col) == (f.line, f.col):
                if close.method == "with":
                    edits.unwrap_withs[(close.line, close.col)] = close.text
                elif close.method in ("aclose", "close", "disconnect"):
                    edits.remove_closes.add((close.line, close.col))
                else:
                    self.plan.skipped.append((f, "closed in a way the fixer does not rewrite"))
                    return
                self.plan.fixed.append(f)
                return
        self.plan.skipped.append((f, "close not found"))

    # -- the lifespan ---------------------------------------------------------------------
    def _lifespan(self) -> None:
        mod, app = self.app
        edits = self.plan.file(mod.path)
        singles = list(self.singletons.values())
        for single in singles:
            edits.imports.extend(single.imports)
        builds, class_imports = self._classes(mod, singles)
        existing = [q for q in [self._existing_lifespan()] if q]
        param = "app"
        if existing:
            lfn = self.p.functions[existing[0]][1]
            param = lfn.params[0] if lfn.params else "app"
        extra_teardown = self._never_closed(param, existing[0] if existing else None)
        for f in self.lifespan_findings:
            if f.code != "RPL201":
                continue
            if existing:
                self.plan.skipped.append((f, "the app already has a lifespan, so on_event handlers "
                                          "are never called: fold this one into it by hand"))
            else:
                smod, sfn = self.p.functions[f.function]
                self._bound_startup_clients(smod, sfn)
                self.plan.fixed.append(f)
        if existing and not singles and not extra_teardown:
            return
        if existing:
            lmod, lfn = self.p.functions[existing[0]]
            if lmod.path != mod.path:
                builds, class_imports = self._classes(lmod, singles)
            param = lfn.params[0] if lfn.params else None
            if param is None:
                raise Skip("the lifespan takes no app parameter")
            if not lfn.has_yield:
                raise Skip("the lifespan does not yield")
            setup = [f"{param}.state.{s.name} = {fill(builds[s.name], param)}" for s in singles]
            teardown = [s.close.format(x=f"{param}.state.{s.name}") for s in reversed(singles)]
            state_keys = ()
            if self.state_dict is not None:
                taken = set(self.state_dict.yielded_keys or ())
                if any(s.name in taken for s in singles):
                    raise Skip("the lifespan state already has a key named like the client")
                setup = [f"{s.name}_client = {fill(builds[s.name], param)}" for s in singles]
                teardown = [s.close.format(x=f"{s.name}_client") for s in reversed(singles)]
                state_keys = tuple((s.name, f"{s.name}_client") for s in singles)
            teardown += extra_teardown
            target = self.plan.file(lmod.path)
            target.merge_lifespan = (lfn.line, setup, teardown)
            target.imports.extend(class_imports)
            target.state_keys = state_keys
            if lmod.path != mod.path:
                target.imports.extend(i for s in singles for i in s.imports)
            return
        startups, shutdowns = self._events(mod, app)
        name = "lifespan"
        taken = set(mod.exports) | {q.rsplit(".", 1)[-1] for q in mod.functions}
        while name in taken:
            name = "_" + name if not name.startswith("_redis") else name + "_"
            if name == "__lifespan":
                name = "_redis_lifespan"
        body = []
        for fn_name, is_async in startups:
            body.append(f"    {'await ' if is_async else ''}{fn_name}()")
        for s in singles:
            body.append(f"    app.state.{s.name} = {fill(builds[s.name], 'app')}")
        edits.imports.extend(class_imports)
        body.append("    try:")
        body.append("        yield")
        body.append("    finally:")
        for s in reversed(singles):
            body.append("        " + s.close.format(x=f"app.state.{s.name}"))
        for close in extra_teardown:
            body.append("        " + close)
        for fn_name, is_async in shutdowns:
            body.append(f"        {'await ' if is_async else ''}{fn_name}()")
        code = "@asynccontextmanager\nasync def " + name + "(app):\n" + "\n".join(body) + "\n"
        anchor = app.line if app.factory is None else self.p.functions[app.factory][1].line
        edits.new_lifespan = (anchor, code)
        edits.app_call = (app.line, app.col)
        edits.app_kwarg = name
        edits.drop_app_kwargs = tuple(k for k in ("on_startup", "on_shutdown") if k in app.keywords)
        edits.imports.append(("contextlib", "asynccontextmanager", None, 0))

    def _classes(self, where: ModuleSummary, singles: List[Singleton]):
        """Bind each singleton's class names in ``where``; alias on clashes. Returns the builds."""
        bound = module_bindings(where)
        builds: Dict[str, str] = {}
        imports: List[Tuple[str, Optional[str], Optional[str], int]] = []
        for single in singles:
            names = {}
            for short, cls in (("R", "Redis"), ("P", "BlockingConnectionPool")):
                want = f"{single.lib}.{cls}"
                local = cls
                if bound.get(local, want) != want:
                    prefix = ("Async" if single.lib.endswith(".asyncio") else "Sync") + (
                        "Valkey" if single.lib.startswith("valkey") else "")
                    local = f"{prefix}{cls}"
                if bound.get(local, want) != want:
                    raise Skip(f"the names `{cls}` and `{local}` are taken in {where.name}")
                bound[local] = want
                names[short] = local
                if short == "R" or P_ in single.build:
                    imports.append((single.lib, cls, None if local == cls else local, 0))
            builds[single.name] = single.build.replace(R_, names["R"]).replace(P_, names["P"])
        return builds, imports

    def _existing_lifespan(self) -> Optional[str]:
        mod, app = self.app
        found = [q for q, (line, col) in self.p.lifespans.items() if self._ref_in_app_call(mod, app, line)]
        return found[0] if found else None

    def _never_closed(self, param: str, lifespan: Optional[str]) -> List[str]:
        """Closes to add after the yield for RPL202 clients (kept on app state, or a local)."""
        out = []
        for f in self.lifespan_findings:
            if f.code != "RPL202":
                continue
            mod, fn = self.p.functions[f.function]
            found = _site_of(fn, f)
            site = found[1] if found else None
            if site is None or site.ctor.flavor not in ("async", "sync"):
                self.plan.skipped.append((f, "only redis-py/valkey clients get a close added"))
                continue
            target = next((f"{param}.state.{st[1]}" for st in site.stores if st[0] == "state"), None)
            if target is None and fn.qualname == lifespan:
                target = next((st[1] for st in site.stores if st[0] == "local"), None)
            if target is None:
                self.plan.skipped.append((f, "not stored where the lifespan can reach it at shutdown"))
                continue
            if site.ctor.flavor == "async":
                out.append(f"await {target}.aclose()")
            else:
                out.append(f"{target}.close()" if site.ctor.kind == "client" else f"{target}.disconnect()")
            self.plan.fixed.append(f)
        return out

    def _ref_in_app_call(self, mod: ModuleSummary, app: AppSite, line: int) -> bool:
        return any(r.kind == "lifespan" and r.line >= app.line and r.line - app.line < 40
                   for r in mod.registrations if r.line == line)

    def _events(self, mod: ModuleSummary, app: AppSite) -> Tuple[List[Tuple[str, bool]], List[Tuple[str, bool]]]:
        """Startup/shutdown handlers on the app, to call from the new lifespan (in order)."""
        starts: List[Tuple[str, bool]] = []
        stops: List[Tuple[str, bool]] = []
        for reg in mod.registrations:
            kind = reg.kind.replace("_item", "")
            if kind not in ("startup", "shutdown"):
                continue
            if reg.kind.endswith("_item"):
                if not (app.line <= reg.line < app.line + 40):
                    continue
                canon = self.p.canonical(reg.target, mod.name)
            else:
                if reg.owner is None or self.p.canonical(reg.owner, mod.name) != app.qualname:
                    continue
                canon = reg.target
                self.plan.file(mod.path).drop_event_decorators.add(reg.line)
            entry = self.p.functions.get(canon)
            if entry is None or entry[0].path != mod.path:
                raise Skip("a startup/shutdown handler lives in another module: fold it into the "
                           "lifespan by hand first")
            fn = entry[1]
            (starts if kind == "startup" else stops).append((fn.name, fn.is_async))
        return starts, stops

    def _drop_site_edits(self, reason: str) -> None:
        keep_codes = ("RPL203", "RPL002")
        moved = [f for f in self.plan.fixed if f.code not in keep_codes]
        self.plan.fixed = [f for f in self.plan.fixed if f.code in keep_codes]
        self.plan.skipped.extend((f, reason) for f in moved)
        for edits in self.plan.edits.values():
            edits.replace_calls.clear()
            edits.unwrap_withs.clear()
            edits.remove_closes.clear()
            edits.add_params.clear()
            edits.imports.clear()
        self.singletons.clear()


def module_bindings(mod: ModuleSummary) -> Dict[str, str]:
    """The names a module binds at its top level that the analysis knows (imports, aliases,
    functions, classes, Redis globals): name -> qualified target."""
    bound: Dict[str, str] = {}
    for name, (module, level, obj) in mod.import_forms.items():
        base = "." * level + module
        bound[name] = (base + ("" if base.endswith(".") else ".") + obj) if obj else base
    for name, target in mod.exports.items():
        bound.setdefault(name, target)
    prefix = mod.name + "."
    for qualname in [*mod.functions, *mod.classes]:
        short = qualname[len(prefix):] if qualname.startswith(prefix) else qualname
        if "." not in short:  # not a method or a nested function
            bound.setdefault(short, qualname)
    for name in [*mod.redis_globals, *mod.instances]:
        bound.setdefault(name, f"{mod.name}.{name}")
    return bound


def assigned_at_top(source: str, name: str) -> bool:
    """Whether a statement at the module's top level assigns ``name`` (``name = ...``,
    ``name: T = ...``, ``name, x = ...``, ``for name in``): the summary keeps no plain variables."""
    word = re.escape(name)
    return re.search(rf"(?m)^(?:{word}[ \t]*(?::[^=\n]*)?=(?!=)|{word}[ \t]*,|for[ \t]+{word}\b)", source) is not None


def _segment(lines: List[str], site: Site) -> str:
    """Source text of a site's call from its (line, byte col) span."""
    if site.line == site.end_line:
        raw = lines[site.line - 1].encode("utf-8")
        return raw[site.col:site.end_col].decode("utf-8", "replace")
    first = lines[site.line - 1].encode("utf-8")[site.col:].decode("utf-8", "replace")
    middle = "".join(lines[site.line:site.end_line - 1])
    last = lines[site.end_line - 1].encode("utf-8")[:site.end_col].decode("utf-8", "replace")
    return "(" + first + middle + last + ")"


def make_plan(result: ProjectResult, options: Options, sources: Dict[str, str]) -> Plan:
    return Planner(result, options, sources).run()
