"""Serve a fixture app with uvicorn on a free loopback port and fire concurrent requests at it.

Run in a subprocess (each app imports its own ``main``/``app`` modules):
    python serve_app.py MODULE:ATTR REQUESTS CONCURRENCY      (REDIS_URL in the environment)
Prints one JSON line: statuses, the values returned, errors, and Redis connection counts.
"""
import asyncio
import json
import os
import socket
import sys

import httpx
import redis
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main(target: str, total: int, concurrency: int) -> dict:
    sys.path.insert(0, os.getcwd())
    probe = redis.Redis.from_url(os.environ["REDIS_URL"])
    probe.flushdb()
    before = probe.info("stats")["total_connections_received"]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(target, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    else:
        raise SystemExit("uvicorn did not start")
    statuses, values, errors, peak = [], [], [], 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                try:
                    res = await client.get("/incr/hits")
                    statuses.append(res.status_code)
                    if res.status_code == 200:
                        values.append(res.json()["value"])
                except Exception as exc:  # a failed request is what the test looks for
                    errors.append(f"{type(exc).__name__}: {exc}")

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, probe.info("clients")["connected_clients"] - 1)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(total))), timeout=120)
        watcher.cancel()
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=30)
    after = probe.info("stats")["total_connections_received"]
    return {"statuses": statuses, "values": values, "errors": errors[:5], "n_errors": len(errors),
            "new_connections": after - before, "peak_clients": peak}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
