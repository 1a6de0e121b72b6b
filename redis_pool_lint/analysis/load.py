"""From paths to a project: find the root, list files, pre-filter on text, parse once, index.

Both faces call ``project_for``: flake8 once per process (cached), ``check`` once per root.
That shared entry point is why flake8 and ``check`` agree by construction.
"""
from __future__ import annotations

import ast
import contextlib
import fnmatch
import functools
import gc
import os
import re
import stat
import sys
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from .cache import Fingerprint, Store, all_unchanged, fingerprint, now_ns, store_for, unchanged
from .resolve import LIBRARIES, resolve_relative
from .versions import Pin, fingerprint as pins_fingerprint, read_pins

if TYPE_CHECKING:  # the summary, index and detection modules load only for a project with seeds
    from .detect import Finding
    from .index import ModuleNames, Project
    from .summary import ModuleSummary

#: An import statement that may name a client library (confirmed by ``imported_names``). A
#: tree without one (or a configured factory) is never parsed; in one with it, only the modules
#: connected to these by imports, or closing app state, are.
LIBRARY_IMPORT = re.compile(rb"^(?:\xef\xbb\xbf)?[ \t]*(?:from|import)[ \t][^\n]*\b(?:" + b"|".join(l.encode() for l in LIBRARIES) + rb")\b",
                            re.MULTILINE)
#: Closing app state whose Redis-ness is only known from the lifespan (``app.state.cache``):
#: a seed only in a tree where something builds a client (``request.state.db.close()`` is how
#: many apps end a database session), unless its name tells (``app.state.redis``).
STATE_CLOSE = re.compile(rb"\.state\.(\w+)\.(?:aclose|close|disconnect)\b|with[ \t][^\n:]*\.state\.(\w+)[ \t]*(?:as\b|:|,)")
#: What the detector takes for a client kept on app state without seeing it built
CLIENT_NAMES = re.compile(rb"redis|valkey", re.IGNORECASE)
#: App constructions are always parsed (the fixer must see every candidate app), but do not
#: pull in their importers.
APP_WORDS = (b"FastAPI", b"Starlette", b"Litestar")
APP_CALL = re.compile(rb"\b(?:FastAPI|Starlette|Litestar)[ \t]*\(")
# An import statement: ``from`` base and names (in parentheses, whose comments may hold a
# parenthesis, or on one line continued by backslashes), or the modules of a plain ``import``.
IMPORT = re.compile(
    rb"^(?:\xef\xbb\xbf)?[ \t]*(?:from[ \t]+([.\w]+)[ \t]+import[ \t]*(\((?:[^)#]|#[^\n]*)*\)|(?:\\\r?\n|[^\n;#\\])*)"
    rb"|import[ \t]+((?:\\\r?\n|[^\n;#\\])+))",
    re.MULTILINE,
)
COMMENT = re.compile(rb"#[^\n]*")

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "tox.ini", ".flake8", ".git")
#: flake8's own default ``--exclude``
FLAKE8_EXCLUDE = (".git", ".hg", ".svn", ".bzr", "CVS", "__pycache__", ".tox", ".nox", ".eggs", "*.egg")
DEFAULT_EXCLUDE = FLAKE8_EXCLUDE + (
    "*.egg-info", ".venv", "venv", ".env", "site-packages", "node_modules", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".cache", "__pypackages__", ".redis_pool_lint_cache",
)
#: Folders skipped unless they are or sit in a package: a setuptools ``build/`` or a virtual
#: environment named ``env`` is not source, ``app/features/build/`` (in the package
#: ``app.features``) is, and flake8 checks it
OUTPUT_FOLDERS = frozenset(("build", "dist", "env"))


@dataclass(frozen=True)
class Settings:
    """Options that change what the analysis sees (not how findings are filtered)."""

    extra_factories: Tuple[str, ...] = ()
    extra_routes: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: Tuple[str, ...] = ()
    include_tests: bool = False
    #: the redis-py version the user states (``--redis-version``); None: read the project's pins
    redis_version: Optional[str] = None

    def cache_key(self) -> tuple:
        """What decides results, in one spelling: flake8's default excludes and ours are one set."""
        return (tuple(sorted(set(self.exclude + self.extend_exclude))), self.extra_factories, self.extra_routes,
                self.include_tests)


@dataclass
class ParseError:
    path: str
    message: str


@dataclass
class ProjectResult:
    root: str
    findings: Dict[str, List[Finding]] = field(default_factory=dict)
    errors: Dict[str, ParseError] = field(default_factory=dict)
    files: List[str] = field(default_factory=list)
    project: Optional[Project] = None
    #: the bytes each analysed module was parsed from (the fixer rewrites exactly these)
    sources: Dict[str, bytes] = field(default_factory=dict)
    #: test files left out of the analysis (no ``--include-tests``): they may still import from
    #: the modules the fixer rewrites
    tests: List[str] = field(default_factory=list)
    #: what reading each file found (``_scan``, then ``_links``), and each parsed module's summary
    #: by path: a later ``build(reuse=...)`` takes them for the files whose bytes did not change
    scans: Dict[str, tuple] = field(default_factory=dict)
    links: Dict[str, tuple] = field(default_factory=dict)
    summaries: Dict[str, ModuleSummary] = field(default_factory=dict)
    #: the redis-py version the user stated, if any; see ``pins()``
    stated_version: Optional[str] = None
    _pins: Optional[Dict[str, Pin]] = field(default=None, repr=False)

    @property
    def read_pins(self) -> bool:
        """Whether anything (the detector, for RPL203) asked for the pins."""
        return self._pins is not None

    def pins(self) -> Dict[str, Pin]:
        """Each client library's version as the project pins it; read once, on first use."""
        if self._pins is None:
            self._pins = read_pins(self.root, self.stated_version)
        return self._pins

    #: read from the cache: no module was parsed (``project``, ``sources`` and the above are empty)
    cached: bool = False
    #: kept in the cache by this analysis (its summaries serve a later ``build`` with ``added``)
    stored: bool = False
    #: how many modules the analysis parsed (also when the findings came from the cache)
    parsed: int = 0
    #: the first summary of each parsed module, or why it could not be parsed (what the cache keeps)
    first: Dict[str, object] = field(default_factory=dict)
    _file_set: Optional[frozenset] = field(default=None, repr=False, compare=False)
    _folders: Optional[frozenset] = field(default=None, repr=False, compare=False)

    def has_file(self, path: str) -> bool:
        """``path in self.files``, for flake8's every file without a scan of the list each time."""
        if self._file_set is None or len(self._file_set) != len(self.files):
            self._file_set = frozenset(self.files)
        return path in self._file_set

    def folders(self) -> frozenset:
        """The folders that hold the project's files, and theirs up to the root."""
        if self._folders is None:
            out = set()
            inside = os.path.join(self.root, "")
            for path in self.files:
                folder = os.path.dirname(path)
                while folder not in out and (folder == self.root or folder.startswith(inside)):
                    out.add(folder)
                    parent = os.path.dirname(folder)
                    if parent == folder:
                        break
                    folder = parent
            self._folders = frozenset(out)
        return self._folders


def is_test_file(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"):
        return True
    return any(p in ("tests", "test") for p in parts[:-1])


@functools.lru_cache(maxsize=4096)
def has_marker(folder: str) -> bool:
    return any(os.path.exists(os.path.join(folder, m)) for m in ROOT_MARKERS)


@functools.lru_cache(maxsize=4096)
def _marked_ancestor(folder: str) -> Optional[str]:
    if has_marker(folder):
        return folder
    parent = os.path.dirname(folder)
    return None if parent == folder else _marked_ancestor(parent)


def find_root(path: str, fallbacks: Sequence[str] = ()) -> str:
    """The nearest ancestor with a project marker; else the nearest with an application's
    requirements (``requirements.txt``, ``Pipfile``, a lock file: an app deployed without
    packaging metadata, so ``flake8 app/x.py`` sees the same app as ``check .``); else the
    given path that contains ``path``."""
    path = os.path.abspath(path)
    here = path if os.path.isdir(path) else os.path.dirname(path)
    marked = _marked_ancestor(here) or _app_ancestor(here)
    installed = _installed_top(here)
    if installed is not None and (marked is None or installed.startswith(os.path.join(marked, ""))):
        return installed  # ``site-packages/pydantic``: that package, not the checkout above the venv
    if marked is not None:
        return marked
    best = None
    for given in fallbacks:
        given = os.path.abspath(given)
        base = given if os.path.isdir(given) else os.path.dirname(given)
        if (here + os.sep).startswith(base.rstrip(os.sep) + os.sep) or here == base:
            if best is None or len(base) < len(best):
                best = base
    return best or here


#: Folders that hold installed code: a file below one belongs to the package it is in there.
INSTALLED_FOLDERS = frozenset(("site-packages", "dist-packages", "__pypackages__", "node_modules"))


@functools.lru_cache(maxsize=4096)
def _installed_top(folder: str) -> Optional[str]:
    """The top-level package (or the folder itself) of a folder inside installed code, else None:
    the listing skips those folders, so an ancestor's project never holds the file, and every
    file checked would start an analysis of the whole checkout again (a pyenv or a venv inside
    a git clone)."""
    child = None
    while True:
        if os.path.basename(folder) in INSTALLED_FOLDERS:
            return child or folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        child, folder = folder, parent


#: Files at the top of an application deployed without packaging metadata.
APP_MARKERS = ("requirements.txt", "Pipfile", "poetry.lock", "uv.lock")


@functools.lru_cache(maxsize=4096)
def _app_ancestor(folder: str) -> Optional[str]:
    if any(os.path.isfile(os.path.join(folder, m)) for m in APP_MARKERS):
        return folder
    parent = os.path.dirname(folder)
    return None if parent == folder else _app_ancestor(parent)


@functools.lru_cache(maxsize=64)
def _exclude_matcher(patterns: Tuple[str, ...]):
    """One compiled regex for all patterns: names, and paths for patterns with a slash."""
    names = [fnmatch.translate(p) for p in patterns]
    paths = [fnmatch.translate(os.path.abspath(p)) for p in patterns if "/" in p or os.sep in p]
    name_re = re.compile("|".join(names)) if names else None
    path_re = re.compile("|".join(names + paths)) if names or paths else None
    return name_re, path_re


def _excluded(name: str, full: str, patterns: Tuple[str, ...]) -> bool:
    name_re, path_re = _exclude_matcher(patterns)
    return bool((name_re and name_re.match(name)) or (path_re and path_re.match(full)))


def _in_package(folder: str) -> bool:
    """A package, or a folder inside one (a namespace package's ``build/``): source, not output."""
    return any(os.path.isfile(os.path.join(f, "__init__.py")) for f in (folder, os.path.dirname(folder)))


def iter_python_files(root: str, settings: Settings, nested_projects: bool = True,
                      unreadable: Optional[List[Tuple[str, str]]] = None) -> List[str]:
    """Python files under ``root``, skipping excluded folders and virtual environments
    (and, with ``nested_projects=False``, folders that are projects of their own).

    Folders that cannot be listed go to ``unreadable`` as (path, reason) when it is given."""
    patterns = tuple(settings.exclude + settings.extend_exclude)
    out = []
    if os.path.isfile(root):
        return [os.path.abspath(root)]

    def onerror(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append((exc.filename or root, (exc.strerror or str(exc)).lower()))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        if dirpath != root:  # a virtual environment, or a project of its own: told by its listing, no stat
            names = set(filenames).union(dirnames)
            if "pyvenv.cfg" in names or (not nested_projects and not names.isdisjoint(ROOT_MARKERS)):
                dirnames[:] = []
                continue
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d, os.path.join(dirpath, d), patterns)
                             and not (d in OUTPUT_FOLDERS and not _in_package(os.path.join(dirpath, d))))
        base = os.path.abspath(dirpath)
        for f in sorted(filenames):
            if f.endswith(".py"):
                full = os.path.join(dirpath, f)
                if not _excluded(f, full, patterns):
                    out.append(os.path.join(base, f))
    return out


@functools.lru_cache(maxsize=256)
def _is_package_dir(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "__init__.py"))


def module_name(root: str, path: str) -> Tuple[str, bool]:
    rel = os.path.relpath(path, root)
    parts = rel.replace("\\", "/").split("/")
    parts[-1] = parts[-1][:-3]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    if parts and parts[0] == "src" and len(parts) > 1 and not _is_package_dir(os.path.join(root, "src")):
        parts = parts[1:]  # a src layout; a src/ with an __init__.py is imported as ``src.x``
    parts = [p for p in parts if p not in (".", "")]
    if _is_package_dir(root) and os.path.basename(root).isidentifier():
        # the root is itself a package (a marker file inside ``backend/``): its code imports
        # ``backend.x``; an import from inside it (``from x import``) is found as well
        parts = [os.path.basename(root)] + parts
    return ".".join(parts) or os.path.basename(os.path.dirname(path)), is_package


#: Suffixes of files given by name that are read as Python (others need a python shebang).
PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")


def looks_like_python(path: str) -> bool:
    """A file given by name: a Python suffix, or a first line like ``#!/usr/bin/env python3``."""
    if path.endswith(PYTHON_SUFFIXES):
        return True
    try:
        with open(path, "rb") as fh:
            first = fh.readline(200)
    except OSError:
        return True  # let the reader say why it cannot be read
    return first.startswith(b"#!") and b"python" in first


def read_source(path: str) -> bytes:
    """A file's bytes; a FIFO, device or folder is refused instead of blocking or failing oddly."""
    return read_stat(path)[0]


def read_stat(path: str) -> "Tuple[bytes, os.stat_result]":
    """``read_source`` with the file's status taken before reading (the cache's fingerprint)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file", path)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(), st
    finally:
        os.close(fd)


def parse_source(data: bytes, path: str) -> ast.Module:
    """Parse like the interpreter does (BOM, coding cookie), quietly; code for a newer Python
    is read through libcst (``downlevel``), so a 3.14 codebase is analysed under 3.11."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(data, filename=path, type_comments=False)
        except SyntaxError as exc:
            if isinstance(exc, UnicodeDecodeError) or "null bytes" in (exc.msg or ""):
                raise
            from .downlevel import parse_newer

            tree = parse_newer(data, path)
            if tree is None:
                raise
            tree.rpl_newer_syntax = f"{exc.msg}, line {exc.lineno}"  # for the summary: see ``_summarize``
            return tree


#: Syntax errors that no newer Python accepts either (or Python 2 code): no "run under a newer
#: Python" hint.
NOT_NEWER_SYNTAX = ("null bytes", "indent", "inconsistent use of tabs", "unexpected EOF",
                    "Missing parentheses in call to", "leading zeros", "invalid character")


#: What to do about a module nested deeper than Python's parser or the analysis goes.
TOO_DEEP = "; split the expression up, or leave the file out (--extend-exclude)"


def describe_error(exc: BaseException, data: Optional[bytes] = None) -> str:
    """One line for a file that cannot be parsed (``data``: its bytes, to tell newer syntax)."""
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        msg = exc.msg or "invalid syntax"
        if isinstance(exc, UnicodeDecodeError) or any(w in msg for w in ("codec", "decode", "encoding")):
            return f"cannot decode: {msg}{where}"
        if "nested" in msg:
            return f"cannot parse: {msg}{where} (nested too deeply for Python's parser){TOO_DEEP}"
        hint = ""
        if not any(w in msg for w in NOT_NEWER_SYNTAX):
            from ..grammar import hint as newer_hint

            hint = newer_hint(data, exc.lineno)
        return f"cannot parse: {msg}{where}{hint}"
    if isinstance(exc, (UnicodeDecodeError, LookupError)):
        return f"cannot decode: {exc}"
    if isinstance(exc, (RecursionError, MemoryError)):
        return f"cannot parse: nested too deeply for Python's parser ({type(exc).__name__}){TOO_DEEP}"
    if isinstance(exc, ValueError):  # null bytes, before 3.11.? (a SyntaxError from then on)
        return f"cannot parse: {exc}"
    return f"cannot read: {exc}"


def _import_statements(data: bytes) -> "Iterator[re.Match[bytes]]":
    """``IMPORT.finditer(data)``, tried only at the start of lines holding the word ``import``
    (a statement's keyword is on its first line): the same matches at a fraction of the cost."""
    end = 0
    at = data.find(b"import")
    while at != -1:
        start = data.rfind(b"\n", 0, at) + 1
        m = IMPORT.match(data, start) if start >= end else None
        if m is not None:
            yield m
            end = m.end()
        line_end = data.find(b"\n", at)
        if line_end == -1:
            return
        at = data.find(b"import", max(line_end, end))


def imported_names(data: bytes, module: str, is_package: bool) -> List[str]:
    """Dotted names a module may import (``from a import b`` gives ``a`` and ``a.b``), plus
    two markers the fixer reads: ``a.*`` for ``from a import *``, and ``a.b@x`` where a name
    that may be the module ``a.b`` is reachable as ``x`` (``import a.b`` gives ``a.b@a.b``,
    ``from a import b as x`` gives ``a.b@x``): other modules' ``x.attr`` reads its names."""
    out: List[str] = []
    for m in _import_statements(data):
        base, names, plain = m.group(1), m.group(2), m.group(3)
        if plain is not None:
            for item in plain.replace(b"\\", b" ").split(b","):
                words = item.split()
                if words:
                    dotted = words[0].decode("ascii", "replace")
                    out += [dotted, f"{dotted}@{_bound_as(words, dotted)}"]
            continue
        text = base.decode("ascii", "replace")
        level = len(text) - len(text.lstrip("."))
        target = text[level:] or None
        absolute = resolve_relative(module, is_package, level, target) if level else text
        out.append(absolute)
        if b"#" in names:
            names = COMMENT.sub(b"", names)
        for item in names.strip(b"()").replace(b"\\", b" ").split(b","):
            words = item.split()
            if not words:
                continue
            if words[0] == b"*":
                out.append(f"{absolute}.*")
                continue
            name = words[0].decode("ascii", "replace")
            full = f"{absolute}.{name}" if absolute else name
            out += [full, f"{full}@{_bound_as(words, name)}"]
    return out


def _bound_as(words: List[bytes], default: str) -> str:
    """The name an imported item is bound to: its ``as`` name, else ``default``."""
    return words[2].decode("ascii", "replace") if len(words) > 2 and words[1] == b"as" else default


def _might_mention(data: bytes, words: Tuple[bytes, ...]) -> bool:
    """A substring test before the regex: ten times cheaper on code with no Redis at all."""
    return any(w in data for w in words)


_SEED_WORDS = (b"edis", b"alkey", b".state.")


def _seed_pattern(settings: Settings) -> "Optional[re.Pattern[bytes]]":
    """The names of the configured client factories (their last literal part), or None."""
    words = []
    for pattern in settings.extra_factories:
        literal = re.sub(r"[*?\[\]]", " ", pattern.rsplit(".", 1)[-1]).split()
        words.extend(re.escape(w.encode()) for w in literal)
        if not literal:
            return re.compile(rb"")
    return re.compile(b"|".join(words)) if words else None


#: How far to follow names out of the parsed modules: far enough for a re-export through a
#: package ``__init__``, a route owner or a base class defined next door; not the whole stdlib.
FORWARD_HOPS = 2


def packages_of(files: Dict[str, Tuple[str, bool]]) -> List[str]:
    return [name for name, is_package in files.values() if is_package]


def referenced(summary: ModuleSummary) -> Iterator[str]:
    """Qualified names whose definitions the detector may need: route owners, registered
    targets, base classes, dependencies, annotations, and what functions that touch a client
    (or get one injected) call. Not every import: a module importing forty routers needs none."""
    for reg in summary.registrations:
        yield reg.target
        if reg.owner:
            yield reg.owner
            short = reg.owner.rsplit(".", 1)[-1]
            if reg.owner == f"{summary.name}.{short}" and short in summary.instances:
                # ``app = MyAPI()``: is it an app (a FastAPI subclass)? Its module tells
                yield summary.instances[short].rpartition(".")[0]
    for klass in summary.classes.values():
        yield from klass.bases
    for fn in summary.functions.values():
        yield from fn.param_deps.values()
        yield from fn.param_types.values()
        yield from fn.decorators
        if fn.sites or fn.closes or fn.commands or fn.param_deps or fn.returns or fn.has_yield:
            yield from (callee for callee, _ in fn.calls)


def forward_targets(summaries: Sequence[ModuleSummary], parsed: Dict[str, ModuleSummary],
                    names: ModuleNames, by_name: Dict[str, str]) -> List[str]:
    """Unparsed modules that define (or re-export) a name the parsed ones reference."""
    wanted: set = set()
    pending = [(name, s.name) for s in summaries for name in referenced(s)]
    seen: set = set()
    while pending:
        name, near = pending.pop()
        if (name, near) in seen:
            continue
        seen.add((name, near))
        module = names.find(name, near)
        if module is None or module == near:
            continue
        path = by_name[module]
        done = parsed.get(path)
        if done is None:
            wanted.add(path)
            continue
        rest = name[len(module) + 1:].split(".", 1)[0] if name.startswith(module + ".") else ""
        target = done.exports.get(rest) if rest else None
        if target is not None and target != name:
            pending.append((target + name[len(module) + 1 + len(rest):], module))  # a re-export: follow it
    return sorted(wanted)


@dataclass(frozen=True)
class _Job:
    """What the per-file steps need, shared by every worker."""

    root: str
    settings: Settings
    sources: Dict[str, bytes]
    words: Tuple[bytes, ...]
    seed_re: "Optional[re.Pattern[bytes]]"
    #: hand the parsed bytes back (the fixer needs them; ``check`` does not pay for the copy)
    keep_sources: bool = False
    #: the bytes this process read in step 1, for its later steps of the same run (with one job,
    #: each file is read once and every step sees the bytes its fingerprint was taken of; with
    #: more, a file another worker scanned is read again); emptied after the run
    seen: Dict[str, bytes] = field(default_factory=dict, compare=False)

    def read(self, path: str) -> bytes:
        if path in self.sources:
            return self.sources[path]
        data = self.seen.get(path)
        return read_source(path) if data is None else data


#: What a file is to the analysis (``is_seed``): nothing, a module that closes app state (a
#: seed only beside a module that builds a client), a module that may build or close one.
NOT_SEED, STATE_SEED, CLIENT_SEED = 0, 1, 2


def _scan(job: _Job, path: str) -> "Tuple[Optional[str], int, Optional[Fingerprint]]":
    """Step 1, every file: can it be read (None, or why not), what kind of seed it is
    (``is_seed``), and its fingerprint for the cache (None for bytes not read from the file)."""
    try:
        if path in job.sources:
            data, fp = job.sources[path], None
        else:
            data, st = read_stat(path)
            fp = fingerprint(st.st_size, st.st_mtime_ns, data, now_ns())
            job.seen[path] = data
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}", NOT_SEED, None
    seed = is_seed(data, job.root, path, job.seed_re) if _might_mention(data, job.words) else NOT_SEED
    return None, seed, fp


def is_seed(data: bytes, root: str, path: str, factory_re: "Optional[re.Pattern[bytes]]") -> int:
    """Does the analysis start from this module: ``CLIENT_SEED`` when it imports a client
    library (``import redis``, ``from redis.asyncio import Redis``, valkey, aioredis) or names a
    configured client factory, or closes app state named for a client (``app.state.redis``,
    which the detector takes for one); else ``STATE_SEED`` when it closes other app state
    (``app.state.cache.close()``, whose Redis-ness only the lifespan knows); else ``NOT_SEED``.
    The word alone is not enough: a settings module with a ``RedisDsn`` field builds nothing. A
    module of the library itself (redis-py's source importing its own package) uses no client."""
    if factory_re is not None and factory_re.search(data):
        return CLIENT_SEED
    state = NOT_SEED
    for m in STATE_CLOSE.finditer(data):
        if CLIENT_NAMES.search(m.group(1) or m.group(2)):
            return CLIENT_SEED
        state = STATE_SEED
    if b"\r" in data:  # old Mac line endings: lines the regexes know
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not LIBRARY_IMPORT.search(data):
        return state
    name, is_package = module_name(root, path)
    own = name.split(".", 1)[0]
    tops = {dotted.split(".", 1)[0] for dotted in imported_names(data, name, is_package)}
    return CLIENT_SEED if any(top in LIBRARIES and top != own for top in tops) else state


def _links(job: _Job, path: str) -> "Tuple[Tuple[str, bool], Tuple[str, ...], bool]":
    """Step 2, only in trees with Redis: the module's name, what it imports, whether it builds an
    app (in tuples: the cycle collector stops tracking a tuple of strings, and flake8 keeps these;
    interned: the same names recur in hundreds of modules, and the cache stores each once)."""
    name = module_name(job.root, path)
    try:
        data = job.read(path)
    except OSError:
        return name, (), False
    app = any(word in data for word in APP_WORDS) and bool(APP_CALL.search(data))
    return name, tuple(map(sys.intern, imported_names(data, *name))), app


def _summarize(job: _Job, item: "Tuple[str, Tuple[str, bool]]") -> "Tuple[ModuleSummary, bytes] | ParseError":
    """Step 3, the selected modules: parse and summarise, with the bytes parsed (the fixer
    rewrites exactly those); a ``ParseError`` when it cannot."""
    path, (name, is_package), *known = item
    data = None
    try:
        data = job.read(path)
        tree = parse_source(data, path)
    except OSError as exc:
        return ParseError(path, f"cannot read: {exc.strerror or exc}")
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError, LookupError) as exc:
        return ParseError(path, describe_error(exc, data))
    from .summary import summarize

    try:
        summary = summarize(tree, name, path, is_package, job.settings.extra_factories, job.settings.extra_routes,
                            known[0] if known else None)
    except RecursionError:
        return ParseError(path, f"cannot analyse: expressions nested too deeply{TOO_DEEP}")
    summary.newer_syntax = getattr(tree, "rpl_newer_syntax", None)
    return summary, data if job.keep_sources else None


def build(root: str, settings: Settings, extra_files: Sequence[str] = (),
          sources: Optional[Dict[str, bytes]] = None, jobs: int = 1,
          progress: Optional[Callable[[str, int, int], None]] = None,
          dedupe_links: bool = False, keep_sources: bool = False,
          reuse: Optional[ProjectResult] = None, cache: "Union[bool, str]" = False,
          added: Sequence[str] = ()) -> ProjectResult:
    """Index the Python files under ``root`` (plus ``extra_files``) and detect.

    ``sources`` replaces files' contents (stdin, and the fixer checking its output before
    writing it); ``jobs`` spreads the per-file steps over processes; ``progress(stage, done,
    total)`` hears about them. ``dedupe_links`` drops a symbolic link to a file that is itself
    part of the project, so the fixer sees (and rewrites) the real file once; ``keep_sources``
    keeps the bytes each module was parsed from in ``result.sources``. ``reuse``: an earlier
    result with the same settings whose reads and summaries stand for the files that ``sources``
    does not change (the fixer re-analysing its rewrite reads and parses only what it rewrote).
    ``added``: files to analyse beside ``reuse``'s (flake8 given a file the listing skips).
    ``cache``: keep and reuse the analysis on disk (``cache.py``): True for the default folder,
    a path for that folder; never with ``sources``, ``reuse`` or ``keep_sources``."""
    result = ProjectResult(root=root, stated_version=settings.redis_version)
    if reuse is not None:  # the same tree again: its files were listed and filtered already
        files = list(reuse.files)
        result.errors.update((p, e) for p, e in reuse.errors.items() if os.path.isdir(p))
        extras: List[str] = [os.path.abspath(e) for e in added if not reuse.has_file(os.path.abspath(e))]
        files.extend(extras)
    else:
        files, extras = _list_files(root, settings, extra_files, dedupe_links, result)
    result.files = files
    words = _SEED_WORDS if not settings.extra_factories else (b"",)
    job = _Job(root, settings, dict(sources or {}), words, _seed_pattern(settings), keep_sources)
    old: Tuple[Dict[str, tuple], Dict[str, tuple], Dict[str, object]] = ({}, {}, {})
    if reuse is not None:
        changed = {p for p, data in job.sources.items() if reuse.sources.get(p) is not data}
        old = ({p: r for p, r in reuse.scans.items() if p not in changed},
               {p: r for p, r in reuse.links.items() if p not in changed},
               {p: (s, reuse.sources.get(p)) for p, s in reuse.summaries.items()
                if p not in changed and p in reuse.scans and (p in reuse.sources or not job.keep_sources)})
    store = None
    if cache and not sources and reuse is None and not keep_sources:
        key = settings.cache_key() + (settings.redis_version,)
        folder = cache if isinstance(cache, str) else None
        store = store_for(root, key, sorted(extras), folder)
    if store is None:
        return _run(result, files, job, jobs, progress, old)
    hit = _cached(store, result)
    if hit is not None:
        return hit
    # another process analysing this project: help it (``share.py``), then read its result
    with store.locked(meanwhile=lambda free: _help(store, job, free)):
        hit = _cached(store, result)
        if hit is not None:
            return hit
        known = _known(store)
        if extras and not known[0]:
            # files the listing skips, the first time: the project's own entry knows the rest
            plain = store_for(root, key, [], folder)
            if plain is not None:
                known = _known(plain)
        result = _run(result, files, job, jobs, progress, known, store)
        _save(store, result)
        result.stored = True
    return result


def _run(result: ProjectResult, files: List[str], job: "_Job", jobs: int, progress, old,
         store: Optional[Store] = None) -> ProjectResult:
    """The analysis, its per-file steps on ``jobs`` processes; with one job and a cache, on a
    board that processes waiting for the same analysis help with (``share.Board``)."""
    from ..parallel import Workers, reporter

    with _collector_off():
        try:
            from . import share

            if store is not None and jobs <= 1 and share.AVAILABLE:
                with share.Board(store.base, job, STEPS) as board:
                    return _build(result, files, job, board, progress, reporter, old)
            with Workers(jobs, job) as workers:
                return _build(result, files, job, workers, progress, reporter, old)
        finally:
            job.seen.clear()


def _help(store: Store, job: "_Job", free: Callable[[], bool]) -> None:
    from .share import help_until_free

    with _collector_off():
        try:
            help_until_free(store.base, job, STEPS, free)
        finally:
            job.seen.clear()


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """The cycle collector off while the analysis runs, and as it was after it. The analysis
    makes objects by the million that live until it ends (the summaries, each module's tree while
    it is summarised), and the collector walked them over and over: 10-15 % of the run, more
    inside flake8, whose own objects it walks too. Nothing the analysis drops is in a cycle that
    holds a tree (its visitors keep no bound methods: ``summary._Visitor``), so counting
    references frees each tree once its summary is made: polar's server peaks at the same 50 MB
    with the collector on or off, and summarising all its 1,774 modules at the same 61 MB."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: The per-file steps, as processes that help with an analysis know them: name, function, and
#: how many items make a block (reading a file costs microseconds; a summary, milliseconds).
STEPS = {"scan": (_scan, 64), "links": (_links, 64), "summarize": (_summarize, 1)}


def _known(store: Store) -> Tuple[Dict[str, tuple], Dict[str, tuple], Dict[str, object]]:
    """What the last analysis found in each file that has not changed since (nothing, from an
    entry that is not what this version writes)."""
    try:
        kept = {p: e for p, e in store.load("files").items() if unchanged(p, e[0][2])}
        return ({p: e[0] for p, e in kept.items()}, {p: e[1] for p, e in kept.items() if e[1] is not None},
                {p: e[2] if isinstance(e[2], ParseError) else (e[2], None) for p, e in kept.items()
                 if e[2] is not None})
    except Exception:
        return {}, {}, {}


def _cached(store: Store, result: ProjectResult) -> Optional[ProjectResult]:
    """The stored findings when the project's files are those, unchanged, that produced them."""
    entry = store.load("findings")
    try:
        if entry["files"] != result.files or not all_unchanged(entry["fingerprints"], result.files):
            return None
        if entry["pins"] is not None and entry["pins"] != pins_fingerprint(result.root):
            return None  # the findings read the project's pins (RPL203), and a pin changed
        findings, errors, parsed = dict(entry["findings"]), dict(entry["errors"]), int(entry["parsed"])
    except Exception:
        return None
    result.findings = findings
    result.errors.update(errors)
    result.parsed, result.cached = parsed, True
    return result


def _save(store: Store, result: ProjectResult) -> None:
    """Keep each file's reading and first summary, and the findings if every file has a fingerprint."""
    files = {}
    for path, scan in result.scans.items():
        if scan[2] is not None:
            files[path] = (scan, result.links.get(path), result.first.get(path))
    store.save("files", files)
    fingerprints = {p: s[2] for p, s in result.scans.items()}
    if len(fingerprints) == len(result.files) and None not in fingerprints.values():
        errors = {p: e for p, e in result.errors.items() if p in fingerprints}
        # the pins, only if detection read them: most projects never pay for the look
        pins = pins_fingerprint(result.root) if result.read_pins else None
        store.save("findings", {"files": result.files, "fingerprints": fingerprints, "findings": result.findings,
                                "errors": errors, "parsed": result.parsed, "pins": pins})


def _build(result: ProjectResult, files: List[str], job: _Job, workers, progress, reporter,
           old: Tuple[Dict[str, tuple], Dict[str, tuple], Dict[str, object]]) -> ProjectResult:
    old_scans, old_links, old_summaries = old
    seeds: List[str] = []
    builds = False
    readable: List[str] = []
    todo = [p for p in files if p not in old_scans]
    scans = dict(zip(todo, workers.map(_scan, todo, reporter(progress, "reading", len(todo)))))
    for path in files:
        result.scans[path] = scan = old_scans[path] if path in old_scans else scans[path]
        error, seed = scan[0], scan[1]
        if error is not None:
            result.errors[path] = ParseError(path, error)
            continue
        readable.append(path)
        if seed:
            seeds.append(path)
            builds = builds or seed == CLIENT_SEED
    if not builds:
        # nothing here builds a client, so closing app state closes none: parse nothing (a
        # finding needs a construction the analysis sees)
        return result
    modules: Dict[str, Tuple[str, bool]] = {}
    imports: Dict[str, Sequence[str]] = {}
    apps: List[str] = []
    seed_set = set(seeds)
    todo = [p for p in readable if p not in old_links]
    links = dict(zip(todo, workers.map(_links, todo)))
    for path in readable:
        result.links[path] = name, found, app = old_links[path] if path in old_links else links[path]
        modules[path] = name
        imports[path] = found
        if app and path not in seed_set:
            apps.append(path)
    by_name = {name: path for path, (name, _) in modules.items()}
    from .detect import detect
    from .index import ModuleNames, Project
    from .reach import Reach

    names = ModuleNames(by_name, packages_of(modules))
    reach = Reach(names, by_name, imports, modules, seeds)
    starts = seed_set.union(apps)
    batch = [p for p in readable if p in starts]
    parsed: Dict[str, ModuleSummary] = {}
    selected: List[ModuleSummary] = []
    hop, stage = 0, "parsing"
    while True:
        chosen = [(path, modules[path]) for path in batch]
        fresh: List[ModuleSummary] = []
        again = {p: old_summaries[p] for p, _ in chosen if p in old_summaries}
        todo = [item for item in chosen if item[0] not in again]
        todo.sort(key=lambda item: -_size(result.scans[item[0]]))  # the largest first: processes sharing
        # the round finish together, not one of them on a big module while the others wait
        done = dict(zip((p for p, _ in todo), workers.map(_summarize, todo, reporter(progress, stage, len(todo)))))
        for path, _ in chosen:
            summary = again[path] if path in again else done[path]
            if isinstance(summary, ParseError):
                result.errors[path] = result.first[path] = summary
            else:
                summary, data = summary
                result.first[path] = summary
                if data is not None:
                    result.sources[path] = data
                parsed[path] = result.summaries[path] = summary
                fresh.append(summary)
        if not hop:  # what imports a name that reaches a client, until nothing new does
            selected += fresh
            batch = reach.to_parse(reach.add(fresh), lambda p: p in parsed or p in result.errors)
            if batch:
                continue
            fresh = selected
        if hop == FORWARD_HOPS:
            break
        hop += 1
        stage = f"parsing (context {hop})"
        batch = [p for p in forward_targets(fresh, parsed, names, by_name) if p not in result.errors]
        if not batch:
            break
    result.parsed = len(parsed)
    _with_client_subclasses(parsed, result, job, workers)
    summaries = [parsed[p] for p in readable if p in parsed]
    project = Project(summaries, packages_of(modules))
    result.project = project
    result.findings = detect(project, result.root, result.pins)
    return result


def _size(scan: tuple) -> int:
    return scan[2][0] if scan[2] is not None else 0


def _with_client_subclasses(parsed: Dict[str, ModuleSummary], result: ProjectResult, job: _Job, workers) -> None:
    """A second look at the modules that name a client subclass defined elsewhere in the
    project (``class FailoverRedis(Redis)`` in one module, ``FailoverRedis(...)`` in another):
    they are summarised again knowing what it builds. Rare, so nothing is paid when absent."""
    known = {q: c for s in parsed.values() for q, c in s.client_classes.items()}
    if not known:
        return
    words = re.compile(b"|".join(re.escape(q.rsplit(".", 1)[-1].encode()) for q in known))
    again = []
    for path, summary in parsed.items():
        if all(q.startswith(summary.name + ".") for q in known):
            continue  # defined here: the first pass knew them
        try:
            if words.search(job.read(path)):
                again.append((path, (summary.name, summary.is_package), known))
        except OSError:
            continue
    for (path, _, _), done in zip(again, workers.map(_summarize, again)):
        if not isinstance(done, ParseError):
            summary, data = done
            parsed[path] = result.summaries[path] = summary


def _list_files(root: str, settings: Settings, extra_files: Sequence[str], dedupe_links: bool,
                result: ProjectResult) -> Tuple[List[str], List[str]]:
    """The project's files, and which of ``extra_files`` the listing did not find."""
    unreadable: List[Tuple[str, str]] = []
    files = iter_python_files(root, settings, nested_projects=False, unreadable=unreadable)
    for folder, reason in unreadable:
        result.errors[folder] = ParseError(folder, f"cannot read: {reason}")
    known = set(files)
    extras = []
    for extra in extra_files:
        extra = os.path.abspath(extra)
        if extra not in known:
            known.add(extra)
            files.append(extra)
            extras.append(extra)
    if not settings.include_tests:
        top = os.path.abspath(root)
        tests = {f for f in files if is_test_file(_relative(f, top))}
        if tests:
            result.tests = [f for f in files if f in tests]
            files = [f for f in files if f not in tests]
    if dedupe_links:
        files = _without_duplicate_links(files)
    return files, extras


def _realpath(path: str, folders: Dict[str, str]) -> str:
    """``os.path.realpath``, resolving each folder once: a file that is no link itself is its
    folder's real path joined with its name."""
    if os.path.islink(path):
        return os.path.realpath(path)
    folder, name = os.path.split(path)
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder)
    return os.path.join(real, name)


def _without_duplicate_links(files: List[str]) -> List[str]:
    """Drop symbolic links whose target is in ``files`` too (or that another link already names)."""
    folders: Dict[str, str] = {}
    real = {f: _realpath(f, folders) for f in files}
    seen = {real[f] for f in files if real[f] == f or not os.path.islink(f)}
    out = []
    for f in files:
        if real[f] != f and os.path.islink(f):
            if real[f] in seen:
                continue
            seen.add(real[f])
        out.append(f)
    return out


_CACHE: Dict[Tuple[str, Settings, Tuple[str, ...]], ProjectResult] = {}
_ROOTS: Dict[Tuple[str, Tuple[str, ...]], str] = {}


def project_for(path: str, settings: Settings, fallbacks: Sequence[str] = (),
                cache: "Union[bool, str]" = False) -> ProjectResult:
    """The analysed project that ``path`` belongs to, kept for the process (and with ``cache``,
    on disk for the other processes and later runs: ``build``) as flake8 needs it: findings,
    errors and files, without the project's index and summaries (``_for_reporting``)."""
    # (the plugin's path is absolute already: ``abspath`` asks the system for the folder each time)
    apath = os.path.normpath(path) if os.path.isabs(path) else os.path.abspath(path)
    root = _root_of(os.path.dirname(apath), fallbacks)
    key = (root, settings, ())
    result = _CACHE.get(key)
    if result is None:
        result = _CACHE[key] = _for_reporting(build(root, settings, cache=cache))
    if not result.has_file(apath) and not _skipped_test(apath, root, settings):
        # a file the listing skips (a ``build/`` that flake8 is not told to exclude): read with
        # the rest, and with the other such files of the folder skipped whole, which flake8 is
        # about to hand over too (one analysis for a ``build/lib`` of many packages)
        top = _skipped_top(os.path.dirname(apath), result)
        key = (root, settings, (top,))
        base, result = result, _CACHE.get(key)
        if result is None or not result.has_file(apath):
            added = [p for p in _python_files(top, recursive=top not in base.folders())
                     if not base.has_file(p) and not _skipped_test(p, root, settings)
                     and _root_of(os.path.dirname(p), fallbacks) == root]
            added = sorted(set(added) | {apath})
            if base.cached or base.stored or not base.scans:  # the cache's summaries serve (``build``)
                result = build(root, settings, added, cache=cache)
            else:  # its reads only: the modules it analysed are parsed again (``_for_reporting``)
                result = build(root, settings, reuse=base, added=added)
            _CACHE[key] = result = _for_reporting(result)
    return result


def _root_of(folder: str, fallbacks: Sequence[str]) -> str:
    """``find_root`` of the files in ``folder`` (flake8 checks files: one root per folder)."""
    root = _ROOTS.get((folder, tuple(fallbacks)))
    if root is None:
        root = _ROOTS[(folder, tuple(fallbacks))] = find_root(folder, fallbacks)
    return root


def _skipped_top(folder: str, result: ProjectResult) -> str:
    """The highest folder holding ``folder`` in which the listing found no file (``build``, of
    ``build/lib/app/api``): what it skipped whole. ``folder`` itself when it holds listed files."""
    listed = result.folders()
    top = folder
    while folder not in listed:
        top = folder
        parent = os.path.dirname(folder)
        if parent == folder or not parent.startswith(os.path.join(result.root, "")):
            break
        folder = parent
    return top


#: Folders under a skipped one whose files flake8 does not check, or that belong to other
#: projects (installed code: ``_installed_top``)
_NOT_WALKED = FLAKE8_EXCLUDE + tuple(sorted(INSTALLED_FOLDERS))


def _python_files(folder: str, recursive: bool) -> List[str]:
    """The ``.py`` files in ``folder`` (and below it when ``recursive``)."""
    out = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if recursive and not _excluded(d, os.path.join(here, d), _NOT_WALKED)]
        out += [os.path.join(here, n) for n in names if n.endswith(".py")]
    return out


def _for_reporting(result: ProjectResult) -> ProjectResult:
    """What the rest of a flake8 run needs: the findings, errors and files, and each file's read
    (``reuse``, for a folder of files the listing skips, without the cache: it parses the
    analysed modules again, a rare cost; with it, their summaries are on disk). The summaries
    and the index go: kept, they would be walked by every full collection of the cycle collector
    for the rest of the run (on polar's server 1.75 s more collector time in a 43 s run, more
    than the analysis itself)."""
    result.project = None
    result.summaries = {}
    result.first = {}
    result.sources = {}
    return result


def _skipped_test(path: str, root: str, settings: Settings) -> bool:
    return not settings.include_tests and is_test_file(_relative(path, root))


def _relative(path: str, root: str) -> str:
    """``os.path.relpath`` for absolute paths, without its cost for the usual path inside ``root``
    (flake8 asks for each file it checks)."""
    prefix = os.path.join(root, "")
    return path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, root)


def clear_cache() -> None:
    _CACHE.clear()
    _ROOTS.clear()
