"""One first analysis split between the processes that need it at the same time.

``flake8 -jN`` starts N workers, and each needs the project's findings on its first file; so do
the parallel flake8 processes of a pre-commit run. One of them takes the cache's lock and analyses;
the others used to wait, idle, so the wall clock paid the whole analysis. Now a process that finds
the lock taken helps: the analysing process (the leader) posts each per-file step (read and
pre-filter, import scan, parse and summarise) on a board in the cache folder, cut into blocks.
Every process takes the next block by appending its pid to the step's queue file: an ``O_APPEND``
write is atomic, so the offset it ends at is a ticket no other process holds, for the cost of one
system call. A helper leaves its results on the board; the leader takes them, and works a block
itself when the helper that took it is gone or late.

The project-wide steps (which modules to parse next, the index, detection) stay with the leader,
and every block gives the same results whoever works it, so helping never changes a finding.
A helper stops when it can take the lock: the leader has finished, and the cache holds its result.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .cache import atomic_write

try:  # helpers find the lock taken with ``flock``; without it (Windows) nobody helps
    import fcntl  # noqa: F401

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

#: A step as the board knows it: its name, its function ``fn(job, item)`` and how many items make
#: a block (enough that a block costs far more than its claim: reading a file is cheap, a summary is not).
Steps = Dict[str, Tuple[Callable[[Any, Any], Any], int]]

#: How long the leader waits for a block a live helper took before working it itself.
PATIENCE = 2.0
#: The longest nap between two looks at a board or at a block a helper took.
NAP = 0.004
#: The nap of a helper while no board is up.
IDLE = 0.02


def _nap(naps: int) -> None:
    time.sleep(min(NAP, 0.0002 * (naps + 1)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _write(folder: str, name: str, value: Any) -> None:
    atomic_write(os.path.join(folder, name), pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def _read(folder: str, name: str) -> Any:
    """The value written under ``name``; ``FileNotFoundError`` until it is there."""
    with open(os.path.join(folder, name), "rb") as fh:
        return pickle.load(fh)


RECORD = 8  # a queue entry: the pid of the process that took the ticket


def _tickets(folder: str, task: int) -> int:
    return os.open(os.path.join(folder, f"queue-{task}"), os.O_WRONLY | os.O_APPEND)


def _ticket(fd: int) -> int:
    """The next block of a step for this process: its entry's index in the queue."""
    os.write(fd, os.getpid().to_bytes(RECORD, "little"))
    return os.lseek(fd, 0, os.SEEK_CUR) // RECORD - 1


def _holder(folder: str, task: int, block: int) -> Optional[int]:
    try:
        with open(os.path.join(folder, f"queue-{task}"), "rb") as fh:
            fh.seek(block * RECORD)
            return int.from_bytes(fh.read(RECORD), "little") or None
    except OSError:
        return None


def _blocks(count: int, size: int) -> List[range]:
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


class Board:
    """The leader's side: ``map`` like ``parallel.Workers.map``, with helpers welcome.

    The board (a folder beside the cache entries, named in a pointer file that helpers read) is
    made on the first step worth sharing and removed when the analysis ends."""

    def __init__(self, base: str, job: Any, steps: Steps) -> None:
        self.base, self.job, self.steps = base, job, steps
        self.names = {fn: name for name, (fn, _) in steps.items()}
        self.folder: Optional[str] = None
        self.tasks = 0
        self.usable = True

    def __enter__(self) -> "Board":
        _clear_dead(os.path.dirname(self.base))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.folder is not None:
            with contextlib.suppress(OSError):
                if _pointer(self.base) == (os.getpid(), self.folder):
                    os.unlink(self.base + ".board")
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _open(self) -> Optional[str]:
        if self.folder is None and self.usable:
            try:
                self.folder = f"{self.base}.board-{os.getpid()}-{time.time_ns()}"
                os.mkdir(self.folder)
                _write(os.path.dirname(self.base), os.path.basename(self.base) + ".board",
                       (os.getpid(), self.folder))
            except OSError:
                self.usable = False
                if self.folder is not None:
                    shutil.rmtree(self.folder, ignore_errors=True)
                self.folder = None
        return self.folder

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any],
            progress: Optional[Callable[[int], None]] = None) -> List[Any]:
        """``[fn(job, item) for item in items]``, in order, whoever works each block."""
        name = self.names.get(fn)
        blocks = _blocks(len(items), self.steps[name][1] if name else len(items) or 1)
        out: List[Any] = [None] * len(items)
        done = 0

        def work(b: int, results: Optional[list] = None) -> None:
            """Fill block ``b``: from ``results`` (a helper's), else by working it here."""
            nonlocal done
            for n, i in enumerate(blocks[b]):
                out[i] = fn(self.job, items[i]) if results is None else results[n]
            done += len(blocks[b])
            if progress is not None:
                progress(done)

        fd, task = self._post(name, items) if name is not None and len(blocks) > 1 else (None, 0)
        if fd is None:
            for b in range(len(blocks)):
                work(b)
            return out
        mine = set()
        try:
            while True:
                try:
                    b = _ticket(fd)
                except OSError:  # a full disk, say: the blocks nobody holds are worked below
                    break
                if b >= len(blocks):
                    break
                mine.add(b)
                work(b)
        finally:
            os.close(fd)
        for b in range(len(blocks)):
            if b in mine:
                continue
            results = self._collect(self.folder, task, b)
            work(b, results if results is not None and len(results) == len(blocks[b]) else None)
        return out

    def _post(self, name: str, items: Sequence[Any]) -> Tuple[Optional[int], int]:
        """Put a step on the board: its queue, then its items (a helper that sees the items finds
        the queue); the queue open for this process's tickets, or None to work it all here."""
        folder = self._open()
        if folder is None:
            return None, 0
        task = self.tasks
        self.tasks += 1
        try:
            with open(os.path.join(folder, f"queue-{task}"), "xb"):
                pass
            fd = _tickets(folder, task)
        except OSError:
            return None, 0
        try:
            _write(folder, f"task-{task}", (name, list(items)))
        except Exception:  # a full disk, an item that does not pickle: work it all here
            os.close(fd)
            return None, 0
        return fd, task

    @staticmethod
    def _collect(folder: str, task: int, block: int) -> Optional[list]:
        """A helper's results for a block it took; None (work it here) when nobody holds it (the
        leader's ticket failed, the board was deleted), its holder is gone, or ``PATIENCE`` has passed."""
        started = time.monotonic()
        for naps in itertools.count():
            try:
                return _read(folder, f"done-{task}-{block}")
            except FileNotFoundError:
                pass
            except Exception:  # torn or foreign: work it here
                return None
            if naps % 25 == 0:
                pid = _holder(folder, task, block)
                if pid is None or not _alive(pid) or time.monotonic() - started > PATIENCE:
                    return None
            _nap(naps)
        return None  # pragma: no cover (the loop only ends by returning)


def _clear_dead(folder: str) -> None:
    """Remove the boards, and pointers to them, that leaders which are gone left in the cache
    folder (killed mid-analysis; of any settings or version of the tool)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if ".board-" in name:
                pid = name.rsplit(".board-", 1)[1].split("-", 1)[0]
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(path, ignore_errors=True)
            elif name.endswith(".board"):
                pointer = _pointer(path[: -len(".board")])
                if pointer is None or not _alive(pointer[0]):
                    with contextlib.suppress(OSError):
                        os.unlink(path)


def _pointer(base: str) -> Optional[Tuple[int, str]]:
    try:
        pid, folder = _read(os.path.dirname(base), os.path.basename(base) + ".board")
        return int(pid), str(folder)
    except Exception:
        return None


def help_until_free(base: str, job: Any, steps: Steps, free: Callable[[], bool]) -> None:
    """The helper's side: take blocks of the steps the leader posts, until ``free()`` (which
    tries the lock) says the leader is done."""
    looked: set = set()  # (board, task) whose queue this process has run dry
    naps = 0
    while not free():
        worked = False
        pointer = _pointer(base)
        if pointer is not None and pointer[1].startswith(base + ".board-") and _alive(pointer[0]):
            folder = pointer[1]
            for task in itertools.count():
                if (folder, task) in looked:
                    continue
                try:
                    name, items = _read(folder, f"task-{task}")
                except Exception:  # not posted yet, or the board is gone
                    break
                looked.add((folder, task))
                if name not in steps:
                    continue
                fn, size = steps[name]
                blocks = _blocks(len(items), size)
                try:
                    fd = _tickets(folder, task)
                    try:
                        while True:
                            b = _ticket(fd)
                            if b >= len(blocks):
                                break
                            try:
                                _write(folder, f"done-{task}-{b}", [fn(job, items[i]) for i in blocks[b]])
                            finally:
                                # the bytes a block read are not kept: by another block, of another
                                # board, the file may have changed, and a summary must be of its bytes now
                                job.seen.clear()
                            worked = True
                    finally:
                        os.close(fd)
                except OSError:  # the board is gone: the leader has finished with it
                    break
        naps = 0 if worked else naps + 1
        if pointer is None:  # no analysis posted yet (or the leader's steps are project-wide): look less often
            time.sleep(IDLE)
        else:
            _nap(naps)
