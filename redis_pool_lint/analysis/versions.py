"""Which redis-py (or aioredis, valkey) the project runs: the fixer emits only API it has.

``Redis.from_pool()`` and ``aclose()`` arrived in redis-py 5.0.1; a rewrite that uses them
breaks a project pinned to 4.x at startup or at every teardown. The version is read from what
the project declares, in this order:

1. the user's statement (``--redis-version`` / ``redis-version``), like pyupgrade's ``--py311-plus``;
2. lock files (``poetry.lock``, ``uv.lock``, ``pdm.lock``, ``Pipfile.lock``): the exact version;
3. constraints (``requirements*.txt``, PEP 621 and Poetry ``pyproject.toml``, ``setup.cfg``,
   ``setup.py``, ``Pipfile``): the oldest version they admit, since any of those may be installed;
4. the version installed where the tool runs, when the project names no version at all.

Several files that disagree give the oldest (a rewrite must run under each). Unknown stays
unknown: the fixer then writes what runs on every version.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

LIBRARIES = ("redis", "aioredis", "valkey")
#: ``Redis.from_pool()`` and ``aclose()``
FROM_POOL = (5, 0, 1)

LOCK_FILES = ("poetry.lock", "uv.lock", "pdm.lock", "Pipfile.lock")
CONSTRAINT_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "Pipfile")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", "build", "dist", "site-packages"}
#: how deep below the project root dependency files are looked for (``backend/requirements.txt``)
DEPTH = 2

Version = Tuple[int, ...]


@dataclass(frozen=True)
class Pin:
    """A library's version as far as the project tells, and where it was read."""

    library: str
    version: Optional[Version]
    source: str  # "requirements.txt (redis==4.5.4)", "installed", "--redis-version", ""

    @property
    def text(self) -> str:
        return ".".join(map(str, self.version)) if self.version else "unknown"

    def has(self, feature: Version) -> Optional[bool]:
        """Whether this version has API that arrived in ``feature``; None when unknown."""
        return None if self.version is None else self.version >= feature


def parse_version(text: str) -> Optional[Version]:
    """``4.5.4`` -> (4, 5, 4); pre-release and local tags are dropped (``5.0.0rc2`` -> (5, 0, 0))."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text or "")
    if not match:
        return None
    parts = tuple(int(p) for p in match.group(1).split("."))
    return parts + (0,) * (3 - len(parts)) if len(parts) < 3 else parts


_NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
_REQUIREMENT = re.compile(rf"^\s*{_NAME}\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;#]*)")


def lower_bound(spec: str) -> Tuple[bool, Optional[Version]]:
    """(the spec bounds the version from below at all, that bound) for a PEP 440 or Poetry spec."""
    bound: Optional[Version] = None
    for part in re.split(r"[,|]", spec or ""):
        part = part.strip()
        match = re.match(r"^(===|==|>=|~=|\^|~|>)?\s*v?(\d[\w.*+!-]*)$", part)
        if not match:
            continue
        op, version = match.group(1) or "==", parse_version(match.group(2).replace("*", "0"))
        if version is None:
            continue
        if op == ">":  # above that release: its next patch is the oldest admitted
            version = version[:2] + (version[2] + 1,) + version[3:]
        bound = version if bound is None else max(bound, version)
    return bound is not None, bound


def _requirement(line: str) -> Optional[Tuple[str, str]]:
    """(normalised name, version spec) of one PEP 508 line, or None."""
    line = line.split(" #", 1)[0].strip()
    if not line or line.startswith(("#", "-", "git+", "http")):
        return None
    match = _REQUIREMENT.match(line)
    if not match:
        return None
    return match.group("name").lower().replace("_", "-"), match.group("spec").strip().strip("()")


def _dependency_files(root: str) -> Iterator[str]:
    root = os.path.abspath(root)
    for folder, dirs, files in os.walk(root):
        depth = 0 if folder == root else folder[len(root):].count(os.sep)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")) if depth < DEPTH else []
        for name in sorted(files):
            if name in LOCK_FILES or name in CONSTRAINT_FILES or (
                    name.startswith("requirements") and name.endswith((".txt", ".in"))) or (
                    os.path.basename(folder) == "requirements" and name.endswith((".txt", ".in"))):
                yield os.path.join(folder, name)
    # a monorepo's app folder: the files that pin it may sit above it, up to the repository's top
    folder = root
    for _ in range(3):
        if os.path.isdir(os.path.join(folder, ".git")):
            break
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
        for name in (*LOCK_FILES, *CONSTRAINT_FILES, "requirements.txt"):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                yield path


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(4_000_000)
        return data.decode("utf-8", "replace")
    except OSError:
        return None


def _toml(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return {}


_PACKAGE_HEADER = re.compile(r"^\[\[package\]\][ \t]*\r?$", re.M)
_LIBRARY_NAME = re.compile(r"^name\s*=\s*[\"'](?:%s)[\"']" % "|".join(LIBRARIES), re.M | re.I)


def _lock_packages(text: str) -> list:
    """The ``[[package]]`` tables of a TOML lock file that name a client library: a large app's
    lock (polar's ``uv.lock``) costs more to parse whole than the rest of the analysis."""
    blocks = _PACKAGE_HEADER.split(text)
    wanted = [block for block in blocks[1:] if _LIBRARY_NAME.search(block)]
    if not wanted:
        return []
    packages = _toml("".join("[[package]]\n" + block for block in wanted)).get("package")
    if packages is None:  # the tables do not stand alone (an unusual layout): read it whole
        packages = _toml(text).get("package")
    return packages if isinstance(packages, list) else []


def _locked(name: str, text: str) -> Iterator[Tuple[str, str]]:
    """(library, exact version) from one lock file."""
    if name == "Pipfile.lock":
        try:
            data = json.loads(text)
        except ValueError:
            return
        for section in ("default", "develop"):
            for lib, entry in (data.get(section) or {}).items():
                if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                    yield lib.lower(), entry["version"].lstrip("=")
        return
    for package in _lock_packages(text):
        if isinstance(package, dict) and isinstance(package.get("name"), str) and isinstance(package.get("version"), str):
            yield package["name"].lower(), package["version"]


def _poetry_specs(deps) -> Iterator[Tuple[str, str]]:
    for lib, value in (deps or {}).items():
        if isinstance(value, dict):
            value = value.get("version", "")
        if isinstance(value, str):
            yield lib.lower(), value


def _declared(name: str, text: str) -> Iterator[Tuple[str, str]]:
    """(library, version spec) from one constraint file."""
    if name == "pyproject.toml":
        data = _toml(text)
        project = data.get("project") or {}
        lines = list(project.get("dependencies") or [])
        for extra in (project.get("optional-dependencies") or {}).values():
            lines.extend(extra or [])
        for group in (data.get("dependency-groups") or {}).values():
            lines.extend(x for x in group or [] if isinstance(x, str))
        for line in lines:
            req = _requirement(line) if isinstance(line, str) else None
            if req:
                yield req
        poetry = (data.get("tool") or {}).get("poetry") or {}
        yield from _poetry_specs(poetry.get("dependencies"))
        yield from _poetry_specs(poetry.get("dev-dependencies"))
        for group in (poetry.get("group") or {}).values():
            if isinstance(group, dict):
                yield from _poetry_specs(group.get("dependencies"))
        return
    if name == "Pipfile":
        data = _toml(text)
        for section in ("packages", "dev-packages"):
            for lib, value in _poetry_specs(data.get(section)):
                yield lib, "" if value.strip() == "*" else value
        return
    if name == "setup.py":
        for match in re.finditer(rf"""["']{_NAME}\s*(?:\[[^\]]*\])?\s*(?P<spec>[<>=~!][^"';]*)?["']""", text):
            yield match.group("name").lower(), match.group("spec") or ""
        return
    if name == "setup.cfg":
        match = re.search(r"(?ms)^install_requires\s*=\s*(.*?)(?=^\S|\Z)", text)
        body = match.group(1) if match else ""
    else:  # requirements*.txt / *.in
        body = text
    for line in body.splitlines():
        req = _requirement(line)
        if req:
            yield req


def read_pins(root: str, stated: Optional[str] = None) -> Dict[str, Pin]:
    """Each client library's version as the project pins it (see the module's docstring)."""
    locked: Dict[str, List[Tuple[Version, str]]] = {}
    declared: Dict[str, List[Tuple[Optional[Version], str]]] = {}
    for path in _dependency_files(root):
        name = os.path.basename(path)
        text = _read(path)
        if text is None or not any(lib in text.lower() for lib in LIBRARIES):
            continue
        where = os.path.relpath(path, root)
        if name in LOCK_FILES:
            for lib, version in _locked(name, text):
                parsed = parse_version(version)
                if lib in LIBRARIES and parsed:
                    locked.setdefault(lib, []).append((parsed, f"{where} ({lib} {version})"))
            continue
        for lib, spec in _declared(name, text):
            if lib in LIBRARIES:
                _, bound = lower_bound(spec)
                declared.setdefault(lib, []).append((bound, f"{where} ({lib}{spec and ' ' + spec})"))
    out: Dict[str, Pin] = {}
    for lib in LIBRARIES:
        if lib == "redis" and stated:
            out[lib] = Pin(lib, parse_version(stated), "--redis-version / redis-version")
        elif locked.get(lib):
            version, source = min(locked[lib])
            out[lib] = Pin(lib, version, source)
        elif any(v for v, _ in declared.get(lib, ())):
            version, source = min((v, s) for v, s in declared[lib] if v)
            out[lib] = Pin(lib, version, source)
        else:
            installed = _installed(lib)
            if installed:
                out[lib] = Pin(lib, installed, "installed where redis-pool-lint runs")
            else:
                source = declared[lib][0][1] if declared.get(lib) else ""
                out[lib] = Pin(lib, None, source + " (no version)" if source else "")
    return out


def _installed(lib: str) -> Optional[Version]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return parse_version(version(lib))
    except PackageNotFoundError:
        return None


def fingerprint(root: str) -> tuple:
    """What ``read_pins`` reads, as a cache key: each dependency file's size and mtime, and the
    versions installed here (a cached RPL203 must go when a pin or the environment changes)."""
    out = []
    for path in _dependency_files(root):
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((path, st.st_size, st.st_mtime_ns))
    return tuple(out) + tuple(_installed(lib) for lib in LIBRARIES)


def check_stated(text: str) -> str:
    """A ``--redis-version`` value must be a release number: ``4.5.4``, ``5``."""
    if not re.fullmatch(r"\d+(\.\d+){0,3}", text.strip()):
        raise ValueError(f"invalid redis-py version {text!r}: expected a release number such as 4.5.4")
    return text.strip()
