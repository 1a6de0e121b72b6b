"""Which modules the analysis must parse: those that can reach a client, name by name.

Module-level reach (every module importing a seed, transitively) parses most of a large app:
one ``polar/worker`` that enqueues jobs over Redis pulls in every service and every endpoint
that imports anything from it. Here a module is parsed only when it imports a *name* that can
reach a client, and names have two levels:

- ``EFFECT``: using the name may build a client, close one, or run a command on one that is
  not an async client it was handed (what a finding is made of): a function with a
  construction site, a close, such a command, or a call of (an injection of, a decorator
  that is, an annotation with) an ``EFFECT`` name; a client subclass.
- ``HANDS``: the name holds or hands out a client without doing either: a module-level client,
  a lazy singleton (``if _c is None: _c = create()``), a getter that returns a shared one, a
  variable of a module that reaches a client (values are not summarised).

A caller of a ``HANDS`` name gains a level only through what it does with the result (closes
it, runs a command on it, returns it), so a helper that takes the shared client and uses it does
not make every caller of every caller relevant. Modules importing a name of either level are
parsed; what is never parsed could not produce a finding nor feed one, and every parsed
module's references are still followed (``forward_targets``).
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .index import LIBRARIES, ModuleNames
from .resolve import Ctor, classify
from .summary import Function, ModuleSummary, Origin

NONE, HANDS, EFFECT = 0, 1, 2
#: closes of a parameter that count: the helper ends a client it is handed
PARAM_CLOSES = frozenset({"aclose", "close", "disconnect", "wait_closed"})
Answer = Tuple[int, Optional[str]]  # (level, module to wait on while it may still rise)
#: what a name's level makes of the function that names it: the same level (what it returns,
#: injects, closes, runs commands on, keeps beyond the call), at most HANDS (a lazy singleton's
#: builder), or only EFFECT (what it calls, is decorated with, takes as a default or an
#: annotation: a getter of the shared client is judged by what is done with its result)
AS_IS, AT_MOST_HANDS, ONLY_EFFECT = "as is", "at most hands", "only effect"


def _kept_once(stores: Iterable[Origin], guarded: bool) -> bool:
    """A result kept where it outlives the call and built only when not there yet (as the
    detector's ``kept_once`` tells, without the per-request classes it alone knows)."""
    kinds = {store[0] for store in stores if store}
    return "item" in kinds or guarded and bool(kinds & {"global", "state", "attr"})


def _on(qual: str, types: Set[str]) -> bool:
    """``qual`` is one of ``types`` or a method of one (``Redis.pipeline`` on a parameter)."""
    return qual in types or qual.rsplit(".", 1)[0] in types


class Reach:
    """The levels of the parsed modules' names, grown as modules are added (a worklist: a name
    below ``EFFECT`` waits on the modules it references and is looked at again when one of them
    gains a level)."""

    def __init__(self, names: ModuleNames, by_name: Dict[str, str], imports: Dict[str, Sequence[str]],
                 modules: Dict[str, Tuple[str, bool]], seeds: Iterable[str]) -> None:
        self.names = names
        self.by_name = by_name
        self.seeds = {modules[p][0] for p in seeds}
        self.summaries: Dict[str, ModuleSummary] = {}
        #: module -> level of its top-level names that reach; a key means the module reaches a client
        self.relevant: Dict[str, Dict[str, int]] = {}
        #: module -> its top-level functions, classes and instances of classes (judged one by one)
        self.defined: Dict[str, Set[str]] = {}
        #: module -> names it imports that reach a client (re-exports: they do not make its variables reach)
        self.passed: Dict[str, Dict[str, int]] = {}
        #: method qualified name -> its level (a class's level is its highest method's)
        self.members: Dict[str, int] = {}
        #: module -> items whose level may rise when it gains one: (qual, id) -> (module, qual, item)
        self.waiting: Dict[str, Dict[Tuple[str, int], Tuple[str, str, object]]] = {}
        self.state_ctors: Dict[str, Ctor] = {}  # app state attributes some parsed module fills with a client
        self._owners: Dict[Tuple[str, str], Optional[Tuple[str, str]]] = {}
        self._anywhere: Dict[str, Optional[Tuple[str, str]]] = {}  # owners that do not depend on ``near``
        self._types: Dict[Tuple[str, str], bool] = {}
        #: module -> [(user path, attribute or "" for the module itself)]
        self.users: Dict[str, List[Tuple[str, str]]] = {}
        for path, found in imports.items():
            near = modules[path][0]
            # ``from a import b`` lists ``a`` too: not a use of ``a``'s names (a bound name has an ``@`` entry)
            bound = {d.split("@", 1)[0] for d in found if "@" in d}
            for dotted in found:
                if "@" in dotted or dotted.split(".", 1)[0] in LIBRARIES:
                    continue
                if dotted not in bound and not dotted.endswith(".*"):
                    continue
                owner = self.owner(dotted, near)
                if owner is not None and by_name[owner[0]] != path:
                    self.users.setdefault(owner[0], []).append((path, owner[1]))

    def owner(self, qual: str, near: str) -> Optional[Tuple[str, str]]:
        """(project module, first attribute after it, "" for none) that ``qual`` names."""
        if qual in self._anywhere:
            return self._anywhere[qual]
        key = (qual, near)
        if key in self._owners:
            return self._owners[key]
        parts = qual.split(".")
        found = None
        everywhere = True  # the answer holds wherever ``qual`` is read: no longer prefix depended on ``near``
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if not self.names.may_find(prefix):
                continue
            module = self.names.find(prefix, near)
            if module is None:
                everywhere = False
                continue
            attr = parts[end] if end < len(parts) else ""
            found = (module, "" if attr == "*" else attr)
            everywhere = everywhere and module == prefix  # an exact name, not a suffix
            break
        if everywhere:  # ``sqlalchemy.orm.Session``, ``app.models.User``: one answer for every module
            self._anywhere[qual] = found
        else:
            self._owners[key] = found
        return found

    def level(self, module: str, top: str) -> int:
        return max(self.relevant.get(module, {}).get(top, NONE), self.passed.get(module, {}).get(top, NONE))

    def reaches(self, qual: str, near: str, depth: int = 0, variables: bool = True) -> Answer:
        """(the level ``qual`` reaches a client at, the module to wait on while it may rise).
        ``variables``: whether a module-level variable of a module that reaches counts (not for
        an annotation: a type alias holds no client)."""
        if qual.split(".", 1)[0] in LIBRARIES:
            return EFFECT, None
        owner = self.owner(qual, near)
        if owner is None:
            return NONE, None
        module, attr = owner
        summary = self.summaries.get(module)
        if summary is None:
            return NONE, module  # not parsed yet: what it holds is unknown
        if not attr:
            return (HANDS if module in self.relevant else NONE), module
        if "<locals>" in qual and qual not in summary.functions:
            return NONE, None  # a method of a local whose value the summary does not know
        target = summary.exports.get(attr)
        if target is not None and target != qual and depth < 8:
            level, wait = self.reaches(target, module, depth + 1, variables)
            return level, wait if wait is not None or level == EFFECT else module
        rest = qual.split(".")[len(module.split(".")) + 1:]
        if rest and attr in summary.instances and depth < 8:  # ``service.get()``: the method of its class
            level, wait = self.reaches(f"{summary.instances[attr]}.{rest[0]}", module, depth + 1)
            return level, wait if wait is not None or level == EFFECT else module
        member = f"{module}.{attr}.{rest[0]}" if rest else None
        if member in summary.functions:  # a method defined on the class: its own level, not the class's
            level = self.members.get(member, NONE)
            return level, (module if level < EFFECT else None)
        level = self.level(module, attr)
        if attr in self.defined.get(module, ()):
            return level, (module if level < EFFECT else None)
        if level:
            return level, None
        if module in self.relevant:
            # a variable (or a name a star import brings) of a module that reaches
            return (HANDS if variables or summary.star_imports else NONE), None
        for star in summary.star_imports if depth < 8 else ():
            level, _ = self.reaches(f"{star}.{attr}", module, depth + 1, variables)
            if level:
                return level, None
        return NONE, module

    def _origin(self, origin: Optional[Origin], near: str, command: bool = False) -> Answer:
        """The level of what ``origin`` holds; for a ``command`` on it, NONE when it is known to be
        an async client (its commands cannot block the loop)."""
        if origin is None:
            return NONE, None
        kind = origin[0]
        if kind == "site":
            return EFFECT, None
        if kind == "state":  # as the detector tells a client kept on app state
            attr = origin[1] if len(origin) > 1 else ""
            ctor = self.state_ctors.get(attr)
            if command and ctor is not None and ctor.flavor != "sync":
                return NONE, None
            return (HANDS if ctor is not None or any(w in attr.lower() for w in ("redis", "valkey")) else NONE), None
        if kind in ("global", "call") and len(origin) > 1:
            if command and kind == "global" and self._async_global(origin[1], near):
                return NONE, None
            return self.reaches(origin[1], near)
        return NONE, None

    def _function_level(self, fn: Function, near: str) -> Tuple[int, Set[str]]:
        """The level a function reaches a client at, and the modules to wait on while it may rise."""
        closed = {c.origin for c in fn.closes}
        own = fn.params[0] if fn.cls and fn.params else None  # ``self.close()``: the method's own object
        received = {t for t in fn.param_types.values() if self._async_type(t, near)}
        handed = {("param", p) for p, t in fn.param_types.items() if t in received}
        if fn.cls:  # its own class's names: the class's level is the highest of its methods' already
            received.add(fn.cls)
        if any(c.origin[0] == "param" and c.origin[1] != own and c.method in PARAM_CLOSES for c in fn.closes) \
                or any(o[0] == "param" and (o in closed or o in handed) for o in fn.returns):
            return EFFECT, set()  # ends a client it is given, or hands one back
        if fn.sites and not fn.is_cached and not all(_kept_once(s.stores, s.guarded) for s in fn.sites):
            return EFFECT, set()  # builds one on every call
        # a result kept beyond the call hands a client on: once (a lazy singleton's builder) it is
        # no more than that; on every call, whatever the callee does
        kept = {callee: AT_MOST_HANDS if _kept_once([where], guarded) else AS_IS
                for callee, where, guarded in fn.call_stores if where and where[0] != "local"}
        asks: List[Tuple[Answer, str]] = [((HANDS if fn.sites else NONE, None), AS_IS)]
        for origin in closed:
            if origin[0] != "param" and not (origin[0] == "call" and _on(origin[1], received)):
                level, wait = self._origin(origin, near)
                asks.append(((EFFECT if level else NONE, wait), AS_IS))
        for command in fn.commands:
            origin = command.origin
            if origin[0] == "param" or (origin[0] == "global" and self._defined(origin[1], near)):
                continue  # a method of a project function, class or instance is among the calls
            if origin[0] == "call" and _on(origin[1], received):
                continue
            level, wait = self._origin(origin, near, command=True)
            asks.append(((EFFECT if level else NONE, wait), AS_IS))
        for origin in fn.returns:
            if origin[0] != "param" and not (origin[0] == "call" and _on(origin[1], received)):
                asks.append((self._origin(origin, near), AS_IS))
        for callee, _ in fn.calls:
            if not _on(callee, received):
                asks.append((self.reaches(callee, near), kept.get(callee, ONLY_EFFECT)))
        asks += [(self.reaches(q, near), AS_IS) for q in fn.param_deps.values() if not _on(q, received)]
        asks += [(self.reaches(q, near), ONLY_EFFECT) for q in (*fn.decorators, *fn.default_refs)]
        asks += [(self.reaches(t, near, variables=False), ONLY_EFFECT)
                 for t in fn.param_types.values() if t not in received]
        level, waits = self._combine(asks)
        return (min(level, HANDS) if fn.is_cached else level), waits  # ``@lru_cache``: built once

    @staticmethod
    def _combine(asks: Iterable[Tuple[Answer, str]]) -> Tuple[int, Set[str]]:
        """The highest level the answers give (each through its MODE), and the modules to wait on."""
        best, waits = NONE, set()
        for (level, wait), mode in asks:
            if mode == AT_MOST_HANDS:
                level = min(level, HANDS)
            elif mode == ONLY_EFFECT and level < EFFECT:
                level = NONE
            if level == EFFECT:
                return EFFECT, set()
            best = max(best, level)
            if wait:
                waits.add(wait)
        return best, waits

    def _defined(self, qual: str, near: str, depth: int = 0) -> bool:
        """``qual`` is a function, class (not a client subclass) or class instance a parsed
        project module defines, through re-exports."""
        owner = self.owner(qual, near)
        summary = self.summaries.get(owner[0]) if owner is not None and owner[1] else None
        if summary is None:
            return False
        target = summary.exports.get(owner[1])
        if target is not None and target != qual:
            return depth < 8 and self._defined(target, owner[0], depth + 1)
        if owner[1] not in self.defined.get(owner[0], ()):
            return False
        return not any(q.startswith(f"{owner[0]}.{owner[1]}") for q in summary.client_classes)

    def _async_global(self, qual: str, near: str) -> bool:
        """``qual`` is a module-level client whose construction says it is async."""
        owner = self.owner(qual, near)
        summary = self.summaries.get(owner[0]) if owner is not None else None
        ctor = summary.redis_globals.get(qual) if summary is not None else None
        return ctor is not None and ctor.flavor != "sync"

    def _async_type(self, qual: str, near: str) -> bool:
        """``qual`` (an annotation) names an async client class or a pool class, through the
        project's aliases (``from app.redis import Redis`` where ``Redis = redis.asyncio.Redis``)."""
        key = (qual, near)
        if key not in self._types:
            target = self._library_name(qual, near)
            ctor = classify(target) if target else None
            self._types[key] = ctor is not None and ctor.method == "init" and (
                ctor.kind == "pool" or ctor.flavor in ("async", "legacy"))
        return self._types[key]

    def _library_name(self, qual: str, near: str, depth: int = 0) -> Optional[str]:
        """The library name ``qual`` stands for, followed through parsed modules' aliases."""
        if qual.split(".", 1)[0] in LIBRARIES:
            return qual
        owner = self.owner(qual, near)
        if owner is None or depth > 8 or not owner[1]:
            return None
        summary = self.summaries.get(owner[0])
        target = summary.exports.get(owner[1]) if summary is not None else None
        if target is None or target == qual:
            return None
        rest = qual.split(".")[len(owner[0].split(".")) + 1:]
        return self._library_name(".".join([target, *rest]), owner[0], depth + 1)

    def add(self, summaries: Iterable[ModuleSummary]) -> Set[str]:
        """Take newly parsed modules; the modules whose names gained a level (or that became relevant)."""
        fresh = list(summaries)
        changed: Set[str] = set()
        queue: List[Tuple[str, str, object]] = []
        for s in fresh:
            self.summaries[s.name] = s
            self.state_ctors.update(s.state_ctors)
            prefix = s.name + "."
            self.defined[s.name] = {q[len(prefix):].split(".", 1)[0] for q in (*s.functions, *s.classes)
                                    if q.startswith(prefix)} | set(s.instances)
            if s.name in self.seeds:  # it imports a client library: its variables may hold a client
                self.relevant.setdefault(s.name, {})
                changed.add(s.name)
            marks = [(q, EFFECT) for q in s.client_classes]
            marks += [(q, HANDS) for q in (*s.redis_globals, *(prefix + k for k in s.global_sites),
                                           *(prefix + k for k in s.sentinels))]
            if any([self._mark(s.name, q, level) for q, level in marks]):
                changed.add(s.name)
            queue += [(s.name, q, fn) for q, fn in s.functions.items()]
            queue += [(s.name, q, ("bases", k.bases)) for q, k in s.classes.items()]
            queue += [(s.name, prefix + v, ("instance", cls)) for v, cls in s.instances.items()]
            queue += [(s.name, prefix + v, ("alias", t)) for v, t in s.dep_aliases.items()]
            queue += [(s.name, prefix + v, ("export", t)) for v, t in s.exports.items() if t != prefix + v]
            # ``from .impl import *`` of a module that reaches a client: so does this one
            queue += [(s.name, prefix + "*", ("star", f"{star}.*")) for star in s.star_imports if star]
        for s in fresh:  # waiting items may now resolve against these modules
            queue += self.waiting.pop(s.name, {}).values()
        while queue:
            module, qual, item = queue.pop()
            top = self._top(module, qual)
            if top is None:
                continue
            member = isinstance(item, Function) and qual != f"{module}.{top}"  # a method, a nested function
            if (self.members.get(qual, NONE) if member else self.level(module, top)) == EFFECT:
                continue
            if isinstance(item, Function):
                level, waits = self._function_level(item, module)
            elif item[0] == "bases":
                level, waits = self._combine((self.reaches(q, module), AS_IS) for q in item[1])
            else:
                level, wait = self.reaches(item[1], module)
                waits = {wait} if wait else set()
            raised = member and level > self.members.get(qual, NONE)
            if raised:
                self.members[qual] = level
            if level > self.level(module, top):
                self._mark(module, qual, level, passes=isinstance(item, tuple) and item[0] == "export")
                raised = True
            if raised:
                changed.add(module)
                queue += self.waiting.pop(module, {}).values()  # what waits on this module looks again
            if level < EFFECT:
                for wait in waits:
                    self.waiting.setdefault(wait, {})[(qual, id(item))] = (module, qual, item)
        return changed

    @staticmethod
    def _top(module: str, qual: str) -> Optional[str]:
        prefix = module + "."
        if not qual.startswith(prefix):
            return None
        return qual[len(prefix):].split(".", 1)[0]

    def _mark(self, module: str, qual: str, level: int, passes: bool = False) -> bool:
        """Raise the level of ``qual``'s top-level name; whether it rose."""
        top = self._top(module, qual)
        if top is None:
            return False
        names = (self.passed if passes else self.relevant).setdefault(module, {})
        if names.get(top, NONE) >= level:
            return False
        names[top] = level
        return True

    def to_parse(self, changed: Iterable[str], done) -> List[str]:
        """Unparsed files that import a name of ``changed`` modules that reaches a client."""
        out: Set[str] = set()
        for module in changed:
            defined = self.defined.get(module, set())
            for path, attr in self.users.get(module, ()):
                if path in out or done(path):
                    continue
                if not attr or self.level(module, attr):
                    out.add(path)
                elif attr not in defined and module in self.relevant:
                    target = self.summaries[module].exports.get(attr)
                    if target is None or self.reaches(target, module)[0]:
                        out.add(path)  # a variable (or an import of something reaching) of a relevant module
        return sorted(out)
