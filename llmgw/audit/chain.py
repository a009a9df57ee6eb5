"""The hash chain of guard events: canonical encoding, the writer's batch handler, verification.

``hash = sha256(prev_hash + canonical_json(fields))`` where ``prev_hash`` is the previous row's
hash in the same chain (64 zeros for seq 1) as ASCII hex, and ``canonical_json`` is the row's
:data:`HASHED_FIELDS` as one JSON object: keys sorted, no spaces, UTF-8 (no ``\\u`` escapes of
non-ASCII), ``created_at`` as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, floats as Python's ``repr``
(shortest round-tripping form), ``null`` for missing values. See docs/audit.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from llmgw.audit.models import AuditCheckpoint, GuardEventRow

log = logging.getLogger("llmgw.audit")

GENESIS = "0" * 64
HASHED_FIELDS = (
    "id", "chain", "seq", "request_id", "created_at", "key_id", "team", "user", "route", "stage", "guard",
    "policy", "verdict", "source", "scores", "entities", "entity_types", "value_hashes", "masked_text", "detail",
)  # fmt: skip
TEXT_FIELDS = ("id", "request_id", "key_id", "team", "user", "route", "stage", "guard", "policy", "verdict",
               "source", "masked_text", "detail")  # fmt: skip
# What an entity may carry: offsets, type, score, action and the salted hash; anything else (a raw
# "text" or "value" a buggy guard might add) is dropped before it reaches the database.
ENTITY_KEYS = frozenset({"type", "start", "end", "score", "action", "value_hash", "placeholder", "recognizer", "where"})
EVENTS = GuardEventRow.__table__
CHECKPOINTS = AuditCheckpoint.__table__


def as_utc(value: datetime | str) -> datetime:
    """A timestamp (or ISO 8601 text) as an aware UTC datetime; a naive one is taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: the canonical form of a timestamp."""
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _created_at(value: Any) -> datetime:
    try:
        return as_utc(value)
    except (TypeError, ValueError, AttributeError):
        log.warning("guard event with an invalid created_at %r: using the current time", value)
        return datetime.now(UTC)


def plain(value: Any) -> Any:
    """JSON-safe data that reads back identically from SQLite and PostgreSQL."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")  # PostgreSQL rejects NUL in text
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return plain(float(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return plain(str(value))


def canonical_json(row: dict[str, Any]) -> bytes:
    fields = {name: row.get(name) for name in HASHED_FIELDS}
    fields["created_at"] = iso_utc(fields["created_at"])
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(row)).hexdigest()


def _tags(values: list[str]) -> str | None:
    found = sorted({v for v in values if v})
    return "," + ",".join(found) + "," if found else None


def prepare(row: dict[str, Any]) -> dict[str, Any]:
    """A queued ``guard_event()`` dict as a storable row (without chain fields)."""
    row.setdefault("id", "ge_" + secrets.token_hex(10))  # kept on the queued dict: stable across retries
    unknown = set(row) - set(HASHED_FIELDS)
    if unknown:
        log.warning("guard event %s: dropping unknown fields %s", row["id"], sorted(unknown))
    out: dict[str, Any] = {name: None for name in HASHED_FIELDS}
    for name in TEXT_FIELDS:
        value = row.get(name)
        out[name] = None if value is None else plain(str(value))
    for name in ("stage", "guard", "policy", "verdict", "request_id"):
        out[name] = out[name] or ""
    out["created_at"] = _created_at(row.get("created_at") or datetime.now(UTC))
    out["scores"] = plain(row.get("scores") or {})
    entities = []
    listed = row.get("entities") or []
    for entity in listed if isinstance(listed, list | tuple) else [listed]:
        if not isinstance(entity, dict):
            log.warning("guard event %s: dropping an entity that is not a mapping", row["id"])
            continue
        dropped = set(entity) - ENTITY_KEYS
        if dropped:
            log.warning("guard event %s: dropping entity fields %s", row["id"], sorted(dropped))
        entities.append(plain({k: v for k, v in entity.items() if k in ENTITY_KEYS}))
    out["entities"] = entities
    out["entity_types"] = _tags([str(e.get("type") or "").replace(",", "_") for e in entities])
    out["value_hashes"] = _tags([str(e.get("value_hash") or "").replace(",", "_") for e in entities])
    return out


def new_chain_id() -> str:
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{socket.gethostname()}-{os.getpid()}-{started}-{secrets.token_hex(2)}"


def chain_head(conn: Connection, chain: str) -> tuple[int, str]:
    """The last (seq, hash) of a chain: its newest row, else its retention checkpoint, else genesis."""
    last = conn.execute(
        select(EVENTS.c.seq, EVENTS.c.hash).where(EVENTS.c.chain == chain).order_by(EVENTS.c.seq.desc()).limit(1)
    ).first()
    if last is None:
        last = conn.execute(select(CHECKPOINTS.c.seq, CHECKPOINTS.c.hash).where(CHECKPOINTS.c.chain == chain)).first()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


class GuardEventWriter:
    """The ``guard_events`` batch handler: chains and inserts rows inside the writer's transaction.

    The head (seq, hash) is read from the database once and then kept in memory. The writer thread
    retries a failed batch with the same rows until it commits and only then takes the next one, so
    a call with new rows means the previous call committed, and a call with the same rows is a retry:
    the head is then re-read (if the failed attempt did commit after all, the rows are already there).
    """

    def __init__(self, chain: str | None = None) -> None:
        self.chain = chain or new_chain_id()
        self._head: tuple[int, str] | None = None
        self._pending: tuple[str, tuple[int, str]] | None = None  # (first row id, head after it)

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        prepared = [prepare(row) for row in rows if isinstance(row, dict)]
        if not prepared:
            return
        key = prepared[0]["id"]
        if self._pending is not None:
            pending_key, after = self._pending
            if pending_key != key:
                self._head = after
            else:
                self._head = chain_head(conn, self.chain)
                if self._head == after:
                    return
        if self._head is None:
            self._head = chain_head(conn, self.chain)
        seq, prev = self._head
        for row in prepared:
            seq += 1
            row["chain"], row["seq"], row["prev_hash"] = self.chain, seq, prev
            row["hash"] = prev = row_hash(prev, row)
        conn.execute(insert(EVENTS), prepared)
        self._pending = (key, (seq, prev))


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)


class ChainChecker:
    """Checks rows of one or more chains, fed in (chain, seq) order."""

    def __init__(self, checkpoints: dict[str, tuple[int, str]] | None = None, max_problems: int = 1000) -> None:
        self.checkpoints = checkpoints or {}
        self.max_problems = max_problems
        self.problems: list[str] = []
        self.hidden = 0
        self.checked = 0
        self.heads: dict[str, tuple[int, str]] = dict(self.checkpoints)
        self._chain: str | None = None
        self._expected: tuple[int, str] = (1, GENESIS)

    def _problem(self, text: str) -> None:
        if len(self.problems) < self.max_problems:
            self.problems.append(text)
        else:
            self.hidden += 1

    def feed(self, row: dict[str, Any], *, resume: bool = False) -> None:
        """Check one row; ``resume`` trusts the first row of a chain as a starting point (archives)."""
        chain, seq = row["chain"], int(row["seq"])
        where = f"chain {chain} seq {seq} ({row['id']})"
        if chain != self._chain:
            self._chain = chain
            cp = self.checkpoints.get(chain)
            self._expected = (cp[0] + 1, cp[1]) if cp else (1, GENESIS)
            if resume and not cp:
                self._expected = (seq, row["prev_hash"])
        expected_seq, expected_prev = self._expected
        gap = False
        if seq < expected_seq:
            self._problem(f"{where}: out of order, expected seq {expected_seq} (row reordered or duplicated)")
        elif seq > expected_seq:
            gap = True
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            self._problem(f"{where}: seq {missing} missing (row deleted)")
        if not gap and row["prev_hash"] != expected_prev:
            self._problem(f"{where}: prev_hash does not match the previous row (row deleted or reordered)")
        if row_hash(row["prev_hash"], row) != row["hash"]:
            self._problem(f"{where}: hash mismatch (row edited or reordered)")
        self._expected = (seq + 1, row["hash"])
        self.heads[chain] = (seq, row["hash"])
        self.checked += 1

    def result(self) -> VerifyResult:
        problems = list(self.problems)
        if self.hidden:
            problems.append(f"... and {self.hidden} more problem(s)")
        return VerifyResult(not problems, self.checked, problems, self.heads)


def verify(engine: Engine, max_problems: int = 1000) -> VerifyResult:
    """Walk every chain in seq order, from its retention checkpoint if it has one."""
    columns = [EVENTS.c[name] for name in (*HASHED_FIELDS, "prev_hash", "hash")]
    with engine.connect() as conn:
        checkpoints = {r.chain: (int(r.seq), str(r.hash)) for r in conn.execute(select(CHECKPOINTS))}
        checker = ChainChecker(checkpoints, max_problems)
        query = select(*columns).order_by(EVENTS.c.chain, EVENTS.c.seq)
        for row in conn.execution_options(yield_per=1000).execute(query).mappings():
            checker.feed(dict(row))
    return checker.result()


def verify_rows(rows: list[dict[str, Any]], max_problems: int = 1000) -> VerifyResult:
    """Check exported rows (e.g. a ``prune --export`` archive): each chain from its first row on."""
    checker = ChainChecker(max_problems=max_problems)
    for row in sorted(rows, key=lambda r: (r["chain"], int(r["seq"]))):
        checker.feed(row, resume=True)
    return checker.result()
