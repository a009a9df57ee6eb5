"""Windowed counters in a Litestar store: in memory for one process, Redis for several.

A limit shared by replicas must be checked by an atomic increment, never read-then-write: each
replica adds first and compares the total it gets back. Litestar's ``RedisStore`` gives the
connection and the namespace; the increment is one Lua script (INCRBYFLOAT, and EXPIRE on first
use), so two gateways never both take the last request of a minute.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

if TYPE_CHECKING:
    from llmgw.config import LimitsConfig

READY_TIMEOUT_S = 1.0
#: connecting to Redis, and each command, fail after this long: a hung Redis (SIGSTOP, a full
#: network buffer) fails requests closed with 503 instead of holding them forever
STORE_TIMEOUT_S = 1.0
INCREMENT = """
local value = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return value
"""


class Counters(Protocol):
    async def add(self, key: str, amount: float, ttl_s: int) -> float:
        """Add ``amount`` and return the new total; the key expires ``ttl_s`` after its first use."""
        ...

    async def get(self, key: str) -> float: ...

    async def ready(self) -> bool:
        """Whether limits can be checked now (``/readyz``)."""
        ...

    async def close(self) -> None: ...


class MemoryCounters:
    """One process: Litestar's ``MemoryStore``, increments serialised by a lock."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store: Store = store or MemoryStore()
        self._lock = asyncio.Lock()

    async def add(self, key: str, amount: float, ttl_s: int) -> float:
        async with self._lock:
            current = await self.store.get(key)
            total = (float(current) if current is not None else 0.0) + amount
            ttl = await self.store.expires_in(key) if current is not None else None
            await self.store.set(key, repr(total), expires_in=ttl if ttl and ttl > 0 else ttl_s)
            return total

    async def get(self, key: str) -> float:
        value = await self.store.get(key)
        return float(value) if value is not None else 0.0

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class RedisCounters:
    """Several processes: Litestar's ``RedisStore``, atomic increments by script."""

    def __init__(self, url: str, namespace: str, timeout_s: float = STORE_TIMEOUT_S) -> None:
        client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.store = RedisStore(client, namespace=namespace)
        self._increment = self.store._redis.register_script(INCREMENT)

    async def add(self, key: str, amount: float, ttl_s: int) -> float:
        value = await self._increment(keys=[self.store._make_key(key)], args=[repr(float(amount)), int(ttl_s)])
        return float(value)

    async def get(self, key: str) -> float:
        value = await self.store.get(key)
        return float(value) if value is not None else 0.0

    async def ready(self) -> bool:
        """Redis answers a PING within a second (a hung Redis must not hang readiness)."""
        try:
            return bool(await asyncio.wait_for(self.store._redis.ping(), READY_TIMEOUT_S))
        except Exception:  # noqa: BLE001 - readiness reports it
            return False

    async def close(self) -> None:
        await self.store._redis.aclose()


def counters_for(config: LimitsConfig) -> Counters:
    """The counters ``limits.store`` names: Redis, shared by replicas, or this process's memory."""
    if config.store == "redis":
        return RedisCounters(config.redis_url, config.namespace)
    return MemoryCounters()
