"""Run ``check`` and ``fix --diff`` over every Python file of a site-packages and report what happened.

    PYTHONPATH=. python benchmarks/site_packages.py [SITE_PACKAGES] [--no-parse-all] [--keep]

SITE_PACKAGES defaults to the running interpreter's. Its ``.py`` files are copied (with their
folders) into a temporary project: ``check`` finds a file's project by walking up to a marker
(``.git``, ``pyproject.toml``...), and the interpreter's own folder may sit inside some other
checkout. Nested ``setup.py`` files stay, so packages shipped with one are projects of their own,
as they would be in a source tree. Nothing is excluded but ``__pycache__``, and test files are
included.

Runs, each reported with its wall time, exit status and peak memory:

* ``check``: findings, and every file that could not be read, decoded, parsed or analysed, with
  the tool's reason;
* ``check --client-factories='*'`` (unless ``--no-parse-all``): every call counts as a client
  factory, so every module is parsed, summarised and indexed, not only those mentioning Redis;
* ``fix --diff``: files it would change, findings it leaves, projects it refuses, with reasons;
* ``fix --diff --client-factories='*'`` (unless ``--no-parse-all``): the fixer planning, rewriting
  with libcst and verifying on real code, since with that setting it finds things to rewrite.

Another folder works too (the standard library, whose test suite ships broken files on
purpose); a nested ``site-packages`` is skipped then.

A crash is a traceback, an ``internal error`` line, or an exit status other than 0, 1, 2.
Exit status 1 when there was a crash.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = re.compile(r"^(?P<path>.+?): (?P<kind>cannot (?:parse|decode|read|analyse)|skipped): (?P<reason>.*)$")


def copy_python_files(site: Path, dest: Path) -> int:
    n = 0
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "site-packages"))
        for name in filenames:
            if name.endswith(".py"):
                src = Path(dirpath) / name
                target = dest / src.relative_to(site)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(src, target)
                except OSError as exc:
                    print(f"not copied: {src}: {exc}")
                    continue
                n += 1
    (dest / "pyproject.toml").touch()
    return n


def run(args, cwd: Path):
    """Run the tool; its output, wall time and own peak memory (MB, from wait4's rusage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "redis_pool_lint", *args], cwd=cwd, stdout=out,
                                stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        res = subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(errors="replace"),
                                          err.read().decode(errors="replace"))
    return res, seconds, usage.ru_maxrss / 1024


def crashes(res) -> list:
    out = []
    if res.returncode not in (0, 1, 2):
        out.append(f"exit status {res.returncode}")
    for stream in (res.stdout, res.stderr):
        if "Traceback (most recent call last)" in stream:
            out.append("traceback: " + stream[stream.index("Traceback"):][:3000])
    out += [line for line in res.stderr.splitlines() if "internal error" in line]
    return out


def problems(stderr: str):
    found, other = [], []
    for line in stderr.splitlines():
        m = PROBLEM.match(line)
        if m:
            found.append((m.group("path"), m.group("kind"), m.group("reason")))
        elif line.strip():
            other.append(line)
    return found, other


def reason_class(kind: str, reason: str) -> str:
    reason = re.sub(r"\(line \d+\)", "", reason)
    reason = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", reason)
    return f"{kind}: {reason.split(';')[0].strip()}"


def report_problems(found, other, bad) -> int:
    """The files the tool could not handle (by reason, then each), other stderr lines, crashes."""
    print(f"files it could not read, decode, parse or analyse: {len(found)}")
    for cls, n in Counter(reason_class(k, r) for _, k, r in found).most_common():
        print(f"  {n:5d}  {cls}")
    for path, kind, reason in found:
        print(f"    {path}: {kind}: {reason}")
    if other:
        print(f"other lines on stderr: {len(other)}")
        for line in other[:20]:
            print(f"    {line}")
    print(f"crashes: {len(bad)}")
    for b in bad[:10]:
        print(f"    {b}")
    return len(bad)


def summarize_check(title: str, res, seconds: float, peak: float) -> int:
    found, other = problems(res.stderr)
    findings = [line for line in res.stdout.splitlines() if re.match(r"^.+:\d+:\d+: RPL\d{3} ", line)]
    codes = Counter(f.split(": ")[1].split()[0] for f in findings)
    print(f"\n== {title}: exit {res.returncode}, {seconds:.1f} s wall, peak {peak:.0f} MB")
    print(f"findings: {len(findings)} ({', '.join(f'{c} {n}' for c, n in sorted(codes.items()))})")
    return report_problems(found, other, crashes(res))


def summarize_fix(title: str, res, seconds: float, peak: float) -> int:
    found, other = problems(res.stderr)
    would = res.stdout.count("\n+++ b/") + res.stdout.startswith("+++ b/")
    left = [line for line in other if " not fixed: " in line and re.match(r"^.+:\d+:\d+: RPL", line)]
    refused = [line for line in other if line.startswith("redis-pool-lint: ") and "nothing written" in line]
    summary = [line for line in other if line.startswith("redis-pool-lint: would change")]
    rest = [line for line in other if line not in left and line not in refused and line not in summary]
    print(f"\n== {title}: exit {res.returncode}, {seconds:.1f} s wall, peak {peak:.0f} MB")
    print(f"files it would change: {would}; {summary[-1] if summary else 'no summary line'}")
    print(f"findings left, by reason: {len(left)}")
    for reason, n in Counter(line.split(" not fixed: ", 1)[1] for line in left).most_common():
        print(f"  {n:5d}  {reason}")
    print(f"projects refused: {len(refused)}")
    for line in refused:
        print(f"    {line}")
    return report_problems(found, rest, crashes(res))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default=sysconfig.get_paths()["purelib"])
    parser.add_argument("--no-parse-all", action="store_true", help="skip the run that parses every module")
    parser.add_argument("--keep", action="store_true", help="keep the copied tree (its path is printed)")
    args = parser.parse_args()
    site = Path(args.site).resolve()
    work = Path(tempfile.mkdtemp(prefix="rpl-site-"))
    tree = work / "site-packages"
    try:
        start = time.perf_counter()
        n = copy_python_files(site, tree)
        print(f"{site}: {n} Python files copied to {tree} in {time.perf_counter() - start:.0f} s")
        common = ["--exclude=__pycache__", "--include-tests"]
        total = 0
        res, seconds, peak = run(["check", *common, "."], tree)
        total += summarize_check("check", res, seconds, peak)
        if not args.no_parse_all:
            res, seconds, peak = run(["check", *common, "--client-factories=*", "."], tree)
            total += summarize_check("check --client-factories='*' (every module parsed)", res, seconds, peak)
        res, seconds, peak = run(["fix", "--diff", *common, "."], tree)
        total += summarize_fix("fix --diff", res, seconds, peak)
        if not args.no_parse_all:
            res, seconds, peak = run(["fix", "--diff", *common, "--client-factories=*", "."], tree)
            total += summarize_fix("fix --diff --client-factories='*'", res, seconds, peak)
        print(f"\ntotal crashes: {total}")
        return 1 if total else 0
    finally:
        if args.keep:
            print(f"kept: {tree}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
