"""Helpers and factories that other code calls: they keep working for their callers outside
requests (scripts, workers, tests), and take the shared client inside one.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from ..analysis.detect import outside_request, passes
from ..analysis.summary import Function, ModuleSummary, Site
from .edits import CLOSES, Singleton, Skip


class HelperRewrites:
    """Planner part: rewrites of functions reached from request scope that build a client."""

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

    def _helper(self, mod: ModuleSummary, fn: Function, index: int, site: Site) -> None:
        """A helper that only returns a new client: its request-scope call sites become the
        shared client, and the helper stays as it is for its other callers."""
        if fn.has_yield or fn.returns != [("site", str(index))] or len(fn.sites) != 1 or fn.closes:
            return self._using_helper(mod, fn, index, site)
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
                elif close.method in CLOSES:
                    edits.remove_closes.add((close.line, close.col))

    def _using_helper(self, mod: ModuleSummary, fn: Function, index: int, site: Site) -> None:
        """A helper that builds a client and uses it (``redis = from_url(...)``, commands, maybe
        a close): it gains ``request: Request = None``; with a request it takes the shared
        client, without one (a script, a worker, a test) it builds its own as before. Its
        request-scope callers pass ``request=``. Passing the request, not the client, keeps the
        shared client's name in one place and is the guard the analysis knows."""
        why = "the helper does more than build and use a client in `x = <client>`: pass the shared client down by hand"
        origin = ("site", str(index))
        if fn.has_yield or origin in fn.returns or (site.pool_origin is not None and site.pool_origin[0] == "site"):
            raise Skip(why)
        target = self._assigned_at(mod, site)
        if target is None:
            raise Skip(why)
        closes = [c for c in fn.closes if c.origin == origin or (c.origin == ("local", target))]
        if any(c.method not in CLOSES for c in closes):
            raise Skip("the helper closes the client with `with`: pass the shared client down by hand")
        guard = site.none_guard  # ``if request is None:`` already: the parameter callers must pass
        guarded = outside_request(fn, guard)
        if "request" in fn.params and not guarded:
            raise Skip("a parameter named `request` is in the way")
        inline = self._inlinable(fn, site)
        depends = sorted({n for n, q in site.arg_names if q is None and n not in inline})
        if depends:
            raise Skip("constructor arguments depend on the helper's parameters or locals ("
                       + ", ".join(f"`{n}`" for n in depends) + "): cannot build it once")
        calls = []
        for qual, line, col in self.p.callers_in_scope().get(fn.qualname, []):
            scope = self.p.scopes[qual]
            cmod, caller = self.p.functions[qual]
            if scope.role == "helper":
                raise Skip(f"called from `{caller.name}`, itself a helper: pass the shared client down by hand")
            source = self._lines(cmod.path)[line - 1].encode("utf-8")[col:].decode("utf-8", "replace")
            if not re.match(rf"(?:await\s+)?(?:[\w.]+\.)?{re.escape(fn.name)}\s*\(", source):
                raise Skip(f"`{caller.name}` hands `{fn.name}` on without calling it: pass the shared client down by hand")
            calls.append((cmod, caller, scope.role, line, col))
        if not calls:
            raise Skip("no request-scope caller found")
        single = self._singleton(mod, site, fn, inline)
        if guarded:
            # guarded already (this fix, stopped before it rewrote the callers, or by hand): the
            # shared client it takes must be the one built, and its callers pass the request
            if self._state_read(mod, fn, guard) != single.name:
                raise Skip(f"`{fn.name}` reads another client than the one shared: pass the request down by hand")
        else:
            self._add_request_param(mod, fn, optional=True)
            edits = self.plan.file(mod.path)
            edits.guard_assigns[(site.line, site.col)] = f"request.app.state.{single.name}"
            edits.guard_closes.update((c.line, c.col) for c in closes)
            edits.passed_by_callers.add(fn.line)
        for cmod, caller, role, line, col in calls:
            if passes(fn, caller, line, col, guard if guarded else "request"):
                continue  # passes it already (a run stopped after writing the caller, not the helper)
            conn = self._connection(cmod, caller, role)
            if not conn.endswith(".app"):
                raise Skip(f"no Request in `{caller.name}` to pass down")
            self.plan.file(cmod.path).add_kwargs[(line, col)] = (guard if guarded else "request", conn[: -len(".app")])

    def _state_read(self, mod: ModuleSummary, fn: Function, param: str) -> Optional[str]:
        """The one ``<param>.app.state.<name>`` the function reads, if one."""
        import ast

        tree = ast.parse("".join(self._lines(mod.path)))
        names = {node.attr for top in ast.walk(tree)
                 if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) and top.lineno == fn.line
                 for node in ast.walk(top)
                 if isinstance(node, ast.Attribute) and ast.unparse(node.value) == f"{param}.app.state"}
        return next(iter(names)) if len(names) == 1 else None

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
        shared = f"request.app.state.{single.name}"
        if self._assigned_at(mod, site) is not None:  # ``client = <client>`` ... ``return client``
            edits = self.plan.file(mod.path)
            edits.guard_assigns[(site.line, site.col)] = shared
            edits.guard_closes.update((c.line, c.col) for c in fn.closes if c.origin == ("site", "0"))
            return
        self.plan.file(mod.path).guard_factories[fn.line] = ((site.line, site.col), shared)

    def _assigned_at(self, mod: ModuleSummary, site: Site) -> Optional[str]:
        """The variable of ``x = [await] <site>`` when the site is the whole right-hand side."""
        line = self._lines(mod.path)[site.line - 1]
        before = line.encode("utf-8")[:site.col].decode("utf-8", "replace")
        found = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?::[^=]+)?=\s*(?:await\s+)?", before)
        return found.group(1) if found else None
