"""Per-file work spread over processes: reading, parsing and summarising, rewriting.

Only the per-file steps run in workers; the project-wide steps (index, detection, planning)
stay in the parent, so the result never depends on ``--jobs``. A worker gets the step and its
shared state once, when it starts (inherited under ``fork``, pickled once under ``spawn``).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from typing import Any, Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this many items a pool costs more than it saves.
MIN_ITEMS = 48

_STATE: Any = None


def _start(state: Any) -> None:
    global _STATE
    _STATE = state
    # Ctrl-C reaches the whole process group: the parent stops the pool and says so in one
    # line; workers printing their own KeyboardInterrupt tracebacks would drown that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(task: Any) -> Any:
    fn, item = task
    return fn(_STATE, item)


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _pool(workers: int, state: Any):
    """A pool whose workers ignore Ctrl-C and have a silent stderr from birth: the signal reaches
    the whole process group, and the parent alone answers it (one line, exit 130) and stops them.
    Workers speak through their results only (a task's exception is re-raised in the parent)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    sys.stderr.flush()
    saved = os.dup(2)
    quiet = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(quiet, 2)  # inherited by the workers as their stderr
        return _context().Pool(workers, initializer=_start, initargs=(state,))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)
        if main:
            signal.signal(signal.SIGINT, previous)


class Workers:
    """The worker processes of one run, started when a step first has enough items and then
    kept for the run's later steps (forked once, while the parent is still small)."""

    def __init__(self, jobs: int, state: Any = None) -> None:
        self.jobs, self.state, self.pool = jobs, state, None

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T],
            progress: Optional[Callable[[int], None]] = None) -> List[R]:
        """``[fn(state, item) for item in items]``, in order; ``fn`` must be a module-level function."""
        if self.jobs <= 1 or len(items) < MIN_ITEMS:
            out = []
            for n, item in enumerate(items, 1):
                out.append(fn(self.state, item))
                if progress is not None:
                    progress(n)
            return out
        if self.pool is None:
            self.pool = _pool(self.jobs, self.state)
        chunksize = max(1, min(64, len(items) // (self.jobs * 8)))
        out = []
        for n, result in enumerate(self.pool.imap(_run, [(fn, item) for item in items], chunksize), 1):
            out.append(result)
            if progress is not None:
                progress(n)
        return out


def pmap(fn: Callable[[Any, T], R], items: Sequence[T], jobs: int, state: Any = None,
         progress: Optional[Callable[[int], None]] = None) -> List[R]:
    """``[fn(state, item) for item in items]``, in order, on up to ``jobs`` processes."""
    with Workers(min(jobs, len(items)), state) as workers:
        return workers.map(fn, items, progress)


def reporter(progress: Optional[Callable[[str, int, int], None]], stage: str,
             total: int) -> Optional[Callable[[int], None]]:
    """``pmap``'s per-item callback for a ``progress(stage, done, total)`` listener."""
    if progress is None:
        return None
    return lambda done: progress(stage, done, total)
