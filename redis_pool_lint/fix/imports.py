"""Imports after a rewrite: drop the ones it left unused, as pyflakes sees them.

The rewrite removes client construction, so an import such as ``from redis.asyncio import Redis``
may lose its last use. pyflakes, which the verifier runs on every rewritten file anyway, says
which imports are unused; the ones unused now but not before the rewrite (or planned for
removal) are dropped. This replaces libcst's ``RemoveImportsVisitor``, whose scope analysis cost
about half of each file's rewrite, with one pyflakes pass and one statement-level walk.

pyflakes names an unused import by its statement's line and its own rendering of the binding
(``redis.asyncio.Redis``, ``redis as r``); the same rendering is computed here for each alias of
the ``ast``, and the ``ast``'s import statements are matched to libcst's in document order.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from typing import Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import libcst as cst
from pyflakes import checker, messages

from .isort import merge_names, name_key, place, sectioner

#: Nodes that can hold statements; everything else (expressions) is never entered.
_STATEMENT_HOLDERS = (cst.Module, cst.BaseCompoundStatement, cst.BaseSuite, cst.SimpleStatementLine,
                      cst.Else, cst.ExceptHandler, cst.ExceptStarHandler, cst.Finally, cst.MatchCase)


class Flakes:
    """One pyflakes run over a module: its messages, and the unused imports among them."""

    def __init__(self, tree: ast.Module, filename: str) -> None:
        found = checker.Checker(tree, filename=filename or "(none)").messages
        self.tree = tree
        # "redefinition of unused 'x' from line 52": the rewrite moves lines, not meaning
        self.messages = Counter(re.sub(r" from line \d+", "", type(m).__name__ + ":" + (m.message % m.message_args))
                                for m in found)
        self.unused: Counter = Counter((m.lineno, m.message_args[0]) for m in found
                                       if isinstance(m, messages.UnusedImport))
        self._statements: Optional[List[Tuple["ast.Import | ast.ImportFrom", Tuple[str, ...]]]] = None

    def statements(self) -> List[Tuple["ast.Import | ast.ImportFrom", Tuple[str, ...]]]:
        """The module's import statements in document order, each with the names of the
        functions and classes it sits in (worked out once, when asked)."""
        if self._statements is None:
            self._statements = []
            stack: List[Tuple[ast.AST, Tuple[str, ...]]] = [(node, ()) for node in reversed(self.tree.body)]
            while stack:
                node, scope = stack.pop()
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self._statements.append((node, scope))
                    continue
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    scope = (*scope, node.name)
                children: List[ast.AST] = []
                for name in ("body", "handlers", "orelse", "finalbody", "cases"):
                    for child in getattr(node, name, None) or ():
                        children.extend([child] if isinstance(child, ast.stmt) else child.body)
                stack.extend((child, scope) for child in reversed(children))
        return self._statements

    def keyed(self) -> Iterator[Tuple["ast.Import | ast.ImportFrom", Tuple[str, ...], List[str], List[Tuple]]]:
        """Each import statement with its scope, its bindings in pyflakes' rendering, and a key
        for each binding: its scope, its name and how many bindings of that name came before it
        in that scope. The rewrite leaves that key alone (it adds imports at the top and moves
        code; it never reorders a scope's imports of one name)."""
        seen: Counter = Counter()
        for stmt, scope in self.statements():
            names = binding_names(stmt)
            keys = []
            for name in names:
                seen[scope, name] += 1
                keys.append((scope, name, seen[scope, name]))
            yield stmt, scope, names, keys

    def bindings(self) -> Dict[Tuple, bool]:
        """Each import binding, by its key (see ``keyed``): is it unused?"""
        return {key: self.unused[(stmt.lineno, name)] > 0
                for stmt, _, names, keys in self.keyed() for name, key in zip(names, keys)}


def _render(full: str, name: str) -> str:
    """pyflakes' rendering of an import binding: ``full``, with `` as name`` if that is not its tail."""
    return full if full.split(".")[-1] == name else f"{full} as {name}"


def binding_names(node: "ast.Import | ast.ImportFrom") -> List[str]:
    """pyflakes' rendering of each name the import statement binds, in order."""
    if isinstance(node, ast.Import):
        return [a.name if "." in a.name and not a.asname else _render(a.name, a.asname or a.name)
                for a in node.names]
    module = "." * node.level + (node.module or "")
    return [_render(module + a.name if module.endswith(".") else f"{module}.{a.name}", a.asname or a.name)
            for a in node.names]


def spec_names(specs: Iterable[Tuple[str, Optional[str], Optional[str]]]) -> Set[str]:
    """The planned removals ``(module, object, asname)`` in pyflakes' rendering."""
    return {_render(module, asname or module.split(".")[-1]) if obj is None
            else _render(f"{module}.{obj}", asname or obj) for module, obj, asname in specs}


class _Collect(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: List[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            self.found.append(node)
            return False
        return isinstance(node, _STATEMENT_HOLDERS)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        pass


class _Drop(cst.CSTTransformer):
    """Remove the aliases at the given indices of the given import statements."""

    def __init__(self, drop: Dict[int, Set[int]]) -> None:
        super().__init__()
        self.drop = drop
        self.removed: Set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        return isinstance(node, _STATEMENT_HOLDERS) and not isinstance(node, (cst.Import, cst.ImportFrom))

    def _names(self, original, updated):
        gone = self.drop.get(id(original))
        if not gone or isinstance(updated.names, cst.ImportStar):
            return updated
        keep = [a for i, a in enumerate(updated.names) if i not in gone]
        if not keep:
            return cst.RemoveFromParent()
        # A trailing comma would now end the statement: fine at the end of a line in
        # parentheses (and the comment after it stays), else it goes.
        comma = keep[-1].comma
        if keep[-1] is not updated.names[-1] and not (
                getattr(updated, "lpar", None) and isinstance(comma, cst.Comma)
                and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)):
            keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=keep)

    def leave_Import(self, original_node, updated_node):
        return self._names(original_node, updated_node)

    def leave_ImportFrom(self, original_node, updated_node):
        return self._names(original_node, updated_node)

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if updated_node.body:
            return updated_node
        self.removed.add(id(original_node))
        return cst.RemoveFromParent()

    def leave_Module(self, original_node, updated_node):
        """A removed import takes its blank line with it: give it to the next statement, so
        import groups stay apart."""
        body, kept, pending, gone = list(updated_node.body), 0, [], False
        for stmt in original_node.body:
            if id(stmt) in self.removed:
                pending = pending or [ln for ln in stmt.leading_lines if ln.comment is None][:1]
                gone = True
                continue
            lines = list(body[kept].leading_lines)
            if kept == 0 and gone:  # the file no longer starts with the import: nor with a blank line
                while lines and lines[0].comment is None:
                    lines.pop(0)
                body[kept] = body[kept].with_changes(leading_lines=lines)
            elif pending and not any(ln.comment is None for ln in lines):
                body[kept] = body[kept].with_changes(leading_lines=[*pending, *lines])
            pending, kept = [], kept + 1
        return updated_node.with_changes(body=body)

    def leave_IndentedBlock(self, original_node, updated_node):
        if not updated_node.body:  # the block held only the import
            return updated_node.with_changes(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
        return updated_node


class ImportMismatch(Exception):
    """libcst's and the ``ast``'s import statements do not line up (never expected)."""


def drop_unused(tree: cst.Module, syntax: ast.Module, filename: str, before: Flakes, planned: Set[str],
                exported: FrozenSet[str] = frozenset()) -> Tuple[cst.Module, Optional[Flakes], Set[str]]:
    """Drop the imports of ``tree`` (whose ``ast`` is ``syntax``) that the change from
    ``before`` left unused, and the ``planned`` ones if unused; but never a module-level
    import of a name in ``exported`` (other modules of the project import it from this one;
    ``*``: one of them star-imports the module).

    Returns the tree; pyflakes' view of it if nothing was dropped (else None: the caller must
    look again); and the unused imports kept because they are exported, in pyflakes' rendering."""
    after = Flakes(syntax, filename)
    kept: Set[str] = set()
    if not after.unused:
        return tree, after, kept
    collect = _Collect()
    tree.visit(collect)
    if len(collect.found) != len(after.statements()):
        raise ImportMismatch(f"{len(collect.found)} import statements in libcst, {len(after.statements())} in the ast")
    was_unused = before.bindings()
    drop: Dict[int, Set[int]] = {}
    for node, (stmt, scope, names, keys) in zip(collect.found, after.keyed()):
        if not isinstance(node.names, Sequence) or len(node.names) != len(names):
            continue  # a star import binds nothing pyflakes calls unused
        for i, (name, key, alias) in enumerate(zip(names, keys, stmt.names)):
            if not after.unused[(stmt.lineno, name)]:
                continue
            if was_unused.get(key, False) and name not in planned:
                continue  # unused before the rewrite: the user's business
            bound = alias.asname or (alias.name if isinstance(stmt, ast.ImportFrom) else alias.name.split(".")[0])
            if not scope and (bound in exported or ("*" in exported and not bound.startswith("_"))):
                kept.add(name)  # removing it would break the module that imports it from here
                continue
            drop.setdefault(id(node), set()).add(i)
    if not drop:
        return tree, after, kept
    return tree.visit(_Drop(drop)), None, kept


def unused_import_message(name: str) -> str:
    """The pyflakes message (as ``Flakes.messages`` counts it) for the unused import ``name``."""
    return "UnusedImport:" + messages.UnusedImport.message % (name,)


ImportSpec = Tuple[str, Optional[str], Optional[str], int]  # (module, object, asname, level)


def _dotted(node: Optional[cst.BaseExpression]) -> str:
    if node is None:
        return ""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return _dotted(node.value) + "." + node.attr.value
    return ""


def _is_preamble(stmt: cst.CSTNode) -> bool:
    """A docstring or a ``__strict__`` flag: imports never go above it."""
    if not isinstance(stmt, cst.SimpleStatementLine) or not stmt.body:
        return False
    first = stmt.body[0]
    if isinstance(first, cst.Expr):
        return isinstance(first.value, cst.SimpleString)
    return (isinstance(first, cst.Assign) and isinstance(first.targets[0].target, cst.Name)
            and first.targets[0].target.value == "__strict__")


def add_imports(module: cst.Module, specs: Sequence[ImportSpec],
                section: Optional[Callable[[str], int]] = None) -> cst.Module:
    """Make sure the module imports each of ``specs``: names a top-level statement already
    imports are skipped, new names from a module the block of imports at the top already
    imports from join that statement, the rest become statements of that block, each in its
    isort section and order (``isort.py``; ``section`` tells a module's section). Only the
    top-level statements are looked at (libcst's ``AddImportsVisitor`` walks the whole tree,
    which made it half the cost of a file's rewrite, and appends at the end of the block)."""
    section = section or sectioner(frozenset())
    body = list(module.body)
    start = 1 if body and _is_preamble(body[0]) else 0
    end = start
    while end < len(body) and isinstance(body[end], cst.SimpleStatementLine) and len(body[end].body) == 1 \
            and isinstance(body[end].body[0], (cst.Import, cst.ImportFrom)):
        end += 1
    have_modules: Set[Tuple[str, Optional[str]]] = set()
    have_names: Dict[str, Set[Tuple[str, Optional[str]]]] = {}
    first_from: Dict[str, int] = {}
    for i, stmt in enumerate(body):  # every top-level import counts as imported already
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for node in stmt.body:
            if isinstance(node, cst.Import):
                have_modules.update((_dotted(a.name), a.evaluated_alias) for a in node.names)
            elif isinstance(node, cst.ImportFrom):
                key = "." * len(node.relative) + _dotted(node.module)
                names = have_names.setdefault(key, set())
                if isinstance(node.names, cst.ImportStar):
                    names.add(("*", None))
                else:
                    names.update((a.evaluated_name, a.evaluated_alias) for a in node.names)
                    if start <= i < end:  # new names join a statement of the top block only
                        first_from.setdefault(key, i)
    plain: List[str] = []
    aliased: Dict[str, str] = {}
    wanted: Dict[str, List[Tuple[str, Optional[str]]]] = {}
    for name, obj, asname, level in dict.fromkeys(specs):
        key = "." * level + name
        if obj is None:
            if (key, asname) not in have_modules:
                (aliased.__setitem__(key, asname) if asname else plain.append(key))
            continue
        have = have_names.get(key, set())
        if ("*", None) in have or (obj, asname) in have:
            continue
        wanted.setdefault(key, [])
        if (obj, asname) not in wanted[key]:
            wanted[key].append((obj, asname))
    for key in [k for k in wanted if k in first_from]:  # join the existing statement
        i = first_from[key]
        extra = [cst.ImportAlias(name=cst.Name(obj), asname=cst.AsName(name=cst.Name(a)) if a else None)
                 for obj, a in wanted.pop(key)]
        body[i] = body[i].with_changes(body=[merge_names(body[i].body[0], extra)])
    if not (plain or aliased or wanted):
        return module.with_changes(body=body)
    config = module.config_for_parsing

    def statement(code: str) -> cst.SimpleStatementLine:
        return cst.parse_statement(code, config=config)

    def from_import(key: str, names: List[Tuple[str, Optional[str]]]) -> cst.SimpleStatementLine:
        names = sorted(names, key=lambda p: name_key(p[0]))
        return statement(f"from {key} import " + ", ".join(o if a is None else f"{o} as {a}" for o, a in names))

    # an aliased name gets a statement of its own, as isort and ruff write them by default
    new = ([statement(f"import {m}") for m in sorted(set(plain))]
           + [statement(f"import {m} as {a}") for m, a in aliased.items()]
           + [from_import(k, [p for p in v if p[1] is None]) for k, v in wanted.items() if any(not a for _, a in v)]
           + [from_import(k, [p]) for k, v in wanted.items() for p in v if p[1] is not None])
    block = place(body[start:end], new, section, _dotted)
    after = body[end:]
    if after:  # at least one blank line between the imports and the code
        lines = after[0].leading_lines
        if not lines or lines[0].comment is not None:
            after[0] = after[0].with_changes(leading_lines=(cst.EmptyLine(), *lines))
    return module.with_changes(body=[*body[:start], *block, *after])
