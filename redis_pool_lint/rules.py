"""The rule catalogue: the one place that lists codes.

Code, the flake8 plugin, the README rule table and the tests all read ``RULES``; nothing else
spells out a code's name, message or fix applicability.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Iterable, Tuple


HOMEPAGE = "https://github.com/redis-pool-lint/redis-pool-lint"


def rule_url(code: str) -> str:
    """Where a rule's documentation lives (``docs/rules/<code>.md``, generated from ``RULES``)."""
    return f"{HOMEPAGE}/blob/main/docs/rules/{code}.md"


class Fix(enum.Enum):
    """How a rule's finding can be fixed (ruff's applicability levels)."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    DISPLAY = "display-only"
    NONE = "none"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    #: ``str.format`` template; ``{detail}`` is filled by the detector (may be empty).
    message: str
    fix: Fix
    fix_summary: str
    default_enabled: bool
    what: str
    why: str
    example: str
    use_instead: str
    fix_safety: str
    #: what ``{detail}`` stands for where no finding fills it (the rule table, statistics):
    #: needed where the message reads wrong without it
    placeholder: str = ""

    def format(self, detail: str = "") -> str:
        text = self.message.format(detail=detail).strip()
        return f"{self.code} {text}"

    @property
    def summary(self) -> str:
        """The message with its placeholder, for places that show the rule, not a finding."""
        return self.message.format(detail=self.placeholder).strip()

    def left_because(self, unsafe_allowed: bool) -> str:
        """Why the fixer leaves a finding of this rule alone, when its applicability is the reason."""
        if self.fix is Fix.UNSAFE and not unsafe_allowed:
            return "unsafe fix: pass --unsafe-fixes"
        safety = self.fix_safety.rstrip(".")
        for prefix in ("No fix: ", "Display only: "):
            if safety.startswith(prefix):
                safety = safety[len(prefix):]
        return f"no automatic fix ({safety})"


_SINGLETON = """\
@asynccontextmanager
async def lifespan(app: FastAPI):
    pool = BlockingConnectionPool.from_url(REDIS_URL, max_connections=50, timeout=5)
    app.state.redis = Redis(connection_pool=pool)
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await pool.aclose()  # the client does not own a pool it was given

app = FastAPI(lifespan=lifespan)

@app.get("/items/{key}")
async def read(key: str, request: Request):
    return await request.app.state.redis.get(key)
"""

RULES: Tuple[Rule, ...] = (
    Rule(
        code="RPL001",
        name="shared-pool-closed-per-request",
        message="client owning a shared pool is closed per request{detail}; this disconnects the "
        "pool under concurrent requests: use one lifespan client instead",
        fix=Fix.SAFE,
        fix_summary="lifespan singleton",
        default_enabled=True,
        what="Flags a client that took ownership of a pool it did not create "
        "(`Redis.from_pool(app.state.pool)`, or `auto_close_connection_pool = True` on a shared "
        "pool) and is then closed in request scope: `async with`, `with`, `aclose()`/`close()`, a "
        "`try/finally`, the exit of a yield dependency. A sync client built this way is closed "
        "even when merely dropped, because `redis.Redis.__del__` calls `close()`.",
        why="`from_pool` hands the pool to the client; closing the client disconnects every "
        "connection of the pool, including those other requests are using mid-command. Measured "
        "with 200 concurrent clients: on redis-py 5.0.4, 67 to 2053 errors per 5000 requests "
        "(`ConnectionError: Connection closed by server.`, `TCPTransport closed`); on redis-py "
        "8.1.0, 5000 of 5000 requests failed. With one request at a time it looks fine.",
        example="""\
@app.get("/items/{key}")
async def read(key: str, request: Request):
    async with Redis.from_pool(request.app.state.pool) as r:
        return await r.get(key)
""",
        use_instead=_SINGLETON,
        fix_safety="Safe: the request keeps using a client over the same pool; only the "
        "per-request close disappears.",
    ),
    Rule(
        code="RPL002",
        name="shared-client-closed-per-request",
        message="request scope closes the shared {detail}; every other in-flight request loses "
        "its connections: remove the close and let the lifespan close it once",
        placeholder="client `<name>`",
        fix=Fix.SAFE,
        fix_summary="remove the close",
        default_enabled=True,
        what="Flags request-scope code that closes an app-level client or pool: "
        "`async with request.app.state.redis:`, `await app.state.redis.aclose()`, "
        "`pool.disconnect()` on a module global or on app state.",
        why="The client is shared by every request. Closing it per request disconnects its pool "
        "while other requests use it: measured 443 to 1517 errors per 3000 requests.",
        example="""\
@app.get("/count")
async def count(request: Request):
    async with request.app.state.redis as r:
        return await r.incr("hits")
""",
        use_instead="""\
@app.get("/count")
async def count(request: Request):
    return await request.app.state.redis.incr("hits")
""",
        fix_safety="Safe: the lifespan closes the client at shutdown.",
    ),
    Rule(
        code="RPL101",
        name="client-per-request",
        message="Redis client built in a route handler{detail}: a new connection pool and TCP "
        "connection per request; build it once in the lifespan and reuse it",
        fix=Fix.SAFE,
        fix_summary="lifespan singleton",
        default_enabled=True,
        what="Flags a Redis client constructed inside an HTTP or WebSocket route handler.",
        why="Every request pays a new pool and a new TCP connection (5000 connections for 5000 "
        "requests), and throughput drops: 1145 req/s against 2311 for a lifespan singleton on "
        "redis-py 5.0.4, 474 against 2345 on redis-py 8.1.0.",
        example="""\
@app.get("/items/{key}")
async def read(key: str):
    async with Redis(host="localhost") as r:
        return await r.get(key)
""",
        use_instead=_SINGLETON,
        fix_safety="Safe when the constructor arguments do not depend on the request; "
        "otherwise no fix is offered and the finding says why.",
    ),
    Rule(
        code="RPL102",
        name="pool-per-request",
        message="connection pool built in a route handler{detail}: the pool and its connections "
        "are thrown away after the request; build one bounded pool in the lifespan",
        fix=Fix.SAFE,
        fix_summary="lifespan singleton",
        default_enabled=True,
        what="Flags a `ConnectionPool`/`BlockingConnectionPool` constructed inside a route handler.",
        why="A pool exists to be reused. One per request means a new TCP connection per request "
        "and no bound on the connections the process holds.",
        example="""\
@app.get("/items/{key}")
async def read(key: str):
    pool = ConnectionPool.from_url(REDIS_URL)
    r = Redis(connection_pool=pool)
    return await r.get(key)
""",
        use_instead=_SINGLETON,
        fix_safety="Safe when the pool's arguments do not depend on the request.",
    ),
    Rule(
        code="RPL103",
        name="client-per-request-in-dependency",
        message="dependency {detail} builds a Redis client or pool on every call; return the "
        "shared lifespan client instead",
        placeholder="`<name>`",
        fix=Fix.SAFE,
        fix_summary="dependency returns the shared client",
        default_enabled=True,
        what="Flags a dependency that builds a client or pool each time it runs: targets of "
        "`Depends(...)`/`Security(...)`, of `Annotated[..., Depends(f)]` aliases, of "
        "`dependencies=[...]`, and classes used as dependencies whose `__init__` builds one.",
        why="FastAPI calls a dependency once per request, so a client built there is a client "
        "per request, with the same cost as RPL101; a yield dependency that closes a "
        "`from_pool` client is worse (see RPL001). This is the most common place the pattern "
        "hides.",
        example="""\
async def get_redis():
    r = Redis.from_url(REDIS_URL)
    try:
        yield r
    finally:
        await r.aclose()

RedisDep = Annotated[Redis, Depends(get_redis)]
""",
        use_instead="""\
def get_redis(request: Request) -> Redis:
    return request.app.state.redis

RedisDep = Annotated[Redis, Depends(get_redis)]
""",
        fix_safety="Safe: the function keeps its name, so `dependency_overrides[get_redis]` "
        "and other callers keep working.",
    ),
    Rule(
        code="RPL104",
        name="client-per-request-in-middleware",
        message="middleware {detail} builds a Redis client or pool on every request; use the "
        "shared client from the app's state",
        placeholder="`<name>`",
        fix=Fix.SAFE,
        fix_summary="shared client",
        default_enabled=True,
        what="Flags `BaseHTTPMiddleware.dispatch`, `@app.middleware(\"http\")` functions and pure "
        "ASGI middleware `__call__` that build a client or pool per request.",
        why="Middleware runs on every request, including the ones that never touch Redis, so "
        "the cost of RPL101 is paid everywhere.",
        example="""\
@app.middleware("http")
async def rate_limit(request: Request, call_next):
    r = Redis.from_url(REDIS_URL)
    await r.incr(request.client.host)
    return await call_next(request)
""",
        use_instead="""\
@app.middleware("http")
async def rate_limit(request: Request, call_next):
    await request.app.state.redis.incr(request.client.host)
    return await call_next(request)
""",
        fix_safety="Safe when the constructor arguments do not depend on the request.",
    ),
    Rule(
        code="RPL105",
        name="client-per-request-via-helper",
        message="Redis client or pool built per request via {detail}; pass the shared lifespan "
        "client down instead",
        placeholder="`<call>`",
        fix=Fix.SAFE,
        fix_summary="callers use the shared client",
        default_enabled=True,
        what="Flags a function reached by calls from request scope (a helper, the `__init__` of "
        "a class instantiated per request, a decorator's wrapper) that builds a client and uses "
        "it. A factory that only builds and returns one is reported where request-scope code "
        "calls it, with the caller's code (RPL101 in a handler, RPL103 in a dependency, RPL104 in "
        "middleware, this one in a helper): the message names the call chain, the factory and "
        "where it builds. A helper that builds its own client only under `if request is None:` "
        "is flagged when a request-scope caller leaves the request out.",
        why="The client is still built once per request, only further from the handler, where "
        "reviews miss it.",
        example="""\
def cache() -> Redis:
    return Redis.from_url(REDIS_URL)

async def load_profile(user_id: int) -> bytes:
    return await cache().get(f"profile:{user_id}")  # RPL105 here

@app.get("/users/{user_id}")
async def profile(user_id: int):
    return await load_profile(user_id)
""",
        use_instead="""\
async def load_profile(redis: Redis, user_id: int) -> bytes:
    return await redis.get(f"profile:{user_id}")

@app.get("/users/{user_id}")
async def profile(user_id: int, request: Request):
    return await load_profile(request.app.state.redis, user_id)
""",
        fix_safety="Safe when the helper only builds and returns a client and its request-scope "
        "callers are handlers, dependencies or middleware: those calls become the shared client "
        "and the helper stays as it is for its other callers (a CLI, a worker). A helper that "
        "uses the client it builds gains `request: Optional[Request] = None`, takes the shared "
        "client when given one, and its request-scope callers pass `request=`. Otherwise no fix "
        "is offered, and the finding says why.",
    ),
    Rule(
        code="RPL106",
        name="from-pool-per-request",
        message="Redis.from_pool() per request takes ownership of the shared pool{detail}; it "
        "works only until someone closes it (RPL001): reuse one lifespan client",
        fix=Fix.SAFE,
        fix_summary="lifespan singleton",
        default_enabled=True,
        what="Flags an async `Redis.from_pool(shared)` built per request and not closed.",
        why="Async clients do not close on garbage collection, so this works today, but the "
        "client owns the shared pool: the first `async with` or `aclose()` someone adds "
        "disconnects every request's connections (RPL001).",
        example="""\
@app.get("/items/{key}")
async def read(key: str, request: Request):
    r = Redis.from_pool(request.app.state.pool)
    return await r.get(key)
""",
        use_instead=_SINGLETON,
        fix_safety="Safe: the same pool serves the request through the shared client.",
    ),
    Rule(
        code="RPL107",
        name="client-wrapper-per-request",
        message="Redis(connection_pool=<shared pool>) per request{detail}: safe but wasteful; "
        "reuse one lifespan client",
        fix=Fix.SAFE,
        fix_summary="lifespan singleton",
        default_enabled=False,
        what="Off by default. Flags `Redis(connection_pool=shared_pool)` built per request.",
        why="The client does not own the pool (redis-py documents this as safe), so closing it "
        "leaves the pool alone; it only costs an object and a little setup per request.",
        example="""\
@app.get("/")
async def index(request: Request):
    r = Redis(connection_pool=request.app.state.pool)
    return await r.get("k")
""",
        use_instead=_SINGLETON,
        fix_safety="Safe.",
    ),
    Rule(
        code="RPL201",
        name="startup-event-client",
        message="Redis client set up in a startup event handler{detail}: on_event is deprecated, "
        "silently skipped once lifespan= is given, and gone in Starlette 1.0; use a lifespan",
        fix=Fix.SAFE,
        fix_summary="migrate to lifespan",
        default_enabled=True,
        what="Flags a startup handler (`@app.on_event(\"startup\")`, `on_startup=[...]`, "
        "`add_event_handler(\"startup\", ...)`) that builds a Redis client or pool.",
        why="FastAPI stops calling `on_event` handlers as soon as an app gets `lifespan=`, "
        "without a warning: the client is then never created and every request fails. "
        "Starlette 1.0 removed `on_event` and `on_startup`.",
        example="""\
@app.on_event("startup")
async def startup():
    app.state.redis = Redis.from_url(REDIS_URL)
""",
        use_instead=_SINGLETON,
        fix_safety="Safe: startup and shutdown handlers are folded into the lifespan in order.",
    ),
    Rule(
        code="RPL202",
        name="singleton-never-closed",
        message="Redis client or pool built at startup is never closed at shutdown{detail}; "
        "close it after the lifespan's yield",
        fix=Fix.SAFE,
        fix_summary="close after yield",
        default_enabled=True,
        what="Flags a client or pool built in a lifespan or startup handler with no matching "
        "`aclose()`/`close()`/`disconnect()` at shutdown.",
        why="Connections are left to the operating system at exit; in tests and reloads that "
        "build many apps, they pile up and Redis's `maxclients` is reached.",
        example="""\
@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.redis = Redis.from_url(REDIS_URL)
    yield
""",
        use_instead="""\
@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.redis = Redis.from_url(REDIS_URL)
    try:
        yield
    finally:
        await app.state.redis.aclose()
""",
        fix_safety="Safe.",
    ),
    Rule(
        code="RPL203",
        name="deprecated-close",
        message="close() on a redis.asyncio client or pool is deprecated since redis-py "
        "5.0.1{detail}; use aclose()",
        fix=Fix.SAFE,
        fix_summary="rename to aclose()",
        default_enabled=True,
        what="Flags `close()` called on a `redis.asyncio` client or pool, unless the project pins a "
        "redis-py older than 5.0.1 (read from its lock and requirements files, or "
        "`--redis-version`), where `close()` is the only way.",
        why="redis-py 5.0.1 deprecated the async `close()` in favour of `aclose()`, which "
        "matches the async-resource protocol and `contextlib.aclosing`.",
        example="""\
await app.state.redis.close()
""",
        use_instead="""\
await app.state.redis.aclose()
""",
        fix_safety="Safe on redis-py >= 5.0.1, where `aclose()` exists: `fix` renames only when the "
        "project's version is known to have it, and says why it left the call otherwise.",
    ),
    Rule(
        code="RPL204",
        name="unbounded-singleton-pool",
        message="singleton on a default non-blocking pool{detail}: redis-py >= 8 raises "
        "MaxConnectionsError past 100 in-flight commands; use a BlockingConnectionPool with "
        "max_connections and timeout",
        fix=Fix.UNSAFE,
        fix_summary="unsafe: bounded blocking pool",
        default_enabled=False,
        what="Off by default. Flags a lifespan or startup client built on a default "
        "`ConnectionPool`.",
        why="Since redis-py 8.0 the default pool has `max_connections=100` and fails at once "
        "when exhausted: measured ~3790 `MaxConnectionsError` per 5000 requests at 200 "
        "concurrent clients. A `BlockingConnectionPool` waits for a free connection instead: "
        "0 errors, 49 connections.",
        example="""\
app.state.redis = Redis.from_url(REDIS_URL)
""",
        use_instead="""\
pool = BlockingConnectionPool.from_url(REDIS_URL, max_connections=50, timeout=5)
app.state.redis = Redis(connection_pool=pool)
""",
        fix_safety="Unsafe: requests now wait for a connection instead of failing, which "
        "changes latency under load.",
    ),
    Rule(
        code="RPL205",
        name="sync-client-in-async-handler",
        message="sync Redis command{detail} in async request scope blocks the event loop for a "
        "round trip; use redis.asyncio",
        fix=Fix.NONE,
        fix_summary="none",
        default_enabled=True,
        what="Flags a command of a synchronous redis client called inside `async def` request "
        "scope.",
        why="Each command blocks the whole event loop for a network round trip: with 2 ms RTT, "
        "323 req/s against 1781 for the async singleton.",
        example="""\
r = redis.Redis()

@app.get("/")
async def index():
    return r.get("k")
""",
        use_instead="""\
@app.get("/")
async def index(request: Request):
    return await request.app.state.redis.get("k")
""",
        fix_safety="No fix: moving to redis.asyncio changes every call site to `await`.",
    ),
)

BY_CODE: Dict[str, Rule] = {rule.code: rule for rule in RULES}
PREFIX = "RPL"
DEFAULT_OFF: Tuple[str, ...] = tuple(r.code for r in RULES if not r.default_enabled)


def is_enabled(code: str, select: Iterable[str], extend_select: Iterable[str]) -> bool:
    """Whether an off-by-default code was asked for by name.

    As flake8-bugbear does for B9xx, a broad ``--select=RPL`` does not turn them on; a prefix
    that reaches into the code's family (``RPL1``, ``RPL107``) does.
    """
    if code not in DEFAULT_OFF:
        return True
    for chosen in (*select, *extend_select):
        chosen = chosen.strip().upper()
        if len(chosen) > len(PREFIX) and code.startswith(chosen):
            return True
    return False
