"""``redis-pool-lint``: the command-line face (``check``, ``fix``, ``rules``, ``rule``)."""
from __future__ import annotations

import argparse
from dataclasses import replace
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from . import __version__, config
from .analysis.cache import CacheDirError, check_dir
from .analysis.load import (DEFAULT_EXCLUDE, Settings, build, find_root, is_test_file, iter_python_files,
                            looks_like_python)
from .config import OUTPUT_FORMATS
from .filters import Selection, noqa_filter, split_codes
from .rules import BY_CODE, RULES

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit 2."""


class ArgumentError(UsageError):
    """What argparse refused: the line ends with what to do instead (``next_step``)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise ArgumentError(message)


def _csv(value: str) -> List[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", default=None,
                   help="files and folders (default: .); '-' reads one file from stdin")
    p.add_argument("--select", type=_csv, default=None, metavar="CODES",
                   help="report only these codes or prefixes (default: RPL, without off-by-default codes)")
    p.add_argument("--extend-select", type=_csv, action="append", default=[], metavar="CODES",
                   help="add codes, e.g. RPL107,RPL204 (off by default)")
    p.add_argument("--ignore", type=_csv, default=None, metavar="CODES")
    p.add_argument("--extend-ignore", type=_csv, action="append", default=[], metavar="CODES")
    p.add_argument("--exclude", type=_csv, default=None, metavar="PATTERNS",
                   help="folders and files to skip (replaces the defaults)")
    p.add_argument("--extend-exclude", type=_csv, action="append", default=[], metavar="PATTERNS")
    p.add_argument("--route-decorators", type=_csv, action="append", default=[], metavar="PATTERNS",
                   help="extra route decorators (fnmatch on qualified names)")
    p.add_argument("--client-factories", type=_csv, action="append", default=[], metavar="PATTERNS",
                   help="extra functions that build a Redis client (fnmatch on qualified names)")
    p.add_argument("--redis-version", type=_version, default=None, metavar="X.Y.Z",
                   help="the redis-py the project runs (default: read from its requirements and lock files)")
    p.add_argument("--include-tests", action="store_true", default=None, help="analyse test files too")
    p.add_argument("--disable-noqa", action="store_true", default=None,
                   help="report findings on # noqa lines too")
    p.add_argument("--stdin-filename", metavar="PATH",
                   help="with '-': the path the code on stdin has in the project")
    p.add_argument("--config", metavar="PATH",
                   help="read options from this file only (pyproject.toml, setup.cfg, tox.ini, .flake8)")
    p.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings remain")
    p.add_argument("--show-fixes", action="store_true",
                   help="check: mark fixable findings ([*] safe, [-] unsafe); fix: list what was fixed")
    p.add_argument("--jobs", "-j", type=_jobs, default=None, metavar="N",
                   help="worker processes (default: the number of cores; 1 runs in this process)")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("--quiet", "-q", action="store_true",
                      help="print findings and errors only: no warnings, summaries or progress")
    talk.add_argument("--verbose", "-v", action="store_true",
                      help="also say which configuration was read, what each project holds and how long it took")


def _version(value: str) -> str:
    from .analysis.versions import check_stated

    try:
        return check_stated(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


DESCRIPTION = "Find and fix Redis clients built per request in FastAPI/Starlette apps."
EXAMPLES = """\
examples:
  redis-pool-lint check .          report them (flake8's format); exit 1 when there are any
  redis-pool-lint fix --diff .     show the rewrite into one lifespan client, write nothing
  redis-pool-lint fix .            rewrite in place
  redis-pool-lint rule RPL101      explain a rule

'redis-pool-lint COMMAND --help' lists a command's options."""


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="redis-pool-lint", description=DESCRIPTION, epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"redis-pool-lint {__version__}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)
    check = sub.add_parser(
        "check", help="report Redis clients built per request",
        description="Report Redis clients built per request, one flake8-style line each.",
        epilog="exit codes: 0 no findings; 1 findings; 2 error (bad input, unreadable or unparsable files)")
    _add_common(check)
    check.add_argument("--output-format", choices=OUTPUT_FORMATS, default=None,
                       help="text (flake8's, the default), json, github (workflow annotations), sarif")
    check.add_argument("--output-file", metavar="PATH", help="write the report here instead of stdout")
    check.add_argument("--statistics", action="store_true", help="count the findings per code")
    check.add_argument("--cache-dir", metavar="PATH",
                       help="keep the analysis here between runs (default: .redis_pool_lint_cache at the project root)")
    check.add_argument("--no-cache", action="store_true", default=None, help="analyse every time; read and write no cache")
    fix = sub.add_parser(
        "fix", help="rewrite per-request clients into one lifespan client",
        description="Rewrite per-request Redis clients into one client built in the app's lifespan, "
        "verified before anything is written.",
        epilog="exit codes: 0 nothing left to fix; 1 files changed (or, with --diff, would be) or "
        "findings remain, as pre-commit fixers do; 2 error")
    _add_common(fix)
    fix.add_argument("--diff", action="store_true", help="print a unified diff, write nothing")
    fix.add_argument("--format", action="store_true",
                     help="hand the changed files to the project's formatter (ruff format or black)")
    fix.add_argument("--unsafe-fixes", action="store_true", default=None,
                     help="also apply fixes marked unsafe")
    fix.add_argument("--app", metavar="MODULE:ATTR", help="the app that gets the lifespan (uvicorn's notation)")
    fix.add_argument("--max-connections", type=int, default=None, metavar="N",
                     help="bound of the shared blocking pool (default 50)")
    fix.add_argument("--pool-timeout", type=float, default=None, metavar="SECONDS",
                     help="how long a request waits for a free connection (default 10)")
    sub.add_parser("rules", help="list the rule catalogue")
    rule = sub.add_parser("rule", help="show one rule's documentation")
    rule.add_argument("code")
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser


DEFAULTS = {"max_connections": 50, "pool_timeout": 10.0, "output_format": "text",
            "include_tests": False, "disable_noqa": False, "unsafe_fixes": False}


def configure(args: argparse.Namespace) -> None:
    """Fold the configuration files under the command line, and check what came of it."""
    if not args.paths:
        args.paths = ["."]
    if "-" in args.paths and args.paths != ["-"]:
        raise UsageError("'-' (stdin) cannot be combined with other paths")
    if args.stdin_filename and args.paths != ["-"]:
        raise UsageError("--stdin-filename needs '-' as the path")
    where = [args.stdin_filename or "."] if args.paths == ["-"] else args.paths
    try:
        loaded = config.load(where, args.config, args.isolated)
        config.apply(args, loaded, DEFAULTS)
    except config.ConfigError as exc:
        raise UsageError(str(exc)) from None
    args.config_sources = loaded.sources
    if getattr(args, "cache_dir", None) and not getattr(args, "no_cache", None):
        try:
            args.cache_dir = check_dir(args.cache_dir)
        except CacheDirError as exc:
            raise UsageError(str(exc)) from None
    if args.jobs is None:
        args.jobs = os.cpu_count() or 1


class Talk:
    """What goes to stderr besides findings and errors: warnings and summaries (none with
    ``-q``), and what was read and how long it took (only with ``-v``)."""

    def __init__(self, args: argparse.Namespace, err) -> None:
        self.err, self.quiet, self.verbose = err, args.quiet, args.verbose
        self.started = time.monotonic()
        self.files = self.projects = 0

    def project(self, root: str, files: int, started: float, detail: str = "") -> None:
        self.files += files
        self.projects += 1
        self.debug(f"{root}: {files} file(s){detail}, {self.seconds(started)}")

    def done(self, verb: str, args: argparse.Namespace) -> None:
        self.debug(f"{verb} {self.files} file(s) in {self.projects} project(s), {args.jobs} job(s), "
                   f"{self.seconds()}")

    def say(self, text: str) -> None:
        if not self.quiet:
            self.err.write(f"redis-pool-lint: {text}\n")

    def warn(self, text: str) -> None:
        self.say(f"warning: {text}")

    def debug(self, text: str) -> None:
        if self.verbose:
            self.err.write(f"redis-pool-lint: {text}\n")

    def seconds(self, since: Optional[float] = None) -> str:
        return f"{time.monotonic() - (self.started if since is None else since):.2f} s"

    def configuration(self, args: argparse.Namespace) -> None:
        if args.isolated:
            self.debug("configuration: none read (--isolated)")
        elif args.config_sources:
            self.debug(f"configuration: {', '.join(args.config_sources)}")
        else:
            self.debug("configuration: no file found (pyproject.toml with [tool.redis-pool-lint], "
                       "or setup.cfg, tox.ini, .flake8 with [flake8])")

    def found_nothing(self) -> None:
        self.warn("No Python files found under the given path(s)")

    def not_analysed(self, count: int) -> None:
        """After the one-line errors: what to do about them."""
        if count:
            it = "it" if count == 1 else "them"
            self.say(f"{count} file{'s' if count != 1 else ''} could not be analysed (see above): "
                     f"fix {it}, or leave {it} out with --extend-exclude PATH")


def _flat(groups: Sequence[Sequence[str]]) -> List[str]:
    return [item for group in groups for item in group]


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        extra_factories=tuple(_flat(args.client_factories)),
        extra_routes=tuple(_flat(args.route_decorators)),
        exclude=tuple(args.exclude) if args.exclude is not None else DEFAULT_EXCLUDE,
        extend_exclude=tuple(_flat(args.extend_exclude)),
        include_tests=args.include_tests,
        redis_version=args.redis_version,
    )


def selection_from(args: argparse.Namespace) -> Selection:
    return Selection(
        select=split_codes(args.select) if args.select is not None else None,
        extend_select=split_codes(_flat(args.extend_select)),
        ignore=split_codes(args.ignore) if args.ignore is not None else None,
        extend_ignore=split_codes(_flat(args.extend_ignore)),
    )


class Shown:
    """Absolute path -> the path as flake8 shows it (joined onto the argument the user gave),
    worked out when first asked: most files of a large tree are never shown."""

    def __init__(self) -> None:
        self._arg: Dict[str, str] = {}
        self._shown: Dict[str, str] = {}
        self._bases: Dict[str, "tuple[bool, str, str]"] = {}

    def add(self, path: str, arg: str) -> None:
        self._arg.setdefault(path, arg)
        if arg not in self._bases:
            base = arg if os.path.isdir(arg) else os.path.dirname(arg)
            self._bases[arg] = (os.path.isfile(arg), base, os.path.abspath(base))

    def __contains__(self, path: object) -> bool:
        return path in self._arg

    def __iter__(self):
        return iter(self._arg)

    def __len__(self) -> int:
        return len(self._arg)

    def __getitem__(self, path: str) -> str:
        shown = self._shown.get(path)
        if shown is None:
            arg = self._arg[path]
            is_file, base, absolute = self._bases[arg]
            shown = self._shown[path] = arg if is_file else os.path.join(base, os.path.relpath(path, absolute))
        return shown


def collect(paths: Sequence[str], settings: Settings, err,
            reported: Optional[set] = None) -> "tuple[Shown, Dict[str, List[str]], int]":
    """The Python files the user named (absolute path -> path as shown), grouped by project root;
    the folders it could not read and said so go to ``reported``."""
    targets = Shown()
    status = EXIT_CLEAN
    for arg in paths:
        if not os.path.exists(arg):
            err.write(f"{arg}: cannot read: no such file or directory\n")
            status = EXIT_ERROR
            continue
        if os.path.isdir(arg) and not os.access(arg, os.R_OK | os.X_OK):
            err.write(f"{arg}: cannot read: permission denied\n")
            status = EXIT_ERROR
            continue
        if not os.path.isdir(arg) and not looks_like_python(arg):
            err.write(f"{arg}: skipped: not a Python file (no .py suffix or python #! line)\n")
            status = EXIT_ERROR
            continue
        unreadable: List["tuple[str, str]"] = []
        # Walked from its absolute path: exclude patterns with a slash are absolute (anchored
        # at the current folder or the configuration file's, as flake8's), and must meet one.
        top = os.path.abspath(arg)
        found = iter_python_files(top, settings, unreadable=unreadable) if os.path.isdir(arg) else [top]
        for path in found:
            targets.add(path, arg)
        for folder, reason in unreadable:
            below = os.path.relpath(folder, top)
            folder = arg if below == "." else os.path.join(arg, below)
            err.write(f"{folder}: cannot read: {reason}\n")
            status = EXIT_ERROR
            if reported is not None:
                reported.add(os.path.abspath(folder))
    roots: Dict[str, List[str]] = {}
    for path in targets:
        roots.setdefault(find_root(path, paths), []).append(path)
    return targets, roots, status


def _stdin_target(args: argparse.Namespace) -> "tuple[str, str, bytes]":
    """The path the stdin code stands for (absolute, shown) and its bytes."""
    data = sys.stdin.buffer.read()
    shown = args.stdin_filename or "-"
    path = os.path.abspath(args.stdin_filename or "stdin.py")
    return path, shown, data


def analyse(args: argparse.Namespace, settings: Settings, err,
            talk: Optional[Talk] = None) -> "tuple[list, list, int]":
    """Findings wanted by the selection, as (shown path, finding), and (shown, error) pairs."""
    talk = talk or Talk(argparse.Namespace(quiet=True, verbose=False), err)
    selection = selection_from(args)
    found: list = []
    errors: list = []
    if args.paths == ["-"]:
        path, shown, data = _stdin_target(args)
        targets = {path: shown}
        roots = {find_root(path, [os.path.dirname(path)]): [path]}
        sources = {path: data}
        status = EXIT_CLEAN
    else:
        targets, roots, status = collect(args.paths, settings, err)
        sources = {}
        if not targets and status == EXIT_CLEAN:
            talk.found_nothing()
    cache = False if sources or getattr(args, "no_cache", None) else (getattr(args, "cache_dir", None) or True)
    for root in sorted(roots):
        wanted = roots[root]
        started = time.monotonic()
        result = build(root, settings, wanted, sources=sources, jobs=args.jobs, cache=cache)
        talk.project(root, len(wanted), started,
                     f" to check ({len(result.files)} in the project, {result.parsed} parsed"
                     f"{', from the cache' if result.cached else ''})")
        # Only files with something to say are looked at (and their shown path worked out).
        named = set(wanted)
        speaking = [p for p in {**result.errors, **result.findings} if p in named]
        for path in sorted(speaking, key=lambda p: targets[p]):
            shown = targets[path]
            error = result.errors.get(path)
            if error is not None:
                err.write(f"{shown}: {error.message}\n")
                errors.append((shown, error.message))
                status = EXIT_ERROR
                continue
            if not settings.include_tests and not sources and is_test_file(os.path.relpath(path, root)):
                continue
            findings = [f for f in result.findings.get(path, []) if selection.wants(f.code)]
            if findings and not args.disable_noqa:
                text = sources[path].decode("utf-8", "replace") if path in sources else _read_text(path)
                findings = noqa_filter(findings, text)
            found.extend((shown, f) for f in findings)
    return found, errors, status


def run_check(args: argparse.Namespace, out=sys.stdout, err=sys.stderr) -> int:
    from . import report

    configure(args)
    talk = Talk(args, err)
    talk.configuration(args)
    settings = settings_from(args)
    found, errors, status = analyse(args, settings, err, talk)
    items = [report.item(shown, f) for shown, f in found]
    sink = out
    if args.output_file:
        try:
            sink = open(args.output_file, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.output_file}: cannot write: {exc.strerror or exc}") from None
    try:
        fmt = args.output_format
        if fmt == "json":
            report.write_json(items, sink)
        elif fmt == "github":
            report.write_github(items, sink, errors)
        elif fmt == "sarif":
            report.write_sarif(items, sink, errors)
        else:
            report.write_text(items, sink, show_fixes=args.show_fixes)
        side = sink if fmt == "text" else err
        if args.statistics and items:
            side.write(report.statistics(items))
        if args.show_fixes and fmt == "text":
            side.write(report.fix_footer(items))
    finally:
        if sink is not out:
            sink.close()
    talk.not_analysed(len(errors))
    talk.done("checked", args)
    if status == EXIT_CLEAN and items and not args.exit_zero:
        status = EXIT_FINDINGS
    return status


def run_fix(args: argparse.Namespace, out=sys.stdout, err=sys.stderr) -> int:
    from . import report
    from .fix.apply import fix_project
    from .fix.plan import Options
    from .fix.style import FormatError, formatter_command, project_style

    configure(args)
    if args.max_connections < 1 or args.pool_timeout <= 0:
        raise UsageError("--max-connections and --pool-timeout must be positive")
    talk = Talk(args, err)
    talk.configuration(args)
    settings = settings_from(args)
    options = Options(selection=selection_from(args), unsafe=args.unsafe_fixes, app=args.app,
                      max_connections=args.max_connections, pool_timeout=args.pool_timeout,
                      disable_noqa=args.disable_noqa)
    sources: Dict[str, bytes] = {}
    reported: set = set()
    if args.paths == ["-"]:
        path, shown, data = _stdin_target(args)
        sources[path] = data
        targets = {path: shown}
        roots = {find_root(path, [os.path.dirname(path)]): [path]}
        status = EXIT_CLEAN
    else:
        targets, roots, status = collect(args.paths, settings, err, reported)
        if not targets and status == EXIT_CLEAN:
            talk.found_nothing()
    rel = lambda p: targets[p] if p in sources else os.path.relpath(p)  # noqa: E731
    if args.format:
        try:
            for root in sorted(roots):
                formatter_command(project_style(root), os.path.relpath(root))
        except FormatError as exc:
            err.write(f"redis-pool-lint: {exc}\n")
            return EXIT_ERROR
    progress = Progress(err) if _isatty(err) and not args.quiet else None
    changed = fixed = left = 0
    unanalysed: set = set()
    done: Dict[str, List[str]] = {}
    piped: Optional[bytes] = None
    for root in sorted(roots):
        started = time.monotonic()
        try:
            outcome = fix_project(root, settings, replace(options, only=frozenset(roots[root])), roots[root],
                                  write=not args.diff and not sources, sources=sources, jobs=args.jobs,
                                  progress=progress, format=args.format)
        except Exception as exc:  # a bug of ours: this project is left as it was, the run goes on
            if interrupted(exc):
                raise KeyboardInterrupt from exc
            err.write(f"redis-pool-lint: {os.path.relpath(root)}: not fixed, internal error "
                      f"({type(exc).__name__}: {' '.join(str(exc).split())}); nothing written\n")
            status = EXIT_ERROR
            continue
        if progress is not None:
            progress.clear()
        talk.project(root, len(roots[root]), started, " to fix")
        for line in outcome.plan.targets:
            talk.say(f"{os.path.relpath(root)}: {line}")
        unanalysed.update(path for path, _ in outcome.problems)
        for path, message in outcome.problems:
            if path not in reported:
                err.write(f"{rel(path)}: {message}\n")
            status = EXIT_ERROR
        for f, reason in outcome.plan.skipped:
            err.write(f"{rel(f.path)}:{f.line}:{f.col + 1}: {f.code} not fixed: {reason}\n")
        for path, line, note in outcome.notes if not outcome.error else ():
            err.write(f"{rel(path)}:{line}: test not rewritten: {note}\n")
        left += len(outcome.plan.skipped)
        if outcome.error:
            err.write(f"redis-pool-lint: {outcome.error}\n")
            why = outcome.error
            if why.startswith(root) and ": " in why:  # "<path>: what happened; nothing written"
                where, why = why.split(": ", 1)
                why = f"{os.path.relpath(where)}: {why}" if where != root else why
            why = why.replace("; nothing written", "")
            for f in outcome.plan.fixed:  # each finding the rejected rewrite would have fixed, by name
                err.write(f"{rel(f.path)}:{f.line}:{f.col + 1}: {f.code} not fixed: the rewrite was rejected "
                          f"({' '.join(why.split())[:200]})\n")
            left += len(outcome.plan.fixed)
            status = max(status, EXIT_FINDINGS)
            continue
        if sources:
            others = sorted(rel(p) for p in outcome.new if p not in sources)
            if others:
                err.write(f"redis-pool-lint: not fixed from stdin: the fix also changes "
                          f"{', '.join(others)}; run 'redis-pool-lint fix' on the project\n")
                left += len(outcome.plan.fixed)
                continue
        if sources:
            piped = outcome.new.get(next(iter(sources)))
        if args.diff:
            _write_bytes(out, outcome.diff(rel))
        changed += len(outcome.new)
        if outcome.new:
            fixed += len(outcome.plan.fixed)
            for f in outcome.plan.fixed:
                done.setdefault(rel(f.path), []).append(f.code)
    if sources and not args.diff:  # fix -: the code goes back out, fixed or as it came
        _write_bytes(out, next(iter(sources.values())) if piped is None else piped)
    if progress is not None:
        progress.clear()
    if args.show_fixes:
        err.write(report.fixed_summary(done, "Would fix" if args.diff else "Fixed"))
    talk.not_analysed(len(unanalysed))
    verbs = ("would change", "would fix") if args.diff else ("changed", "fixed")
    talk.say(f"{verbs[0]} {changed} file(s), {verbs[1]} {fixed} finding(s), {left} left")
    talk.done("fixed" if not args.diff else "looked at", args)
    if status == EXIT_CLEAN and (changed or left) and not args.exit_zero:
        status = EXIT_FINDINGS
    return status


def _write_bytes(out, data: bytes) -> None:
    """Code and patches go out as the files' own bytes (encoding, BOM, line endings)."""
    if hasattr(out, "buffer"):
        out.flush()
        out.buffer.write(data)
        out.buffer.flush()
    else:
        out.write(data.decode("utf-8", "replace"))


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """One self-erasing status line on a terminal: ``fixing: parsing 812/5000``."""

    def __init__(self, err) -> None:
        self.err = err
        self.last = ""
        self.width = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        step = max(1, total // 100)
        if done != total and done % step:
            return
        line = f"redis-pool-lint: {stage} {done}/{total}"
        if line != self.last:
            self.err.write("\r" + line.ljust(self.width))
            self.err.flush()
            self.last, self.width = line, max(self.width, len(line))

    def clear(self) -> None:
        if self.width:
            self.err.write("\r" + " " * self.width + "\r")
            self.err.flush()
        self.last, self.width = "", 0


def _read_text(path: str) -> str:
    import tokenize

    try:
        with tokenize.open(path) as fh:
            return fh.read()
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""


def run_rules(out=sys.stdout) -> int:
    width = max(len(r.name) for r in RULES)
    for r in RULES:
        flag = "" if r.default_enabled else "  (off by default)"
        out.write(f"{r.code}  {r.name:<{width}}  fix: {r.fix.value}{flag}\n")
    return EXIT_CLEAN


def run_rule(code: str, out=sys.stdout) -> int:
    from .docs import rule_markdown

    rule = BY_CODE.get(code.upper())
    if rule is None:
        raise UsageError(f"unknown rule {code!r}; see 'redis-pool-lint rules'")
    out.write(rule_markdown(rule))
    return EXIT_CLEAN


def next_step(message: str, parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> str:
    """What to do about a command line argparse refused: the right command for an option of the
    other one (``check --fix``), ``check`` for a path given without a command, else the help."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands: Dict[str, argparse.ArgumentParser] = getattr(parser, "commands", {})
    command = next((a for a in argv if a in commands), None)
    if message.startswith("unrecognized arguments:") and command in ("check", "fix"):
        other = "fix" if command == "check" else "check"
        theirs = {o for a in commands[other]._actions for o in a.option_strings}
        for word in message.split(":", 1)[1].split():
            option = word.split("=", 1)[0]
            if command == "check" and option == "--fix":
                return "; to rewrite the code, run 'redis-pool-lint fix' ('fix --diff' shows the change first)"
            if option in theirs:
                return f"; {option} is an option of 'redis-pool-lint {other}'"
        return f"; see 'redis-pool-lint {command} --help'"
    if "invalid choice" in message and command is None:
        given = next((a for a in argv if not a.startswith("-")), None)
        if given is not None and (os.path.exists(given) or given.endswith(".py")):
            return f"; to check it, run 'redis-pool-lint check {given}'"
    if command == "rule":
        return "; e.g. 'redis-pool-lint rule RPL101' ('redis-pool-lint rules' lists the codes)"
    if command is not None:
        return f"; see 'redis-pool-lint {command} --help'"
    return "; see 'redis-pool-lint --help'"


def _tolerant_streams() -> None:
    """A file name that is not valid in the output's encoding prints as well as it can, never
    stops the run: its bytes back (surrogateescape) on UTF-8, escapes on anything else."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            utf8 = (stream.encoding or "").lower().replace("-", "") == "utf8"
            stream.reconfigure(errors="surrogateescape" if utf8 else "backslashreplace")


def interrupted(exc: BaseException) -> bool:
    """A Ctrl-C that Python wrapped on its way up: one during an import, say, arrives as
    ``RuntimeError: Error calling __set_name__ ...`` whose cause is the KeyboardInterrupt."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    _tolerant_streams()
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "check":
            return run_check(args)
        if args.command == "fix":
            return run_fix(args)
        if args.command == "rules":
            return run_rules()
        if args.command == "rule":
            return run_rule(args.code)
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    except UsageError as exc:
        step = next_step(str(exc), parser, argv) if isinstance(exc, ArgumentError) else ""
        sys.stderr.write(f"redis-pool-lint: error: {exc}{step}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("redis-pool-lint: interrupted\n")
        return 130
    except RecursionError:
        sys.stderr.write("redis-pool-lint: error: code nested too deeply to analyse\n")
        return EXIT_ERROR
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:  # never a traceback: one line, and a distinct exit code
        if interrupted(exc):
            sys.stderr.write("redis-pool-lint: interrupted\n")
            return 130
        sys.stderr.write(f"redis-pool-lint: internal error: {type(exc).__name__}: {' '.join(str(exc).split())}\n")
        return EXIT_ERROR
