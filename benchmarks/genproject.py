"""Generate a deterministic FastAPI project of N modules with known Redis findings.

    python benchmarks/genproject.py OUT --modules 5000 [--seed 6] [--redis-share 0.15]

The project is one package ``app``: ``app/main.py`` (the FastAPI app, a lifespan that builds the
shared pool and client, ``include_router`` for every domain), ``app/settings.py``, and domain
packages of about 50 modules each: routers, dependencies, services, schemas, utilities, worker
tasks. About ``--redis-share`` of the domain modules use Redis, some wrongly (a finding is planted
at a known line) and some properly (no finding):

    planted:  a handler building ``Redis(host=...)`` or ``redis.Redis(...)`` per request (RPL101),
              a ``from_url`` yield dependency (RPL103), ``async with Redis.from_pool(
              request.app.state.pool)`` in a handler (RPL001), a helper building a client that
              a handler calls (RPL105)
    clean:    handlers using ``request.app.state.redis``, a module-level client, an
              ``lru_cache`` factory, a worker run as a script

The same arguments always give byte-identical files. ``OUT/expected_findings.json`` lists the
planted findings as ``[path relative to OUT, line, code]``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

DOMAIN_SIZE = 50
#: Share of a domain's modules (after its ``__init__``) per role, in the order they are listed.
ROLES = (("schemas", 0.16), ("utils", 0.12), ("services", 0.25), ("deps", 0.14),
         ("tasks", 0.03), ("routes", 0.30))
#: Redis module kinds: (name, role of the module it takes, planted code or None, weight).
KINDS = (
    ("route_client", "routes", "RPL101", 3),
    ("route_sync_client", "routes", "RPL101", 1),
    ("route_from_pool", "routes", "RPL001", 2),
    ("deps_from_url", "deps", "RPL103", 2),
    ("svc_helper", "services", "RPL105", 1),
    ("route_state", "routes", None, 2),
    ("svc_module_client", "services", None, 2),
    ("svc_lru", "services", None, 1),
    ("task_worker", "tasks", None, 1),
)
#: Kinds whose module is used from a handler of a router module of the same domain.
NEEDS_CALLER = {"deps_from_url", "svc_helper", "svc_module_client", "svc_lru"}

WORDS = ("billing", "orders", "catalog", "inventory", "shipping", "accounts", "search", "reviews",
         "payments", "pricing", "alerts", "reports", "media", "support", "loyalty", "audit",
         "returns", "vendors", "coupons", "sessions")
NOUNS = ("Invoice", "Order", "Product", "Item", "Shipment", "Account", "Review", "Payment",
         "Price", "Alert", "Report", "Asset", "Ticket", "Reward", "Event", "Vendor", "Coupon")
FIELDS = (("name", "str", None), ("title", "str", '""'), ("amount", "float", "0.0"),
          ("quantity", "int", "0"), ("active", "bool", "True"), ("note", "Optional[str]", "None"),
          ("tags", "List[str]", "[]"), ("created_at", "Optional[datetime]", "None"),
          ("owner_id", "int", "0"), ("currency", "str", '"EUR"'), ("rank", "int", "0"))
STDLIB = {"__future__", "contextlib", "datetime", "functools", "os", "typing", "collections",
          "itertools", "math", "re", "statistics"}
MARK = "  #@"


@dataclass
class Module:
    """One file being written: imports by origin, body chunks, planted markers."""

    path: str                      # relative to the project root, with '/'
    doc: str
    imports: Dict[str, List[str]] = field(default_factory=dict)  # "from X import a, b"
    plain: List[str] = field(default_factory=list)                # "import X"
    body: List[str] = field(default_factory=list)

    def use(self, origin: str, *names: str) -> None:
        have = self.imports.setdefault(origin, [])
        have.extend(n for n in names if n not in have)

    def use_module(self, name: str) -> None:
        if name not in self.plain:
            self.plain.append(name)

    def add(self, chunk: str) -> None:
        self.body.append(chunk.strip("\n"))

    def render(self) -> Tuple[str, List[Tuple[int, str]]]:
        groups: Dict[int, List[str]] = {0: [], 1: [], 2: [], 3: []}

        def group(origin: str) -> int:
            if origin == "__future__":
                return 0
            if origin.split(".")[0] in STDLIB:
                return 1
            return 3 if origin.startswith((".", "app")) else 2

        for name in sorted(self.plain):
            groups[group(name)].append(f"import {name}")
        for origin in sorted(self.imports, key=lambda o: (o.lstrip("."), o)):
            names = ", ".join(sorted(self.imports[origin]))
            line = f"from {origin} import {names}"
            if len(line) > 99:
                line = f"from {origin} import (\n" + "".join(
                    f"    {n},\n" for n in sorted(self.imports[origin])) + ")"
            groups[group(origin)].append(line)
        head = [f'"""{self.doc}"""']
        for key in (0, 1, 2, 3):
            if groups[key]:
                head.append("\n".join(sorted(groups[key], key=lambda s: (s.startswith("from"), s))))
        text = "\n\n".join(head) + "\n\n\n" + "\n\n\n".join(self.body) + "\n"
        lines, marks = [], []
        for number, line in enumerate(text.split("\n"), 1):
            if MARK in line:
                line, code = line.split(MARK)
                marks.append((number, code.strip()))
            lines.append(line)
        return "\n".join(lines), marks


class Generator:
    def __init__(self, modules: int, seed: int, redis_share: float) -> None:
        if modules < 20:
            raise ValueError("--modules must be at least 20")
        self.rng = random.Random(seed)
        self.total = modules
        self.share = redis_share
        self.files: List[Module] = []
        self.expected: List[Tuple[str, int, str]] = []
        self.counter = 0

    def uid(self) -> int:
        self.counter += 1
        return self.counter

    # -- the whole project ---------------------------------------------------------------------

    def run(self) -> None:
        domain_modules = self.total - 3  # app/__init__.py, app/main.py, app/settings.py
        count = max(1, round(domain_modules / DOMAIN_SIZE))
        sizes = [domain_modules // count + (1 if i < domain_modules % count else 0)
                 for i in range(count)]
        names = [f"{WORDS[i % len(WORDS)]}_{i + 1:04d}" for i in range(count)]
        self.files.append(Module("app/__init__.py", "Generated FastAPI application (benchmark input)."))
        settings = Module("app/settings.py", "Settings read from the environment.")
        settings.use_module("os")
        settings.add('REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")\n'
                     'DEBUG = os.environ.get("DEBUG", "") == "1"\n'
                     'PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "50"))')
        self.files.append(settings)
        for name, size in zip(names, sizes):
            self.domain(name, size)
        self.files.append(self.main(names))

    def main(self, domains: List[str]) -> Module:
        m = Module("app/main.py", "Application entry point: the app, its lifespan, its routers.")
        m.use("contextlib", "asynccontextmanager")
        m.use("fastapi", "FastAPI")
        m.use("redis.asyncio", "BlockingConnectionPool", "Redis")
        m.use("app.settings", "DEBUG", "REDIS_URL")
        m.add('''
@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.pool = BlockingConnectionPool.from_url(REDIS_URL, max_connections=50, timeout=5)
    app.state.redis = Redis(connection_pool=app.state.pool)
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.pool.aclose()''')
        m.use(".", *domains)
        m.add('app = FastAPI(title="Generated shop", debug=DEBUG, lifespan=lifespan)\n'
              + "".join(f"app.include_router({d}.router)\n" for d in domains).rstrip())
        return m

    # -- one domain ----------------------------------------------------------------------------

    def domain(self, name: str, size: int) -> None:
        rng = self.rng
        base = f"app/{name}"
        slots = size - 1
        counts = {role: int(slots * share) for role, share in ROLES}
        counts["routes"] = max(1, counts["routes"])
        counts["services"] += slots - sum(counts.values())
        if counts["services"] < 0:  # tiny domains: take from the largest roles
            counts["services"] = 0
            while sum(counts.values()) > slots:
                biggest = max((r for r in counts if r != "routes"), key=lambda r: counts[r])
                counts[biggest] -= 1
        mods: Dict[str, List[Module]] = {}
        for role, _ in ROLES:
            mods[role] = [Module(f"{base}/{role}_{i + 1:02d}.py", "") for i in range(counts[role])]
        # Which modules use Redis, and how.
        want = round(self.share * size + rng.uniform(-0.5, 0.5))
        free = {role: list(range(len(ms))) for role, ms in mods.items()}
        for ms in free.values():
            rng.shuffle(ms)
        kinds: Dict[str, str] = {}
        weights = [k[3] for k in KINDS]
        attempts = 0
        while len(kinds) < want and attempts < 200:
            attempts += 1
            kind, role, _, _ = rng.choices(KINDS, weights)[0]
            if free[role]:
                kinds[mods[role][free[role].pop()].path] = kind
        schemas = [self.schemas(m, name) for m in mods["schemas"]]
        utils = [self.utils(m, name) for m in mods["utils"]]
        services = [self.service(m, name, schemas, utils, kinds.get(m.path))
                    for m in mods["services"]]
        deps = [self.deps(m, name, kinds.get(m.path)) for m in mods["deps"]]
        for m in mods["tasks"]:
            self.task(m, name, kinds.get(m.path))
        routes = mods["routes"]
        for m in routes:
            self.router(m, name, schemas, services, deps, kinds.get(m.path))
        for provider in services + deps:
            if provider["kind"] in NEEDS_CALLER:
                self.caller(rng.choice(routes), provider)
        init = Module(f"{base}/__init__.py", f"The {name} domain: its routers under one prefix.")
        init.use("fastapi", "APIRouter")
        init.use(".", *[os.path.basename(m.path)[:-3] for m in routes])
        init.add(f'router = APIRouter(prefix="/{name}", tags=["{name}"])\n'
                 + "".join(f"router.include_router({os.path.basename(m.path)[:-3]}.router)\n"
                           for m in routes).rstrip())
        self.files.append(init)
        for role, _ in ROLES:
            self.files.extend(mods[role])

    # -- modules without Redis -----------------------------------------------------------------

    def schemas(self, m: Module, domain: str) -> Dict:
        rng = self.rng
        m.doc = f"Request and response schemas of the {domain} domain."
        m.use("__future__", "annotations")
        m.use("pydantic", "BaseModel")
        classes = []
        for _ in range(rng.randint(2, 5)):
            cls = f"{rng.choice(NOUNS)}{self.uid()}"
            fields = rng.sample(FIELDS, rng.randint(3, 7))
            lines = [f"class {cls}(BaseModel):", "    id: int"]
            for fname, ftype, default in fields:
                if "Optional" in ftype or "List" in ftype:
                    m.use("typing", *[t for t in ("Optional", "List") if t in ftype])
                if "datetime" in ftype:
                    m.use("datetime", "datetime")
                if default is None:
                    m.use("pydantic", "Field")
                    lines.append(f"    {fname}: {ftype} = Field(..., max_length={rng.choice((40, 80, 120))})")
                else:
                    lines.append(f"    {fname}: {ftype} = {default}")
            lines += ["", "    def label(self) -> str:",
                      f'        return f"{cls.lower()}-{{self.id}}"']
            m.add("\n".join(lines))
            classes.append(cls)
        return {"module": m, "classes": classes}

    def utils(self, m: Module, domain: str) -> Dict:
        rng = self.rng
        m.doc = f"Small helpers of the {domain} domain."
        funcs = []
        bank = [self._slugify, self._chunked, self._clamp, self._percent, self._merge]
        for make in rng.sample(bank, rng.randint(2, 4)):
            name, chunk = make(m, self.uid())
            m.add(chunk)
            funcs.append(name)
        return {"module": m, "funcs": funcs}

    def _slugify(self, m: Module, k: int):
        m.use_module("re")
        return f"slugify_{k}", f'''
def slugify_{k}(text: str) -> str:
    """Lower-case words joined by dashes."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words) or "item"'''

    def _chunked(self, m: Module, k: int):
        m.use("typing", "Iterator", "List", "Sequence")
        return f"chunked_{k}", f'''
def chunked_{k}(items: Sequence[int], size: int) -> Iterator[List[int]]:
    if size < 1:
        raise ValueError("size must be positive")
    for start in range(0, len(items), size):
        yield list(items[start:start + size])'''

    def _clamp(self, m: Module, k: int):
        return f"clamp_{k}", f'''
def clamp_{k}(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))'''

    def _percent(self, m: Module, k: int):
        return f"percent_{k}", f'''
def percent_{k}(part: float, whole: float) -> float:
    if whole == 0:
        return 0.0
    return round(100.0 * part / whole, 2)'''

    def _merge(self, m: Module, k: int):
        m.use("typing", "Dict")
        return f"merge_{k}", f'''
def merge_{k}(*dicts: Dict[str, int]) -> Dict[str, int]:
    out: Dict[str, int] = {{}}
    for d in dicts:
        for key, value in d.items():
            out[key] = out.get(key, 0) + value
    return out'''

    def service(self, m: Module, domain: str, schemas: List[Dict], utils: List[Dict],
                kind: Optional[str]) -> Dict:
        rng = self.rng
        m.doc = f"Business logic of the {domain} domain."
        k = self.uid()
        out: Dict = {"module": m, "kind": None, "service": None}
        if kind is not None:
            out.update(self.redis_service(m, kind, k))
            return out
        m.use("typing", "Dict", "List", "Optional")
        schema = rng.choice(schemas) if schemas else None
        cls = rng.choice(schema["classes"]) if schema else "dict"
        if schema:
            m.use("." + os.path.basename(schema["module"].path)[:-3], cls)
        helper = ""
        if utils:
            util = rng.choice(utils)
            fn = rng.choice(util["funcs"])
            m.use("." + os.path.basename(util["module"].path)[:-3], fn)
            helper = f"\n\n    def helper_name(self) -> str:\n        return {fn}.__name__"
        svc = f"{cls.rstrip('0123456789')}Service{k}"
        m.add(f'''
class {svc}:
    """In-memory store of {cls} records."""

    def __init__(self) -> None:
        self._items: Dict[int, {cls}] = {{}}

    def add(self, item: {cls}) -> {cls}:
        self._items[item.id] = item
        return item

    def get(self, item_id: int) -> Optional[{cls}]:
        return self._items.get(item_id)

    def search(self, text: str) -> List[{cls}]:
        return [i for i in self._items.values() if text in repr(i)]

    def update(self, item_id: int, **changes: object) -> Optional[{cls}]:
        item = self._items.get(item_id)
        if item is None:
            return None
        updated = item.model_copy(update=changes)
        self._items[item_id] = updated
        return updated

    def remove(self, item_id: int) -> bool:
        return self._items.pop(item_id, None) is not None

    def count(self) -> int:
        return len(self._items){helper}''')
        m.add(f"service_{k} = {svc}()")
        out.update(service=f"service_{k}", schema=cls, schema_module=schema["module"] if schema else None)
        return out

    def deps(self, m: Module, domain: str, kind: Optional[str]) -> Dict:
        m.doc = f"Dependencies of the {domain} domain."
        k = self.uid()
        if kind == "deps_from_url":
            m.use("typing", "AsyncIterator")
            m.use("redis.asyncio", "Redis")
            m.use("app.settings", "REDIS_URL")
            m.add(f'''
async def get_redis_{k}() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=True){MARK}RPL103
    try:
        yield client
    finally:
        await client.aclose()''')
            return {"module": m, "kind": kind, "provides": f"get_redis_{k}"}
        m.use("typing", "Dict", "Optional")
        m.use("fastapi", "Header", "HTTPException", "Query")
        m.add(f'''
async def pagination_{k}(
    offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=200)
) -> Dict[str, int]:
    return {{"offset": offset, "limit": limit}}''')
        m.add(f'''
async def current_user_{k}(authorization: Optional[str] = Header(None)) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="not authenticated")
    return authorization[len("Bearer "):]''')
        return {"module": m, "kind": None, "pagination": f"pagination_{k}", "user": f"current_user_{k}"}

    def task(self, m: Module, domain: str, kind: Optional[str]) -> None:
        k = self.uid()
        m.doc = f"Background jobs of the {domain} domain, run as scripts."
        if kind == "task_worker":
            m.use_module("redis")
            m.use("app.settings", "REDIS_URL")
            m.add(f'''
def drain_queue_{k}(name: str) -> int:
    r = redis.Redis.from_url(REDIS_URL)
    drained = 0
    while r.lpop(name) is not None:
        drained += 1
    r.close()
    return drained''')
            m.add(f'if __name__ == "__main__":\n    print(drain_queue_{k}("jobs:{domain}"))')
            return
        m.use("typing", "Iterable", "List")
        m.add(f'''
def nightly_totals_{k}(amounts: Iterable[float]) -> List[float]:
    running, out = 0.0, []
    for amount in amounts:
        running += amount
        out.append(round(running, 2))
    return out''')
        m.add(f'if __name__ == "__main__":\n    print(nightly_totals_{k}([1.0, 2.5, 3.25]))')

    # -- Redis services and their callers ------------------------------------------------------

    def redis_service(self, m: Module, kind: str, k: int) -> Dict:
        if kind == "svc_helper":
            m.use("redis.asyncio", "Redis")
            m.add(f'''
def new_client_{k}() -> Redis:
    return Redis(host="localhost", port=6379, db=1){MARK}RPL105''')
            return {"kind": kind, "provides": f"new_client_{k}"}
        if kind == "svc_module_client":
            m.use("redis.asyncio", "Redis")
            m.use("app.settings", "REDIS_URL")
            m.add("_cache = Redis.from_url(REDIS_URL, decode_responses=True)")
            m.add(f'''
async def remember_{k}(key: str, value: str) -> None:
    await _cache.set(key, value, ex=60)''')
            m.add(f'''
async def recall_{k}(key: str):
    return await _cache.get(key)''')
            return {"kind": kind, "provides": f"recall_{k}"}
        assert kind == "svc_lru"
        m.use("functools", "lru_cache")
        m.use_module("redis")
        m.use("app.settings", "REDIS_URL")
        m.add(f'''
@lru_cache(maxsize=1)
def get_client_{k}() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)''')
        m.add(f'''
def lookup_{k}(key: str):
    return get_client_{k}().get(key)''')
        return {"kind": kind, "provides": f"lookup_{k}"}

    def caller(self, route: Module, provider: Dict) -> None:
        """A handler in ``route`` that uses the Redis service or dependency ``provider``."""
        k = self.uid()
        name = provider["provides"]
        route.use("." + os.path.basename(provider["module"].path)[:-3], name)
        kind = provider["kind"]
        if kind == "deps_from_url":
            route.use("fastapi", "Depends")
            route.add(f'''
@router.get("/recent-{k}")
async def recent_{k}(cache=Depends({name})):
    return {{"recent": await cache.lrange("recent:{k}", 0, 9)}}''')
        elif kind == "svc_helper":
            route.add(f'''
@router.post("/hits-{k}")
async def hits_{k}():
    client = {name}()
    try:
        return {{"hits": await client.incr("hits:{k}")}}
    finally:
        await client.aclose()''')
        elif kind == "svc_module_client":
            route.add(f'''
@router.get("/recall-{k}/{{key}}")
async def recall_value_{k}(key: str):
    return {{"key": key, "value": await {name}(key)}}''')
        else:
            route.add(f'''
@router.get("/lookup-{k}/{{key}}")
def lookup_value_{k}(key: str):
    return {{"key": key, "value": {name}(key)}}''')

    # -- routers -------------------------------------------------------------------------------

    def router(self, m: Module, domain: str, schemas: List[Dict], services: List[Dict],
               deps: List[Dict], kind: Optional[str]) -> None:
        rng = self.rng
        k = self.uid()
        m.doc = f"HTTP routes of the {domain} domain."
        m.use("fastapi", "APIRouter")
        m.add(f'router = APIRouter(prefix="/r{k}")')
        plain = [s for s in services if s["service"]]
        users = [d for d in deps if d.get("user")]
        for _ in range(rng.randint(3, 6)):
            if not plain:
                break
            svc = rng.choice(plain)
            origin = "." + os.path.basename(svc["module"].path)[:-3]
            m.use(origin, svc["service"])
            h = self.uid()
            shape = rng.randrange(3)
            if shape == 0 and users:
                dep = rng.choice(users)
                m.use("." + os.path.basename(dep["module"].path)[:-3], dep["pagination"])
                m.use("fastapi", "Depends")
                m.use("typing", "Dict")
                m.add(f'''
@router.get("/items-{h}")
async def list_items_{h}(page: Dict[str, int] = Depends({dep["pagination"]})):
    items = {svc["service"]}.search("")
    return items[page["offset"]:page["offset"] + page["limit"]]''')
            elif shape == 1:
                m.use("fastapi", "HTTPException")
                m.add(f'''
@router.get("/items-{h}/{{item_id}}")
async def get_item_{h}(item_id: int):
    item = {svc["service"]}.get(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="not found")
    return item''')
            else:
                if svc.get("schema_module") is not None:
                    m.use("." + os.path.basename(svc["schema_module"].path)[:-3], svc["schema"])
                    arg = f"item: {svc['schema']}"
                else:
                    arg = "item: dict"
                m.add(f'''
@router.post("/items-{h}", status_code=201)
def create_item_{h}({arg}):
    return {svc["service"]}.add(item)''')
        if kind is not None:
            self.redis_route(m, kind, self.uid())

    def redis_route(self, m: Module, kind: str, k: int) -> None:
        if kind == "route_client":
            m.use("redis.asyncio", "Redis")
            m.add(f'''
@router.get("/cache-{k}/{{key}}")
async def cached_value_{k}(key: str):
    r = Redis(host="localhost", port=6379, decode_responses=True){MARK}RPL101
    try:
        value = await r.get(f"cache:{{key}}")
    finally:
        await r.aclose()
    return {{"key": key, "value": value}}''')
        elif kind == "route_sync_client":
            m.use_module("redis")
            m.add(f'''
@router.post("/counter-{k}/{{name}}")
def bump_counter_{k}(name: str):
    r = redis.Redis(host="localhost", port=6379){MARK}RPL101
    count = r.incr(f"counter:{{name}}")
    r.close()
    return {{"name": name, "count": count}}''')
        elif kind == "route_from_pool":
            m.use("fastapi", "Request")
            m.use("redis.asyncio", "Redis")
            m.add(f'''
@router.get("/session-{k}/{{sid}}")
async def read_session_{k}(sid: str, request: Request):
    async with Redis.from_pool(request.app.state.pool) as r:{MARK}RPL001
        data = await r.hgetall(f"session:{{sid}}")
    return data''')
        else:
            assert kind == "route_state"
            m.use("fastapi", "Request")
            m.add(f'''
@router.get("/flags-{k}/{{name}}")
async def flag_{k}(name: str, request: Request):
    value = await request.app.state.redis.get(f"flag:{{name}}")
    return {{"name": name, "on": value == b"1"}}''')

    # -- output --------------------------------------------------------------------------------

    def write(self, root: str) -> List[Tuple[str, int, str]]:
        if os.path.exists(root):
            shutil.rmtree(root)
        os.makedirs(root)
        with open(os.path.join(root, "pyproject.toml"), "w") as fh:
            fh.write('[project]\nname = "generated-shop"\nversion = "0"\n'
                     'dependencies = ["fastapi", "redis>=5"]\n')
        expected = []
        for m in self.files:
            text, marks = m.render()
            full = os.path.join(root, m.path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as fh:
                fh.write(text)
            expected.extend((m.path, line, code) for line, code in marks)
        expected.sort()
        with open(os.path.join(root, "expected_findings.json"), "w") as fh:
            fh.write("[\n" + ",\n".join(json.dumps(list(e)) for e in expected) + "\n]\n")
        return expected


def generate(root: str, modules: int, seed: int = 6, redis_share: float = 0.15) -> List[Tuple[str, int, str]]:
    """Write the project under ``root`` (replacing it); return the planted findings."""
    gen = Generator(modules, seed, redis_share)
    gen.run()
    assert len(gen.files) == modules, (len(gen.files), modules)
    return gen.write(root)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder to write (replaced if it exists)")
    p.add_argument("--modules", type=int, default=1000, help="number of .py files (default 1000)")
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--redis-share", type=float, default=0.15,
                   help="share of modules that use Redis (default 0.15)")
    a = p.parse_args()
    expected = generate(a.out, a.modules, a.seed, a.redis_share)
    codes: Dict[str, int] = {}
    for _, _, code in expected:
        codes[code] = codes.get(code, 0) + 1
    print(f"{a.modules} modules in {a.out}; planted {len(expected)} findings: "
          + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())))


if __name__ == "__main__":
    main()
