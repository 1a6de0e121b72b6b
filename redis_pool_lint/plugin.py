"""The flake8 face: report the project's findings for the file flake8 is checking.

flake8 runs every installed plugin on every file, whatever ``--select`` says. So nothing here
runs at import or option time; the project is analysed lazily, once per process, and a tree
with no Redis in it costs one text scan. flake8 applies ``noqa``, select and ignore itself.
"""
from __future__ import annotations

import ast
import os
from typing import Iterator, List, Sequence, Tuple

from . import __version__
from .analysis.load import DEFAULT_EXCLUDE, Settings, project_for
from .rules import DEFAULT_OFF, is_enabled


class Plugin:
    name = "redis-pool-lint"
    version = __version__

    settings = Settings()
    select: Sequence[str] = ()
    extend_select: Sequence[str] = ()
    filenames: Sequence[str] = ()

    def __init__(self, tree: ast.AST, filename: str) -> None:
        self.filename = filename

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
        manager.extend_default_ignore(list(DEFAULT_OFF))

    @classmethod
    def parse_options(cls, options) -> None:
        cls.settings = Settings(
            extra_factories=tuple(options.rpl_client_factories or ()),
            extra_routes=tuple(options.rpl_route_decorators or ()),
            exclude=tuple(options.exclude or ()) + DEFAULT_EXCLUDE,
            extend_exclude=tuple(getattr(options, "extend_exclude", None) or ()),
        )
        cls.select = tuple(options.select or ())
        cls.extend_select = tuple(options.extend_select or ())
        cls.filenames = tuple(getattr(options, "filenames", None) or ())

    def run(self) -> Iterator[Tuple[int, int, str, type]]:
        if self.filename in ("stdin", "-", None):
            return
        result = project_for(self.filename, self.settings, self.filenames)
        findings: List = result.findings.get(os.path.abspath(self.filename), [])
        for f in findings:
            if is_enabled(f.code, self.select, self.extend_select):
                yield f.line, f.col, f.message, type(self)
