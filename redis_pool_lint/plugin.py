"""The flake8 face: report the project's findings for the file flake8 is checking.

flake8 imports and runs every installed plugin on every file, whatever ``--select`` says. So
importing this module loads nothing but the catalogue, options are only stored, and the
project is analysed lazily, once per process; a tree with no Redis in it costs one text scan.
flake8 applies ``noqa``, select and ignore itself.
"""
from __future__ import annotations

import ast
import os
from typing import Any, Iterator, Optional, Sequence, Tuple

from . import __version__
from .rules import DEFAULT_OFF, is_enabled


#: Not a rule: the plugin's one line for a file or project it could not analyse.
UNANALYSED = "RPL000"


class Plugin:
    name = "redis-pool-lint"
    version = __version__

    options: Any = None
    _settings: Any = None

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        self.filename = filename
        self.lines = lines

    @classmethod
    def add_options(cls, manager) -> None:
        manager.add_option(
            "--rpl-route-decorators",
            default="",
            parse_from_config=True,
            comma_separated_list=True,
            help="redis-pool-lint: extra decorators (fnmatch on qualified names, e.g. "
            "'myapp.web.*route') whose functions are route handlers.",
        )
        manager.add_option(
            "--rpl-client-factories",
            default="",
            parse_from_config=True,
            comma_separated_list=True,
            help="redis-pool-lint: extra functions (fnmatch on qualified names, e.g. "
            "'myapp.cache.make_*') that build a new Redis client.",
        )
        manager.add_option(
            "--rpl-redis-version",
            default=None,
            parse_from_config=True,
            help="redis-pool-lint: the redis-py version the project runs (default: read from its "
            "requirements and lock files); RPL203 needs 5.0.1.",
        )
        manager.add_option(
            "--rpl-cache-dir",
            default="",
            parse_from_config=True,
            normalize_paths=True,
            help="redis-pool-lint: where to keep the analysis between runs and worker processes "
            "(default: .redis_pool_lint_cache at the project root).",
        )
        manager.add_option(
            "--rpl-no-cache",
            default=False,
            action="store_true",
            parse_from_config=True,
            help="redis-pool-lint: analyse every time; read and write no cache.",
        )
        manager.extend_default_ignore(list(DEFAULT_OFF))

    @classmethod
    def parse_options(cls, options) -> None:
        cls.options = options
        cls._settings = None

    @classmethod
    def _analysis_settings(cls):
        if cls._settings is None:
            from .analysis.load import DEFAULT_EXCLUDE, Settings

            o = cls.options
            cls._settings = Settings(
                extra_factories=tuple(_opt(o, "rpl_client_factories")),
                extra_routes=tuple(_opt(o, "rpl_route_decorators")),
                exclude=tuple(_opt(o, "exclude")) + DEFAULT_EXCLUDE,
                extend_exclude=tuple(_opt(o, "extend_exclude")),
                redis_version=_stated_version(o),
            )
        return cls._settings

    @classmethod
    def _cache(cls):
        """``build``'s ``cache``: off with ``--rpl-no-cache``, else the folder given, else the default."""
        if getattr(cls.options, "rpl_no_cache", False):
            return False
        return getattr(cls.options, "rpl_cache_dir", "") or True

    def run(self) -> Iterator[Tuple[int, int, str, type]]:
        if self.filename in ("stdin", "-", None):
            return
        from .analysis.load import build, find_root, project_for

        apath = os.path.abspath(self.filename)
        try:
            if _opt(self.options, "filenames") == ("-",):
                # stdin with --stdin-display-name: the code is what flake8 read, in the named file's project
                source = "".join(self.lines).encode("utf-8")
                result = build(find_root(apath, [os.path.dirname(apath)]), self._analysis_settings(), [apath],
                               sources={apath: source})
            else:
                result = project_for(apath, self._analysis_settings(), _opt(self.options, "filenames"),
                                     cache=self._cache())
        except (Exception, RecursionError) as exc:  # a traceback would stop flake8 for every file
            reason = f"{type(exc).__name__}: {exc}"
            yield 1, 0, f"{UNANALYSED} redis-pool-lint could not analyse the project: {reason}", type(self)
            return
        error = result.errors.get(apath)
        if error is not None:  # flake8 parsed it, but the analysis could not (nested too deeply)
            yield 1, 0, f"{UNANALYSED} redis-pool-lint {error.message}", type(self)
        select, extend = _opt(self.options, "select"), _opt(self.options, "extend_select")
        for f in result.findings.get(apath, ()):
            if is_enabled(f.code, select, extend):
                yield f.line, f.col, f.message, type(self)


def _stated_version(options: Optional[Any]) -> Optional[str]:
    """``--rpl-redis-version``; a value that is not a version is ignored (flake8 has no way to
    refuse an option value with one line)."""
    from .analysis.versions import check_stated

    value = getattr(options, "rpl_redis_version", None)
    try:
        return check_stated(value) if value else None
    except ValueError:
        return None


def _opt(options: Optional[Any], name: str) -> Sequence[str]:
    return tuple(getattr(options, name, None) or ()) if options is not None else ()
