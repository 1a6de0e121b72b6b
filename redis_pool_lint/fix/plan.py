"""From findings to a plan of edits across files: the fixer never detects on its own.

The plan says, per file, which construction becomes the shared client, which closes go, which
``async with`` blocks unwrap, which parameter a handler gains, and, in the app's module, how
the lifespan is created or merged. ``transform.py`` carries it out with libcst.

The planner is split by concern: ``app.py`` finds the app, ``clients.py`` decides what each
shared client is (``forms.py``: in which API), ``helpers.py`` rewrites helpers and factories,
``lifespan.py`` builds the lifespan; this module walks the findings and rewrites the sites.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from typing import Any, Dict, List, Optional, Set, Tuple

from ..analysis.detect import Finding, short as short_name
from ..analysis.index import Project
from ..analysis.load import ProjectResult
from ..analysis.summary import AppSite, Function, ModuleSummary, Site
from ..filters import noqa_filter
from ..rules import BY_CODE, Fix
from . import app as app_finder, forms
from .clients import SharedClients
from .edits import (CLOSES, REQUEST_TYPES, SITE_CODES, FileEdits, Options, Plan, Singleton, Skip,  # noqa: F401
                    assigned_at_top, module_bindings, module_path, site_of)
from .helpers import HelperRewrites
from .lifespan import LifespanBuilder


class Planner(SharedClients, HelperRewrites, LifespanBuilder):
    """Findings in, a ``Plan`` out: each construction site all or nothing."""

    def __init__(self, result: ProjectResult, options: Options, sources: Dict[str, str]) -> None:
        self.r = result
        self.p: Project = result.project
        self.o = options
        self.sources = sources
        self.plan = Plan()
        self.plan.refuse = self._unwritable
        self._by_path: Optional[Dict[str, ModuleSummary]] = None
        self._split: Dict[str, List[str]] = {}
        self.singletons: Dict[Tuple, Singleton] = {}
        self.app: Optional[Tuple[ModuleSummary, AppSite]] = None
        self.lifespan_findings: List[Finding] = []
        self.pools_taken: Set[int] = set()  # per-request pools fixed with their client
        self.state_dict: Optional[Function] = None  # an existing lifespan that yields its state
        # project-wide lookups, built on first use (once per plan, not once per finding)
        self._outside: Optional[Dict[str, List[str]]] = None
        self._foreign_closes: Optional[Dict[int, List[Tuple[ModuleSummary, Any]]]] = None
        self._state_pools: Optional[Dict[str, List[Tuple[ModuleSummary, Function, Site]]]] = None
        #: the client classes a singleton of each library is built from (R_, P_)
        self.classes: Dict[str, Tuple[str, str]] = {}

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
                continue
            try:
                self._other(f)
            except Skip as exc:
                self.plan.skipped.append((f, str(exc)))
        if site_groups or self.lifespan_findings:
            try:
                self.app = self._find_app([f for g in site_groups.values() for f in g] + self.lifespan_findings)
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
        by_path = self._modules_by_path()
        for path, edits in self.plan.edits.items():
            if path in by_path:
                edits.module, edits.is_package = by_path[path].name, by_path[path].is_package
        self.plan.edits = {k: v for k, v in self.plan.edits.items() if not v.empty()}
        if self.plan.edits:
            libraries = {s.lib.split(".")[0] for s in self.singletons.values()} | {
                e.blocking_module.split(".")[0] for e in self.plan.edits.values() if e.blocking_module}
            if "redis" in libraries or any(e.renames for e in self.plan.edits.values()):
                self.plan.targets.append(forms.describe(self.r.pins()["redis"]))
        return self.plan

    def _other(self, f: Finding) -> None:
        """A finding that is not a construction site: a close, a rename, a lifespan matter."""
        if f.code == "RPL203":
            pin = self.r.pins()["redis"]
            if not pin.has(forms.FROM_POOL):
                raise Skip("aclose() needs redis-py 5.0.1; " + (
                    "the version is unknown: pass --redis-version" if pin.version is None
                    else f"the project has {pin.text} ({pin.source})"))
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

    def _lines(self, path: str) -> List[str]:
        """A planned file's lines (ends kept), split once however many sites it has."""
        if path not in self._split:
            self._split[path] = self.sources.get(path, "").splitlines(keepends=True)
        return self._split[path]

    def _modules_by_path(self) -> Dict[str, ModuleSummary]:
        if self._by_path is None:
            self._by_path = {m.path: m for m in self.p.modules.values()}
        return self._by_path

    def _unwritable(self, path: str) -> Optional[str]:
        """A file this Python cannot compile (newer syntax the analysis read through libcst) cannot
        have its rewrite verified: none of its sites is fixed."""
        mod = self._modules_by_path().get(path)
        if mod is None or mod.newer_syntax is None:
            return None
        version = ".".join(map(str, sys.version_info[:2]))
        return (f"{os.path.basename(path)} does not parse under this Python ({version}: {mod.newer_syntax}): "
                "run the fix under the Python the project uses")

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
    def _find_app(self, findings: List[Finding]) -> Tuple[ModuleSummary, AppSite]:
        entries = sorted({self.p.scopes[f.function].chain[0] for f in findings
                          if f.function in self.p.scopes and self.p.scopes[f.function].chain})
        try:
            return app_finder.choose(self.p, self.r.sources, entries, self.o.app)
        except app_finder.NoApp as exc:
            raise Skip(str(exc)) from None

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
        mod, fn = module_path(self.p, f.function)
        found = site_of(fn, f)
        if found is None:
            raise Skip("construction not found")
        index, site = found
        if f.role == "helper" and (site.none_guard or not any(REQUEST_TYPES.get(fn.param_types.get(p, ""))
                                                              for p in fn.params)):
            # else: its own request reaches the app (one under `if request is None:` does not)
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
        built, site = site, self._with_state_pool(fn, site)
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
            elif close.method in CLOSES:
                edits.remove_closes.add((close.line, close.col))
            else:
                raise Skip(f"closed through `{close.text}` in a way the fixer does not rewrite")
        # closes of this client made by callers (a yield dependency's user closing it)
        for rmod, close in self.foreign_closes(built):
            target = self.plan.file(rmod.path)
            if close.method == "with":
                target.unwrap_withs[(close.line, close.col)] = close.text
            else:
                target.remove_closes.add((close.line, close.col))

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

    # -- shared closes --------------------------------------------------------------------
    def _shared_close(self, f: Finding) -> None:
        mod, fn = module_path(self.p, f.function)
        edits = self.plan.file(mod.path)
        for close in fn.closes:
            if (close.line, close.col) == (f.line, f.col):
                if close.method == "with":
                    edits.unwrap_withs[(close.line, close.col)] = close.text
                elif close.method in CLOSES:
                    edits.remove_closes.add((close.line, close.col))
                    # aioredis 1.x: waiting for a close that no longer happens would hang
                    edits.remove_closes.update((c.line, c.col) for c in fn.closes
                                               if c.method == "wait_closed" and c.origin == close.origin)
                else:
                    self.plan.skipped.append((f, "closed in a way the fixer does not rewrite"))
                    return
                self.plan.fixed.append(f)
                return
        self.plan.skipped.append((f, "close not found"))


def make_plan(result: ProjectResult, options: Options, sources: Dict[str, str]) -> Plan:
    return Planner(result, options, sources).run()
