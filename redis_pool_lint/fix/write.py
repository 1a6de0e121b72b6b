"""Write the fixer's output so that every file is, at any moment, either as it was or as fixed.

The files of one project are written together or not at all. Each one is checked first: a
regular file with a write bit (root can write any file, so the mode is looked at, not only
``os.access``), not a symbolic link out of the project, unchanged since it was read. The new
bytes go to a temporary file next to it, flushed, fsynced, with the original's mode and
owner; only when every temporary file is ready, and every original re-read is still what was
analysed, are they renamed over the originals, with SIGINT and SIGTERM held back for those few
renames. A run killed outright (SIGKILL) leaves at most temporary files named
``.<name>.rpl-tmp-<pid>-<token>``: they are never collected (no ``.py`` suffix) and the next run
that writes in that folder removes those of dead processes.

``project_lock`` keeps two runs from fixing the same project at once.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import sys
import threading
from typing import Dict, Iterator, List, Tuple

from ..analysis.load import read_source

TMP_INFIX = ".rpl-tmp-"

Problem = Tuple[str, str]  # (path, one-line reason)


class Refused(Exception):
    """A file that must not be written; the message is the reason the user is told."""


def temp_name(target: str) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}{TMP_INFIX}{os.getpid()}-{os.urandom(4).hex()}")


def _inside(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep)
    return path == folder or path.startswith(folder + os.sep)


def target_of(path: str, root: str) -> str:
    """The file to replace: ``path`` itself, or a symbolic link's target when it is in the project."""
    if not os.path.islink(path):
        return path
    real = os.path.realpath(path)
    if not _inside(real, os.path.realpath(root)):
        raise Refused(f"symbolic link to {real}, outside the project: not written through")
    return real


def check_target(target: str, expected: bytes) -> os.stat_result:
    try:
        st = os.stat(target)
        if not stat.S_ISREG(st.st_mode):
            raise Refused("not a regular file: not written")
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise Refused("read-only file: not written")
        if read_source(target) != expected:
            raise Refused("changed since it was read: not written")
    except OSError as exc:
        raise Refused(f"cannot write: {(exc.strerror or str(exc)).lower()}") from None
    return st


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def clean_stale_temps(folder: str) -> List[str]:
    """Remove temporary files left in ``folder`` by runs that were killed; return their paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(".") or TMP_INFIX not in name:
            continue
        pid_part = name.rsplit(TMP_INFIX, 1)[1].split("-", 1)[0]
        if not pid_part.isdigit() or _pid_alive(int(pid_part)):
            continue
        path = os.path.join(folder, name)
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _stage(target: str, data: bytes, st: os.stat_result) -> str:
    tmp = temp_name(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
            fh.flush()
        os.fsync(fd)
        if hasattr(os, "fchown") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(OSError):  # keep the owner when allowed to (root)
                os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (they are delivered right after) while files are renamed."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _fsync_folder(folder: str) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def commit(root: str, new: Dict[str, bytes], old: Dict[str, bytes]) -> List[Problem]:
    """Write ``new`` (path -> bytes) over files whose analysed bytes are ``old``: all of them,
    or none when any one cannot be written safely (the problems say why). Files are renamed in
    the order of ``new``: only SIGKILL or a power cut can stop the renames half way, and then
    the files renamed first are the ones that are fixed."""
    problems: List[Problem] = []
    targets: Dict[str, str] = {}
    stats: Dict[str, os.stat_result] = {}
    for path in [*new, *sorted(set(old) - set(new))]:
        try:
            target = target_of(path, root) if path in new else path
            st = check_target(target, old[path]) if path in new else None
            if path not in new and read_source(path) != old[path]:
                raise Refused("changed since it was read")
        except Refused as exc:
            problems.append((path, str(exc)))
            continue
        except OSError as exc:
            problems.append((path, f"cannot read: {(exc.strerror or str(exc)).lower()}"))
            continue
        if path in new:
            targets[path], stats[path] = target, st
    if problems:
        return problems
    for folder in sorted({os.path.dirname(t) for t in targets.values()}):
        clean_stale_temps(folder)
    staged: Dict[str, str] = {}
    try:
        for path in targets:
            try:
                staged[path] = _stage(targets[path], new[path], stats[path])
            except OSError as exc:
                return [(path, f"cannot write: {(exc.strerror or str(exc)).lower()}")]
        with _signals_held():
            for path in targets:  # the last look, right before the renames
                if read_source(targets[path]) != old[path]:
                    return [(path, "changed since it was read: not written")]
            done: List[str] = []
            for path in targets:
                try:
                    os.replace(staged[path], targets[path])
                    del staged[path]
                except OSError as exc:
                    note = f" ({len(done)} other file(s) of the project already written)" if done else ""
                    return [(path, f"cannot write: {(exc.strerror or str(exc)).lower()}{note}")]
                done.append(path)
    finally:
        for tmp in staged.values():
            _unlink(tmp)
    for folder in sorted({os.path.dirname(t) for t in targets.values()}):
        _fsync_folder(folder)
    return []


@contextlib.contextmanager
def project_lock(root: str) -> Iterator[None]:
    """Hold an advisory lock on the project folder for the whole read-plan-write of a fix, so a
    second ``fix`` of the same tree waits and then re-reads the fixed files."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the re-read before the rename still protects
        yield
        return
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write(f"redis-pool-lint: waiting for another fix of {os.path.relpath(root)}\n")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:  # a filesystem without locks: go on without one
            if exc.errno not in (errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF):
                raise
        yield
    finally:
        os.close(fd)
