"""Serve a fixed fixture app in-process and fire concurrent requests at it (run in a subprocess).

Usage: python serve_app.py MODULE:ATTR REQUESTS CONCURRENCY; REDIS_URL in the environment.
Prints one JSON line: statuses, the values returned, and Redis connection counts.
"""
import asyncio
import json
import os
import sys

import httpx
import redis


async def main(target: str, total: int, concurrency: int) -> dict:
    sys.path.insert(0, os.getcwd())
    module, _, attr = target.partition(":")
    app = getattr(__import__(module, fromlist=[attr]), attr)
    probe = redis.Redis.from_url(os.environ["REDIS_URL"])
    probe.flushdb()
    before = probe.info("stats")["total_connections_received"]
    statuses, values, errors, peak = [], [], [], 0
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with gate:
                    try:
                        res = await client.get("/incr/hits")
                        statuses.append(res.status_code)
                        if res.status_code == 200:
                            values.append(res.json()["value"])
                    except Exception as exc:  # a failed request is a finding of the test
                        errors.append(f"{type(exc).__name__}: {exc}")

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, probe.info("clients")["connected_clients"])
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(total))), timeout=120)
            watcher.cancel()
    after = probe.info("stats")["total_connections_received"]
    return {"statuses": statuses, "values": values, "errors": errors[:5], "n_errors": len(errors),
            "new_connections": after - before - 0, "peak_clients": peak}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
