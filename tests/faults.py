"""Fault injection for ``redis-pool-lint fix``: a tree of fixture apps, a run stopped by a signal at
a chosen moment, and a census of the files afterwards against their before and fixed versions.

Used by ``tests/test_interrupt.py`` (a few kills) and ``benchmarks/kill_fix.py`` (many)."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "fix"
FIXABLE = sorted(p.name for p in FIX.iterdir() if p.name != "tenant")
TMP_INFIX = ".rpl-tmp-"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(dest: Path, cases: Sequence[str] = FIXABLE, copies: int = 1) -> Dict[str, Tuple[str, str]]:
    """Copy each case's ``before`` as its own project; return {relative path: (before, fixed) hash}."""
    expect: Dict[str, Tuple[str, str]] = {}
    for case in cases:
        for i in range(copies):
            name = f"{case}_{i}"
            shutil.copytree(FIX / case / "before", dest / name)
            for p in sorted((FIX / case / "before").rglob("*")):
                if p.is_file():
                    rel = p.relative_to(FIX / case / "before")
                    fixed = FIX / case / "after" / rel
                    expect[f"{name}/{rel.as_posix()}"] = (digest(p.read_bytes()), digest(fixed.read_bytes()))
    return expect


@dataclass
class Census:
    as_before: int = 0
    as_fixed: int = 0
    unchanged: int = 0  # files the fix does not touch (before == fixed)
    damaged: List[str] = field(default_factory=list)  # neither version, truncated, missing
    temps: List[str] = field(default_factory=list)  # leftover .<name>.rpl-tmp-* files
    extra: List[str] = field(default_factory=list)  # anything else that appeared

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.extra


def census(dest: Path, expect: Dict[str, Tuple[str, str]]) -> Census:
    out = Census()
    seen = set()
    for p in sorted(dest.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or ".redis_pool_lint_cache" in p.parts:  # not the user's
            continue
        rel = p.relative_to(dest).as_posix()
        if TMP_INFIX in p.name:
            out.temps.append(rel)
            continue
        if rel not in expect:
            out.extra.append(rel)
            continue
        seen.add(rel)
        before, fixed = expect[rel]
        now = digest(p.read_bytes())
        if before == fixed == now:
            out.unchanged += 1
        elif now == before:
            out.as_before += 1
        elif now == fixed:
            out.as_fixed += 1
        else:
            out.damaged.append(rel)
    out.damaged.extend(sorted(set(expect) - seen))
    return out


def fix_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "redis_pool_lint", "fix", *args, "."]


def env() -> Dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def full_run_seconds(dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(fix_command(), cwd=dest, capture_output=True, env=env(), timeout=600)
    return time.perf_counter() - start


@dataclass
class Kill:
    sig: int
    delay: float  # seconds after the start when the signal was sent (None: the run ended first)
    returncode: int
    stderr: str
    signalled: bool


def run_and_signal(dest: Path, sig: int, delay: Optional[float] = None,
                   watch: Optional[Sequence[Path]] = None, timeout: float = 600) -> Kill:
    """Start ``fix .`` in ``dest`` and send ``sig`` after ``delay`` seconds, or (``watch``) as soon
    as one of those files has changed: the middle of a write phase."""
    stamps = {p: p.stat().st_mtime_ns for p in watch or ()}
    start = time.perf_counter()
    proc = subprocess.Popen(fix_command(), cwd=dest, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    signalled = False
    while proc.poll() is None:
        now = time.perf_counter() - start
        if watch is not None:
            due = any(_mtime(p) != t for p, t in stamps.items())
        else:
            due = now >= (delay or 0)
        if due:
            proc.send_signal(sig)
            signalled, delay = True, now
            break
        if now > timeout:
            proc.kill()
            raise TimeoutError("fix did not finish")
        time.sleep(0.0005 if watch is not None else 0.002)
    out, err = proc.communicate(timeout=timeout)
    return Kill(sig, delay if signalled else None, proc.returncode, err.decode(errors="replace"), signalled)


def _mtime(p: Path) -> Optional[int]:
    try:
        return p.stat().st_mtime_ns
    except OSError:
        return None


def changing_files(dest: Path, expect: Dict[str, Tuple[str, str]]) -> List[Path]:
    return [dest / rel for rel, (before, fixed) in expect.items() if before != fixed]


def signal_name(sig: int) -> str:
    return signal.Signals(sig).name
