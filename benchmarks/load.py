"""Load the apps in fixtures/apps before and after `redis-pool-lint fix`, against a real Redis.

    python benchmarks/load.py [--apps NAME,...] [--concurrency 1,10,50,200]
                              [--requests N] [--seconds T] [--chart PATH] [--json PATH]

For each app: a throwaway redis-server on a free loopback port; a temporary copy of the app as
it is ("before") and one rewritten by `redis-pool-lint fix` ("after"); for each copy and each
concurrency, a fresh uvicorn (one worker) and a bounded load (N requests or T seconds, whichever
comes first) from benchmarks/httpload.py in its own process. Per run it records successful
(2xx) responses per second, p50/p99 latency of those, errors (non-2xx responses and failed
requests), new Redis connections (the `total_connections_received` delta of `INFO stats`) and
peak `connected_clients` (sampled every 20 ms). It prints a Markdown table and the checks the
fix must pass, and writes a PNG chart. Exit status: 0 when every check passes, 1 when one
fails, 2 when the benchmark itself could not run.

Every process it starts runs in its own process group and is stopped on the way out, also on
Ctrl-C and SIGTERM.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = ROOT / "fixtures" / "apps"
HTTPLOAD = Path(__file__).resolve().parent / "httpload.py"


@dataclass(frozen=True)
class App:
    name: str  # its folder under fixtures/apps
    target: str  # uvicorn's module:attr
    path: str  # the GET the load sends
    counter: str  # the key that GET increments once per request
    pattern: str  # what it does per request, for the table
    min_speedup: float  # what the fix must buy at the highest concurrency


APPS = [
    App("from_pool", "main:app", "/pages/home/views", "page:home:views",
        "`async with Redis.from_pool(app.state.pool)`", 5.0),
    App("client_per_request", "main:app", "/quota/team-a", "quota:team-a:used",
        "`Redis(host=...)` per request, `aclose()`", 2.0),
    App("router_dependency", "app.main:app", "/articles/7", "article:7:views",
        "`from_url` yield dependency, router module", 2.0),
    App("sync_handlers", "main:app", "/sessions/s1/touch", "session:s1:hits",
        "sync `def` handlers, sync client per request", 2.0),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """The processes the benchmark started, each in its own process group."""

    def __init__(self):
        self.running = []

    def start(self, args, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig=signal.SIGINT, timeout=10.0) -> None:
        """Signal the process group, wait, then kill it. SIGINT lets uvicorn run its shutdown."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.running[:]):
            self.stop(proc, signal.SIGTERM, timeout=5.0)


def wait_until(ready, proc: subprocess.Popen, what: str, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (OSError, redis.RedisError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.05)


def start_redis(procs: Processes, workdir: Path) -> tuple:
    """A throwaway redis-server on a free loopback port: (its process, its URL)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (bash benchmarks/run installs Debian's)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = procs.start([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(workdir)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis.Redis.from_url(url).ping(), proc, "redis-server")
    return proc, url


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


SERVER_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception))\b(?::\s*(.*))?$", re.M)


def server_errors(log: Path) -> dict:
    """The exceptions the app logged, most frequent first: the last line of each traceback."""
    text = log.read_text(errors="replace") if log.exists() else ""
    kinds = Counter(f"{name}: {msg}"[:160] if msg else name for name, msg in SERVER_ERROR.findall(text))
    return dict(kinds.most_common(3))


def measure(procs: Processes, app_dir: Path, app: App, redis_url: str, concurrency: int,
            requests: int, seconds: float, log: Path, python: str = sys.executable,
            log_level: str = "warning") -> dict:
    """Serve the app with a fresh uvicorn, load it, and count what Redis saw."""
    probe = redis.Redis.from_url(redis_url)
    received = probe.info("stats")["total_connections_received"]
    counted = int(probe.get(app.counter) or 0)
    port = free_port()
    with open(log, "w") as out:
        server = procs.start(
            [python, "-m", "uvicorn", app.target, "--host", "127.0.0.1", "--port", str(port),
             "--log-level", log_level, "--no-access-log"],
            cwd=app_dir, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(app_dir)})
    try:
        wait_until(lambda: port_open(port), server, f"uvicorn {app.target}")
        gen = procs.start([sys.executable, str(HTTPLOAD), f"http://127.0.0.1:{port}{app.path}",
                           "--concurrency", str(concurrency), "--requests", str(requests),
                           "--seconds", str(seconds)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0
        while gen.poll() is None:
            peak = max(peak, probe.info("clients")["connected_clients"] - 1)  # not the probe
            time.sleep(0.02)
        out, err = gen.communicate()
        procs.stop(gen)
        if gen.returncode != 0:
            raise RuntimeError(f"the load generator failed: {err.strip()[-2000:]}")
    finally:
        procs.stop(server)
    result = json.loads(out)
    result.update(concurrency=concurrency, peak_clients=peak,
                  new_connections=probe.info("stats")["total_connections_received"] - received,
                  counted=int(probe.get(app.counter) or 0) - counted,
                  server_errors=server_errors(log))
    probe.close()
    return result


def prepare(app: App, work: Path, bound: int) -> tuple:
    """Copies of the app as it is and as `redis-pool-lint fix` leaves it; the fixer's report."""
    before, after = work / app.name / "before", work / app.name / "after"
    for dest in (before, after):
        shutil.copytree(APPS_DIR / app.name, dest, ignore=shutil.ignore_patterns("__pycache__"))
    fix = subprocess.run(
        [sys.executable, "-m", "redis_pool_lint", "fix", "--app", app.target,
         "--max-connections", str(bound), "."],
        cwd=after, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})  # this checkout's redis_pool_lint
    changed = [p.relative_to(after).as_posix() for p in sorted(after.rglob("*.py"))
               if p.read_bytes() != (before / p.relative_to(after)).read_bytes()]
    report = (fix.stderr.strip() or fix.stdout.strip()).splitlines()
    if fix.returncode == 2 or not changed:
        raise RuntimeError(f"redis-pool-lint fix did not rewrite {app.name} "
                           f"(exit {fix.returncode}):\n" + "\n".join(report[-30:]))
    return before, after, {"exit": fix.returncode, "changed": changed, "report": report[-5:]}


def versions(python: str = sys.executable) -> dict:
    code = ("import json, platform, fastapi, uvicorn, starlette, redis; from importlib.util import "
            "find_spec; print(json.dumps({"
            "'python': platform.python_version(), 'redis-py': redis.__version__, "
            "'fastapi': fastapi.__version__, 'starlette': starlette.__version__, "
            "'uvicorn': uvicorn.__version__, "  # and what uvicorn picks with no --loop/--http:
            "'uvicorn loop': 'uvloop' if find_spec('uvloop') else 'asyncio', "
            "'uvicorn http': 'httptools' if find_spec('httptools') else 'h11'}))")
    out = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    out["redis-server"] = (re.search(r"v=(\S+)", server) or [None, "?"])[1]
    cpu = ""
    if os.path.exists("/proc/cpuinfo"):
        cpu = (re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()) or [0, ""])[1]
    out["machine"] = f"{os.cpu_count()} cores{', ' + cpu if cpu else ''}, {platform.system()}"
    out["date"] = datetime.date.today().isoformat()
    return out


# -- report ---------------------------------------------------------------------------------


def fmt(value, digits=0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if digits else f"{round(value):,}"


def table(results: list) -> str:
    rows = ["| app (per-request pattern before the fix) | concurrency | req/s (2xx) | p50 ms | p99 ms "
            "| errors / requests | new Redis connections | peak Redis clients |",
            "|---|---|---|---|---|---|---|---|"]
    for res in results:
        app = next(a for a in APPS if a.name == res["app"])
        for b, a in zip(res["before"], res["after"]):
            cells = [
                f"{fmt(b['rps'])} → {fmt(a['rps'])}",
                f"{fmt(b['p50_ms'], 1)} → {fmt(a['p50_ms'], 1)}",
                f"{fmt(b['p99_ms'], 1)} → {fmt(a['p99_ms'], 1)}",
                f"{fmt(b['errors'])}/{fmt(b['requests'])} → {fmt(a['errors'])}/{fmt(a['requests'])}",
                f"{fmt(b['new_connections'])} → {fmt(a['new_connections'])}",
                f"{fmt(b['peak_clients'])} → {fmt(a['peak_clients'])}",
            ]
            rows.append(f"| {app.name}: {app.pattern} | {b['concurrency']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def checks(results: list, bound: int) -> list:
    """(passed, statement) for what the fix must show for every app."""
    out = []
    for res in results:
        app = next(a for a in APPS if a.name == res["app"])
        after, before = res["after"], res["before"]
        errors = sum(r["errors"] for r in after)
        out.append((errors == 0, f"{app.name}: {errors} errors after the fix at every concurrency"))
        lost = sum(abs(r["counted"] - r["ok"]) for r in after)
        out.append((lost == 0, f"{app.name}: after the fix, Redis counted {lost} increments more or "
                               f"fewer than the 2xx responses"))
        most = max(r["new_connections"] for r in after)
        out.append((most <= bound, f"{app.name}: at most {most} new Redis connections per run "
                                   f"after the fix (pool bound {bound})"))
        top_b, top_a = before[-1], after[-1]
        gain = top_a["rps"] / top_b["rps"] if top_b["rps"] else float("inf")
        times = f"{gain:.1f}x" if top_b["rps"] else f"{fmt(top_a['rps'])} against 0"
        out.append((gain >= app.min_speedup,
                    f"{app.name}: {times} the req/s (2xx) of before at concurrency "
                    f"{top_a['concurrency']} (needs {app.min_speedup:g}x)"))
    return out


def chart(results: list, meta: dict, bound: int, dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    panels = [
        (axes[0][0], "rps", "successful (2xx) responses per second",
         "Throughput (higher is better)", "linear"),
        (axes[0][1], "p99_ms", "p99 latency of 2xx responses (ms, log)",
         "Tail latency (lower is better)", "log"),
        (axes[1][0], "error_pct", "errors (% of requests sent)", "Errors: non-2xx and failed requests",
         "linear"),
        (axes[1][1], "new_connections", "new Redis connections per run (symlog)",
         "New Redis connections (INFO stats total_connections_received)", "symlog"),
    ]
    palette = plt.get_cmap("tab10").colors
    colors = {a.name: palette[i % 10] for i, a in enumerate(APPS)}  # the same colour in every chart
    for res in results:
        for variant, style in (("before", "--"), ("after", "-")):
            runs = res[variant]
            xs = [r["concurrency"] for r in runs]
            values = {
                "rps": [r["rps"] for r in runs],
                "p99_ms": [r["p99_ms"] if r["p99_ms"] is not None else float("nan") for r in runs],
                "error_pct": [100.0 * r["errors"] / max(1, r["requests"]) for r in runs],
                "new_connections": [r["new_connections"] for r in runs],
            }
            for ax, key, *_ in panels:
                color = colors[res["app"]]
                ax.plot(xs, values[key], style, color=color, marker="o",
                        markerfacecolor="white" if variant == "before" else color)
    for ax, _, ylabel, title, yscale in panels:
        ax.set_xscale("log")
        ax.set_xticks([r["concurrency"] for r in results[0]["after"]])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.minorticks_off()
        if yscale == "symlog":  # 0 new connections is a possible value
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylim(0, 3 * max(r["new_connections"] for res in results for v in ("before", "after")
                                   for r in res[v]))
        else:
            ax.set_yscale(yscale)
        ax.set_xlabel("concurrent clients (keep-alive connections)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=11)
        ax.grid(True, which="major", alpha=0.3)
    axes[1][0].set_ylim(-3, 103)
    if not any(r["errors"] for res in results for r in res["after"]):
        axes[1][0].annotate("after the fix: 0 errors for every app (solid lines at 0)", (0.5, 0.1),
                            xycoords="axes fraction", ha="center", fontsize=9)
    axes[0][0].set_ylim(bottom=0)
    axes[1][1].axhline(bound, color="black", linewidth=1, linestyle=":")
    axes[1][1].annotate(f"pool bound after the fix: max_connections={bound}", (1, bound),
                        textcoords="offset points", xytext=(4, 5), fontsize=8)
    handles = [Line2D([], [], color=colors[res["app"]], marker="o", label=res["app"])
               for res in results]
    handles += [Line2D([], [], color="gray", linestyle="--", marker="o", markerfacecolor="white",
                       label="before the fix"),
                Line2D([], [], color="gray", linestyle="-", marker="o", label="after redis-pool-lint fix")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle("FastAPI apps that build a Redis client per request, before (dashed) and after (solid) "
                 "`redis-pool-lint fix`", fontsize=13)
    fig.text(0.5, 0.935, f"one uvicorn worker; per run up to {meta['requests']:,} requests or "
             f"{meta['seconds']:g} s; {meta['date']}, Python {meta['python']}, redis-py {meta['redis-py']}, "
             f"FastAPI {meta['fastapi']}, uvicorn {meta['uvicorn']}, redis-server {meta['redis-server']}, "
             f"{meta['machine'].split(',')[0]}", ha="center", fontsize=9, color="dimgray")
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100)
    plt.close(fig)


# -- command --------------------------------------------------------------------------------


def run(args, procs: Processes, work: Path, python: str) -> list:
    """Every app before and after the fix, served by `python`: one result per app."""
    results = []
    for app in [a for a in APPS if a.name in args.apps]:
        before, after, fix = prepare(app, work, args.max_connections)
        print(f"{app.name}: redis-pool-lint fix changed {', '.join(fix['changed'])}: "
              f"{fix['report'][-1] if fix['report'] else ''}", file=sys.stderr)
        server, redis_url = start_redis(procs, work / app.name / "redis")
        res = {"app": app.name, "fix": fix, "before": [], "after": []}
        for c in args.concurrency:  # before and after back to back: they share the machine's mood
            for variant, folder in (("before", before), ("after", after)):
                r = measure(procs, folder, app, redis_url, c, args.requests, args.seconds,
                            work / app.name / f"{variant}-{c}.log", python)
                res[variant].append(r)
                print(f"  {variant:6} c={c:<4} {r['rps']:8.1f} req/s  errors {r['errors']}/{r['requests']}"
                      f"  new conns {r['new_connections']}  peak {r['peak_clients']}"
                      f"  {next(iter(r['server_errors']), '')}", file=sys.stderr, flush=True)
        procs.stop(server, signal.SIGTERM)
        results.append(res)
    return results


def interpreter(version: str, work: Path) -> str:
    """The Python that serves the apps: this one, or a throwaway venv with that redis-py."""
    if version == "installed":
        return sys.executable
    venv = work / f"venv-redis-{version}"
    print(f"installing redis=={version} in a throwaway venv", file=sys.stderr)
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                          capture_output=True, text=True)
    python = str(venv / "bin" / "python")
    if made.returncode == 0:
        made = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               f"redis=={version}"], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"could not install redis=={version}: {made.stderr.strip()[-1000:]}")
    return python


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_all(args) -> list:
    """`run` for each redis-py version, cleaning up processes and files whatever happens:
    [{"meta": ..., "results": [...]}, ...]."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where a shell ignores it
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="rpl-bench-"))
    runs = []
    try:
        for version in args.redis_py:
            started = time.monotonic()
            python = interpreter(version, work)
            meta = {**versions(python), "requests": args.requests, "seconds": args.seconds,
                    "max_connections": args.max_connections}
            print("  ".join(f"{k} {v}" for k, v in meta.items()), file=sys.stderr)
            results = run(args, procs, work / f"redis-py-{version}", python)
            meta["wall_seconds"] = round(time.monotonic() - started)
            runs.append({"meta": meta, "results": results})
        return runs
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up
        procs.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=lambda s: s.split(","), default=[a.name for a in APPS],
                    help="comma-separated app folders under fixtures/apps (default: all)")
    ap.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")],
                    default=[1, 10, 50, 200])
    ap.add_argument("--requests", type=int, default=5000, help="requests per run at most")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of load per run at most")
    ap.add_argument("--max-connections", type=int, default=50,
                    help="the pool bound given to redis-pool-lint fix")
    ap.add_argument("--redis-py", type=lambda s: s.split(","), default=["installed"],
                    metavar="VERSION,...",
                    help="serve the apps with these redis-py versions, each but `installed` "
                         "in a throwaway venv, e.g. installed,5.0.8 (default: installed)")
    ap.add_argument("--chart", type=Path, default=ROOT / "benchmarks" / "load.png",
                    help="where the PNG goes; with several --redis-py versions, one per version "
                         "named after it")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--from-json", type=Path, metavar="PATH",
                    help="run nothing: report and chart the results a --json run wrote")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (copies, logs)")
    args = ap.parse_args(argv)
    unknown = set(args.apps) - {a.name for a in APPS}
    if unknown:
        ap.error(f"unknown app(s): {', '.join(sorted(unknown))}")

    if args.from_json:
        runs = json.loads(args.from_json.read_text())["runs"]
    else:
        try:
            runs = run_all(args)
        except KeyboardInterrupt:
            print("interrupted: stopped every process the benchmark started", file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 2
        if args.json:
            args.json.write_text(json.dumps({"runs": runs}, indent=1))
    status = 0
    for one in runs:
        chart_path = args.chart
        if len(runs) > 1:
            chart_path = chart_path.with_name(f"{chart_path.stem}-redis-py-{one['meta']['redis-py']}"
                                              f"{chart_path.suffix}")
        status = max(status, report(one["results"], one["meta"], chart_path))
    return status


def report(results: list, meta: dict, chart_path: Path) -> int:
    """Print the table and the checks, write the chart; 0 when every check passes."""
    bound = meta["max_connections"]
    chart(results, meta, bound, chart_path)
    verdicts = checks(results, bound)
    serving = f" ({meta['uvicorn loop']}, {meta['uvicorn http']})" if "uvicorn loop" in meta else ""
    print(f"{meta['date']}; Python {meta['python']}, redis-py {meta['redis-py']}, FastAPI "
          f"{meta['fastapi']}, uvicorn {meta['uvicorn']}{serving}, redis-server {meta['redis-server']}; "
          f"{meta['machine']}; up to {meta['requests']} requests or {meta['seconds']:g} s per run; "
          f"{meta['wall_seconds']} s in all. Each cell: before → after `redis-pool-lint fix`.\n")
    print(table(results))
    print()
    for passed, text in verdicts:
        print(f"- {'ok  ' if passed else 'FAIL'} {text}")
    print(f"\nchart: {chart_path}")
    return 0 if all(p for p, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
