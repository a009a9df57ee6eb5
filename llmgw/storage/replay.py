"""``llmgw storage replay``: put dead-lettered rows back in the database.

Rows in the journal of a gateway that died (SIGKILL: :mod:`llmgw.storage.journal`) are moved to
the dead-letter files first. Each table's dead-letter file is claimed (renamed, so a running
gateway appends to a new file meanwhile), its rows written through the same path as the writer's
(sanitised, refused rows isolated, inserts idempotent by id), and the file removed. Rows the
database still refuses, and lines that cannot be read, go back to the dead-letter file; if the
database is away, every row not written yet goes back and the replay stops. Running it twice, or
while another replay or a gateway runs, stores no row twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from llmgw.storage.deadletter import DeadLetters
from llmgw.storage.journal import orphans_to_dead_letters
from llmgw.storage.writer import BatchHandler, default_handlers, describe, write_isolating

log = logging.getLogger("llmgw.storage")


@dataclass
class ReplayCount:
    table: str
    replayed: int = 0  # new in the database
    present: int = 0  # already there (an earlier replay, or a write that did commit)
    kept: int = 0  # still in the dead-letter file: refused again, unreadable, or no table for them


class Stopped(Exception):
    """The replay stopped; the rows it had not written are back in the dead-letter file."""


class DatabaseAway(Stopped):
    """The database could not be reached."""


def replay(
    engine: Engine,
    letters: DeadLetters,
    batch_size: int = 500,
    handlers: dict[str, BatchHandler] | None = None,
) -> list[ReplayCount]:
    """Replay every table's dead-letter file; one count per table."""
    moved = orphans_to_dead_letters(letters)  # rows a killed gateway had only in its journal
    if moved:
        log.warning("%d rows from the journal of a process that died moved to the dead-letter files", moved)
    handlers = handlers or default_handlers()  # guard events without a chain position get a new chain
    counts: list[ReplayCount] = []
    for table in letters.tables():
        count = ReplayCount(table)
        counts.append(count)
        handler = handlers.get(table)
        if handler is None:
            count.kept = sum(len(letters.read(path)[0]) for path in letters.files(table))
            log.warning("no table for dead-lettered %s rows; left in place", table)
            continue
        for path in letters.claim(table):
            found, unreadable = letters.read(path)
            letters.append_lines(table, unreadable)
            count.kept += len(unreadable)
            try:
                _replay_rows(engine, letters, table, handler, [f.row for f in found], batch_size, count)
            except Stopped:  # what was not written is back in the dead-letter file
                path.unlink()
                raise
            path.unlink()
    return counts


def _replay_rows(
    engine: Engine,
    letters: DeadLetters,
    table: str,
    handler: BatchHandler,
    rows: list[dict[str, Any]],
    batch_size: int,
    count: ReplayCount,
) -> None:
    prepare = getattr(handler, "prepare", None)
    try:
        prepared = prepare(rows) if prepare is not None else rows
    except Exception as exc:  # keep them as they were rather than lose them
        letters.append(table, rows, describe(exc))
        count.kept += len(rows)
        raise Stopped(f"{table}: preparing the rows failed: {describe(exc)}") from exc

    def refused(row: dict[str, Any], exc: BaseException) -> None:
        letters.append(table, [row], describe(exc))
        count.kept += 1

    for start in range(0, len(prepared), batch_size):
        chunk = prepared[start : start + batch_size]
        try:
            committed, new = write_isolating(engine, handler, chunk, refused)
        except Exception as exc:
            rest = prepared[start:]
            letters.append(table, rest, describe(exc))
            count.kept += len(rest)
            raise DatabaseAway(f"{table}: {describe(exc)}; {len(rest)} row(s) kept for the next replay") from exc
        count.replayed += new
        count.present += committed - new
