"""Options from the project's files, for ``check`` and ``fix`` run on their own.

Two sources, found by walking up from the paths given (each kind: the nearest file that has it):

* ``[tool.redis-pool-lint]`` in ``pyproject.toml``: every option, kebab-case, strict (an unknown
  key or a wrong type is an error, as ruff does);
* the ``[flake8]`` section of ``setup.cfg``, ``tox.ini`` or ``.flake8``: only the options the
  flake8 plugin shares (selection, excludes, ``rpl-*``), so one setting serves both faces. Other
  flake8 options are flake8's business and are skipped; codes of other plugins in ``select`` and
  ``ignore`` are dropped, so ``select = E,F,W`` does not silence ``check``.

Precedence, lowest first: defaults, ``[flake8]``, ``[tool.redis-pool-lint]``, the command line.
``extend-*`` lists add up across all of them; the other options replace.
"""
from __future__ import annotations

import configparser
import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .rules import RULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

PYPROJECT_TABLE = "redis-pool-lint"
FLAKE8_FILES = ("setup.cfg", "tox.ini", ".flake8")
OUTPUT_FORMATS = ("text", "json", "github", "sarif")


class ConfigError(Exception):
    """A configuration file says something we cannot use: one line, exit 2."""


def _split_codes(value: str) -> List[str]:
    return [c.upper() for c in re.split(r"[,\s]+", value) if c]


def _split_patterns(value: str) -> List[str]:
    return [p.strip() for p in re.split(r"[,\n]", value) if p.strip()]


def check_selector(code: str, where: str) -> str:
    """A selector must name one of our codes or a prefix of some ('RPL', 'RPL1', 'RPL101')."""
    code = code.strip().upper()
    if not code or not any(r.code.startswith(code) for r in RULES):
        raise ConfigError(f"{where}: unknown rule selector {code!r}; see 'redis-pool-lint rules'")
    return code


def _ours(code: str) -> bool:
    """A code or prefix of ours, or one of our codes with more digits (a typo worth an error)."""
    return any(r.code.startswith(code) or code.startswith(r.code) for r in RULES)


# name -> kind; kinds: codes, patterns (lists), bool, int, float, str, choice
OPTIONS: Dict[str, str] = {
    "select": "codes",
    "extend-select": "codes",
    "ignore": "codes",
    "extend-ignore": "codes",
    "exclude": "patterns",
    "extend-exclude": "patterns",
    "route-decorators": "patterns",
    "client-factories": "patterns",
    "include-tests": "bool",
    "disable-noqa": "bool",
    "output-format": "choice",
    "unsafe-fixes": "bool",
    "app": "str",
    "max-connections": "int",
    "pool-timeout": "float",
    "redis-version": "version",
    "cache-dir": "str",
    "no-cache": "bool",
}
#: the keys of flake8's section that the plugin reads too, and their names here
FLAKE8_KEYS = {
    "select": "select", "extend-select": "extend-select", "ignore": "ignore",
    "extend-ignore": "extend-ignore", "exclude": "exclude", "extend-exclude": "extend-exclude",
    "rpl-route-decorators": "route-decorators", "rpl-client-factories": "client-factories",
    "rpl-redis-version": "redis-version",
    "rpl-cache-dir": "cache-dir", "rpl-no-cache": "no-cache",
}
#: How an ini file spells a boolean (configparser's words).
INI_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True, "0": False, "no": False, "false": False, "off": False}


@dataclass
class Config:
    """Option values read from files (dest names, underscores), and where they came from."""

    values: Dict[str, Any] = field(default_factory=dict)
    sources: List[str] = field(default_factory=list)


def _check_value(key: str, value: Any, where: str) -> Any:
    kind = OPTIONS[key]
    bad = f"{where}: option {key!r} "
    if kind in ("codes", "patterns"):
        if isinstance(value, str):
            value = _split_codes(value) if kind == "codes" else _split_patterns(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(bad + "must be a list of strings")
        if kind == "codes":
            return [check_selector(v, where) for v in value]
        return list(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(bad + "must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(bad + "must be a positive integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(bad + "must be a positive number")
        return float(value)
    if kind == "version":
        from .analysis.versions import check_stated

        try:
            return check_stated(str(value))
        except ValueError as exc:
            raise ConfigError(f"{bad}: {exc}") from None
    if kind == "choice":
        if value not in OUTPUT_FORMATS:
            raise ConfigError(bad + f"must be one of {', '.join(OUTPUT_FORMATS)}")
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError(bad + "must be a non-empty string")
    return value


def _anchor(values: Dict[str, Any], folder: str) -> Dict[str, Any]:
    """As flake8 does: an exclude pattern with a slash is a path relative to the file's folder."""
    for key in ("exclude", "extend-exclude"):
        if key in values:
            values[key] = [os.path.normpath(os.path.join(folder, p)) if "/" in p else p for p in values[key]]
    if "cache-dir" in values:  # like ruff's: relative to the file that says it
        values["cache-dir"] = os.path.normpath(os.path.join(folder, os.path.expanduser(values["cache-dir"])))
    return values


def read_pyproject(path: str) -> Optional[Dict[str, Any]]:
    """Our table from ``pyproject.toml`` (checked), or None when the file has none."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("tool", {}).get(PYPROJECT_TABLE) if isinstance(data.get("tool"), dict) else None
    if table is None:
        return None
    where = f"{path}: [tool.{PYPROJECT_TABLE}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    out: Dict[str, Any] = {}
    for key, value in table.items():
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, list(OPTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; the options are {', '.join(OPTIONS)}"
            raise ConfigError(f"{where}: unknown option {key!r}{hint}")
        out[key] = _check_value(key, value, where)
    return _anchor(out, os.path.dirname(path))


def read_flake8(path: str) -> Optional[Dict[str, Any]]:
    """The shared options of flake8's section (None when the file has no ``[flake8]``)."""
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: invalid configuration: {first}") from None
    if not parser.has_section("flake8"):
        return None
    where = f"{path}: [flake8]"
    out: Dict[str, Any] = {}
    for raw_key, value in parser.items("flake8"):
        key = FLAKE8_KEYS.get(raw_key.replace("_", "-"))
        if key is None:
            continue  # flake8's own option: not ours to judge
        if OPTIONS[key] == "codes":
            codes = [c for c in _split_codes(value) if _ours(c)]
            if key == "select" and not codes:
                continue  # selects only other plugins' codes: keep our default
            out[key] = [check_selector(c, where) for c in codes]
        elif OPTIONS[key] == "bool":
            out[key] = _check_value(key, INI_BOOLEANS.get(value.strip().lower(), value), where)
        else:
            out[key] = _check_value(key, value, where)
    return _anchor(out, os.path.dirname(path))


def _ancestors(start: str):
    folder = os.path.abspath(start)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def start_folder(paths: Sequence[str]) -> str:
    """Where the search for configuration begins: the deepest folder holding every path."""
    absolute = [os.path.abspath(p) for p in paths if p != "-"] or [os.getcwd()]
    common = os.path.commonpath(absolute)
    return common if os.path.isdir(common) else os.path.dirname(common)


def discover(paths: Sequence[str]) -> Tuple[Optional[str], Optional[str]]:
    """The nearest ``pyproject.toml`` with our table and the nearest flake8 config file."""
    pyproject = flake8 = None
    for folder in _ancestors(start_folder(paths)):
        candidate = os.path.join(folder, "pyproject.toml")
        if pyproject is None and os.path.isfile(candidate) and _has_table(candidate):
            pyproject = candidate
        if flake8 is None:
            for name in FLAKE8_FILES:
                candidate = os.path.join(folder, name)
                if os.path.isfile(candidate) and _has_section(candidate):
                    flake8 = candidate
                    break
        if pyproject and flake8:
            break
    return pyproject, flake8


def _has_table(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError:
        return False
    return b"redis-pool-lint" in text and read_pyproject(path) is not None


def _has_section(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return re.search(rb"^\s*\[flake8\]", fh.read(), re.MULTILINE) is not None
    except OSError:
        return False


def load(paths: Sequence[str], config_file: Optional[str] = None, isolated: bool = False) -> Config:
    """Read the configuration that applies to ``paths`` (nothing at all with ``isolated``)."""
    config = Config()
    if isolated:
        return config
    if config_file is not None:
        if not os.path.isfile(config_file):
            raise ConfigError(f"{config_file}: cannot read: no such file")
        if os.path.basename(config_file).endswith(".toml"):
            layers = [(config_file, read_pyproject(config_file))]
        else:
            layers = [(config_file, read_flake8(config_file))]
    else:
        pyproject, flake8 = discover(paths)
        layers = [(flake8, read_flake8(flake8) if flake8 else None),
                  (pyproject, read_pyproject(pyproject) if pyproject else None)]
    for path, values in layers:
        if values is None:
            continue
        config.sources.append(path)
        for key, value in values.items():
            dest = key.replace("-", "_")
            if key.startswith("extend-") or key in ("route-decorators", "client-factories"):
                config.values[dest] = config.values.get(dest, []) + value
            else:
                config.values[dest] = value
    return config


def apply(args: Any, config: Config, defaults: Dict[str, Any],
          validate: Callable[[str, str], str] = check_selector) -> None:
    """Fill ``args`` (argparse's namespace) from ``config`` under the command line's own values.

    List options given on the command line arrive as lists of lists (``action='append'``)."""
    for dest, value in config.values.items():
        if not hasattr(args, dest):
            continue  # an option of the other command (``app`` for ``check``)
        current = getattr(args, dest)
        if dest.startswith("extend_") or dest in ("route_decorators", "client_factories"):
            setattr(args, dest, [value] + list(current or []))
        elif current is None or current is False:
            setattr(args, dest, value)
    for dest, value in defaults.items():
        if hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, value)
    for dest in ("select", "ignore"):
        if getattr(args, dest, None) is not None:
            setattr(args, dest, [validate(c, "--" + dest) for c in getattr(args, dest)])
    for dest in ("extend_select", "extend_ignore"):
        if getattr(args, dest, None):
            setattr(args, dest, [[validate(c, "--" + dest.replace("_", "-")) for c in group]
                                 for group in getattr(args, dest)])
