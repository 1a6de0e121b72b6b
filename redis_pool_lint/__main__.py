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
if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402

if _default:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # main() reports KeyboardInterrupt
sys.exit(main())
