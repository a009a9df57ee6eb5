"""The exact tier in Redis, shared by every gateway replica.

One key per entry (``<prefix><exact key>``) holding the entry as JSON, with Redis's own expiry set
to the entry's TTL. ``max_entries`` is not enforced here: bound Redis with ``maxmemory`` and an
LRU eviction policy. A Redis failure counts as a miss (and a skipped store), never as an error for
the client.

Redis decides what the exact tier holds: every replica also keeps its own copy of what it stored (its
semantic tier), and an entry gone from Redis (a hit marked wrong or an admin delete on another replica,
expiry, ``maxmemory`` eviction) is dropped from that copy when a lookup finds it missing
(``ResponseCache._exact``, ``_shared_alive``).
"""

from __future__ import annotations

import json
import logging
import time

import redis.asyncio as aioredis

from llmgw.cache.store import Entry

log = logging.getLogger("llmgw.cache")


class RedisExactStore:
    def __init__(self, url: str, prefix: str, timeout_s: float = 0.5) -> None:
        self.prefix = prefix
        self.client = aioredis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def get(self, key: str) -> Entry | None:
        return (await self.find(key))[1]

    async def find(self, key: str) -> tuple[bool, Entry | None]:
        """(Redis answered, the entry if it holds one): a replica tells "gone" from "unreachable"."""
        try:
            raw = await self.client.get(self.prefix + key)
        except Exception as exc:  # noqa: BLE001 - any Redis failure is a miss, never a client error
            log.warning("cache: redis get failed (%s); counting a miss", type(exc).__name__)
            return False, None
        entry = _decode(raw)
        return True, (entry if entry is not None and entry.expires > time.time() else None)

    async def exists(self, key: str) -> bool | None:
        """Whether Redis still holds the entry; None when it cannot be reached."""
        try:
            return bool(await self.client.exists(self.prefix + key))
        except Exception as exc:  # noqa: BLE001 - the caller decides what an unknown answer means
            log.warning("cache: redis exists failed (%s)", type(exc).__name__)
            return None

    async def put(self, entry: Entry, max_entries: int) -> None:
        ttl_ms = int((entry.expires - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        try:
            await self.client.set(self.prefix + entry.key, json.dumps(entry.doc()), px=ttl_ms)
        except Exception as exc:  # noqa: BLE001 - any Redis failure is a miss, never a client error
            log.warning("cache: redis set failed (%s); entry not shared", type(exc).__name__)

    async def delete(self, key: str) -> bool:
        """Drop one entry (a hit marked wrong); False when Redis could not be reached."""
        try:
            await self.client.delete(self.prefix + key)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, logged here
            log.warning("cache: redis delete failed (%s); the entry stays until it expires", type(exc).__name__)
            return False
        return True

    async def invalidate(self, *, route: str | None, template: str | None, collection: str | None) -> int:
        """Delete matching entries (an admin action: scans the prefix, reading each entry)."""
        deleted = 0
        async for name in self.client.scan_iter(match=f"{self.prefix}*", count=500):
            raw = await self.client.get(name)
            if raw is None:
                continue
            entry = _decode(raw)
            if entry is None:  # unreadable: never served, so dropped with whatever was asked for
                deleted += await self.client.delete(name)
                continue
            doc = entry.doc()
            if (
                (route is None or doc.get("route") == route)
                and (template is None or (doc.get("template") or "").split("@")[0] == template)
                and (collection is None or (doc.get("collection") or "").split("@")[0] == collection)
            ):
                deleted += await self.client.delete(name)
        return deleted

    async def ready(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # noqa: BLE001 - readiness reports it
            return False

    async def aclose(self) -> None:
        await self.client.aclose()


def _decode(raw: bytes | str | None) -> Entry | None:
    """An entry as stored, or None: absent, or unreadable by this version (written by another version
    during a rolling upgrade, or damaged), which counts as a miss, never as the request's failure."""
    if raw is None:
        return None
    try:
        return Entry.from_doc(json.loads(raw))
    except (ValueError, TypeError) as exc:
        log.warning("cache: unreadable redis entry (%s); counting a miss", type(exc).__name__)
        return None
