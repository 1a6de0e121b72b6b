"""The shared clients: what each per-request construction becomes in the lifespan, in the API
of the project's client library, with its options, its bounded pool and its name.
"""
from __future__ import annotations

import dataclasses
import re
from typing import List, Optional, Tuple

from ..analysis.detect import Finding
from ..analysis.summary import Function, ModuleSummary, Site
from . import forms
from .edits import (APP_, CLIENT_ONLY, P_, POOL_KEYWORDS, POSITIONAL, R_, S_, Singleton, Skip, module_path, segment,
                    site_of, split_args, split_kwargs)


class SharedClients:
    """Planner part: one ``Singleton`` per configuration, and the pools they rest on."""

    def target(self, ctor) -> forms.Target:
        """What code the project's version of ``ctor``'s library runs."""
        return forms.target(self.r.pins(), ctor.library, ctor.flavor)

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

    def _with_state_pool(self, fn: Function, site: Site) -> Site:
        """A pool handed over by a dependency or a call that returns ``request.app.state.pool``
        (``redis_pool: ConnectionPool = Depends(get_redis_pool)``) lives as long as the app:
        the site, seen as built over that app-state pool."""
        if not site.pool_origin or site.pool_origin[0] not in ("param", "call"):
            return site
        from ..analysis.detect import _Detector

        found = {(kind, a) for kind, a, _ in _Detector(self.p).resolve(fn, site.pool_origin)}
        if len(found) != 1 or next(iter(found))[0] != "state":
            return site
        attr = next(iter(found))[1]
        if not self.state_pools(attr):
            return site
        names = [(n, q) for n, q in site.arg_names if not (q is None and n == site.pool_origin[1])]
        return dataclasses.replace(site, pool_origin=("state", attr), arg_names=names)

    def _singleton(self, mod: ModuleSummary, site: Site, fn: Function = None, inline=None) -> Singleton:
        ctor = site.ctor
        legacy1 = ctor.library == "aioredis" and ctor.method == "factory"
        if ctor.library not in ("redis", "valkey", "aioredis") or ctor.flavor not in ("async", "sync", "legacy"):
            raise Skip(f"{ctor.library} {ctor.flavor} clients are not rewritten automatically")
        if legacy1 and site.callee.rsplit(".", 1)[-1] not in ("create_redis_pool", "create_redis"):
            raise Skip(f"`{site.callee}` (aioredis 1.x) is not rewritten automatically: use create_redis_pool")
        if not legacy1 and (ctor.method not in ("init", "from_url", "from_pool") or (
                ctor.kind != "client" and ctor.method == "from_pool")):
            raise Skip("only Redis(...), from_url(...) and from_pool(...) clients are rewritten")
        if "Cluster" in site.callee:
            raise Skip("cluster clients are not rewritten automatically")
        if "**" in site.keywords:
            raise Skip("constructor takes **kwargs: cannot tell which options it passes")
        tgt = forms.target(self.r.pins(), ctor.library, ctor.flavor, legacy1)
        lib = tgt.module
        source = self._call_source(mod, site)
        args, kwargs = source
        if inline:
            args, kwargs = self._substitute(mod, args, kwargs, inline)
        over_shared = ctor.method == "from_pool" or site.auto_close or (
            ctor.method == "init" and site.pool_origin is not None and site.keywords == ["connection_pool"])
        if legacy1:
            key = ("create_redis_pool", lib, args, kwargs)
            build = f"await {R_}({', '.join(x for x in (args, kwargs) if x)})"
        elif over_shared and site.pool_origin and site.pool_origin[0] == "global":
            pool = self._bound_global_pool(mod, site.pool_origin[1])
            key = ("from_pool_global", lib, pool)
            build = tgt.owning(R_, pool.rsplit('.', 1)[-1]) + ("  # owns it: closed at shutdown" if tgt.modern else "")
        elif over_shared and site.pool_origin and site.pool_origin[0] == "state" or ctor.method == "from_pool":
            if site.pool_origin is None or site.pool_origin[0] != "state":
                raise Skip("from_pool() over a pool that is not on the app's state")
            pool_attr = site.pool_origin[1]
            self._bound_state_pool(pool_attr)
            key = ("from_pool", lib, pool_attr)
            build = f"{R_}(connection_pool={APP_}.state.{pool_attr})"
        elif over_shared and site.pool_origin and site.pool_origin[0] == "call" and not args:
            # ``Redis(connection_pool=get_pool())`` where ``get_pool`` keeps one pool: a client
            # over it, built once; the pool stays the project's to close
            key = ("over_call", lib, kwargs)
            build = f"{R_}({kwargs})"
        else:
            key, build = self._owned_pool_template(site, tgt, args, kwargs)
        existing = self.singletons.get(key)
        if existing:
            return existing
        same = self._built_at_startup(mod, site, ctor, args, kwargs, key)
        if same is not None:
            single = Singleton(same, key, lib, "", "", [], existing=True)
            self.singletons[key] = single
            return single
        name = self._state_name(key, self._name_hints(site, fn))
        imports = self._name_imports(mod, site.arg_names + [n for v in (inline or {}).values() for n in v[1]])
        single = Singleton(name, key, lib, build, tgt.close("{x}"), imports)
        if legacy1:
            self.classes[lib] = ("create_redis_pool", "")
        self.singletons[key] = single
        return single

    def _built_at_startup(self, mod: ModuleSummary, site: Site, ctor, args: str, kwargs: str,
                          key: Tuple = ()) -> Optional[str]:
        """The ``app.state`` attribute of a client the lifespan or a startup handler already
        builds the same way (same constructor, same arguments naming the same things), or builds
        as this fixer would: over a blocking pool made from the same arguments. The second form
        is what a run stopped between its writes leaves (the lifespan written, the request code
        not yet), so the next run must see its own rewrite as the client to reuse."""
        if site.pool_origin is not None:
            return None
        wanted = {n: self.p.canonical(q, mod.name) for n, q in site.arg_names if q}
        quals = list(self.p.lifespans) + [q for kind, q, _, _ in self.p.startups if kind.startswith("startup")]
        for qual in dict.fromkeys(quals):
            if qual not in self.p.functions:
                continue
            smod, sfn = self.p.functions[qual]
            for other in sfn.sites:
                attrs = [name for kind, name in other.stores if kind == "state"]
                if not attrs or other.ctor.kind != "client" or other.ctor.library != ctor.library \
                        or other.ctor.flavor != ctor.flavor:
                    continue
                built = other
                if other.pool_origin is not None:  # the owned-pool template: compare its pool
                    if key[:1] not in (("from_url",), ("init",)) or other.pool_origin[0] != "site":
                        continue
                    if set(other.keywords) - {"connection_pool"}:
                        continue  # options of the client itself (single_connection_client=...)
                    built = sfn.sites[int(other.pool_origin[1])]
                    if not built.blocking_pool or built.ctor.method != ("from_url" if key[0] == "from_url" else "init"):
                        continue
                elif other.ctor != ctor:
                    continue
                theirs = {n: self.p.canonical(q, smod.name) for n, q in built.arg_names if q}
                if any(q is None for _, q in built.arg_names) or theirs != wanted:
                    continue
                try:
                    source = self._call_source(smod, built)
                except Skip:
                    continue
                if built is other:
                    same = source == (args, kwargs)
                else:  # the pool may add the bound; every option the request gave is there as given
                    given_args, given = (key[2], key[3]) if key[0] == "from_url" else ("", key[2])
                    theirs_kw, ours_kw = split_kwargs(source[1]), split_kwargs(given)
                    same = (source[0] == given_args
                            and all(theirs_kw.get(k) == v for k, v in ours_kw.items())
                            and set(theirs_kw) - set(ours_kw) <= {"max_connections", "timeout"})
                if same:
                    return attrs[0]
        return None

    @staticmethod
    def _name_hints(site: Site, fn: Optional[Function]) -> List[str]:
        """What the code calls the client: its variable, its attribute, its factory."""
        hints = [name for kind, name in site.stores if kind in ("local", "self", "state")]
        if fn is not None:
            hints.append(fn.name)
        return hints

    def _owned_pool_template(self, site: Site, tgt: forms.Target, args: str, kwargs: str) -> Tuple[Tuple, str]:
        """``from_url(u, **kw)``/``Redis(**kw)`` -> a client owning a bounded blocking pool."""
        lib = tgt.module
        bound = ", ".join(f"{k}={v}" for k, v in (("max_connections", self.o.max_connections),
                                                  ("timeout", f"{self.o.pool_timeout:g}"))
                          if k not in site.keywords)
        allowed = POOL_KEYWORDS | {"max_connections"} | ({"timeout"} if site.ctor.kind == "pool" else set())
        if site.ctor.method == "from_url":
            bad = [k for k in site.keywords if k in CLIENT_ONLY]
            if bad:
                raise Skip(f"`{bad[0]}=` configures the client itself: fix by hand")
            if not args and "url" not in site.keywords:
                raise Skip("from_url() without a URL argument")
            extra = ", ".join(x for x in (args, kwargs, bound) if x)
            return ("from_url", lib, args, kwargs), tgt.owning(R_, f"{P_}.from_url({extra})")
        keywords = list(site.keywords)
        if args:  # Redis("localhost", 6379, 0): the pool takes them by name
            values = split_args(args)
            if len(values) > len(POSITIONAL):
                raise Skip(f"more than {len(POSITIONAL)} positional constructor arguments: fix by hand")
            named = [f"{k}={v}" for k, v in zip(POSITIONAL, values)]
            kwargs = ", ".join(named + ([kwargs] if kwargs else []))
            keywords += POSITIONAL[: len(values)]
            args = ""
        if "ssl" in keywords:  # the client picks SSLConnection itself; a pool is told
            pairs = split_kwargs(kwargs)
            if pairs.get("ssl") != "True" or tgt.module == "aioredis":
                raise Skip("`ssl=` that is not a literal True: the pool needs connection_class=SSLConnection "
                           "only when it is; fix by hand (or use a rediss:// URL)")
            kwargs = ", ".join([f"connection_class={S_}"] + [f"{k}={v}" for k, v in pairs.items() if k != "ssl"])
            keywords = [k for k in keywords if k != "ssl"] + ["connection_class"]
            allowed = allowed | {"connection_class"} | {k for k in keywords if k.startswith("ssl_")}
        bad = [k for k in keywords if k not in allowed]
        if bad or args:
            raise Skip("constructor options the pool rewrite does not map ("
                       + ", ".join(f"`{b}`" for b in (bad or ["positional arguments"])) + ")")
        return ("init", lib, kwargs), tgt.owning(R_, f"{P_}({', '.join(x for x in (kwargs, bound) if x)})")

    def _unbounded(self, f: Finding) -> None:
        """RPL204 (unsafe, asked for): the lifespan's client gets a bounded blocking pool."""
        mod, fn = module_path(self.p, f.function)
        found = site_of(fn, f)
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
        if ctor.library not in ("redis", "valkey", "aioredis") or ctor.flavor not in ("async", "sync", "legacy") \
                or "Cluster" in site.callee or "**" in site.keywords:
            return False
        tgt = self.target(ctor)
        lib = tgt.module
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
                _, template = self._owned_pool_template(site, tgt, args, kwargs)
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
            if site.ctor.library not in ("redis", "valkey", "aioredis") or site.ctor.method not in ("init", "from_url"):
                raise Skip(f"app.state.{attr} is not a pool the fixer can bound")
            bound = None if "max_connections" in site.keywords else str(self.o.max_connections)
            wait = None if "timeout" in site.keywords else f"{self.o.pool_timeout:g}"
            edits = self.plan.file(mod.path)
            edits.make_blocking[(site.line, site.col)] = (bound, wait)
            edits.blocking_module = self.target(site.ctor).module

    def _bound_global_pool(self, mod: ModuleSummary, qual: str) -> str:
        """A module-level pool behind per-request clients: bounded and blocking, like app state."""
        canon = self.p.canonical(qual, mod.name)
        owner_name, _, name = canon.rpartition(".")
        owner = self.p.modules.get(owner_name)
        if owner is not None and name not in owner.global_sites and name in owner.instances:
            return self._bound_factory_pool(owner, name, canon)
        if owner is None or name not in owner.global_sites or owner.redis_globals[name].kind != "pool":
            raise Skip("from_pool() over a pool the fixer cannot find")
        line, col, keywords, blocking = owner.global_sites[name]
        ctor = owner.redis_globals[name]
        if ctor.library not in ("redis", "valkey", "aioredis") or ctor.method not in ("init", "from_url"):
            raise Skip("from_pool() over a pool the fixer cannot bound")
        if not (blocking and "max_connections" in keywords):
            edits = self.plan.file(owner.path)
            edits.make_blocking[(line, col)] = (
                None if "max_connections" in keywords else str(self.o.max_connections),
                None if "timeout" in keywords else f"{self.o.pool_timeout:g}")
            edits.blocking_module = self.target(ctor).module
        return canon

    def _bound_factory_pool(self, owner: ModuleSummary, name: str, canon: str) -> str:
        """``pool = create_pool()`` at module level, the function building the pool: bound it there."""
        for target in self.p.callable_targets(owner.instances[name], owner.name):
            fmod, fn = self.p.functions[target]
            sites = [fn.sites[int(o[1])] for o in fn.returns if o[0] == "site"]
            if len(sites) == 1 and sites[0].ctor.kind == "pool" and self._bound_site(fmod, sites[0]):
                return canon
            if len(sites) == 1 and sites[0].ctor.kind == "pool" and sites[0].blocking_pool \
                    and "max_connections" in sites[0].keywords:
                return canon
        raise Skip("from_pool() over a pool the fixer cannot find")

    def _call_source(self, mod: ModuleSummary, site: Site) -> Tuple[str, str]:
        """The call's positional and keyword arguments, as the user wrote them."""
        import libcst as cst

        try:
            call = cst.parse_expression(segment(self._lines(mod.path), site).strip())
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

        lines = self._lines(mod.path)
        values = {}
        for name, (span, _names) in inline.items():
            fake = Site(span[0], span[1], span[2], span[3], None, "")  # type: ignore[arg-type]
            values[name] = cst.parse_expression(segment(lines, fake).strip())

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

    def _state_name(self, key: Tuple, hints: List[str] = ()) -> str:
        """``redis`` first; a later configuration is named for what it holds: after its URL's
        variable (``CACHE_URL`` -> ``redis_cache``), its database (``db=2`` -> ``redis_db2``),
        or what the code calls it (``rate_limit_redis``, ``get_session_store``)."""
        taken = {s.name for s in self.singletons.values()} | set(self.p.state_ctors)
        if "redis" not in taken:
            return "redis"
        stems = []
        first = key[2].split(",")[0].strip() if key[0] == "from_url" and key[2] else ""
        if re.fullmatch(r"[A-Za-z_][\w.]*", first):
            stems.append(re.sub(r"(?i)(^.*\.)|(_?(redis_)?url$)|(_redis$)", "", first))
        db = re.search(r"\bdb=(\d+)", " ".join(str(k) for k in key[2:]))
        if db:
            stems.append(f"db{db.group(1)}")
        stems.extend(re.sub(r"(?i)^(get|make|create|new|build|init)_|(redis|valkey|client|conn(ection)?|pool)", "", h)
                     for h in hints)
        for stem in stems:
            stem = re.sub(r"_+", "_", stem).strip("_").lower()
            if stem and stem.isidentifier() and f"redis_{stem}" not in taken:
                return f"redis_{stem}"
        name, n = "redis_2", 3
        while name in taken:
            name, n = f"redis_{n}", n + 1
        return name
