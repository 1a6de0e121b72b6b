"""The floors that ``speed.py`` times beside the tool, one process per measurement.

    python floors.py MODE ALL_LIST [SUBSET_LIST]

Each list file holds one path per line. Modes:

    read             read every file of ALL_LIST
    read+libcst      read every file of ALL_LIST, libcst-parse those of SUBSET_LIST
    libcst           read and libcst-parse every file of ALL_LIST
    libcst+print     read, libcst-parse and print back (``parse_module(src).code``) every file
                     of ALL_LIST
    ast              read and ``ast.parse`` every file of ALL_LIST
    read+ast         read every file of ALL_LIST, ``ast.parse`` those of SUBSET_LIST (a file
                     this Python cannot parse costs its failed attempt)
    spin N           a fixed CPU-bound loop split over N processes: how much faster two
                     processes go than one is what ``--jobs 2`` can gain on this machine, now

It runs in the same interpreter and environment as the tool, so interpreter start-up and the
import of libcst are part of the floor just as they are part of the tool's run. It prints how
many files it read and parsed.
"""
from __future__ import annotations

import sys
import warnings


def _paths(list_file: str) -> list:
    with open(list_file, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


SPIN = 30_000_000


def _spin(n: int) -> None:
    x = 0
    for i in range(n):
        x ^= i * i
    if x == -1:
        print(x)


def spin(processes: int) -> None:
    if processes == 1:
        _spin(SPIN)
        return
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers = [ctx.Process(target=_spin, args=(SPIN // processes,)) for _ in range(processes)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def main(argv: list) -> int:
    if argv[0] == "spin":
        spin(int(argv[1]))
        return 0
    mode, paths = argv[0], _paths(argv[1])
    subset = set(_paths(argv[2])) if len(argv) > 2 else None
    parsed = 0
    if mode == "read":
        for path in paths:
            _read(path)
    elif mode in ("read+libcst", "libcst", "libcst+print"):
        import libcst

        for path in paths:
            data = _read(path)
            if mode == "read+libcst" and path not in subset:
                continue
            module = libcst.parse_module(data)
            if mode == "libcst+print":
                module.code
            parsed += 1
    elif mode in ("ast", "read+ast"):
        import ast

        warnings.simplefilter("ignore")
        for path in paths:
            data = _read(path)
            if mode == "read+ast" and path not in subset:
                continue
            try:
                ast.parse(data, filename=path)
            except SyntaxError:  # newer syntax: the tool reads it through libcst, dearer
                pass
            parsed += 1
    else:
        sys.stderr.write(f"unknown mode {mode!r}\n")
        return 2
    print(f"read {len(paths)} parsed {parsed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
