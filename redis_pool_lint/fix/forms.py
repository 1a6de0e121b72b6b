"""The code the fixer writes, in the API the project's client library has.

``Redis.from_pool(pool)`` (the client owns the pool) and ``aclose()`` exist from redis-py 5.0.1
(and in every valkey-py). Before that, and whenever the version is unknown, the fixer writes
``Redis(connection_pool=pool)`` and disconnects the pool at shutdown, which every redis-py since
4.2, aioredis 2.x and valkey-py run alike. aioredis 1.x has an API of its own
(``create_redis_pool``, ``close()`` then ``wait_closed()``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from ..analysis.versions import FROM_POOL, Pin


@dataclass(frozen=True)
class Target:
    """What the rewrite of one library's clients may use."""

    module: str  # where the classes come from: redis.asyncio, redis, valkey, aioredis
    is_async: bool
    modern: bool  # from_pool() and aclose()
    legacy1: bool = False  # aioredis 1.x: create_redis_pool(), close() + wait_closed()

    def owning(self, client: str, pool: str) -> str:
        """A client that closes ``pool`` with itself (or, in the old API, beside it)."""
        return f"{client}.from_pool({pool})" if self.modern else f"{client}(connection_pool={pool})"

    def close(self, x: str) -> str:
        """The statement that closes the client ``x`` and its pool at shutdown."""
        if self.legacy1:
            return f"{x}.close()\nawait {x}.wait_closed()"
        if self.modern:
            return f"await {x}.aclose()" if self.is_async else f"{x}.close()"
        return f"{'await ' if self.is_async else ''}{x}.connection_pool.disconnect()"

    def close_pool(self, x: str) -> str:
        return f"{'await ' if self.is_async else ''}{x}.disconnect()"


def target(pins: Dict[str, Pin], library: str, flavor: str, legacy1: bool = False) -> Target:
    """The form for clients of ``library`` (``redis``, ``valkey``, ``aioredis``) and ``flavor``."""
    is_async = flavor in ("async", "legacy")
    if library == "aioredis":
        return Target("aioredis", True, False, legacy1)
    module = library + (".asyncio" if flavor == "async" else "")
    if library == "valkey":
        return Target(module, is_async, True)
    return Target(module, is_async, bool(pins["redis"].has(FROM_POOL)))


def describe(pin: Optional[Pin]) -> str:
    """``redis-py 4.5.4 (requirements.txt (redis==4.5.4))``, for the line ``fix`` prints."""
    if pin is None or pin.version is None:
        where = f"; {pin.source}" if pin is not None and pin.source else ""
        return f"redis-py version unknown{where}: writing code every redis-py from 4.2 runs " \
               "(pass --redis-version to say which)"
    api = ("Redis.from_pool(...) and aclose()" if pin.has(FROM_POOL)
           else "Redis(connection_pool=...) and pool.disconnect() (from_pool and aclose need 5.0.1)")
    return f"redis-py {pin.text} from {pin.source}: writing {api}"
