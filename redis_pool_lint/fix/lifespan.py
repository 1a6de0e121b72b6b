"""The lifespan that builds the shared clients: a new one, or the app's own merged into; startup
and shutdown handlers folded in; closes added for clients never closed.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from ..analysis.summary import AppSite, ModuleSummary
from . import forms
from .edits import P_, R_, S_, Singleton, Skip, fill, module_bindings, site_of


class LifespanBuilder:
    """Planner part: the app module's lifespan."""

    def _lifespan(self) -> None:
        mod, app = self.app
        edits = self.plan.file(mod.path)
        singles = [s for s in self.singletons.values() if not s.existing]
        if not singles and not self.lifespan_findings:
            return  # every request reuses a client the app already builds at startup
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
            teardown = _closes(singles, lambda s: f"{param}.state.{s.name}")
            state_keys = ()
            if self.state_dict is not None:
                taken = set(self.state_dict.yielded_keys or ())
                if any(s.name in taken for s in singles):
                    raise Skip("the lifespan state already has a key named like the client")
                setup = [f"{s.name}_client = {fill(builds[s.name], param)}" for s in singles]
                teardown = _closes(singles, lambda s: f"{s.name}_client")
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
        teardown = _closes(singles, lambda s: f"app.state.{s.name}")
        teardown += extra_teardown
        teardown += [f"{'await ' if is_async else ''}{fn_name}()" for fn_name, is_async in shutdowns]
        if teardown:
            body += ["    try:", "        yield", "    finally:"] + ["        " + line for line in teardown]
        else:  # nothing to close (a startup handler's work moved in): no empty ``finally``
            body.append("    yield")
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
            for short, cls in zip("RPS", self.classes.get(single.lib, ("Redis", "BlockingConnectionPool", "SSLConnection"))):
                if not cls:
                    continue
                want = f"{single.lib}.{cls}"
                local = cls
                if bound.get(local, want) != want:
                    prefix = "Aioredis" if single.lib == "aioredis" else (
                        ("Async" if single.lib.endswith(".asyncio") else "Sync")
                        + ("Valkey" if single.lib.startswith("valkey") else ""))
                    local = f"{prefix}{cls}"
                if bound.get(local, want) != want:
                    raise Skip(f"the names `{cls}` and `{local}` are taken in {where.name}")
                bound[local] = want
                names[short] = local
                if short == "R" or {"P": P_, "S": S_}[short] in single.build:
                    imports.append((single.lib, cls, None if local == cls else local, 0))
            builds[single.name] = single.build.replace(R_, names["R"]).replace(P_, names.get("P", P_)).replace(
                S_, names.get("S", S_))
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
            found = site_of(fn, f)
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
            tgt = forms.target(self.r.pins(), site.ctor.library, site.ctor.flavor,
                               legacy1=site.ctor.library == "aioredis" and site.ctor.method == "factory")
            out.extend((tgt.close(target) if site.ctor.kind == "client" else tgt.close_pool(target)).splitlines())
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


def _closes(singles: List[Singleton], where: Callable[[Singleton], str]) -> List[str]:
    """The statements that close each shared client at shutdown, last built first closed."""
    return [line for s in reversed(singles) for line in s.close.format(x=where(s)).splitlines()]
