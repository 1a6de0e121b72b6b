"""The fix as a libcst codemod command, for ``python -m libcst.tool codemod``:

    python -m libcst.tool codemod redis_pool_lint.fix.codemod.LifespanSingleton PATH -j 1

The command plans the whole project the file belongs to (once per process) and applies that
file's share of the plan. With several workers, one could plan after another has written a
file of the same project, hence ``-j 1``. ``redis-pool-lint fix`` is the safer path: it plans
once, parallelises the per-file work itself, and verifies the rewritten project before writing.
"""
from __future__ import annotations

import argparse
import os
from typing import Dict, Tuple

import libcst as cst
from libcst.codemod import CodemodContext, SkipFile, VisitorBasedCodemodCommand

from ..analysis.load import Settings, build, find_root
from .apply import decode
from .plan import Options, Plan, make_plan
from .style import project_style
from .transform import apply_edits

_PLANS: Dict[Tuple[str, int, float, bool], Plan] = {}


class LifespanSingleton(VisitorBasedCodemodCommand):
    DESCRIPTION = "Build Redis clients once in the app's lifespan instead of per request."

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--max-connections", dest="max_connections", type=int, default=50)
        arg_parser.add_argument("--pool-timeout", dest="pool_timeout", type=float, default=10.0)
        arg_parser.add_argument("--unsafe-fixes", dest="unsafe", action="store_true")

    def __init__(self, context: CodemodContext, max_connections: int = 50, pool_timeout: float = 10.0,
                 unsafe: bool = False) -> None:
        super().__init__(context)
        self.key_options = (max_connections, pool_timeout, unsafe)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        filename = self.context.filename
        if not filename:
            raise SkipFile("no filename")
        path = os.path.abspath(filename)
        root = find_root(path)
        key = (root, *self.key_options)
        plan = _PLANS.get(key)
        if plan is None:
            result = build(root, Settings())
            texts = {}
            for p in result.findings:
                with open(p, "rb") as fh:
                    texts[p] = decode(fh.read()).text
            max_connections, pool_timeout, unsafe = self.key_options
            plan = _PLANS[key] = make_plan(result, Options(unsafe=unsafe, max_connections=max_connections,
                                                           pool_timeout=pool_timeout), texts)
        edits = plan.edits.get(path)
        if edits is None:
            raise SkipFile("nothing to change")
        return cst.parse_module(apply_edits(tree.code, edits, path, style=project_style(root))[0])
