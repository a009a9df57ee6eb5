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
#: (``limits.store_timeout_s``)
STORE_TIMEOUT_S = 1.0
INCREMENT = """
local value = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return value
"""
#: add ARGV[1] only while the total (spent and reserved) is below ARGV[3], in one step: replicas
#: reserving at the same moment see each other's reservations, as if they had come one after another
RESERVE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[3]) then return {0, tostring(current)} end
local value = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {1, value}
"""


def fits(current: float, limit: float) -> bool:
    """Whether a reservation may be added to ``current`` (spent and reserved): while it is below the limit."""
    return current < limit


class Counters(Protocol):
    async def add(self, key: str, amount: float, ttl_s: int) -> float:
        """Add ``amount`` and return the new total; the key expires ``ttl_s`` after its first use."""
        ...

    async def reserve(self, key: str, amount: float, limit: float, ttl_s: int) -> tuple[bool, float]:
        """Add ``amount`` only while the total is below ``limit``, atomically: (taken, total)."""
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
            return await self._add(key, amount, ttl_s)

    async def _add(self, key: str, amount: float, ttl_s: int) -> float:
        current = await self.store.get(key)
        total = (float(current) if current is not None else 0.0) + amount
        ttl = await self.store.expires_in(key) if current is not None else None
        await self.store.set(key, repr(total), expires_in=ttl if ttl and ttl > 0 else ttl_s)
        return total

    async def reserve(self, key: str, amount: float, limit: float, ttl_s: int) -> tuple[bool, float]:
        async with self._lock:
            current = await self.store.get(key)
            total = float(current) if current is not None else 0.0
            if not fits(total, limit):
                return False, total
            return True, await self._add(key, amount, ttl_s)

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
        self._reserve = self.store._redis.register_script(RESERVE)

    async def add(self, key: str, amount: float, ttl_s: int) -> float:
        value = await self._increment(keys=[self.store._make_key(key)], args=[repr(float(amount)), int(ttl_s)])
        return float(value)

    async def reserve(self, key: str, amount: float, limit: float, ttl_s: int) -> tuple[bool, float]:
        taken, value = await self._reserve(
            keys=[self.store._make_key(key)], args=[repr(float(amount)), int(ttl_s), repr(float(limit))]
        )
        return bool(taken), float(value)

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
        return RedisCounters(config.redis_url, config.namespace, config.store_timeout_s)
    return MemoryCounters()
