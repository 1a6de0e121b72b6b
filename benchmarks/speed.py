"""Speed of redis-pool-lint beside flake8, ruff and libcst, with the targets of issues 6 and 16.

    bash benchmarks/speed.sh [options]          # fresh machine: sets up, then runs this
    python benchmarks/speed.py [options]        # with matplotlib (and ruff) already installed

Measures in one run, each process timed by wall clock and by user+sys CPU (``os.wait4``, which
counts the process and the children it waited for), medians over ``--rounds`` rounds, the runs
being compared interleaved within each round:

1. ``flake8 --isolated --select=E,F,W -j1 .`` in a virtual environment without the plugin and in
   one with the same flake8 and the plugin installed (also with ``--select=E,F,W,RPL``), on a
   tree of third-party code with no Redis in it and on redis-py's own source.
2. ``redis-pool-lint check`` and ``redis-pool-lint fix --diff`` on generated FastAPI projects
   (``genproject.py``), with ``--jobs 1`` and ``--jobs 2`` when the CLI has ``--jobs``; the
   findings ``check`` reports are compared with those the generator planted.
3. Floors and ceilings beside them (``floors.py``): reading the files, ``ast.parse``, libcst
   parse and parse + print, and ``ruff check --select E,F --no-cache``.
4. Issue 16, what installing the plugin costs on real trees: ``flake8 --select=E,F,W`` with and
   without the plugin, its cache cold (removed before each run) and warm, ``-j1`` CPU and
   ``-j2`` wall, on pydantic and redis-py (downloaded like the trees above) and on polar,
   dispatch and onyx when exported under ``--corpus`` (``../shared/realworld/README.md``); and
   ``check`` on polar beside reading every file plus ``ast.parse`` of those it analyses.
   ``--only-real`` runs this part alone, ``--skip-real`` leaves it out.

Prints a Markdown report (tables, targets with PASS/FAIL, machine and versions) and writes it
with a JSON of every run and a PNG chart to ``--out``. The package measured is a copy of
``--checkout`` (default: the repository this script is in) installed non-editable into a
virtual environment under ``--work``; it is reinstalled whenever its sources change.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from genproject import generate  # noqa: E402

CONSTRAINTS = os.path.join(HERE, "constraints.txt")
FLOORS = os.path.join(HERE, "floors.py")
#: The tree with no Redis code: import folder -> distribution (pinned in constraints.txt).
NO_REDIS = {"prompt_toolkit": "prompt_toolkit", "graphql": "graphql-core", "jedi": "jedi",
            "werkzeug": "werkzeug", "starlette": "starlette", "jinja2": "jinja2"}
#: Real application trees, measured when exported (``../shared/realworld/README.md``): name ->
#: folder under one of the ``--corpus`` folders.
REAL_TREES = {"polar": "polarsource__polar/server", "dispatch": "Netflix__dispatch",
              "onyx": "onyx-dot-app__onyx/backend"}
#: Issue 16's limits on installed / not installed, cold cache (None: measured, no target); warm: WARM_LIMIT.
COLD_LIMITS = {"polar": 1.03, "dispatch": 1.03, "pydantic": 1.03, "redis-py": 1.15, "onyx": None}
WARM_LIMIT = 1.01
#: ``check`` on polar against reading every file and ``ast.parse`` of those it analyses.
CHECK_FLOOR_LIMIT = 1.2
#: The smaller no-Redis tree of ``--quick``.
QUICK_NO_REDIS = ["jinja2", "starlette", "werkzeug"]
SPIN_1, SPIN_2 = "machine: CPU loop, 1 process", "machine: same loop split over 2 processes"
MENTIONS = re.compile(rb"redis|valkey", re.IGNORECASE)
FINDING = re.compile(r"^(.+?):(\d+):\d+: (RPL\d+) ", re.MULTILINE)


# -- measuring one process ---------------------------------------------------------------------

@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    rc: int


class MemorySampler(threading.Thread):
    """Peak memory of a process tree, from /proc (Linux): the largest high-water mark
    (``VmHWM``) of a process, and the largest sum of the tree's ``VmRSS`` in one sample.

    ``ru_maxrss`` from ``wait4`` cannot serve: Linux carries the parent's high-water mark over
    ``fork`` + ``exec``, so every child would show at least this script's own size."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.done = threading.Event()

    def tree(self) -> List[int]:
        pids, i = [self.pid], 0
        while i < len(pids):
            try:
                for tid in os.listdir(f"/proc/{pids[i]}/task"):
                    with open(f"/proc/{pids[i]}/task/{tid}/children") as fh:
                        pids.extend(int(c) for c in fh.read().split())
            except OSError:
                pass
            i += 1
        return pids

    def sample(self) -> None:
        total = 0
        for pid in self.tree():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                        elif line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        self.peak_kib = max(self.peak_kib, total)

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)


def measure(cmd: Sequence[str], cwd: str, out: str, timeout: float = 3600.0) -> Run:
    """Run ``cmd``; stdout to ``out``, stderr to ``out + '.err'``. CPU (user+sys) comes from
    ``wait4``: the process plus the children it reaped (worker processes). Peak memory is
    sampled from /proc (``MemorySampler``); 0 where there is no /proc or the run was too short."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    with open(out, "wb") as so, open(out + ".err", "wb") as se:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=so, stderr=se, env=env)
        sampler = MemorySampler(proc.pid)
        if os.path.isdir("/proc"):
            sampler.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            sampler.done.set()
        wall = time.perf_counter() - start
    if sampler.is_alive():
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_utime + usage.ru_stime, sampler.peak_kib / 1024, proc.returncode)


def quiet(cmd: Sequence[str], **kw) -> str:
    """Run a set-up command; fail loudly with its output."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- environments ------------------------------------------------------------------------------

def venv_python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def ensure_venv(venv: str, base_python: str, packages: Sequence[str]) -> None:
    """A virtual environment with ``packages`` (pinned by constraints.txt)."""
    stamp = os.path.join(venv, ".bench-packages")
    want = " ".join(packages) + "\n" + open(CONSTRAINTS).read()
    if os.path.exists(stamp) and open(stamp).read() == want:
        return
    say(f"setting up {venv}: {' '.join(packages)}")
    shutil.rmtree(venv, ignore_errors=True)
    quiet([base_python, "-m", "venv", venv])
    quiet([venv_python(venv), "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "-c", CONSTRAINTS, *packages])
    with open(stamp, "w") as fh:
        fh.write(want)


def snapshot(checkout: str, dest: str) -> str:
    """Copy the package's sources (top-level files, top-level packages) to ``dest``; return
    their hash. Building from the copy keeps build artefacts out of the checkout."""
    digest = hashlib.sha256()
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    for name in sorted(os.listdir(checkout)):
        full = os.path.join(checkout, name)
        if os.path.isfile(full) and not name.startswith("."):
            shutil.copy2(full, dest)
            digest.update(name.encode() + b"\0" + open(full, "rb").read())
        elif os.path.isdir(full) and os.path.exists(os.path.join(full, "__init__.py")):
            for dirpath, dirnames, filenames in os.walk(full):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                rel = os.path.relpath(dirpath, checkout)
                os.makedirs(os.path.join(dest, rel), exist_ok=True)
                for f in sorted(filenames):
                    if f.endswith((".pyc", ".pyo")):
                        continue
                    shutil.copy2(os.path.join(dirpath, f), os.path.join(dest, rel, f))
                    digest.update(os.path.join(rel, f).encode() + b"\0"
                                  + open(os.path.join(dirpath, f), "rb").read())
    return digest.hexdigest()


def install_checkout(venv: str, checkout: str, work: str) -> str:
    """Install (non-editable) the current sources of ``checkout`` into ``venv``."""
    snap = os.path.join(work, "snapshot")
    digest = snapshot(checkout, snap)
    stamp = os.path.join(venv, ".bench-checkout")
    if not (os.path.exists(stamp) and open(stamp).read() == digest):
        say(f"installing {checkout} (sources {digest[:12]}) into {venv}")
        quiet([venv_python(venv), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-c", CONSTRAINTS, snap])
        with open(stamp, "w") as fh:
            fh.write(digest)
    return digest


def ensure_corpus(venv: str, work: str) -> str:
    """Third-party sources, installed with ``pip --target`` (never imported, only linted)."""
    target = os.path.join(work, "corpus")
    dists = ["redis", "pydantic"] + sorted(set(NO_REDIS.values()))
    stamp = os.path.join(target, ".bench-corpus")
    want = " ".join(dists) + "\n" + open(CONSTRAINTS).read()
    if not (os.path.exists(stamp) and open(stamp).read() == want):
        say(f"downloading the third-party trees: {' '.join(dists)}")
        shutil.rmtree(target, ignore_errors=True)
        quiet([venv_python(venv), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "--no-deps", "--no-compile", "--target", target, "-c", CONSTRAINTS, *dists])
        with open(stamp, "w") as fh:
            fh.write(want)
    return target


# -- trees -------------------------------------------------------------------------------------

def python_files(root: str) -> List[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    return out


def mentioning(paths: Sequence[str]) -> List[str]:
    return [p for p in paths if MENTIONS.search(open(p, "rb").read())]


def copy_tree(corpus: str, packages: Sequence[str], dest: str) -> None:
    """Copy the ``.py`` files of ``packages``, with a ``pyproject.toml`` marking the project root
    (so that neither tool looks above it for one)."""
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    keep_py = lambda folder, names: [  # noqa: E731
        n for n in names if not n.endswith(".py") and not os.path.isdir(os.path.join(folder, n))
        or n == "__pycache__"]
    for pkg in packages:
        shutil.copytree(os.path.join(corpus, pkg), os.path.join(dest, pkg), ignore=keep_py)
    with open(os.path.join(dest, "pyproject.toml"), "w") as fh:
        fh.write('[project]\nname = "bench-tree"\nversion = "0"\n')


def write_list(path: str, paths: Sequence[str]) -> str:
    with open(path, "w") as fh:
        fh.write("".join(p + "\n" for p in paths))
    return path


# -- versions and capabilities -----------------------------------------------------------------

def probe(python: str, code: str) -> str:
    proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "?"


def dist_version(python: str, dist: str) -> str:
    return probe(python, f"import importlib.metadata as m; print(m.version({dist!r}))")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_describe(path: str) -> str:
    proc = subprocess.run(["git", "--no-optional-locks", "-C", path, "describe", "--always",
                           "--dirty", "--abbrev=10"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "not a git checkout"


def has_jobs(tool: str, command: str) -> bool:
    proc = subprocess.run([tool, command, "--help"], capture_output=True, text=True)
    return "--jobs" in proc.stdout


def find_ruff() -> Optional[str]:
    here = os.path.join(os.path.dirname(sys.executable), "ruff")
    return here if os.path.exists(here) else shutil.which("ruff")


# -- the plan ----------------------------------------------------------------------------------

@dataclass
class Task:
    group: str          # "flake8:<tree>" or "gen:<modules>"
    name: str
    cmd: List[str]
    cwd: str
    files: int
    runs: List[Run] = field(default_factory=list)
    warmup: Optional[Run] = None       # the first run: file cache, bytecode; not a timing
    twin: Optional["Task"] = None      # for "--jobs 2": the "--jobs 1" task
    single: bool = False               # slow: timed by one run only
    first_out: str = ""                # stdout of its first run

    def med(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


@dataclass
class Project:
    modules: int
    root: str
    redis_files: int
    planted: List[Tuple[str, int, str]]
    reported: List[Tuple[str, int, str]] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)
    fix_summary: str = ""
    notes: List[str] = field(default_factory=list)


def parse_findings(text: str) -> List[Tuple[str, int, str]]:
    return sorted((os.path.normpath(m.group(1)), int(m.group(2)), m.group(3))
                  for m in FINDING.finditer(text))


def changed_files(diff: str, root: str) -> List[str]:
    out = []
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0]
            if path.startswith("b/"):
                path = path[2:]
            out.append(os.path.normpath(os.path.join(root, path)))
    return out


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = os.path.abspath(args.work)
        self.logs = os.path.join(self.work, "logs")
        self.tasks: List[Task] = []
        self.projects: Dict[int, Project] = {}
        self.trees: Dict[str, Dict] = {}
        self.real: Dict[str, Dict] = {}
        self.notes: List[str] = []
        self.env: Dict[str, str] = {}

    # set-up ------------------------------------------------------------------------------------

    def setup(self) -> None:
        a = self.args
        os.makedirs(self.logs, exist_ok=True)
        venvs = os.path.join(self.work, "venvs")
        self.bare = os.path.join(venvs, "flake8-bare")
        self.plugin = os.path.join(venvs, "flake8-plugin")
        ensure_venv(self.bare, a.python, ["flake8"])
        ensure_venv(self.plugin, a.python, ["flake8", "libcst"])
        self.digest = install_checkout(self.plugin, a.checkout, self.work)
        flake8_bare = quiet([os.path.join(self.bare, "bin", "flake8"), "--version"])
        flake8_plugin = quiet([os.path.join(self.plugin, "bin", "flake8"), "--version"])
        if "redis-pool-lint" in flake8_bare or "redis-pool-lint" not in flake8_plugin:
            sys.exit(f"the venvs are not as expected:\n{flake8_bare}\n{flake8_plugin}")
        self.py = venv_python(self.plugin)
        # The console script, not "python -m", which would import a redis_pool_lint folder
        # from the current directory (a checkout) instead of the installed copy.
        self.tool = os.path.join(self.plugin, "bin", "redis-pool-lint")
        self.ruff = find_ruff()
        self.jobs = {c: has_jobs(self.tool, c) for c in ("check", "fix")}
        self.env = {
            "cores": str(os.cpu_count()),
            "cpu": cpu_model(),
            "os": f"{platform.system()} {platform.release()}",
            "python": probe(self.py, "import platform; print(platform.python_implementation(), "
                                     "platform.python_version())"),
            "flake8": dist_version(self.py, "flake8"),
            "libcst": dist_version(self.py, "libcst"),
            "redis-pool-lint": dist_version(self.py, "redis-pool-lint"),
            "checkout": f"{os.path.abspath(a.checkout)} @ {git_describe(a.checkout)} "
                        f"(sources {self.digest[:12]})",
            "ruff": (quiet([self.ruff, "--version"]).split()[-1] if self.ruff else "not installed"),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
        for command, ok in self.jobs.items():
            if not ok:
                self.notes.append(f"`redis-pool-lint {command} --help` has no `--jobs`: "
                                  f"{command} runs with its defaults, no --jobs comparison")
        if not self.ruff:
            self.notes.append("ruff not found (pip install ruff): no ruff ceiling")

    def flake8_trees(self) -> None:
        corpus = ensure_corpus(self.bare, self.work)
        named = lambda pkg: f"{pkg} {_corpus_version(corpus, NO_REDIS.get(pkg, pkg))}"  # noqa: E731
        no_redis = QUICK_NO_REDIS if self.args.quick else sorted(NO_REDIS)
        specs = [("no Redis: " + ", ".join(named(n) for n in no_redis), "no-redis", no_redis, 1.05),
                 (f"redis-py's own source ({named('redis')})", "redis-py", ["redis"], 1.5)]
        for title, key, packages, limit in specs:
            dest = os.path.join(self.work, "trees", key)
            copy_tree(corpus, packages, dest)
            files = python_files(dest)
            hits = mentioning(files)
            if key == "no-redis" and hits:
                sys.exit(f"the no-Redis tree mentions redis in: {hits[:5]}")
            self.trees[key] = {"title": title, "files": len(files), "mention": len(hits),
                               "limit": limit, "root": dest}
            self.flake8_tasks(key, dest, len(files))

    def flake8_tasks(self, key: str, root: str, files: int) -> None:
        group = f"flake8:{key}"
        bare = os.path.join(self.bare, "bin", "flake8")
        plugin = os.path.join(self.plugin, "bin", "flake8")
        common = ["--isolated", "--jobs=1"]
        self.tasks += [
            Task(group, "without plugin", [bare, *common, "--select=E,F,W", "."], root, files),
            Task(group, "with plugin", [plugin, *common, "--select=E,F,W", "."], root, files),
            Task(group, "with plugin, RPL", [plugin, *common, "--select=E,F,W,RPL", "."], root, files),
        ]
        if self.ruff:
            self.tasks.append(Task(group, "ruff E,F", self.ruff_cmd(), root, files))

    def real_trees(self) -> None:
        """Issue 16: what installing the plugin costs flake8 on real trees, the cache cold (removed
        before each run) and warm, ``-j1`` (CPU) and ``-j2`` (wall); and ``check`` on polar
        beside its floor."""
        corpus = ensure_corpus(self.bare, self.work)
        trees = [("pydantic", f"pydantic {_corpus_version(corpus, 'pydantic')} (site-packages)",
                  os.path.join(corpus, "pydantic")),
                 ("redis-py", f"redis-py {_corpus_version(corpus, 'redis')} (site-packages)",
                  os.path.join(corpus, "redis"))]
        for key, rel in REAL_TREES.items():
            if key not in self.args.real_trees:
                continue
            found = [os.path.join(c, rel) for c in self.args.corpus if os.path.isdir(os.path.join(c, rel))]
            if found:
                trees.append((key, f"{key} ({rel})", found[0]))
            else:
                self.notes.append(f"{key}: not exported under {', '.join(self.args.corpus)}; not measured")
        bare = os.path.join(self.bare, "bin", "flake8")
        plugin = os.path.join(self.plugin, "bin", "flake8")
        for key, title, root in trees:
            files = python_files(root)
            probe_out = probe(self.py, PROBE.replace("ROOT", repr(root)))
            info = json.loads(probe_out)
            self.real[key] = {"title": title, "files": len(files), "seeds": info["seeds"], "root": root,
                              "parsed": len(info["parsed"]), "limit": COLD_LIMITS.get(key)}
            cache = os.path.join(self.work, "caches", key)
            group = f"plugin:{key}"
            for jobs in (1, 2):
                flags = ["--isolated", f"--jobs={jobs}", "--select=E,F,W"]
                for name, exe, wipe, extra in (("without plugin", bare, False, []),
                                               ("with plugin, cold cache", plugin, True, [f"--rpl-cache-dir={cache}"]),
                                               ("with plugin, warm cache", plugin, False, [f"--rpl-cache-dir={cache}"])):
                    script = (f"rm -rf {cache}; " if wipe else "") + 'exec "$@"'
                    self.tasks.append(Task(group, f"{name} -j{jobs}", ["sh", "-c", script, "sh", exe, *flags, *extra, "."],
                                           root, len(files)))
            if key == "polar":
                self.real[key]["listed"] = len(info["files"])
                lists = os.path.join(self.work, "lists")
                os.makedirs(lists, exist_ok=True)
                every = write_list(os.path.join(lists, "polar-all"), info["files"])
                parsed = write_list(os.path.join(lists, "polar-parsed"), info["parsed"])
                self.tasks += [
                    Task("check:polar", "read all + ast.parse analysed", [self.py, FLOORS, "read+ast", every, parsed],
                         root, len(info["files"])),
                    Task("check:polar", "check --jobs 1, no cache", [self.tool, "check", "--no-cache", "--jobs", "1",
                                                                    "--exit-zero", "-q", "."], root, len(info["files"])),
                    Task("check:polar", "check --jobs 2, no cache", [self.tool, "check", "--no-cache", "--jobs", "2",
                                                                    "--exit-zero", "-q", "."], root, len(info["files"])),
                ]

    def ruff_cmd(self) -> List[str]:
        return [self.ruff, "check", "--isolated", "--no-cache", "--select", "E,F", "--exit-zero", "."]

    def gen_projects(self) -> None:
        a = self.args
        lists = os.path.join(self.work, "lists")
        os.makedirs(lists, exist_ok=True)
        for size in a.sizes:
            root = os.path.join(self.work, "trees", f"gen-{size}")
            say(f"generating a {size}-module FastAPI project")
            planted = [(os.path.normpath(p), line, code)
                       for p, line, code in generate(root, size, a.seed, a.redis_share)]
            files = python_files(root)
            redis = mentioning(files)
            proj = self.projects[size] = Project(size, root, len(redis), sorted(planted))
            all_list = write_list(os.path.join(lists, f"gen-{size}-all"), files)
            redis_list = write_list(os.path.join(lists, f"gen-{size}-redis"), redis)
            group = f"gen:{size}"

            def add(name: str, cmd: List[str]) -> Task:
                self.tasks.append(Task(group, name, cmd, root, len(files)))
                return self.tasks[-1]

            floor = [self.py, FLOORS]
            add("read all files", floor + ["read", all_list])
            add("ast.parse all files", floor + ["ast", all_list])
            add("read all + libcst parse redis files", floor + ["read+libcst", all_list, redis_list])
            if size <= a.libcst_all_max:
                add("libcst parse all files", floor + ["libcst", all_list])
            tools: Dict[str, Task] = {}
            for command in ("check", "fix"):
                extra = ["--diff"] if command == "fix" else []
                base = [self.tool, command, *extra]
                label = "fix --diff" if command == "fix" else "check"
                if self.jobs[command]:
                    tools[command] = add(f"{label} --jobs 1", base + ["--jobs", "1", "."])
                    two = add(f"{label} --jobs 2", base + ["--jobs", "2", "."])
                    two.twin = tools[command]
                else:
                    tools[command] = add(label, base + ["."])
            self.validate(proj, tools)
            changed = write_list(os.path.join(lists, f"gen-{size}-changed"), proj.changed)
            add("libcst parse + print changed files", floor + ["libcst+print", changed])
            if self.ruff:
                add("ruff check E,F", self.ruff_cmd())
            if size == a.sizes[-1] and any(self.jobs.values()):
                # What two processes can gain on this machine now, beside the --jobs runs.
                add(SPIN_1, floor + ["spin", "1"]).files = 0
                add(SPIN_2, floor + ["spin", "2"]).files = 0

    def validate(self, proj: Project, tools: Dict[str, Task]) -> None:
        """The first run of check and fix (--jobs 1), read: the findings against the plan, the
        files that fix changes. It is their warm-up (and, for a slow one, its only timing)."""
        outputs: Dict[str, Tuple[str, str]] = {}
        for command, task in tools.items():
            self.once(task, "first", keep=False)
            outputs[command] = (read_text(task.first_out), read_text(task.first_out + ".err"))
        proj.reported = parse_findings(outputs["check"][0])
        fix_out, fix_err = outputs["fix"]
        proj.changed = changed_files(fix_out, proj.root)
        proj.fix_summary = next((line.split(": ", 1)[-1] for line in fix_err.splitlines()
                                 if line.startswith("redis-pool-lint: ") and "file(s)" in line), "?")
        if proj.reported != proj.planted:
            missing = sorted(set(proj.planted) - set(proj.reported))
            extra = sorted(set(proj.reported) - set(proj.planted))
            proj.notes.append(f"findings differ from the plan: missing {missing[:3]}"
                              f"{'...' if len(missing) > 3 else ''}, unexpected {extra[:3]}"
                              f"{'...' if len(extra) > 3 else ''}")
        say(f"  {proj.modules} modules: planted {len(proj.planted)} findings, check reported "
            f"{len(proj.reported)}; fix --diff: {proj.fix_summary}")

    # running -----------------------------------------------------------------------------------

    def run(self) -> None:
        slow = self.args.slow
        groups: Dict[str, List[Task]] = {}
        for t in self.tasks:
            groups.setdefault(t.group, []).append(t)
        say("warm-up: every other command once (file cache, bytecode)")
        for t in self.tasks:
            if t.warmup is None and t.twin is None and not self.args.no_warmup:
                self.once(t, "first", keep=False)
        for t in self.tasks:
            if t.warmup is not None and t.warmup.wall > slow:
                t.runs, t.single = [t.warmup], True
                self.notes.append(f"{t.group} {t.name}: timed once, by its first run ({t.warmup.wall:.0f} s "
                                  f"wall, over --slow {slow:g} s)")
            if t.twin is not None and t.twin.warmup is not None and t.twin.warmup.wall > slow:
                t.single = True
                self.notes.append(f"{t.group} {t.name}: timed once, in round 1 (its --jobs 1 twin is slow)")
        for r in range(self.args.rounds):
            say(f"round {r + 1} of {self.args.rounds}")
            for group, tasks in groups.items():
                k = r % len(tasks)
                for t in tasks[k:] + tasks[:k]:  # each round starts with another command
                    if not (t.single and t.runs):
                        self.once(t, f"r{r}")
        for key, tree in self.trees.items():  # what flake8 printed, with and without the plugin
            first = {t.name: read_text(t.first_out) for t in self.tasks if t.group == f"flake8:{key}"}
            tree["rpl"] = len(re.findall(r": RPL\d+ ", first.get("with plugin, RPL", "")))
            if first.get("without plugin") != first.get("with plugin"):
                self.notes.append(f"flake8 on {key}: E,F,W output differs with the plugin installed")
        for t in self.tasks:  # --jobs 2 must print what --jobs 1 printed
            if t.twin is not None and t.first_out and t.twin.first_out:
                if read_text(t.first_out) != read_text(t.twin.first_out):
                    self.projects[int(t.group.split(":")[1])].notes.append(
                        f"{t.name} printed something else than {t.twin.name} "
                        f"({t.first_out} against {t.twin.first_out})")

    def once(self, t: Task, tag: str, keep: bool = True) -> None:
        """Run a task once and keep its timing (``keep=False``: remember it as the first,
        warm-up run). Its stdout goes to the log folder, stderr beside it (``.err``)."""
        slug = re.sub(r"[^\w]+", "-", f"{t.group}-{t.name}").strip("-")
        out = os.path.join(self.logs, f"{slug}-{tag}")
        run = measure(t.cmd, t.cwd, out, self.args.timeout)
        bad = run.rc not in (0, 1)
        if bad:
            err = read_text(out + ".err").strip().splitlines()
            self.notes.append(f"{t.group} {t.name}: exit {run.rc} ({err[-1] if err else 'no message'}; "
                              f"see {out}.err)")
        if keep:
            t.runs.append(run)
        else:
            t.warmup = run
        t.first_out = t.first_out or out
        say(f"  {t.group:<16} {t.name:<40} wall {run.wall:7.2f}s cpu {run.cpu:7.2f}s "
            f"rss {run.rss_mib:6.0f}MiB{'  EXIT %d' % run.rc if bad else ''}"
            f"{'' if keep else '  (first run)'}")


#: Run in the plugin's environment: what the analysis reads and parses in a tree (its root project).
PROBE = """
import json
from redis_pool_lint.analysis.load import Settings, build, find_root
r = build(find_root(ROOT, [ROOT]), Settings())
print(json.dumps({"files": r.files, "parsed": sorted(r.first), "seeds": sum(bool(s[1]) for s in r.scans.values())}))
"""


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _corpus_version(corpus: str, dist: str) -> str:
    """The version of ``dist`` in a ``pip --target`` folder (from its ``.dist-info``)."""
    want = re.sub(r"[-_.]+", "_", dist).lower()
    for name in os.listdir(corpus):
        if name.endswith(".dist-info"):
            base, _, version = name[:-len(".dist-info")].rpartition("-")
            if re.sub(r"[-_.]+", "_", base).lower() == want:
                return version
    return "?"


# -- the report --------------------------------------------------------------------------------

def fmt(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def verdict(ok) -> str:
    if ok == "context":
        return "(context)"
    return "n/a" if ok is None else ("PASS" if ok else "**FAIL**")


def report(b: Bench, elapsed: float) -> Tuple[str, List[Dict]]:
    a = b.args
    e = b.env
    by: Dict[Tuple[str, str], Task] = {(t.group, t.name): t for t in b.tasks if t.runs}
    targets: List[Dict] = []

    def target(what: str, measured: str, limit: str, ok: Optional[bool]) -> None:
        targets.append({"target": what, "measured": measured, "limit": limit, "ok": ok})

    out = ["# redis-pool-lint speed", ""]
    out.append(f"{e['date']}; {e['cores']} cores ({e['cpu']}), {e['os']}; {e['python']}; "
               f"flake8 {e['flake8']}, libcst {e['libcst']}, ruff {e['ruff']}; "
               f"redis-pool-lint {e['redis-pool-lint']} from {e['checkout']}. "
               f"Medians of {a.rounds} round(s) after one untimed first run (slow commands: see "
               f"the notes); CPU is user+sys seconds of the process and its children; peak memory "
               f"is sampled from /proc every 50 ms (the largest process's high-water mark, or the "
               f"tree's summed RSS with workers). Load average at start {e['load_start']}, at end "
               f"{e.get('load_end', '?')}. The whole run took {elapsed / 60:.1f} min.")
    out.append("")
    if b.trees:
        out += ["## flake8 with and without the plugin installed", "",
                "`flake8 --isolated --jobs=1 --select=E,F,W .`, the same flake8 in two virtual "
                "environments, runs interleaved; seconds as CPU (wall). Ratio: median with / "
                "median without; then fastest with / fastest without, and the per-round ratios "
                "in brackets (their spread is the noise of the machine).", "",
                "| tree | files (mention redis) | without plugin | with plugin | ratio | "
                "with plugin, `--select=E,F,W,RPL` (RPL findings) | ratio | ruff `E,F` |",
                "|---|---|---|---|---|---|---|---|"]
        for key, tree in b.trees.items():
            g = f"flake8:{key}"
            base = by.get((g, "without plugin"))
            cells = [tree["title"], f"{tree['files']} ({tree['mention']})"]
            cells.append(f"{fmt(base.med('cpu'))} ({fmt(base.med('wall'))})" if base else "-")
            for name in ("with plugin", "with plugin, RPL"):
                t = by.get((g, name))
                if not (t and base):
                    cells += ["-", "-"]
                    continue
                ratio = t.med("cpu") / base.med("cpu")
                least = min(r.cpu for r in t.runs) / min(r.cpu for r in base.runs)
                rounds = ", ".join(f"{x.cpu / y.cpu:.2f}" for x, y in zip(t.runs, base.runs))
                found = f" ({tree.get('rpl', '?')})" if name.endswith("RPL") else ""
                cells += [f"{fmt(t.med('cpu'))} ({fmt(t.med('wall'))}){found}",
                          f"**{ratio:.3f}** (min {least:.3f}) [{rounds}]"]
                target(f"flake8 {name} / without, {key} tree (CPU)", f"{ratio:.3f}x",
                       f"<= {tree['limit']}x", ratio <= tree["limit"])
            ruff = by.get((g, "ruff E,F"))
            cells.append(f"{fmt(ruff.med('cpu'))} ({fmt(ruff.med('wall'))})" if ruff else "-")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if b.real:
        out += real_report(b, by, target)
    if b.projects:
        out += ["## Generated FastAPI projects", "",
                f"`python benchmarks/genproject.py --seed {a.seed} --redis-share {a.redis_share}`; "
                "`redis-pool-lint check .` and `fix --diff .` run in the project, the floors "
                "(`benchmarks/floors.py`) in the same interpreter. files/s = modules / wall.", ""]
        out += ["| modules | mention redis | planted findings | check reported | fix --diff |",
                "|---|---|---|---|---|"]
        for size, p in sorted(b.projects.items()):
            ok = p.reported == p.planted
            out.append(f"| {size} | {p.redis_files} | {len(p.planted)} | {len(p.reported)}"
                       f"{'' if ok else ' (differs)'} | {p.fix_summary} |")
            target(f"check finds the planted findings, {size} modules",
                   f"{len(p.reported)} of {len(p.planted)}", "all, nothing else", ok)
        out += ["", "| modules | command | wall s | CPU s | files/s | peak MiB | runs |",
                "|---|---|---|---|---|---|---|"]
        for size in sorted(b.projects):
            for t in b.tasks:
                if t.group == f"gen:{size}" and t.runs:
                    failed = sum(r.rc not in (0, 1) for r in t.runs)
                    peak = max(r.rss_mib for r in t.runs)
                    rate = f"{t.files / t.med('wall'):.0f}" if t.files else "-"
                    out.append(f"| {size} | {t.name} | {fmt(t.med('wall'))} | {fmt(t.med('cpu'))} "
                               f"| {rate} | {f'{peak:.0f}' if peak else '-'} "
                               f"| {len(t.runs)}{f' ({failed} failed)' if failed else ''} |")
        out.append("")
        gen_targets(b, by, target)
    out += ["## Targets", "", "| target | measured | limit | result |", "|---|---|---|---|"]
    out += [f"| {t['target']} | {t['measured']} | {t['limit']} | {verdict(t['ok'])} |" for t in targets]
    notes = b.notes + [f"{size} modules: {n}" for size, p in sorted(b.projects.items()) for n in p.notes]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n", targets


def real_report(b: Bench, by: Dict[Tuple[str, str], Task], target) -> List[str]:
    """The plugin's cost on real trees (issue 16), and check on polar beside its floor."""
    out = ["## Installing the plugin, on real trees", "",
           "`flake8 --isolated --select=E,F,W --jobs=N .` without and with the plugin installed; with it, "
           "the cache removed before each run (cold) or left by the run before (warm). `-j1`: CPU "
           "seconds, `-j2`: wall seconds; medians, runs interleaved; ratios to without (the fastest "
           "run of each in brackets).", "",
           "| tree | files (import a client library; parsed) | -j1 without | cold | warm | -j2 without | cold | warm |",
           "|---|---|---|---|---|---|---|---|"]
    for key, tree in b.real.items():
        g = f"plugin:{key}"
        cells = [tree["title"], f"{tree['files']} ({tree['seeds']}; {tree['parsed']})"]
        for jobs, attr in ((1, "cpu"), (2, "wall")):
            base = by.get((g, f"without plugin -j{jobs}"))
            cells.append(f"{fmt(base.med(attr))}" if base else "-")
            for state, limit in (("cold", tree["limit"]), ("warm", WARM_LIMIT)):
                t = by.get((g, f"with plugin, {state} cache -j{jobs}"))
                if not (t and base):
                    cells.append("-")
                    continue
                ratio = t.med(attr) / base.med(attr)
                least = min(getattr(r, attr) for r in t.runs) / min(getattr(r, attr) for r in base.runs)
                cells.append(f"{fmt(t.med(attr))}: **{ratio:.3f}** ({least:.3f})")
                target(f"flake8 with / without the plugin, {key}, {state} cache, -j{jobs} ({attr})",
                       f"{ratio:.3f}x (fastest {least:.3f}x)", "-" if limit is None else f"<= {limit}x",
                       "context" if limit is None else ratio <= limit)
        out.append("| " + " | ".join(cells) + " |")
    floor = by.get(("check:polar", "read all + ast.parse analysed"))
    if floor:
        out += ["", "| `check` on polar | CPU s | / floor |", "|---|---|---|",
                f"| read all {b.real['polar'].get('listed') or b.real['polar']['files']} files + `ast.parse` of "
                f"the {b.real['polar']['parsed']} analysed (floor) | {fmt(floor.med('cpu'))} | 1 |"]
        for jobs in (1, 2):
            t = by.get(("check:polar", f"check --jobs {jobs}, no cache"))
            if t:
                r = t.med("cpu") / floor.med("cpu")
                out.append(f"| `check --jobs {jobs} --no-cache` (wall {fmt(t.med('wall'))}) | {fmt(t.med('cpu'))} | {r:.2f}x |")
                if jobs == 1:
                    target("check on polar / (read all + ast.parse of the analysed files) (CPU)", f"{r:.2f}x",
                           f"<= {CHECK_FLOOR_LIMIT}x", r <= CHECK_FLOOR_LIMIT)
    return out + [""]


def gen_targets(b: Bench, by: Dict[Tuple[str, str], Task], target) -> None:
    sizes = sorted(b.projects)

    def tool(size: int, label: str, jobs: str = "1") -> Optional[Task]:
        command = "fix" if label.startswith("fix") else "check"
        name = f"{label} --jobs {jobs}" if b.jobs[command] else label
        return by.get((f"gen:{size}", name))

    floors = (("check", "read all + libcst parse redis files", 1.3),
              ("fix --diff", "libcst parse + print changed files", 1.5))
    for size in sizes:
        for label, floor_name, limit in floors:
            floor, t = by.get((f"gen:{size}", floor_name)), tool(size, label)
            if floor and t:
                r = t.med("cpu") / floor.med("cpu")
                target(f"{label} / ({floor_name}), {size} modules (CPU)", f"{r:.2f}x",
                       f"<= {limit}x", r <= limit)
        # A fixer must find what to fix before it rewrites: check's own time plus libcst's parse
        # and print of the changed files is the least any analyse-then-rewrite fixer spends.
        fix, check = tool(size, "fix --diff"), tool(size, "check")
        floor = by.get((f"gen:{size}", "libcst parse + print changed files"))
        if fix and check and floor:
            r = fix.med("cpu") / (check.med("cpu") + floor.med("cpu"))
            target(f"context: fix --diff / (check + libcst parse + print changed files), {size} modules (CPU)",
                   f"{r:.2f}x", "1x at best", "context")
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        limit = 1.1 * hi / lo
        for label in ("check", "fix --diff"):
            t_lo, t_hi = tool(lo, label), tool(hi, label)
            if t_lo and t_hi:
                r = t_hi.med("cpu") / t_lo.med("cpu")
                target(f"{label}: time at {hi} / time at {lo} modules (CPU; {hi / lo:g}x the files)",
                       f"{r:.1f}x", f"<= {limit:.1f}x", r <= limit)
    hi = sizes[-1]
    for label in ("check", "fix --diff"):
        t = tool(hi, label)
        if t:
            peak = max(r.rss_mib for r in t.runs)
            target(f"{label}: peak memory at {hi} modules", f"{peak:.0f} MiB", "< 1024 MiB", peak < 1024)
    for label in ("check", "fix --diff"):
        command = "fix" if label.startswith("fix") else "check"
        if not b.jobs[command]:
            target(f"{label}: --jobs 2 speed-up at {hi} modules", "no --jobs option", ">= 1.7x", None)
            continue
        one, two = tool(hi, label, "1"), tool(hi, label, "2")
        if one and two:
            r = one.med("wall") / two.med("wall")
            target(f"{label}: --jobs 1 / --jobs 2 at {hi} modules (wall)", f"{r:.2f}x", ">= 1.7x", r >= 1.7)
    spin1, spin2 = by.get((f"gen:{hi}", SPIN_1)), by.get((f"gen:{hi}", SPIN_2))
    if spin1 and spin2:
        r = spin1.med("wall") / spin2.med("wall")
        target("context: this machine, 2 processes / 1 process of a CPU loop (wall), interleaved with "
               "the --jobs runs: what --jobs 2 could gain here at most", f"{r:.2f}x", "2x on 2 idle cores",
               "context")


def chart(b: Bench, path: str) -> Optional[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return "matplotlib not installed: no chart"
    e = b.env
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    sizes = sorted(b.projects)
    names: List[str] = []
    for t in b.tasks:
        if t.group.startswith("gen:") and t.name not in names and not t.name.startswith("machine:"):
            names.append(t.name)
    styles = {"check": ("-", "o", 2.5), "fix": ("-", "s", 2.5), "ruff": (":", "^", 1.5)}
    colors = {"read all files": "tab:blue", "ast.parse all files": "tab:orange",
              "read all + libcst parse redis files": "tab:green", "libcst parse all files": "tab:brown",
              "libcst parse + print changed files": "tab:olive", "ruff check E,F": "tab:cyan",
              "check": "tab:purple", "fix": "tab:red"}
    for name in names:
        xs, ys = [], []
        for size in sizes:
            t = next((t for t in b.tasks if t.group == f"gen:{size}" and t.name == name and t.runs), None)
            if t:
                xs.append(size)
                ys.append(t.med("wall"))
        if xs:
            ls, marker, lw = styles.get(name.split()[0], ("--", ".", 1.2))
            if name.endswith("--jobs 2"):
                ls, lw = "-.", lw * 0.6
            ax.plot(xs, ys, linestyle=ls, marker=marker, linewidth=lw, label=name,
                    color=colors.get(name, colors.get(name.split()[0])))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("modules in the generated FastAPI project")
    ax.set_ylabel(f"wall seconds, median of {b.args.rounds} (log scale)")
    ax.set_title("redis-pool-lint check / fix --diff beside floors and ruff")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    ax = axes[1]
    keys = list(b.trees)
    labels = ["without plugin", "with plugin", "with plugin, RPL"]
    width = 0.25
    for i, label in enumerate(labels):
        vals = []
        for key in keys:
            t = next((t for t in b.tasks if t.group == f"flake8:{key}" and t.name == label and t.runs), None)
            vals.append(t.med("cpu") if t else 0)
        bars = ax.bar([k + (i - 1) * width for k in range(len(keys))], vals, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{k}\n({b.trees[k]['files']} files)" for k in keys])
    ax.set_ylabel(f"CPU seconds (user+sys), median of {b.args.rounds}")
    ax.set_title("flake8 --select=E,F,W -j1: plugin installed or not")
    ax.legend(fontsize=8)
    fig.suptitle(f"redis-pool-lint speed, {e['date']}: {e['cores']} cores, {e['python']}, "
                 f"flake8 {e['flake8']}, libcst {e['libcst']}, ruff {e['ruff']}; load average "
                 f"{e['load_start'].split()[0]} at start, {e.get('load_end', '?').split()[0]} at end",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# -- main --------------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--checkout", default=os.path.dirname(HERE),
                   help="the redis-pool-lint sources to measure (default: this repository)")
    p.add_argument("--sizes", default="1000,5000,20000",
                   help="modules of the generated projects (default 1000,5000,20000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds, medians reported (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: sizes 200,1000, 1 round, a smaller no-Redis tree")
    p.add_argument("--out", default=os.path.join(HERE, "results"),
                   help="folder for speed.md, speed.json, speed.png (default benchmarks/results)")
    p.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/redis-pool-lint-bench"),
                   help="cache for venvs, trees and logs (default /tmp/redis-pool-lint-bench)")
    p.add_argument("--python", default=sys.executable, help="interpreter of the venvs")
    p.add_argument("--seed", type=int, default=6, help="generator seed (default 6)")
    p.add_argument("--redis-share", type=float, default=0.15,
                   help="share of generated modules that use Redis (default 0.15)")
    p.add_argument("--libcst-all-max", type=int, default=5000,
                   help="libcst-parse all files only for projects up to this size (default 5000)")
    p.add_argument("--slow", type=float, default=60.0,
                   help="a command whose first run takes longer (wall s) is timed by that run alone, "
                   "and its --jobs 2 twin once (default 60)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="kill a command after this many seconds (default 1800)")
    p.add_argument("--skip-flake8", action="store_true", help="only the generated projects")
    p.add_argument("--skip-real", action="store_true", help="no real trees (issue 16's comparison)")
    p.add_argument("--only-real", action="store_true", help="only the real trees")
    p.add_argument("--real-trees", default=",".join(REAL_TREES), type=lambda v: v.split(","),
                   help=f"which exported trees to measure (default {','.join(REAL_TREES)})")
    p.add_argument("--no-warmup", action="store_true", help="no untimed first run (long runs on a warm machine)")
    p.add_argument("--corpus", action="append", default=None, metavar="DIR",
                   help="folders holding exported real trees (default: ../corpus/dev and ../corpus/large "
                   "beside the checkout)")
    p.add_argument("--skip-projects", action="store_true", help="only the flake8 comparison")
    a = p.parse_args(argv)
    if a.quick:
        a.sizes, a.rounds = "200,1000", 1
    a.sizes = sorted({int(s) for s in a.sizes.split(",") if s.strip()})
    a.checkout = os.path.abspath(a.checkout)
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    started = time.perf_counter()
    b = Bench(a)
    b.setup()
    if a.corpus is None:
        a.corpus = [os.path.join(os.path.dirname(a.checkout), "corpus", d) for d in ("dev", "large")]
    if not a.skip_real:
        b.real_trees()
    if not a.skip_flake8 and not a.only_real:
        b.flake8_trees()
    if not a.skip_projects and not a.only_real:
        b.gen_projects()
    b.run()
    b.env["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    os.makedirs(a.out, exist_ok=True)
    text, targets = report(b, time.perf_counter() - started)
    note = chart(b, os.path.join(a.out, "speed.png"))
    if note:
        text += f"\n{note}\n"
    with open(os.path.join(a.out, "speed.md"), "w") as fh:
        fh.write(text)
    projects = {size: {"modules": p.modules, "mention_redis": p.redis_files,
                       "planted": len(p.planted), "reported": len(p.reported),
                       "changed": len(p.changed), "fix_summary": p.fix_summary, "notes": p.notes}
                for size, p in b.projects.items()}
    runs = [{"group": t.group, "name": t.name, "cmd": t.cmd, "files": t.files,
             "warmup": asdict(t.warmup) if t.warmup else None, "runs": [asdict(r) for r in t.runs]}
            for t in b.tasks]
    with open(os.path.join(a.out, "speed.json"), "w") as fh:
        json.dump({"env": b.env, "args": vars(a), "trees": b.trees, "real": b.real, "projects": projects,
                   "targets": targets, "notes": b.notes, "runs": runs}, fh, indent=1)
    print(text)
    say(f"wrote {a.out}/speed.md, speed.json{'' if note else ', speed.png'}")
    return 0 if all(t["ok"] is not False for t in targets) else 1  # "context" rows never fail


if __name__ == "__main__":
    sys.exit(main())
