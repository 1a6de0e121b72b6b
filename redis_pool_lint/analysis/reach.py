"""Which modules the analysis must parse: those that can reach a client, name by name.

Module-level reach (every module importing a seed, transitively) parses most of a large app:
one ``polar/worker`` that enqueues jobs over Redis pulls in every service and every endpoint
that imports anything from it. Here a module is parsed only when it imports a *name* that can
reach a client: anything a seed defines (it imports a client library), and, once parsed, a
function or class that builds, returns, closes or uses one, or calls, subclasses, injects or
annotates with such a name. Module-level variables of a module that reaches a client count as
reaching it (their values are not summarised). What is never parsed could not produce a
finding nor feed one: every parsed module's references are still followed (``forward_targets``).
"""
from __future__ import annotations

import itertools
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

from .index import LIBRARIES, ModuleNames
from .summary import Function, ModuleSummary, Origin

#: closes of a parameter that count: the helper ends a client it is handed
PARAM_CLOSES = frozenset({"aclose", "close", "disconnect", "wait_closed"})


def _refs(fn: Function) -> Iterator[str]:
    yield from (callee for callee, _ in fn.calls)
    yield from fn.param_deps.values()
    yield from fn.param_types.values()
    yield from fn.decorators
    yield from fn.default_refs


class Reach:
    """The relevant names of the parsed modules, grown as modules are added (a worklist: a
    function waits on the modules it references and is looked at again when one of them gains a
    relevant name)."""

    def __init__(self, names: ModuleNames, by_name: Dict[str, str], imports: Dict[str, List[str]],
                 modules: Dict[str, Tuple[str, bool]], seeds: Iterable[str]) -> None:
        self.names = names
        self.by_name = by_name
        self.seeds = {modules[p][0] for p in seeds}
        self.summaries: Dict[str, ModuleSummary] = {}
        #: module -> its relevant top-level names; a key means the module reaches a client
        self.relevant: Dict[str, Set[str]] = {}
        #: module -> its top-level functions, classes and instances of classes (judged one by one)
        self.defined: Dict[str, Set[str]] = {}
        #: module -> names it imports that reach a client (re-exports: they do not make its variables reach)
        self.passed: Dict[str, Set[str]] = {}
        self.waiting: Dict[str, List[Tuple[str, str, object]]] = {}  # module -> (module, top, item)
        self.state_ctors: Dict[str, object] = {}  # app state attributes some parsed module fills with a client
        self._owners: Dict[Tuple[str, str], Optional[Tuple[str, str]]] = {}
        #: module -> [(user path, attribute or "" for the module itself)]
        self.users: Dict[str, List[Tuple[str, str]]] = {}
        for path, found in imports.items():
            near = modules[path][0]
            for dotted in found:
                if "@" in dotted or dotted.split(".", 1)[0] in LIBRARIES:
                    continue
                owner = self.owner(dotted, near)
                if owner is not None and by_name[owner[0]] != path:
                    self.users.setdefault(owner[0], []).append((path, owner[1]))

    def owner(self, qual: str, near: str) -> Optional[Tuple[str, str]]:
        """(project module, first attribute after it, "" for none) that ``qual`` names."""
        key = (qual, near)
        if key in self._owners:
            return self._owners[key]
        parts = qual.split(".")
        found = None
        for end in range(len(parts), 0, -1):
            module = self.names.find(".".join(parts[:end]), near)
            if module is not None:
                attr = parts[end] if end < len(parts) else ""
                found = (module, "" if attr == "*" else attr)
                break
        self._owners[key] = found
        return found

    def reaches(self, qual: str, near: str, depth: int = 0) -> Tuple[bool, Optional[str]]:
        """(whether ``qual`` can reach a client, the module to wait on when it cannot yet)."""
        root = qual.split(".", 1)[0]
        if root in LIBRARIES:
            return True, None
        owner = self.owner(qual, near)
        if owner is None:
            return False, None
        module, attr = owner
        summary = self.summaries.get(module)
        if summary is None:
            return False, module  # not parsed yet: what it holds is unknown
        if module in self.seeds:
            return True, None
        if not attr:
            return module in self.relevant, module
        target = summary.exports.get(attr)
        if target is not None and target != qual and depth < 8:
            reached, wait = self.reaches(target, module, depth + 1)
            return reached, wait if wait is not None else module
        if attr in self.relevant.get(module, ()) or attr in self.passed.get(module, ()):
            return True, None
        if attr in self.defined.get(module, ()):
            return False, module
        if module in self.relevant:
            return True, None  # a variable (or a name a star import brings) of a module that reaches
        for star in summary.star_imports if depth < 8 else ():
            reached, wait = self.reaches(f"{star}.{attr}", module, depth + 1)
            if reached:
                return True, None
        return False, module

    def _origin(self, origin: Optional[Origin], near: str) -> Tuple[bool, Optional[str]]:
        if origin is None:
            return False, None
        kind = origin[0]
        if kind == "site":
            return True, None
        if kind == "state":  # as the detector tells a client kept on app state
            attr = origin[1] if len(origin) > 1 else ""
            return attr in self.state_ctors or any(w in attr.lower() for w in ("redis", "valkey")), None
        if kind in ("global", "call") and len(origin) > 1:
            return self.reaches(origin[1], near)
        return False, None

    def _function_reaches(self, fn: Function, near: str) -> Tuple[bool, Set[str]]:
        closed = {c.origin for c in fn.closes}
        if fn.sites or any(c.origin[0] == "param" and c.method in PARAM_CLOSES for c in fn.closes) \
                or any(o[0] == "param" and o in closed for o in fn.returns):
            return True, set()  # builds one, or ends (or hands back and ends) a client it is given
        origins = [*closed, *(c.origin for c in fn.commands), *fn.returns]
        return self._any_reaches([o for o in origins if o[0] != "param"], _refs(fn), near)

    def _any_reaches(self, origins: Iterable[Origin], quals: Iterable[str], near: str) -> Tuple[bool, Set[str]]:
        """(whether any of ``origins`` or ``quals`` reaches a client, the modules to wait on if none)."""
        waits: Set[str] = set()
        answers = itertools.chain((self._origin(o, near) for o in origins), (self.reaches(q, near) for q in quals))
        for reached, wait in answers:
            if reached:
                return True, set()
            if wait:
                waits.add(wait)
        return False, waits

    def add(self, summaries: Iterable[ModuleSummary]) -> Set[str]:
        """Take newly parsed modules; the modules that gained relevant names (or became relevant)."""
        fresh = list(summaries)
        changed: Set[str] = set()
        queue: List[Tuple[str, str, object]] = []
        for s in fresh:
            self.summaries[s.name] = s
            self.state_ctors.update(s.state_ctors)
            prefix = s.name + "."
            self.defined[s.name] = {q[len(prefix):].split(".", 1)[0] for q in (*s.functions, *s.classes)
                                    if q.startswith(prefix)} | set(s.instances)
            if s.name in self.seeds:
                self.relevant[s.name] = set(self.defined[s.name]) | set(s.exports)
                changed.add(s.name)
                continue
            mine = [*s.redis_globals, *s.client_classes, *(prefix + k for k in s.global_sites),
                    *(prefix + k for k in s.sentinels)]
            for qual in mine:
                self._mark(s.name, qual, changed)
            queue += [(s.name, q, fn) for q, fn in s.functions.items()]
            queue += [(s.name, q, k.bases) for q, k in s.classes.items()]
            queue += [(s.name, prefix + v, ("instance", cls)) for v, cls in s.instances.items()]
            queue += [(s.name, prefix + v, ("alias", t)) for v, t in s.dep_aliases.items()]
            queue += [(s.name, prefix + v, ("export", t)) for v, t in s.exports.items() if t != prefix + v]
            # ``from .impl import *`` of a module that reaches a client: so does this one
            queue += [(s.name, prefix + "*", ("star", f"{star}.*")) for star in s.star_imports if star]
        for s in fresh:  # waiting items may now resolve against these modules
            queue += self.waiting.pop(s.name, [])
        while queue:
            module, qual, item = queue.pop()
            top = self._top(module, qual)
            if top is None or top in self.relevant.get(module, ()) or top in self.passed.get(module, ()):
                continue
            if isinstance(item, Function):
                reached, waits = self._function_reaches(item, module)
            elif isinstance(item, tuple):
                reached, wait = self.reaches(item[1], module)
                waits = {wait} if wait else set()
            else:
                reached, waits = self._any_reaches((), item, module)
            if reached:
                self._mark(module, qual, changed, passes=isinstance(item, tuple) and item[0] == "export")
                queue += self.waiting.pop(module, [])  # what waits on this module looks again
            else:
                for wait in waits:
                    self.waiting.setdefault(wait, []).append((module, qual, item))
        return changed

    @staticmethod
    def _top(module: str, qual: str) -> Optional[str]:
        prefix = module + "."
        if not qual.startswith(prefix):
            return None
        return qual[len(prefix):].split(".", 1)[0]

    def _mark(self, module: str, qual: str, changed: Set[str], passes: bool = False) -> None:
        top = self._top(module, qual)
        if top is None:
            return
        names = (self.passed if passes else self.relevant).setdefault(module, set())
        if top not in names:
            names.add(top)
            changed.add(module)

    def to_parse(self, changed: Iterable[str], done) -> List[str]:
        """Unparsed files that import a name of ``changed`` modules that reaches a client."""
        out: Set[str] = set()
        for module in changed:
            names = self.relevant.get(module, set()) | self.passed.get(module, set())
            defined = self.defined.get(module, set())
            for path, attr in self.users.get(module, ()):
                if path in out or done(path):
                    continue
                if not attr or attr in names or module in self.seeds:
                    out.add(path)
                elif attr not in defined and module in self.relevant:
                    target = self.summaries[module].exports.get(attr)
                    if target is None or self.reaches(target, module)[0]:
                        out.add(path)  # a variable (or an import of something reaching) of a relevant module
        return sorted(out)
