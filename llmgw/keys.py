"""Virtual API keys: created, listed and revoked by CLI or admin API; stored as SHA-256 only.

Keys are 32 random bytes, so a plain SHA-256 is a safe verifier (no dictionary to attack).
Lookups on the request path hit an in-memory index that a background thread refreshes from
the database; an unknown ``sk-llmgw-…`` key costs one database read off the event loop (then is
remembered as unknown until the next refresh, so repeating a bad key is free; distinct bad keys
are bounded per client by :mod:`llmgw.limits.auth_failures`). Any other key can only be a static
key from the config, so it never costs a read.

A read of the database and a write made by this process can cross: a refresh (or a lookup) that read
the table before a revoke committed would install its answer after the revoke had updated memory,
and the revoked key worked again until the next refresh. So every read and every local write takes
a tick of one clock, and what this process wrote after a read began is laid over that read's answer
(see :meth:`KeyStore.refresh`). The request path (:meth:`KeyStore.cached`) is untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from llmgw.config import StaticKeyConfig
from llmgw.storage.models import ApiKey

KEY_PREFIX = "sk-llmgw-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the pipeline knows about the caller."""

    id: str
    name: str
    team: str | None
    user: str | None
    models: tuple[str, ...]
    routes: tuple[str, ...]
    admin: bool = False
    #: tool names (shell-style patterns) its requests may offer; ``*`` for any (``llmgw.guards.tools``)
    tools: tuple[str, ...] = ("*",)

    def allows_model(self, model: str) -> bool:
        return "*" in self.models or model in self.models

    def allows_route(self, route: str) -> bool:
        return "*" in self.routes or route in self.routes


def _info(row: ApiKey) -> KeyInfo:
    tools = ("*",) if row.tools is None else tuple(row.tools)
    return KeyInfo(row.id, row.name, row.team, row.user, tuple(row.models), tuple(row.routes), tools=tools)


UNSEEN = object()  # what :meth:`KeyStore.cached` answers when only the database can tell


class KeyStore:
    """Create, revoke and look up keys; the database is the source of truth."""

    MAX_UNKNOWN = 10_000

    def __init__(
        self, engine: Engine, static: list[StaticKeyConfig] | None = None, negative_ttl_s: float = 5.0
    ) -> None:
        self.engine = engine
        self.negative_ttl_s = negative_ttl_s
        self._static = {
            k.sha256: KeyInfo(
                f"static:{k.name}", k.name, k.team, k.user, tuple(k.models), tuple(k.routes), tools=tuple(k.tools)
            )
            for k in static or []
        }
        self._by_hash: dict[str, KeyInfo] = {}
        self._unknown: dict[str, float] = {}
        self._lock = threading.Lock()
        #: ticked (under the lock) as each read of the database starts and after each local write
        #: commits: a write with a later tick than a read's may be missing from what that read saw
        self._clock = 0
        #: this process's writes that a read in flight may have missed: hash → (tick, the key as
        #: written, or None once revoked); dropped once a refresh that started after them is installed
        self._written: dict[str, tuple[int, KeyInfo | None]] = {}
        #: the tick at which the read of the snapshot in ``_by_hash`` started
        self._snapshot_tick = 0

    # --- administration (blocking; call off the loop from async code) ----------------------

    def create(
        self,
        name: str,
        *,
        team: str | None = None,
        user: str | None = None,
        models: list[str] | None = None,
        routes: list[str] | None = None,
        tools: list[str] | None = None,
    ) -> tuple[str, ApiKey]:
        """Make a key; returns the clear secret (shown once) and the stored row."""
        secret = new_secret()
        now = datetime.now(UTC)
        row = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            prefix=secret[: len(KEY_PREFIX) + 4],
            sha256=hash_key(secret),
            team=team,
            user=user,
            models=models or ["*"],
            routes=routes or ["*"],
            tools=tools,
            created_at=now,
            updated_at=now,
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
        self._wrote(row.sha256, _info(row))
        return secret, row

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        with Session(self.engine) as session:
            query = select(ApiKey).order_by(col(ApiKey.created_at))
            if not include_revoked:
                query = query.where(col(ApiKey.revoked_at).is_(None))
            return list(session.exec(query))

    def revoke(self, key_id: str) -> ApiKey | None:
        with Session(self.engine) as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                now = datetime.now(UTC)
                row.revoked_at = now
                row.updated_at = now
                session.add(row)
                session.commit()
                session.refresh(row)
        self._wrote(row.sha256, None)
        return row

    def _tick(self) -> int:
        with self._lock:
            self._clock += 1
            return self._clock

    def _wrote(self, digest: str, info: KeyInfo | None) -> None:
        """Memory after a committed write of this process (``info``: the key now; None: revoked),
        remembered until every read that may have missed it has been installed. Any new write
        (an update of limits or expiry, a delete) goes through here too."""
        with self._lock:
            self._clock += 1
            self._written[digest] = (self._clock, info)
            if info is None:
                self._by_hash.pop(digest, None)
            else:
                self._by_hash[digest] = info
                self._unknown.pop(digest, None)

    def refresh(self) -> None:
        """Reload every active key from the database (revocations made elsewhere take effect).

        The read runs unlocked (it may take long, and writes and lookups go on meanwhile), so what
        it read can be older than a write this process made since: those writes are laid over it.
        A snapshot whose read started before the installed one's is dropped (two refreshes crossed).
        """
        started = self._tick()
        fresh = self._read_active()
        with self._lock:
            if started < self._snapshot_tick:
                return
            for digest, (tick, info) in self._written.items():
                if tick > started:
                    if info is None:
                        fresh.pop(digest, None)
                    else:
                        fresh[digest] = info
            # a write before this read started is in what it read, and later snapshots start later still
            self._written = {digest: w for digest, w in self._written.items() if w[0] > started}
            self._by_hash = fresh
            self._snapshot_tick = started

    def _read_active(self) -> dict[str, KeyInfo]:
        """Every active key, by hash (a method of its own: tests hold a refresh between read and install)."""
        with Session(self.engine) as session:
            rows = session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None)))
            return {row.sha256: _info(row) for row in rows}

    def _read_one(self, digest: str) -> KeyInfo | None:
        """The active key of hash ``digest``, if any (a method of its own, as :meth:`_read_active`)."""
        with Session(self.engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.sha256 == digest, col(ApiKey.revoked_at).is_(None))).first()
        return _info(row) if row else None

    def _load_one(self, digest: str) -> KeyInfo | None:
        started = self._tick()
        info = self._read_one(digest)
        with self._lock:
            written = self._written.get(digest)
            if self._snapshot_tick > started or (written is not None and written[0] > started):
                # memory was set since this read started (a later snapshot, or a write here such as
                # a revoke): it is newer than what this read saw
                info = self._by_hash.get(digest)
            if info:
                self._by_hash[digest] = info
            else:
                self._unknown.pop(digest, None)
                self._unknown[digest] = time.monotonic() + self.negative_ttl_s
                while len(self._unknown) > self.MAX_UNKNOWN:  # oldest first: a flood cannot empty it
                    del self._unknown[next(iter(self._unknown))]
        return info

    # --- request path ------------------------------------------------------------------------

    def cached(self, secret: str) -> KeyInfo | object | None:
        """What memory knows: the key, ``None`` (unknown), or :data:`UNSEEN` (ask :meth:`load`)."""
        digest = hash_key(secret)
        info = self._static.get(digest) or self._by_hash.get(digest)
        if info is not None:
            return info
        if not secret.startswith(KEY_PREFIX):  # every stored key has the prefix (new_secret)
            return None
        until = self._unknown.get(digest)
        if until is not None and until > time.monotonic():
            return None
        return UNSEEN

    async def load(self, secret: str) -> KeyInfo | None:
        """Read one key from the database (a key created a moment ago by another replica)."""
        return await asyncio.to_thread(self._load_one, hash_key(secret))

    async def lookup(self, secret: str) -> KeyInfo | None:
        info = self.cached(secret)
        if info is UNSEEN:
            return await self.load(secret)
        return info if isinstance(info, KeyInfo) else None


def admin_matches(presented: str, admin_key: str | None) -> bool:
    return bool(admin_key) and hmac.compare_digest(presented.encode(), (admin_key or "").encode())
