"""The project's code style, as the rewrite must follow it: line length, Python target, formatter.

A reviewer merges a fix that passes the project's own checks: its lines within black's or
ruff's ``line-length`` where the project configures either (the formatter would join lines
wrapped shorter; 88, their default, when the table sets none), else flake8's
``max-line-length`` (the smallest one), else 88; ``X | None`` only where the project targets Python 3.10 or
newer, and its files handed to the formatter the project configures when asked (``--format``).
The settings are read from the project root's ``pyproject.toml`` (``[tool.ruff]``,
``[tool.black]``, ``[project] requires-python``), ``ruff.toml``/``.ruff.toml``, and
``setup.cfg``/``tox.ini``/``.flake8`` (``[flake8]``); a file that cannot be read counts as absent
(the analysis reports unreadable configuration already).
"""
from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ..config import tomllib

DEFAULT_LINE_LENGTH = 88


@dataclass(frozen=True)
class Style:
    line_length: int = DEFAULT_LINE_LENGTH
    #: the project targets Python 3.10+: ``Request | None`` is valid there and preferred by ruff (UP007)
    union_syntax: bool = False
    #: "ruff" or "black": the formatter the project's configuration asks for, if any
    formatter: Optional[str] = None
    #: top-level modules that are the project's own (ruff's ``known-first-party`` included)
    first_party: frozenset = field(default_factory=frozenset)
    #: functions the project hands to ``Depends(...)``: FastAPI injects the request only into a
    #: parameter annotated with the class itself (``Optional[Request]`` makes it fail at import)
    dependencies: frozenset = field(default_factory=frozenset)


def _toml(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _table(data: Dict[str, Any], *keys: str) -> Dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _flake8_length(path: str) -> Optional[int]:
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    for key in ("max-line-length", "max_line_length"):
        if parser.has_option("flake8", key):
            value = parser.get("flake8", key).strip()
            return int(value) if value.isdigit() else None
    return None


def _minor(version: Any) -> Optional[int]:
    """3.X's X from ``py310``, ``3.10``, ``>=3.10``; None when it says nothing."""
    match = re.search(r"(?:py3|3\.)(\d+)", str(version))
    return int(match.group(1)) if match else None


def project_style(root: str) -> Style:
    lengths: List[int] = []
    targets: List[Optional[int]] = []
    formatter = None
    pyproject = _toml(os.path.join(root, "pyproject.toml"))
    ruff = _table(pyproject, "tool", "ruff")
    for name in ("ruff.toml", ".ruff.toml"):
        if not ruff and os.path.isfile(os.path.join(root, name)):
            ruff = _toml(os.path.join(root, name)) or {"": None}
    black = _table(pyproject, "tool", "black")
    if ruff:
        formatter = "ruff"
        targets.append(_minor(ruff["target-version"]) if "target-version" in ruff else None)
    if black:
        formatter = "black"  # black named in the project: its choice over ruff's, which black users also run
        versions = black.get("target-version")
        if isinstance(versions, list) and versions:
            targets.append(min((_minor(v) or 0) for v in versions) or None)
    requires = _table(pyproject, "project").get("requires-python")
    if requires and re.match(r"\s*>=?\s*3\.\d+", str(requires)):
        targets.append(_minor(requires))
    for name in ("setup.cfg", "tox.ini", ".flake8"):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            lengths.append(_flake8_length(path))
    # the formatter's length rules where one is configured (it would join lines wrapped shorter)
    known = [n for n in (black.get("line-length"), ruff.get("line-length")) if isinstance(n, int) and n > 0]
    if not known and (black or ruff):
        known = [DEFAULT_LINE_LENGTH]
    known = known or [n for n in lengths if isinstance(n, int) and n > 0]
    target = min((t for t in targets if t is not None), default=None)
    isort = _table(ruff, "lint", "isort") or _table(ruff, "isort")
    first = [m for m in isort.get("known-first-party", []) if isinstance(m, str)]
    return Style(line_length=min(known) if known else DEFAULT_LINE_LENGTH,
                 union_syntax=target is not None and target >= 10, formatter=formatter,
                 first_party=frozenset([*first, *_own_modules(root)]))


DEPENDS = re.compile(rb"(?:Depends|Security)\(\s*(?:dependency\s*=\s*)?(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)")


def injected(sources: Iterable[bytes]) -> frozenset:
    """The names of the functions the project's code hands to ``Depends(...)``/``Security(...)``."""
    return frozenset(m.group(1).decode() for data in sources for m in DEPENDS.finditer(data))


def _own_modules(root: str) -> List[str]:
    """The project's top-level packages and modules, at its root or under ``src/``."""
    out = []
    for folder in (root, os.path.join(root, "src")):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".py"):
                out.append(name[:-3])
            elif name.isidentifier() and os.path.isfile(os.path.join(path, "__init__.py")):
                out.append(name)
    return out


class FormatError(Exception):
    """``--format`` cannot run: the message says why, in one line."""


def formatter_command(style: Style, root: str) -> List[str]:
    """The command that formats one file read from stdin for this project (``--stdin-filename``
    and ``-`` are appended), as libcst's codemod command hands its output to black."""
    if style.formatter is None:
        raise FormatError(f"{root}: --format: the project configures no formatter "
                          "([tool.ruff] or [tool.black] in pyproject.toml, or ruff.toml)")
    exe = shutil.which(style.formatter)
    command = [exe] if exe else [sys.executable, "-m", style.formatter]
    if exe is None and subprocess.run([*command, "--version"], capture_output=True).returncode != 0:
        raise FormatError(f"{root}: --format: the project is formatted with {style.formatter}, "
                          f"which is not installed (pip install {style.formatter})")
    return [*command, "format"] if style.formatter == "ruff" else [*command, "-q"]


def format_source(command: Sequence[str], root: str, path: str, data: bytes) -> bytes:
    """``data`` (the new content of ``path``) as the project's formatter writes it; run from the
    project root, so the formatter reads the project's configuration."""
    res = subprocess.run([*command, "--stdin-filename", path, "-"], input=data, cwd=root,
                         capture_output=True)
    if res.returncode != 0:
        said = " ".join(res.stderr.decode("utf-8", "replace").split())[:300]
        raise FormatError(f"{path}: --format: the formatter failed: {said}")
    return res.stdout
