"""The analysis kept on disk: one analysis per project, shared by flake8's worker processes
and by later runs (pre-commit, editors), never stale.

flake8 runs the plugin in every worker process on every invocation, and the findings of one
file depend on the whole project: without this, each worker would analyse the project again.
Two entries per project and settings, under ``.redis_pool_lint_cache/`` at the project root
(like ``.ruff_cache``; its own ``.gitignore`` ignores it), else under ``$XDG_CACHE_HOME``:

- the findings, valid while every file of the project has the size and mtime it had when read
  (a file modified within ``RACY_NS`` of being read is also compared by content, as git does
  for "racily clean" entries), and while the file list is the same;
- what reading and summarising each file found, reused file by file when the project changed,
  so an edit costs the files edited plus detection.

The key holds the package version, a hash of the analysis sources and the settings, so an
upgrade or another configuration never reads an old entry. Writes go to a temporary file
renamed into place; a lock file (``fcntl``, where there is one) makes a second process wait for
the analysis in progress instead of repeating it. Anything unreadable is recomputed, silently.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .. import __version__

FOLDER = ".redis_pool_lint_cache"
#: The environment's say, for runs whose command line cannot be changed (pre-commit, editors).
ENV_DIR, ENV_OFF = "REDIS_POOL_LINT_CACHE_DIR", "REDIS_POOL_LINT_NO_CACHE"
#: Raised whenever what is stored changes shape.
SCHEMA = 1
#: A file modified this close to being read may change again within the same mtime tick.
RACY_NS = 2_000_000_000

#: A file's fingerprint: size, mtime_ns, and its content's digest when it was racy.
Fingerprint = Tuple[int, int, Optional[bytes]]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The version, the Python (what ``ast`` accepts depends on it) and a hash of the sources
    that decide results: a development checkout changes it with every edit to the analysis."""
    here = os.path.dirname(os.path.abspath(__file__))
    package = os.path.dirname(here)
    parts = [os.path.join(folder, n) for folder in (package, here) for n in sorted(os.listdir(folder))
             if n.endswith(".py")]
    h = hashlib.blake2b(f"{__version__}/{SCHEMA}/{sys.implementation.cache_tag}".encode(), digest_size=12)
    for path in parts:
        try:
            with open(path, "rb") as fh:
                h.update(fh.read())
        except OSError:
            h.update(path.encode())
    return h.hexdigest()


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def fingerprint(size: int, mtime_ns: int, data: Optional[bytes], now_ns: int) -> Fingerprint:
    """What identifies the bytes just read: their digest only when the mtime is too recent to trust."""
    return size, mtime_ns, digest(data) if data is not None and mtime_ns >= now_ns - RACY_NS else None


def unchanged(path: str, fp: Fingerprint) -> bool:
    """Does the file still hold the bytes it had when fingerprinted?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if (st.st_size, st.st_mtime_ns) != fp[:2]:
        return False
    if fp[2] is None:
        return True
    try:
        with open(path, "rb") as fh:
            return digest(fh.read()) == fp[2]
    except OSError:
        return False


class CacheDirError(Exception):
    """A cache folder given by the user that cannot be used."""


def check_dir(path: str) -> str:
    """A ``--cache-dir`` as given: usable, or a ``CacheDirError`` saying why not."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise CacheDirError(f"--cache-dir {path}: not a folder")
    try:
        _prepare(path)
    except OSError as exc:
        raise CacheDirError(f"--cache-dir {path}: cannot write there ({(exc.strerror or str(exc)).lower()})")
    return path


def _prepare(folder: str) -> None:
    """Create the folder with a ``.gitignore`` of ``*`` and a ``CACHEDIR.TAG`` (backup tools skip it)."""
    if os.path.isfile(os.path.join(folder, ".gitignore")):
        return
    os.makedirs(folder, exist_ok=True)
    atomic_write(os.path.join(folder, ".gitignore"), b"# Created by redis-pool-lint; delete at will.\n*\n")
    atomic_write(os.path.join(folder, "CACHEDIR.TAG"),
                 b"Signature: 8a477f597d28d172789f06886806bc55\n# redis-pool-lint's cache\n")


def default_dir(root: str) -> Optional[str]:
    """``.redis_pool_lint_cache`` at the project root; else, a root we may not write to, a
    folder for it under ``$XDG_CACHE_HOME`` (``~/.cache``); else None (no cache)."""
    here = os.path.join(root, FOLDER)
    with contextlib.suppress(OSError):
        if os.access(root, os.W_OK) or os.path.isdir(here):
            _prepare(here)
            return here
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    away = os.path.join(base, "redis-pool-lint", hashlib.blake2b(root.encode(), digest_size=8).hexdigest())
    with contextlib.suppress(OSError):
        _prepare(away)
        return away
    return None


def atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Store:
    """The entries of one project and settings in a cache folder."""

    def __init__(self, folder: str, root: str, settings: Any, extra_files: Sequence[str]) -> None:
        key = hashlib.blake2b(repr((code_version(), root, settings, tuple(extra_files))).encode(),
                              digest_size=12).hexdigest()
        self.folder = folder
        self.base = os.path.join(folder, key)

    def load(self, name: str) -> Any:
        """The entry, or None when missing, unreadable, corrupt or of another version."""
        try:
            with open(f"{self.base}.{name}", "rb") as fh:
                stored = pickle.load(fh)
        except Exception:  # corrupt, truncated, of an older layout: recompute
            return None
        if not isinstance(stored, tuple) or len(stored) != 2 or stored[0] != code_version():
            return None
        return stored[1]

    def save(self, name: str, value: Any) -> None:
        """Write atomically; a full disk or a read-only folder only costs the next run its cache."""
        with contextlib.suppress(Exception):
            atomic_write(f"{self.base}.{name}", pickle.dumps((code_version(), value), pickle.HIGHEST_PROTOCOL))

    @contextlib.contextmanager
    def locked(self, meanwhile: Optional[Callable[[Callable[[], bool]], None]] = None) -> Iterator[None]:
        """Hold the project's lock: a process arriving meanwhile waits, then reads what this one
        wrote. While the lock is taken, ``meanwhile(free)`` runs (``share.help_until_free``: the
        waiting process helps with the analysis) until ``free()`` has taken the lock."""
        try:
            import fcntl
        except ImportError:  # Windows: no lock; atomic writes keep the entries whole
            yield
            return
        try:
            fd = os.open(f"{self.base}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return

        def free() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            with contextlib.suppress(OSError):
                if meanwhile is not None and not free():
                    with contextlib.suppress(Exception):  # helping is a bonus: on any trouble, just wait
                        meanwhile(free)
                fcntl.flock(fd, fcntl.LOCK_EX)  # (held already when ``free()`` took it)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def store_for(root: str, settings: Any, extra_files: Sequence[str], folder: Optional[str]) -> Optional[Store]:
    """The store for a project: in ``folder`` (``--cache-dir``), else ``$REDIS_POOL_LINT_CACHE_DIR``,
    else the default place; None when ``$REDIS_POOL_LINT_NO_CACHE`` is set or nowhere is writable."""
    if os.environ.get(ENV_OFF, "").strip() not in ("", "0"):
        return None
    folder = folder or os.environ.get(ENV_DIR) or None
    if folder is not None:
        folder = os.path.abspath(os.path.expanduser(folder))
        try:
            _prepare(folder)
        except OSError:
            return None
    else:
        folder = default_dir(root)
        if folder is None:
            return None
    return Store(folder, root, settings, extra_files)


def now_ns() -> int:
    return time.time_ns()


def all_unchanged(fingerprints: Dict[str, Fingerprint], files: List[str]) -> bool:
    """The same files, none changed since they were fingerprinted."""
    return len(fingerprints) == len(files) and all(
        p in fingerprints and unchanged(p, fingerprints[p]) for p in files)
