"""Run the fix over a project: plan, transform, verify everything, then write atomically.

Nothing is written unless the whole project's rewrite passes: every changed file parses, the
re-analysed project has the fixed findings gone and no new ones, pyflakes reports nothing new
in the changed files, and a second planning pass finds nothing more to do. Then ``write.py``
writes the project's files all together or not at all.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
import queue
import re
import signal
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple

from ..analysis.index import ModuleNames
from ..analysis.load import (ProjectResult, Settings, build, imported_names, is_test_file, module_name,
                              packages_of, read_source)
from ..parallel import pmap, reporter
from .plan import FileEdits, Options, Plan, make_plan
from .imports import Flakes, unused_import_message
from .patch import project_patch
from .style import FormatError, Style, format_source, formatter_command, injected, project_style
from .tests import rewrite_tests
from .transform import apply_edits
from .write import commit, project_lock

BOM = b"\xef\xbb\xbf"


@dataclass
class Decoded:
    text: str
    encoding: str
    bom: bool


@dataclass
class Outcome:
    root: str
    plan: Plan
    new: Dict[str, bytes] = field(default_factory=dict)
    old: Dict[str, bytes] = field(default_factory=dict)
    error: Optional[str] = None
    #: files that could not be read, parsed or written: (path, one-line reason)
    problems: List[Tuple[str, str]] = field(default_factory=list)
    #: test code left skipping the lifespan the fix relies on: (path, line, the change to make)
    notes: List[Tuple[str, int, str]] = field(default_factory=list)

    def diff(self, display) -> bytes:
        """The changes as one patch, files in path order, each named as ``display`` shows it."""
        return project_patch((display(path), self.old[path], self.new[path]) for path in sorted(self.new))


def _encoding(data: bytes) -> str:
    import tokenize
    import io

    try:
        return tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError:
        return "utf-8"


def decode(data: bytes) -> Decoded:
    encoding = _encoding(data)
    bom = data.startswith(BOM)
    body = data[len(BOM):] if bom else data
    enc = "utf-8" if encoding == "utf-8-sig" else encoding
    return Decoded(body.decode(enc), enc, bom)


def encode(text: str, original: Decoded) -> bytes:
    data = text.encode(original.encoding)
    return BOM + data if original.bom else data


def fix_project(root: str, settings: Settings, options: Options, files: Optional[List[str]] = None,
                write: bool = False, sources: Optional[Dict[str, bytes]] = None, jobs: int = 1,
                progress=None, format: bool = False) -> Outcome:
    """Plan and verify the fix of one project; with ``write``, also write it (all files or none),
    holding the project's lock from the first read to the last rename.

    ``sources`` stands in for files' contents on disk (``fix -``); ``jobs`` spreads the per-file
    steps over processes; ``progress(stage, done, total)`` hears about them; ``format`` hands
    each changed file to the formatter the project configures, before it is verified."""
    with project_lock(root) if write else contextlib.nullcontext():
        outcome = _fix(root, settings, options, files or [], sources or {}, jobs, progress, format)
        if write and outcome.new and not outcome.error:
            order = sorted(outcome.new, key=lambda p: (*_write_rank(outcome.plan.edits.get(p)), p))
            outcome.problems = commit(root, {p: outcome.new[p] for p in order}, outcome.old)
            if outcome.problems:
                outcome.error = f"{root}: not fixed: the project cannot be written safely; nothing written"
                outcome.new = {}
    return outcome


def _write_rank(edits: Optional[FileEdits]) -> Tuple[int, int]:
    """Where a file goes in the order of the renames, so that a run stopped between two of them
    by SIGKILL leaves a project that runs (and that the next run finishes):

    0. helpers that only gain an optional ``request`` and a guarded use of the shared client:
       until a caller passes the request they build their own client, as before;
    1. the module that builds the shared client (the lifespan);
    2. the rest: request code that reads the shared client, and callers that pass ``request=``
       to a helper that accepts it by now.

    Within a group, files that add a parameter go before those that pass one. A helper that
    reads the shared client itself and whose caller builds it (a cycle) cannot be ordered: a
    SIGKILL between those two renames leaves calls that fail until the next run finishes."""
    if edits is None:
        return 2, 1
    within = 0 if edits.add_params and not edits.add_kwargs else 1
    if edits.app_call or edits.new_lifespan or edits.merge_lifespan:
        return 1, within
    unconditional = (edits.replace_calls or edits.unwrap_withs or edits.add_kwargs or edits.state_keys
                     or edits.guard_factories or not set(edits.add_params) <= edits.passed_by_callers)
    return (0 if edits.add_params and not unconditional else 2), within


def _rewrite(_: None, item: "Tuple[str, str, FileEdits, FrozenSet[str], Style]"
             ) -> "Tuple[Optional[str], Optional[str], Counter, Optional[str]]":
    """One file's transform (a worker step): the new text, or why libcst refused; the pyflakes
    warnings the rewrite adds; what ``compile`` says of the new text (None: it compiles)."""
    path, text, edits, exported, style = item
    try:
        new, added = rewrite(text, edits, path, exported, style)
        problem = compile_error(new) if new != text else None
    except Exception as exc:  # libcst refuses an edit (or compile gives up): report, change nothing
        return None, f"{path}: the rewrite failed ({_reason(exc)}); nothing written", Counter(), None
    return new, None, added, problem


def planned_paths(result) -> List[str]:
    """The files a plan may edit: those with findings, the modules of the functions that
    build what they report (a factory is reported at its callers, and rewritten where it is),
    and those of the lifespans and startup handlers whose clients requests may reuse."""
    paths = dict.fromkeys(result.findings)
    functions = result.project.functions if result.project is not None else {}
    if paths and result.project is not None:
        starts = [q for kind, q, _, _ in result.project.startups if kind.startswith("startup")]
        for qual in [*result.project.lifespans, *starts]:
            if qual in functions:
                paths.setdefault(functions[qual][0].path)
    for findings in result.findings.values():
        for f in findings:
            if f.function in functions:
                paths.setdefault(functions[f.function][0].path)
                if f.role == "helper":  # a helper that uses its client: its callers pass the request
                    for qual, _, _ in result.project.callers_in_scope().get(f.function, ()):
                        paths.setdefault(functions[qual][0].path)
    return list(paths)


def _fix(root: str, settings: Settings, options: Options, files: List[str], sources: Dict[str, bytes],
         jobs: int, progress, format: bool = False) -> Outcome:
    result = build(root, settings, files, sources=sources, jobs=jobs, progress=progress, dedupe_links=True,
                   keep_sources=True)
    old: Dict[str, bytes] = {}
    texts: Dict[str, str] = {}
    decoded: Dict[str, Decoded] = {}

    def load(path: str) -> None:
        if path in result.sources:
            old[path] = result.sources[path]
        else:
            old[path] = sources[path] if path in sources else read_source(path)
        decoded[path] = decode(old[path])
        texts[path] = decoded[path].text

    for path in planned_paths(result):
        load(path)
    plan = make_plan(result, options, texts)
    outcome = Outcome(root, plan)
    outcome.problems = sorted((path, e.message) for path, e in result.errors.items())
    if not plan.edits:
        return outcome
    if outcome.problems:  # the analysis missed part of the project: its plan cannot be trusted
        outcome.error = (f"{root}: not fixed: {len(outcome.problems)} file(s) of the project could not "
                         "be analysed; nothing written")
        return outcome
    for path in plan.edits:
        if path not in old:
            load(path)
    exported = exported_names(result, plan.edits)
    style = dataclasses.replace(project_style(root), dependencies=injected(result.sources.values()))
    work = [(path, texts[path], edits, exported.get(path, frozenset()), style) for path, edits in plan.edits.items()]
    new: Dict[str, bytes] = {}
    flakes: Dict[str, Counter] = {}
    compiled: Dict[str, Optional[str]] = {}
    rewritten = pmap(_rewrite, work, jobs, None, reporter(progress, "rewriting", len(work)))
    for (path, *_), (text, error, added, problem) in zip(work, rewritten):
        if error is not None:
            outcome.error = error
            return outcome
        if text != texts[path]:
            new[path] = encode(text, decoded[path])
            flakes[path], compiled[path] = added, problem
    if _relies_on_lifespan(plan):
        for path in test_files(result):
            if path not in plan.edits:
                load(path)
                _rewrite_tests(outcome, path, texts[path], decoded[path], style, new, flakes, write=not sources,
                               state=any(e.state_keys for e in plan.edits.values()))
    outcome.old, outcome.new = old, new
    if format and new:
        try:
            command = formatter_command(style, root)
            for path in new:
                new[path] = format_source(command, root, path, new[path])
                compiled[path] = compile_error(new[path])
        except FormatError as exc:
            outcome.error, outcome.new = str(exc), {}
            return outcome
    try:
        outcome.error = verify(root, settings, options, result, plan, old, new, files, sources, jobs, progress,
                               flakes, compiled)
    except RecursionError:
        outcome.error = f"{root}: the rewritten code is nested too deeply to verify; nothing written"
    return outcome


def _relies_on_lifespan(plan: Plan) -> bool:
    """Does the rewrite make request code read what the lifespan sets?"""
    return any(e.replace_calls or e.unwrap_withs or e.guard_factories or e.new_lifespan or e.merge_lifespan
               for e in plan.edits.values())


def test_files(result: ProjectResult) -> List[str]:
    """The project's test modules, whether the analysis left them out (the default) or not."""
    analysed = [p for p in result.summaries if is_test_file(os.path.relpath(p, result.root))]
    return sorted({*result.tests, *analysed})


def _rewrite_tests(outcome: Outcome, path: str, text: str, original: Decoded, style: Style,
                   new: Dict[str, bytes], flakes: Dict[str, Counter], write: bool, state: bool) -> None:
    """Rewrite one test module so it runs the lifespan (``tests.py``), or note where it does not;
    from stdin (``write`` false), only the notes."""
    try:
        done = LIBCST_THREAD.run(lambda: rewrite_tests(text, style, state=state))
        syntax = ast.parse(done.text, path) if done.text != text else None
    except Exception as exc:  # libcst refuses it: the test module stays as it is, and we say so
        outcome.notes.append((path, 1, f"not rewritten to run the lifespan ({_reason(exc)})"))
        return
    if syntax is not None and write:
        new[path] = encode(done.text, original)
        flakes[path] = Flakes(syntax, path).messages - Flakes(ast.parse(text, path), path).messages
    outcome.notes.extend((path, line, message) for line, message in done.notes)


#: Deepest module handed to libcst, counted as libcst nests (``a and b and c`` is a chain of
#: nodes there, one node in the ``ast``). Its native parser recurses on the C stack and a deep
#: enough module crashes the process (SIGSEGV) instead of raising: it runs on its own thread
#: with a large stack, and deeper modules are not rewritten at all.
MAX_CST_DEPTH = 1000
CST_STACK_BYTES = 256 * 1024 * 1024


class TooDeep(Exception):
    pass


def cst_depth(tree: ast.AST) -> int:
    best = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        best = max(best, depth)
        step = len(node.values) - 1 if isinstance(node, ast.BoolOp) else 1
        stack.extend((child, depth + max(step, 1)) for child in ast.iter_child_nodes(node))
    return best


def exported_names(result: ProjectResult, targets) -> Dict[str, FrozenSet[str]]:
    """For each module in ``targets``: the names other modules of the project (tests included)
    take from it, whose imports must stay even if the rewrite leaves them unused here:
    ``from app.deps import Redis``, ``deps.Redis`` after ``from app import deps``, and ``*``
    for a star import (every public name)."""
    modules = {p: entry[0] for p, entry in result.links.items()}
    wanted = {modules[p][0]: p for p in targets if p in modules}
    if not wanted:
        return {}
    names = ModuleNames({name for name, _ in modules.values()}, packages_of(modules))
    importers = [(p, entry[0][0], entry[1]) for p, entry in result.links.items()]
    for path in result.tests:  # left out of the analysis, but they import from it all the same
        try:
            data = read_source(path)
        except OSError:
            continue
        name = module_name(result.root, path)
        importers.append((path, name[0], imported_names(data, *name)))
    out: Dict[str, set] = {}
    for path, near, found in importers:
        for entry in found:
            if "@" in entry:
                module, _, alias = entry.partition("@")
                attr = ""
            elif entry.endswith(".*"):
                module, attr, alias = entry[:-2], "*", ""
            else:
                module, _, attr = entry.rpartition(".")
                alias = ""
            target = wanted.get(module) or wanted.get(names.find(module, near) or "")
            if target is None or target == path:
                continue
            if alias:  # the module itself is bound here: which of its names are read through it?
                out.setdefault(target, set()).update(_attributes(result, path, alias))
            else:
                out.setdefault(target, set()).add(attr)
    return {p: frozenset(found) for p, found in out.items()}


def _attributes(result: ProjectResult, path: str, alias: str) -> List[str]:
    """The names read as ``alias.name`` in the file at ``path``."""
    try:
        data = result.sources[path] if path in result.sources else read_source(path)
    except OSError:
        return ["*"]  # cannot tell: keep everything
    pattern = rb"(?<![\w.])" + re.escape(alias.encode()) + rb"\s*\.\s*([A-Za-z_]\w*)"
    return sorted({m.decode("ascii", "replace") for m in re.findall(pattern, data)})


def rewrite(text: str, edits: FileEdits, path: str, exported: FrozenSet[str] = frozenset(),
            style: Style = Style()) -> "Tuple[str, Counter]":
    """``apply_edits`` guarded against modules libcst cannot survive: the new text, and the
    pyflakes warnings it adds (an unused import kept because ``exported`` names it is not one)."""
    syntax = ast.parse(text, path)
    depth = cst_depth(syntax)
    if depth > MAX_CST_DEPTH:
        raise TooDeep(f"nested too deeply to rewrite safely (depth {depth})")

    def run() -> "Tuple[str, Counter]":
        before = Flakes(syntax, path)
        new, after, kept = apply_edits(text, edits, path, syntax, before, exported, style)
        added = after.messages - before.messages
        for name in kept:
            added.pop(unused_import_message(name), None)
        return new, added

    return LIBCST_THREAD.run(run)


class _BigStack:
    """One long-lived thread with a large stack that runs this process's libcst work (a
    thread per file cost more than some rewrites); the caller waits for each result."""

    def __init__(self) -> None:
        self.pid: Optional[int] = None
        self.tasks: "Optional[queue.SimpleQueue]" = None

    def run(self, fn):
        if self.pid != os.getpid():  # first use, or a forked worker: the parent's thread is not here
            self.tasks, self.pid = self._start(), os.getpid()
        if self.tasks is None:  # no thread with a large stack here
            return fn()
        done: queue.SimpleQueue = queue.SimpleQueue()
        self.tasks.put((fn, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    @staticmethod
    def _start() -> "Optional[queue.SimpleQueue]":
        tasks: queue.SimpleQueue = queue.SimpleQueue()

        def serve() -> None:
            while True:
                fn, done = tasks.get()
                try:
                    done.put((True, fn()))
                except BaseException as exc:  # handed to the caller's thread
                    done.put((False, exc))

        previous = threading.stack_size()
        # Born with Ctrl-C blocked (a thread inherits its creator's mask): the kernel then hands
        # SIGINT to the main thread, which answers it, and never to this one, which would be
        # killed by it once the interpreter has put the default action back while shutting down.
        masked = hasattr(signal, "pthread_sigmask")
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if masked else None
        try:
            threading.stack_size(CST_STACK_BYTES)
            threading.Thread(target=serve, name="redis-pool-lint-libcst", daemon=True).start()
        except (ValueError, RuntimeError, MemoryError):
            return None
        finally:
            threading.stack_size(previous)
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return tasks


LIBCST_THREAD = _BigStack()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TooDeep):
        return str(exc)
    if isinstance(exc, (RecursionError, MemoryError)):
        return f"nested too deeply to rewrite ({type(exc).__name__})"
    return one_line(f"{type(exc).__name__}: {exc}")


def one_line(text: str, limit: int = 300) -> str:
    """Messages are one line each: libcst's parser errors span several, with a caret."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def compile_error(data: "bytes | str") -> Optional[str]:
    """What ``compile`` says beyond the parser (a duplicate argument, a late ``global``), if anything."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(data, "<rewrite>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return one_line(getattr(exc, "msg", None) or str(exc))
    return None


def verify(root, settings, options, before: ProjectResult, plan: Plan, old, new, files,
           sources: Optional[Dict[str, bytes]] = None, jobs: int = 1, progress=None,
           flakes: Optional[Dict[str, Counter]] = None,
           compiled: Optional[Dict[str, Optional[str]]] = None) -> Optional[str]:
    """None if the rewrite ``new`` of ``old`` is sound, else why not. ``flakes`` and ``compiled``:
    the pyflakes warnings each rewrite added and what ``compile`` said of it, as the rewriting
    step saw them (worked out here when not given)."""
    verifying = (lambda stage, done, total: progress("verifying", done, total)) if progress else None
    after = build(root, settings, files, sources={**(sources or {}), **before.sources, **new}, jobs=jobs,
                  progress=verifying, dedupe_links=True, keep_sources=True, reuse=before)
    for path in new:
        if path in after.errors:
            return f"{path}: the rewritten file does not parse ({after.errors[path].message})"
        problem = compiled[path] if compiled and path in compiled else compile_error(new[path])
        if problem and not compile_error(old[path]):  # the ast accepts what the compiler refuses
            return f"{path}: the rewritten file does not compile ({problem}); nothing written"
    counts_before = Counter((f.path, f.code) for fs in before.findings.values() for f in fs)
    counts_after = Counter((f.path, f.code) for fs in after.findings.values() for f in fs)
    fixed = Counter((f.path, f.code) for f in plan.fixed)
    for key, n in counts_after.items():
        if n > counts_before[key] - fixed[key]:
            return f"{key[0]}: after the rewrite {key[1]} is still reported (or new); nothing written"
    for path in sorted(new):
        added = (flakes or {}).get(path) or Counter()
        if added:
            return f"{path}: the rewrite would add pyflakes warnings ({', '.join(sorted(added))}); nothing written"
    texts = {p: decode(d).text for p, d in new.items()}
    for path in planned_paths(after):
        if path not in texts:
            texts[path] = decode(after.sources[path] if path in after.sources else read_source(path)).text
    again = make_plan(after, options, texts)
    if again.edits:
        return "a second run would change more (" + ", ".join(sorted(again.edits)) + "); nothing written"
    return None
