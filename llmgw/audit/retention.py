"""Retention: export, then delete, the events older than N days, keeping every chain verifiable.

Only a *prefix* of each chain is deleted (seq 1..k, all older than the cut-off; a row that is
older but follows a newer one in its chain stays until the next prune), and the chain's
checkpoint records (k, hash of row k), from which ``verify`` resumes.

The prefix is verified before it goes: a prune stops just before the first row that ``verify``
would report (a gap, an edited row), so retention never deletes the evidence of tampering and
then anchors the chain past it (after which ``verify`` would say ok), and never jumps a gap of
events still waiting in the dead-letter file (replayed later, they would land below the checkpoint).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from llmgw.audit.chain import CHECKPOINTS, EVENTS, GENESIS, as_utc, row_hash
from llmgw.audit.queries import jsonl_lines

BATCH = 1000


@dataclass
class PruneResult:
    cutoff: datetime
    deleted: int = 0
    chains: dict[str, int] = field(default_factory=dict)  # chain → last deleted seq
    held_back: dict[str, str] = field(default_factory=dict)  # chain → why it was not pruned further


def verified_prefix(engine: Engine, chain: str, last: int) -> tuple[int, str | None]:
    """How far rows ..``last`` of ``chain`` check out from its checkpoint: the last good seq, and
    the problem at the row after it (``None`` when all of them do)."""
    c = EVENTS.c
    with engine.connect() as conn:
        cp = conn.execute(select(CHECKPOINTS.c.seq, CHECKPOINTS.c.hash).where(CHECKPOINTS.c.chain == chain)).first()
    seq, prev = (int(cp[0]), str(cp[1])) if cp else (0, GENESIS)
    while seq < last:
        query = select(EVENTS).where(c.chain == chain, c.seq > seq, c.seq <= last).order_by(c.seq).limit(BATCH)
        try:
            with engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(query).mappings()]
        except (ValueError, TypeError):  # a value SQLite cannot read back: edited by hand
            return seq, f"seq {seq + 1} or a row after it is unreadable (row edited)"
        if not rows:
            return seq, f"seq {seq + 1}..{last} missing (rows deleted, or in the dead-letter file)"
        for row in rows:
            if int(row["seq"]) != seq + 1:
                return seq, f"seq {seq + 1} missing (row deleted, or in the dead-letter file)"
            if row["prev_hash"] != prev or row_hash(prev, row) != row["hash"]:
                return seq, f"seq {seq + 1} ({row['id']}) does not check out (row edited)"
            seq, prev = seq + 1, str(row["hash"])
    return last, None


def prune_plan(engine: Engine, cutoff: datetime) -> dict[str, int]:
    """Per chain, the last seq that may go: just before its first row at or after ``cutoff``."""
    c = EVENTS.c
    plan: dict[str, int] = {}
    with engine.connect() as conn:
        old = conn.execute(select(c.chain, func.max(c.seq)).where(c.created_at < cutoff).group_by(c.chain))
        for chain, max_old in old.all():
            first_new = conn.execute(select(func.min(c.seq)).where(c.chain == chain, c.created_at >= cutoff)).scalar()
            first = conn.execute(select(func.min(c.seq)).where(c.chain == chain)).scalar()
            last = int(max_old) if first_new is None else int(first_new) - 1
            if first is not None and last >= int(first):
                plan[chain] = last
    return plan


def export_chain(engine: Engine, chain: str, last: int, out: TextIO) -> None:
    """Rows 1..``last`` of ``chain`` as JSONL, in seq order, a batch per query."""
    c = EVENTS.c
    after = -1
    while True:
        query = select(EVENTS).where(c.chain == chain, c.seq > after, c.seq <= last).order_by(c.seq).limit(BATCH)
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if not rows:
            return
        out.write(jsonl_lines(rows))
        after = rows[-1]["seq"]


def _checkpoint(conn: Connection, chain: str, seq: int, hash_: str, deleted: int, now: datetime) -> None:
    existing = conn.execute(select(CHECKPOINTS.c.deleted).where(CHECKPOINTS.c.chain == chain)).scalar()
    if existing is None:
        conn.execute(CHECKPOINTS.insert().values(chain=chain, seq=seq, hash=hash_, deleted=deleted, pruned_at=now))
    else:
        values = {"seq": seq, "hash": hash_, "deleted": int(existing) + deleted, "pruned_at": now}
        conn.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.chain == chain).values(**values))


def prune(engine: Engine, days: float, export: TextIO | None = None, now: datetime | None = None) -> PruneResult:
    """Export (if ``export`` is given, flushed and fsynced first), then delete, in one transaction."""
    now = as_utc(now or datetime.now(UTC))
    result = PruneResult(cutoff=now - timedelta(days=days))
    plan = prune_plan(engine, result.cutoff)
    for chain, last in sorted(plan.items()):
        good, problem = verified_prefix(engine, chain, last)
        if problem is not None:
            result.held_back[chain] = f"kept from seq {good + 1} on: {problem}"
            plan[chain] = good
    plan = {chain: last for chain, last in plan.items() if last > 0}
    if export is not None:
        for chain, last in sorted(plan.items()):
            export_chain(engine, chain, last, export)
        export.flush()
        with contextlib.suppress(OSError, ValueError):  # not a real file (a pipe, a StringIO)
            os.fsync(export.fileno())
    c = EVENTS.c
    with engine.begin() as conn:
        for chain, last in sorted(plan.items()):
            hash_ = conn.execute(select(c.hash).where(c.chain == chain, c.seq == last)).scalar()
            if hash_ is None:  # already gone (another prune): nothing to anchor on
                continue
            gone = conn.execute(delete(EVENTS).where(c.chain == chain, c.seq <= last)).rowcount or 0
            _checkpoint(conn, chain, last, hash_, gone, now)
            result.deleted += gone
            result.chains[chain] = last
    return result
