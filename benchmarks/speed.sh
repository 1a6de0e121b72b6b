#!/usr/bin/env bash
# Set up and run the speed benchmark on a fresh machine (Linux, Python >= 3.9, PyPI reachable):
#
#   bash benchmarks/speed.sh [speed.py options]     e.g. --quick, --rounds 5, --checkout PATH
#   bash benchmarks/speed.sh --only-real             the plugin's cost on real trees (issue 16)
#
# Everything it installs goes under $BENCH_WORK (default /tmp/redis-pool-lint-bench): a driver
# venv with matplotlib and ruff that runs speed.py, which then makes the two flake8 venvs (with
# and without the plugin), downloads the third-party trees and generates the projects there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${BENCH_WORK:-/tmp/redis-pool-lint-bench}"
python="${PYTHON:-python3}"
driver="$work/venvs/driver"
if [ ! -x "$driver/bin/python" ] || ! cmp -s "$here/constraints.txt" "$driver/.bench-constraints"; then
  echo "setting up $driver (matplotlib, ruff)" >&2
  rm -rf "$driver"
  "$python" -m venv "$driver"
  "$driver/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$here/constraints.txt" matplotlib ruff
  cp "$here/constraints.txt" "$driver/.bench-constraints"
fi
export BENCH_WORK="$work"
exec "$driver/bin/python" "$here/speed.py" "$@"
