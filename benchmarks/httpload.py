"""A lean HTTP/1.1 load generator: C keep-alive connections, one GET in flight on each.

    python benchmarks/httpload.py URL --concurrency C --requests N --seconds T

Sends N requests in all, or stops sending after T seconds, whichever comes first; requests in
flight at that point get a few seconds of grace, then count as errors. Prints one JSON object.

It is raw asyncio streams with the request bytes built once and only the status line and
Content-Length parsed, so one core drives a few thousand requests per second: httpx tops out
near 200 req/s on a 2-core machine and would hide the differences the benchmark looks for. Run
it in its own process, away from the server it loads.
"""
import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

GRACE = 5.0  # seconds a request in flight at the deadline may still take


class Load:
    def __init__(self, url: str, concurrency: int, requests: int, seconds: float):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                        "User-Agent: httpload\r\nAccept: */*\r\n\r\n").encode("ascii")
        self.concurrency, self.left, self.seconds = concurrency, requests, seconds
        self.latencies = []  # seconds, of 2xx responses
        self.statuses = Counter()
        self.exceptions = Counter()
        self.deadline = 0.0

    async def connect(self):
        return await asyncio.open_connection(self.host, self.port)

    async def exchange(self, reader, writer) -> tuple:
        """Send the request, read one response: (status, keep the connection open?)."""
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            await reader.readexactly(int(lower[at + 17:end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.read()  # body delimited by the end of the connection
            return status, False
        return status, b"\r\nconnection: close" not in lower

    async def worker(self, conn) -> None:
        reader, writer = conn if conn else (None, None)
        loop = asyncio.get_running_loop()
        while self.left > 0 and loop.time() < self.deadline:
            self.left -= 1
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await self.connect()
                timeout = self.deadline + GRACE - loop.time()
                status, keep = await asyncio.wait_for(self.exchange(reader, writer), timeout)
            except Exception as exc:  # every failure is a result here, and the connection is spent
                self.exceptions[f"{type(exc).__name__}: {exc}"[:200]] += 1
                keep = False
            else:
                self.statuses[status] += 1
                if 200 <= status < 300:
                    self.latencies.append(time.perf_counter() - start)
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def run(self) -> dict:
        conns = await asyncio.gather(*(self.connect() for _ in range(self.concurrency)),
                                     return_exceptions=True)
        conns = [None if isinstance(c, Exception) else c for c in conns]
        loop = asyncio.get_running_loop()
        began = loop.time()
        self.deadline = began + self.seconds
        await asyncio.gather(*(self.worker(c) for c in conns))
        elapsed = loop.time() - began
        return self.summary(elapsed)

    def summary(self, elapsed: float) -> dict:
        lat = sorted(self.latencies)

        def pct(p):
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None

        ok = len(lat)
        non_2xx = sum(n for s, n in self.statuses.items() if not 200 <= s < 300)
        errors = non_2xx + sum(self.exceptions.values())
        return {"requests": ok + errors, "ok": ok, "non_2xx": non_2xx,
                "exceptions": sum(self.exceptions.values()), "errors": errors,
                "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
                "exception_kinds": dict(self.exceptions.most_common(3)),
                "elapsed": round(elapsed, 3), "rps": round(ok / elapsed, 1) if elapsed else 0.0,
                "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    load = Load(args.url, args.concurrency, args.requests, args.seconds)
    print(json.dumps(asyncio.run(load.run())))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
