import os
import signal
import sys


def _interrupted(signum, frame):  # Ctrl-C while starting up: one line too, no traceback
    os.write(2, b"redis-pool-lint: interrupted\n")
    os._exit(130)


_default = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _default:
    signal.signal(signal.SIGINT, _interrupted)

# ``python -m`` puts the current folder first on sys.path: in a project with a ``secrets.py`` or
# a vendored ``libcst``, the fixer's own imports would load the project's modules instead.
# (``-P``/``PYTHONSAFEPATH`` arrived in 3.11; before it the first entry is always there.)
if not getattr(sys.flags, "safe_path", False) and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402

if _default:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # main() reports KeyboardInterrupt
try:
    status = main()
except KeyboardInterrupt:  # in the instant between main's last word and here
    sys.stderr.write("redis-pool-lint: interrupted\n")
    status = 130
# The run is over and has said how it ended: a Ctrl-C from now on (while the interpreter shuts
# down, with the default action back) would only turn that into a death by SIGINT, silently.
if hasattr(signal, "pthread_sigmask"):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
if status == 130:
    # Interrupted: the libcst thread may still be inside a rewrite, and an interpreter shutting
    # down under a busy thread can abort. Nothing is half written (see fix/write.py): leave now.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)
sys.exit(status)
