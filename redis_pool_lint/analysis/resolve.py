"""Name resolution on the stdlib ``ast``: what a dotted expression refers to.

Detection never trusts a bare name: ``aioredis.from_url`` is redis-py when the module did
``import redis.asyncio as aioredis`` and the legacy package after ``import aioredis``.
"""
from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

LIBRARIES = ("redis", "valkey", "aioredis")

CLIENT_CLASSES = {"Redis", "StrictRedis", "Valkey", "StrictValkey"}
CLUSTER_CLASSES = {"RedisCluster", "ValkeyCluster"}
POOL_CLASSES = {"ConnectionPool", "BlockingConnectionPool", "SentinelConnectionPool"}
SENTINEL_CLASSES = {"Sentinel"}
# Module-level functions that return a new client (or, for aioredis 1.x, a pool-backed client).
CLIENT_FUNCTIONS = {"from_url", "create_redis", "create_redis_pool", "create_connection"}
POOL_FUNCTIONS = {"create_pool"}
# Sub-modules that only re-export; ``redis.asyncio.client.Redis`` is ``redis.asyncio.Redis``.
TRANSPARENT_MODULES = {"client", "connection", "cluster", "sentinel", "utils", "commands", "core"}


@dataclass(frozen=True)
class Ctor:
    """What a constructor call builds."""

    kind: str  # "client" | "pool"
    flavor: str  # "async" | "sync" | "legacy" (aioredis package)
    method: str  # "init" | "from_url" | "from_pool" | "master_for" | "factory"
    library: str

    @property
    def owns_pool(self) -> bool:
        return self.method != "from_pool"


def classify(qualname: Optional[str], extra_factories: Sequence[str] = ()) -> Optional[Ctor]:
    """Classify a fully qualified callee as a Redis client/pool constructor, or None."""
    if not qualname:
        return None
    parts = qualname.split(".")
    lib = parts[0]
    if lib not in LIBRARIES:
        for pattern in extra_factories:
            if fnmatch.fnmatchcase(qualname, pattern):
                return Ctor("client", "async", "factory", "custom")
        return None
    is_async = lib == "aioredis" or "asyncio" in parts
    rest = [p for p in parts[1:] if p != "asyncio" and p not in TRANSPARENT_MODULES]
    flavor = "legacy" if lib == "aioredis" else ("async" if is_async else "sync")
    if not rest or len(rest) > 2:
        return None
    head = rest[0]
    method = rest[1] if len(rest) == 2 else None
    if head in CLIENT_CLASSES or head in CLUSTER_CLASSES:
        if method is None:
            return Ctor("client", flavor, "init", lib)
        if method in ("from_url", "from_pool"):
            return Ctor("client", flavor, method, lib)
        return None
    if head in POOL_CLASSES:
        if method is None or method == "from_url":
            return Ctor("pool", flavor, method or "init", lib)
        return None
    if method is None and head in CLIENT_FUNCTIONS:
        return Ctor("client", flavor, "from_url" if head == "from_url" else "factory", lib)
    if method is None and head in POOL_FUNCTIONS:
        return Ctor("pool", flavor, "factory", lib)
    return None


def is_sentinel(qualname: Optional[str]) -> Optional[str]:
    """The flavor of a ``Sentinel`` class, or None."""
    if not qualname:
        return None
    parts = qualname.split(".")
    if parts[0] not in LIBRARIES or parts[-1] not in SENTINEL_CLASSES:
        return None
    return "legacy" if parts[0] == "aioredis" else ("async" if "asyncio" in parts else "sync")


def dotted(node: ast.AST) -> Optional[str]:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
        return ".".join(reversed(names))
    return None


def resolve_relative(module: str, is_package: bool, level: int, target: Optional[str]) -> str:
    """The absolute module named by ``from <level dots><target> import ...``."""
    parts = module.split(".") if module else []
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if target:
        parts = parts + target.split(".")
    return ".".join(parts)


class Bindings:
    """Names visible in one scope, mapped to qualified names; chained to the enclosing scope."""

    __slots__ = ("names", "parent")

    def __init__(self, parent: Optional["Bindings"] = None) -> None:
        self.names: Dict[str, str] = {}
        self.parent = parent

    def lookup(self, name: str) -> Optional[str]:
        scope: Optional[Bindings] = self
        while scope is not None:
            found = scope.names.get(name)
            if found is not None:
                return found
            scope = scope.parent
        return None

    def bind_import(self, node: ast.AST, module: str, is_package: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.names[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = (
                resolve_relative(module, is_package, node.level, node.module)
                if node.level
                else (node.module or "")
            )
            for alias in node.names:
                if alias.name == "*":
                    continue
                self.names[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name

    def qualify(self, node: ast.AST) -> Optional[str]:
        """Resolve a Name/Attribute chain through the bindings; unknown roots stay as written."""
        path = dotted(node)
        if path is None:
            return None
        head, _, tail = path.partition(".")
        target = self.lookup(head)
        if target is None:
            return None
        return f"{target}.{tail}" if tail else target
