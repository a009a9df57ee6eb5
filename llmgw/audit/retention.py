"""Retention: export, then delete, the events older than N days, keeping every chain verifiable.

Only a *prefix* of each chain is deleted (seq 1..k, all older than the cut-off; a row that is
older but follows a newer one in its chain stays until the next prune), and the chain's
checkpoint records (k, hash of row k), from which ``verify`` resumes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from llmgw.audit.chain import CHECKPOINTS, EVENTS, as_utc
from llmgw.audit.queries import jsonl_lines

BATCH = 1000


@dataclass
class PruneResult:
    cutoff: datetime
    deleted: int = 0
    chains: dict[str, int] = field(default_factory=dict)  # chain → last deleted seq


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
