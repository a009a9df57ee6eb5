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
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.engine import Connection, Engine

from llmgw.audit.models import AuditCheckpoint, GuardEventRow
from llmgw.storage.models import table
from llmgw.storage.sanitise import as_utc, plain
from llmgw.storage.sql import insert_new

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
EVENTS = table(GuardEventRow)
CHECKPOINTS = table(AuditCheckpoint)


def iso_utc(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: the canonical form of a timestamp."""
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _created_at(value: Any) -> datetime:
    try:
        return as_utc(value)
    except (TypeError, ValueError, AttributeError):
        log.warning("guard event with an invalid created_at %r: using the current time", value)
        return datetime.now(UTC)


def canonical_json(row: dict[str, Any]) -> bytes:
    fields: dict[str, Any] = {name: row.get(name) for name in HASHED_FIELDS}
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


CHAIN_FIELDS = ("chain", "seq", "prev_hash", "hash")


def is_chained(row: dict[str, Any]) -> bool:
    return all(row.get(name) is not None for name in CHAIN_FIELDS)


def stored(row: dict[str, Any]) -> dict[str, Any]:
    """A chained row as the table takes it (``created_at`` read back from a dead-letter file's text)."""
    out = {name: row.get(name) for name in (*HASHED_FIELDS, "prev_hash", "hash")}
    out["created_at"] = _created_at(out["created_at"])
    return out


class GuardEventWriter:
    """The ``guard_events`` batch handler: gives each event its place in the chain, then inserts it.

    The place (seq, prev_hash, hash) is taken in memory by :meth:`prepare`, before any write is
    tried, and kept on the queued row itself: a retried batch, a row isolated by the writer, and a
    row kept in the dead-letter file while the database is away all carry the position and hash
    they will have in the database, so ``llmgw audit verify`` sees exactly which events are missing
    and where they are until ``llmgw storage replay`` puts them back. Inserts skip an id already
    stored, so writing a chained row twice (a retry whose first attempt did commit) stores it once.

    A new chain (the default: one per writer process) starts at genesis without asking the
    database; a named chain (resuming after retention) reads its head at its first write.
    """

    def __init__(self, chain: str | None = None) -> None:
        self.chain = chain or new_chain_id()
        self._head: tuple[int, str] | None = None if chain else (0, GENESIS)

    def prepare(self, rows: list[Any], conn: Connection | None = None) -> list[dict[str, Any]]:
        """Chain every row not chained yet (in place, so the queued dict keeps its position)."""
        out: list[dict[str, Any]] = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            if is_chained(row):
                out.append(row)
                continue
            if self._head is None:
                if conn is None:  # a resumed chain whose head is not read yet: chained at the write
                    out.append(row)
                    continue
                self._head = chain_head(conn, self.chain)
            seq, prev = self._head
            prepared = prepare(row)
            prepared["chain"], prepared["seq"], prepared["prev_hash"] = self.chain, seq + 1, prev
            prepared["hash"] = row_hash(prev, prepared)
            self._head = (seq + 1, prepared["hash"])
            row.clear()
            row.update(prepared)
            out.append(row)
        return out

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        prepared = [stored(row) for row in self.prepare(rows, conn)]
        return len(insert_new(conn, EVENTS, prepared))


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)


def _same_event(held: dict[str, Any], row: dict[str, Any]) -> bool:
    """The dead-lettered ``held`` is the stored ``row``: same id, and its own fields hash to the row's hash."""
    try:
        return held.get("id") == row["id"] and row_hash(str(held.get("prev_hash")), held) == row["hash"]
    except (ValueError, TypeError, OverflowError, AttributeError):
        return False


def _ranges(seqs: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3..5, 9``."""
    runs: list[list[int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


class ChainChecker:
    """Checks rows of one or more chains, fed in (chain, seq) order.

    ``held`` are events the writer could not store and kept in a dead-letter file (``held_in``),
    each with its chain position and hash. They fill the gaps they explain, are checked like stored
    rows, and are reported as missing from the database (naming the file) until they are replayed.
    """

    def __init__(
        self,
        checkpoints: dict[str, tuple[int, str]] | None = None,
        max_problems: int = 1000,
        held: list[dict[str, Any]] | None = None,
        held_in: str = "",
    ) -> None:
        self.checkpoints = checkpoints or {}
        self.max_problems = max_problems
        self.problems: list[str] = []
        self.hidden = 0
        self.checked = 0
        self.heads: dict[str, tuple[int, str]] = dict(self.checkpoints)
        self._chain: str | None = None
        self._visited: set[str] = set()
        self._expected: tuple[int, str] = (1, GENESIS)
        self.held_in = held_in
        self.held: dict[str, list[dict[str, Any]]] = {}
        self.unchained = 0
        for row in held or []:
            if is_chained(row):
                self.held.setdefault(str(row["chain"]), []).append(row)
            else:
                self.unchained += 1
        for rows in self.held.values():
            rows.sort(key=lambda r: int(r["seq"]))
        self._held_at = {(chain, int(r["seq"])): r for chain, rows in self.held.items() for r in rows}
        self._held_next: dict[str, int] = {}
        self.held_found: dict[str, list[int]] = {}

    def _problem(self, text: str) -> None:
        if len(self.problems) < self.max_problems:
            self.problems.append(text)
        else:
            self.hidden += 1

    def _start(self, chain: str, row: dict[str, Any] | None, resume: bool) -> None:
        if self._chain is not None:
            self._feed_held(self._chain, None)  # the held tail of the chain just finished
        self._chain = chain
        self._visited.add(chain)
        cp = self.checkpoints.get(chain)
        self._expected = (cp[0] + 1, cp[1]) if cp else (1, GENESIS)
        if resume and not cp and row is not None:
            self._expected = (int(row["seq"]), row["prev_hash"])

    def _feed_held(self, chain: str, before: int | None) -> None:
        """Check the held rows of ``chain`` that come before seq ``before`` (all when None)."""
        rows = self.held.get(chain, [])
        at = self._held_next.get(chain, 0)
        while at < len(rows) and (before is None or int(rows[at]["seq"]) < before):
            row = rows[at]
            at += 1
            if int(row["seq"]) >= self._expected[0]:  # else the database has it (a write that did commit)
                self.held_found.setdefault(chain, []).append(int(row["seq"]))
                self._check(row, " [dead-letter file]")
        self._held_next[chain] = at

    def feed(self, row: dict[str, Any], *, resume: bool = False) -> None:
        """Check one row; ``resume`` trusts the first row of a chain as a starting point (archives)."""
        chain, seq = row["chain"], int(row["seq"])
        if chain != self._chain:
            self._start(chain, row, resume)
        self._feed_held(chain, seq)
        twin = self._held_at.get((chain, seq))
        if twin is not None and not _same_event(twin, row):  # a committed write's copy is the same event
            self._problem(f"chain {chain} seq {seq} ({row['id']}): the dead-letter file {self.held_in} holds a "
                          f"different event ({twin.get('id')}) at this position (one of them edited)")  # fmt: skip
        self._check(row, "")

    def _check(self, row: dict[str, Any], origin: str) -> None:
        chain, seq = row["chain"], int(row["seq"])
        where = f"chain {chain} seq {seq} ({row['id']}){origin}"
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

    def unreadable(self, row: dict[str, Any], exc: Exception) -> None:
        """A row whose values cannot be read back (text in a JSON or time column that someone wrote
        straight into SQLite): reported by its place, and the walk goes on from it."""
        self._problem(f"chain {row.get('chain')} seq {row.get('seq')} ({row.get('id')}): unreadable row, "
                      f"{str(exc)[:200]} (row edited)")  # fmt: skip
        seq = row.get("seq")
        if isinstance(seq, int) and row.get("chain") == self._chain:
            self._expected = (seq + 1, str(row.get("hash")))
        self.checked += 1

    def result(self) -> VerifyResult:
        if self._chain is not None:
            self._feed_held(self._chain, None)
        for chain in sorted(set(self.held) - self._visited):  # chains with no row in the database at all
            self._start(chain, None, False)
            self._feed_held(chain, None)
        self._chain = None
        problems = list(self.problems)
        if self.hidden:
            problems.append(f"... and {self.hidden} more problem(s)")
        for chain, seqs in sorted(self.held_found.items()):
            problems.append(
                f"chain {chain}: {len(seqs)} event(s) (seq {_ranges(seqs)}) are not in the database but in the "
                f"dead-letter file {self.held_in}: run `llmgw storage replay`"
            )
        if self.unchained:
            problems.append(f"{self.unchained} event(s) without a chain position are in the dead-letter file "
                            f"{self.held_in}: run `llmgw storage replay`")  # fmt: skip
        return VerifyResult(not problems, self.checked, problems, self.heads)


def verify(
    engine: Engine, max_problems: int = 1000, held: list[dict[str, Any]] | None = None, held_in: str = ""
) -> VerifyResult:
    """Walk every chain in seq order, from its retention checkpoint if it has one.

    ``held``: the guard events kept in the dead-letter file ``held_in`` (see :class:`ChainChecker`).

    The checkpoints and the rows are two queries: a prune that commits between them would read as
    rows deleted (or out of order). So a walk that found problems is done again while the
    checkpoints it started from have changed meanwhile (a prune from cron beside a verify from cron).
    """
    # SQLite keeps whatever text is written into a JSON, time or integer column: those are read
    # raw and decoded row by row, so one edited row is reported instead of ending the walk
    raw = engine.dialect.name == "sqlite"
    columns = [
        type_coerce(EVENTS.c[name], Text).label(name) if raw and name in _DECODED else EVENTS.c[name]
        for name in (*HASHED_FIELDS, "prev_hash", "hash")
    ]
    query = select(*columns).order_by(EVENTS.c.chain, EVENTS.c.seq)
    with engine.connect() as conn:
        checkpoints = _checkpoints(conn)
        for _ in range(WALKS):
            checker = ChainChecker(checkpoints, max_problems, held, held_in)
            for mapping in conn.execution_options(yield_per=1000).execute(query).mappings():
                row = dict(mapping)
                try:
                    checker.feed(_decoded(row))
                except (ValueError, TypeError, OverflowError, AttributeError) as exc:
                    checker.unreadable(row, exc)
            result = checker.result()
            now = _checkpoints(conn)
            if result.ok or now == checkpoints:
                break
            checkpoints = now  # pruned while walking: walk again from where retention left the chains
    return result


WALKS = 3


def _checkpoints(conn: Connection) -> dict[str, tuple[int, str]]:
    return {r.chain: (int(r.seq), str(r.hash)) for r in conn.execute(select(CHECKPOINTS))}


_DECODED = ("created_at", "scores", "entities")


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A row read raw from SQLite as the table's types read it; ValueError names a value that is not."""
    for name in ("scores", "entities"):
        if isinstance(row[name], str):
            try:
                row[name] = json.loads(row[name])
            except ValueError:
                raise ValueError(f"{name} is not JSON") from None
    if isinstance(row["created_at"], str):
        try:
            row["created_at"] = as_utc(row["created_at"])
        except (ValueError, OverflowError):
            raise ValueError("created_at is not a time") from None
    if not isinstance(row["seq"], int):
        raise ValueError("seq is not an integer")
    return row


def check_heads(
    engine: Engine, recorded: list[tuple[str, int, str]], held: list[dict[str, Any]] | None = None
) -> list[str]:
    """Each recorded head (``verify --heads`` output kept elsewhere) still on its chain with its hash.

    This is what catches the newest rows of a chain deleted, or a chain rewritten from some row on
    with fresh hashes, which the chain alone cannot show (see docs/audit.md, "Limits of the chain").
    A head that retention has since pruned is checked against the checkpoint when it is the
    checkpoint's row, else it is past checking here (its prune archive verifies with ``--file``).
    """
    kept = {(str(r["chain"]), int(r["seq"])): str(r["hash"]) for r in held or [] if is_chained(r)}
    problems: list[str] = []
    c = EVENTS.c
    with engine.connect() as conn:
        for chain, seq, hash_ in recorded:
            found = conn.execute(select(c.hash).where(c.chain == chain, c.seq == seq)).scalar()
            if found is None:
                found = kept.get((chain, seq))
            if found is None:
                cp = conn.execute(select(CHECKPOINTS.c.seq, CHECKPOINTS.c.hash).where(CHECKPOINTS.c.chain == chain))
                checkpoint = cp.first()
                if checkpoint is not None and int(checkpoint[0]) > seq:
                    continue  # pruned since it was recorded
                found = str(checkpoint[1]) if checkpoint is not None and int(checkpoint[0]) == seq else None
            if found is None:
                last = conn.execute(select(func.max(c.seq)).where(c.chain == chain)).scalar()
                now = f"the chain now ends at seq {last}" if last is not None else "the chain has no row left"
                problems.append(f"chain {chain}: recorded head seq {seq} is gone, {now} (rows deleted)")
            elif found != hash_:
                problems.append(f"chain {chain} seq {seq}: hash differs from the recorded head (history rewritten)")
    return problems


def verify_rows(rows: list[dict[str, Any]], max_problems: int = 1000) -> VerifyResult:
    """Check exported rows (e.g. a ``prune --export`` archive): each chain from its first row on."""
    checker = ChainChecker(max_problems=max_problems)
    for row in sorted(rows, key=lambda r: (r["chain"], int(r["seq"]))):
        checker.feed(row, resume=True)
    return checker.result()
