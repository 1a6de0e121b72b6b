"""Which app gets the lifespan: the one whose lifespan runs for the routes being fixed.

A project often builds more than one ``FastAPI()``: a sub-app mounted under a path, an admin
app, a factory for tests. Starlette runs only the outermost app's lifespan, and a mounted app
gets a ``request.app`` of its own, whose state that lifespan never fills. So the fixer follows
``include_router``, ``mount`` and route decorators from each candidate to the routes it serves,
picks the one app that serves the flagged routes, refuses an app whose lifespan would not run
for them, and asks (``--app``) only when the code cannot tell, saying what each one serves.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ..analysis.index import Project
from ..analysis.summary import APP_CLASSES, AppSite, ModuleSummary

FASTAPI = ("fastapi.FastAPI", "fastapi.applications.FastAPI")


class NoApp(Exception):
    """No app can take the lifespan for these findings: the reason the user is told."""


@dataclass
class Candidate:
    mod: ModuleSummary
    app: AppSite
    #: the route owners it serves: itself and the routers it includes, transitively
    serves: Set[str] = field(default_factory=set)
    #: the apps it is mounted into (its lifespan never runs there)
    mounted_in: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.mod.name}:{self.app.qualname.rsplit('.', 1)[-1]}"


def candidates(project: Project, sources: Dict[str, bytes]) -> List[Candidate]:
    """``FastAPI()``/``Starlette()`` constructions, and instances of their subclasses."""
    out = [Candidate(m, a) for m in project.modules.values() for a in m.apps]
    for mod in project.modules.values():
        for name, callee in mod.instances.items():
            cls = project.canonical(callee, mod.name)
            if cls not in project.classes or not project.is_subclass(cls, tuple(APP_CLASSES), mod.name):
                continue
            if not _takes_lifespan(project, cls, sources):
                continue
            line, col, keywords = mod.instance_sites.get(name, (0, 0, []))
            base = FASTAPI[0] if project.is_subclass(cls, FASTAPI, mod.name) else "starlette.applications.Starlette"
            out.append(Candidate(mod, AppSite(f"{mod.name}.{name}", base, line, col, None, keywords)))
    _link(project, out)
    return out


def _takes_lifespan(project: Project, cls: str, sources: Dict[str, bytes]) -> bool:
    """A subclass passes ``lifespan=`` on when it keeps FastAPI's ``__init__`` or takes ``**kwargs``."""
    init = project.inherited(f"{cls}.__init__", "")
    if init is None:
        return True
    mod, fn = project.functions[init]
    lines = sources.get(mod.path, b"").decode("utf-8", "replace").splitlines()
    head = "\n".join(lines[fn.line - 1: fn.line + 9])
    signature = head.split(":\n", 1)[0]
    return "**" in signature or re.search(r"\blifespan\b", signature) is not None


def _link(project: Project, found: List[Candidate]) -> None:
    """Fill ``serves`` and ``mounted_in`` from the include/mount registrations."""
    edges: Dict[str, Set[str]] = {}
    mounts: Dict[str, Set[str]] = {}
    for mod in project.modules.values():
        for reg in mod.registrations:
            if reg.kind not in ("include", "mount") or not reg.owner:
                continue
            owner = _owner(project, reg.owner, mod, found, reg.line)
            target = _owner(project, reg.target, mod, found, reg.line)
            (edges if reg.kind == "include" else mounts).setdefault(owner, set()).add(target)
    for cand in found:
        seen, stack = set(), [cand.app.qualname]
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(edges.get(cur, ()))
        cand.serves = seen
    for cand in found:
        cand.mounted_in = sorted(other.label for other in found
                                 if cand.app.qualname in mounts.get(other.app.qualname, ()))


def _owner(project: Project, ref: str, mod: ModuleSummary, found: Iterable[Candidate], line: int) -> str:
    """A route owner's canonical name; a local ``app`` in an app factory is that factory's app."""
    for cand in found:
        if cand.app.factory and cand.mod.path == mod.path and "." not in ref \
                and cand.app.qualname.endswith(f".<locals>.{ref}") and line >= cand.app.line:
            return cand.app.qualname
    return project.canonical(ref, mod.name)


def route_owners(project: Project, apps: List[Candidate]) -> Dict[str, Set[str]]:
    """Entry function -> the owners its route decorators or ``add_route`` name."""
    out: Dict[str, Set[str]] = {}
    for mod in project.modules.values():
        for reg in mod.registrations:
            if reg.kind in ("handler", "websocket") and reg.owner and reg.owner != "*route*":
                target = project.canonical(reg.target, mod.name)
                out.setdefault(target, set()).add(_owner(project, reg.owner, mod, apps, reg.line))
    return out


def choose(project: Project, sources: Dict[str, bytes], entries: List[str],
           wanted: Optional[str]) -> Tuple[ModuleSummary, AppSite]:
    """The app that takes the lifespan for findings reached from the ``entries`` functions."""
    found = candidates(project, sources)
    owners = route_owners(project, found)
    needed = set().union(*(owners.get(e, set()) for e in entries)) if entries else set()

    def serving(cand: Candidate) -> Set[str]:
        return needed & cand.serves

    if wanted:
        mod_name, _, attr = wanted.partition(":")
        chosen = [c for c in found if c.mod.name.endswith(mod_name) and (
            c.app.qualname == f"{c.mod.name}.{attr}" or (c.app.factory or "").endswith(f".{attr}"))]
        if not chosen:
            raise NoApp(f"--app {wanted}: no FastAPI()/Starlette() construction there")
        pick = chosen[0]
        if pick.mounted_in:
            raise NoApp(f"--app {wanted} is mounted into {', '.join(pick.mounted_in)}: a mounted app's "
                        "lifespan never runs; fix by hand")
        return pick.mod, pick.app
    if not found:
        raise NoApp("no FastAPI()/Starlette() app found to hold the lifespan")
    if len(found) == 1:
        pick = found[0]
    else:
        serving_ones = [c for c in found if serving(c)]
        if len(serving_ones) == 1:  # the only one that runs any of them (others may be unseen)
            pick = serving_ones[0]
        else:
            tops = [c for c in found if not c.mounted_in]
            if not needed and len(tops) == 1:
                pick = tops[0]
            else:
                said = "; ".join(f"{c.label} serves {len(serving(c))} of the {len(needed)} route owner(s)"
                                 + (f", mounted into {', '.join(c.mounted_in)}" if c.mounted_in else "")
                                 for c in found)
                raise NoApp(f"several apps ({said}): choose one with --app module:attr")
    if pick.mounted_in:
        raise NoApp(f"the routes are served by {pick.label}, mounted into {', '.join(pick.mounted_in)}: "
                    "a mounted app's lifespan never runs and its requests see its own state; fix by hand")
    return pick.mod, pick.app
