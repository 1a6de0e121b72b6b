"""The plan's vocabulary: options, the edits per file, the shared clients, and small helpers
every part of the planner uses. Plain data; ``plan.py`` and its parts fill it in, ``transform.py``
carries it out.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Optional, Set, Tuple

from ..analysis.detect import Finding
from ..analysis.index import Project
from ..analysis.summary import Function, ModuleSummary, Site
from ..filters import Selection

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
    "health_check_interval retry_on_timeout retry_on_error retry protocol credential_provider lib_name "
    "lib_version redis_connect_func".split()
)
# ``Redis(host, port, db, password)``: the positional parameters every redis-py client starts with.
POSITIONAL = ("host", "port", "db", "password")
# Keywords of ``Redis.from_url`` that configure the client, not the pool.
CLIENT_ONLY = frozenset({"single_connection_client", "auto_close_connection_pool"})
#: the calls that close a client (aioredis 1.x: ``close()`` then ``await wait_closed()``)
CLOSES = ("aclose", "close", "disconnect", "wait_closed")


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
    close: str  # "await {x}.aclose()", "{x}.close()"...: lines, in the API of the project's version
    imports: List[Tuple[str, Optional[str], Optional[str], int]]  # (module, obj, asname, level)
    #: a client the lifespan (or a startup handler) already builds with the same settings:
    #: requests reuse it, nothing is added
    existing: bool = False


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
    #: helpers that use the client they build: ``x = <client>`` at this position becomes
    #: ``if request is None: x = <client>`` / ``else: x = <shared>``, and the closes of it only
    #: run in the first case; their request-scope callers pass ``request=``
    guard_assigns: Dict[Tuple[int, int], str] = field(default_factory=dict)
    guard_closes: Set[Tuple[int, int]] = field(default_factory=set)
    add_kwargs: Dict[Tuple[int, int], Tuple[str, str]] = field(default_factory=dict)
    #: def lines of helpers whose new ``request`` comes only from callers that pass it
    passed_by_callers: Set[int] = field(default_factory=set)
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
                    or self.make_blocking or self.guard_assigns or self.add_kwargs)


@dataclass
class Plan:
    edits: Dict[str, FileEdits] = field(default_factory=dict)
    fixed: List[Finding] = field(default_factory=list)
    skipped: List[Tuple[Finding, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    #: the client library versions the written code targets, and where they were read
    targets: List[str] = field(default_factory=list)

    #: while a site is planned: each file's edits as they were before it first touched them
    saved: Optional[Dict[str, Optional[FileEdits]]] = field(default=None, repr=False, compare=False)
    #: why a file may not be edited (None: it may): asked once per file the plan touches
    refuse: Optional[Callable[[str], Optional[str]]] = field(default=None, repr=False, compare=False)

    def file(self, path: str, module: Optional[ModuleSummary] = None) -> FileEdits:
        if path not in self.edits and self.refuse is not None:
            reason = self.refuse(path)
            if reason:
                raise Skip(reason)
        if self.saved is not None and path not in self.saved:
            self.saved[path] = self.edits[path].copy() if path in self.edits else None
        edits = self.edits.setdefault(path, FileEdits())
        if module is not None:
            edits.module, edits.is_package = module.name, module.is_package
        return edits


# Placeholders in build templates; NUL never occurs in source text, so user code (an f-string's
# braces) can never be mistaken for one.
R_, P_, APP_, S_ = "\0R\0", "\0P\0", "\0APP\0", "\0S\0"


def fill(template: str, app: str) -> str:
    return template.replace(APP_, app)


class Skip(Exception):
    """A finding the fixer leaves alone, with the reason the user is told."""


def module_path(project: Project, qualname: str) -> Tuple[ModuleSummary, Function]:
    return project.functions[qualname]


def site_of(fn: Function, finding: Finding) -> Optional[Tuple[int, Site]]:
    for i, site in enumerate(fn.sites):
        if (site.line, site.col, site.end_line, site.end_col) == finding.span:
            return i, site
    return None




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


def split_kwargs(kwargs: str) -> Dict[str, str]:
    """``"a=1, b=f(x)"`` -> ``{"a": "1", "b": "f(x)"}``."""
    import libcst as cst

    if not kwargs:
        return {}
    call = cst.parse_expression(f"f({kwargs})")
    return {a.keyword.value: cst.Module([]).code_for_node(a.value) for a in call.args if a.keyword is not None}


def split_args(args: str) -> List[str]:
    """``"a, f(b, c)"`` -> ``["a", "f(b, c)"]``, as Python reads it."""
    import libcst as cst

    call = cst.parse_expression(f"f({args})")
    return [cst.Module([]).code_for_node(a.value) for a in call.args]


def segment(lines: List[str], site: Site) -> str:
    """Source text of a site's call from its (line, byte col) span."""
    if site.line == site.end_line:
        raw = lines[site.line - 1].encode("utf-8")
        return raw[site.col:site.end_col].decode("utf-8", "replace")
    first = lines[site.line - 1].encode("utf-8")[site.col:].decode("utf-8", "replace")
    middle = "".join(lines[site.line:site.end_line - 1])
    last = lines[site.end_line - 1].encode("utf-8")[:site.end_col].decode("utf-8", "replace")
    return "(" + first + middle + last + ")"
