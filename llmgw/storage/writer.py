"""Database writes off the request path.

Handlers enqueue rows (a non-blocking ``put``). Each table has its own queue and writer thread (a
*lane*), so one table's retries never hold up another's rows. A lane drains its queue in batches,
one transaction per batch:

- every row is first made storable (:mod:`llmgw.storage.sanitise`; guard events also get their
  place in the hash chain, in memory, so it survives whatever happens to the write);
- a batch the database *refuses* (a value it rejects) is split in halves until the bad row is
  alone; that row goes to the dead-letter file at once and every other row lands on time;
- a database that is *away* is retried with backoff for ``max_attempts`` tries; then the batch
  goes to the dead-letter file and, until a write succeeds again, each later batch gets one try,
  so memory stays bounded and the rows are on disk, not in a queue a crash would lose;
- ``close()`` (SIGTERM) writes what it can and puts every row it cannot write in the dead-letter
  file before it returns, also when the database is away or a thread is stuck in a call.

Writes are idempotent by row id (:mod:`llmgw.storage.sql`), so a retry whose first attempt did
commit, or ``llmgw storage replay`` of a dead-letter file, never stores a row twice.

Request rows are also remembered (id → key id) from ``put`` until their batch is committed or
dead-lettered: :meth:`RowWriter.queued_request` answers for a request that exists but is not in
the table yet, so a caller checking "queued, else in the table" never misses one (an id leaves
memory only after its row is readable, or is on disk).

What survives what: every row put is also appended to this process's journal
(:mod:`llmgw.storage.journal`: one unsynced ``os.write``, in the page cache) until it is settled, so
rows of answered requests survive SIGKILL and the OOM killer (the next start-up, or ``llmgw storage
replay``, writes them); SIGTERM writes or dead-letters everything (fsynced). A crash of the machine
itself can lose the journal's last ``flush_interval_s`` of rows: an fsync per row would cost every
request a disk flush, which this does not do.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from llmgw.audit.chain import GuardEventWriter
from llmgw.storage.deadletter import DeadLetters
from llmgw.storage.journal import Journal, orphans
from llmgw.storage.models import FeedbackRow, RequestRow, UsageRow, table
from llmgw.storage.sanitise import sanitise
from llmgw.storage.sql import insert_new

log = logging.getLogger("llmgw.storage")

BatchHandler = Callable[[Connection, list[dict[str, Any]]], "int | None"]
_STOP = object()
_FLUSH = "__flush__"

_USAGE_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")


class Preparing(Protocol):
    def prepare(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


@lru_cache(maxsize=4)
def _usage_upsert(dialect: str) -> Any:
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    usage = table(UsageRow)
    upsert = insert_fn(usage)
    excluded = upsert.excluded
    return upsert.on_conflict_do_update(
        index_elements=["day", "key_id", "team", "model"],
        set_={name: getattr(usage.c, name) + getattr(excluded, name) for name in _USAGE_SUMS},
    )


def add_usage(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add request rows to the per-day usage totals."""
    totals: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for row in rows:
        model = row.get("model_used") or row.get("model_requested") or ""
        key = (row["created_at"].date().isoformat(), row.get("key_id") or "", row.get("team") or "", model)
        t = totals[key]
        t[0] += 1
        t[1] += 1 if row["status"] not in ("ok", "cached") else 0
        t[2] += row.get("prompt_tokens", 0)
        t[3] += row.get("completion_tokens", 0)
        t[4] += row.get("cost_usd", 0.0)
    if not totals:
        return
    values = [
        {"day": d, "key_id": k, "team": tm, "model": m, "requests": int(t[0]), "errors": int(t[1]),
         "prompt_tokens": int(t[2]), "completion_tokens": int(t[3]), "cost_usd": float(t[4])}
        for (d, k, tm, m), t in totals.items()
    ]  # fmt: skip
    conn.execute(_usage_upsert(conn.dialect.name), values)


class TableWriter:
    """Sanitise, then insert the rows not stored yet; ``requests`` rows also count towards usage."""

    def __init__(self, table: Any, on_new: Callable[[Connection, list[dict[str, Any]]], None] | None = None) -> None:
        self.table = table
        self.on_new = on_new

    def prepare(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [sanitise(self.table, row) for row in rows]

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        new = {key[0] for key in insert_new(conn, self.table, rows)}
        if self.on_new is not None and new:
            self.on_new(conn, [row for row in rows if row["id"] in new])
        return len(new)


def default_handlers() -> dict[str, BatchHandler]:
    return {
        "requests": TableWriter(table(RequestRow), add_usage),
        "feedback": TableWriter(table(FeedbackRow)),
        "guard_events": GuardEventWriter(),  # hash-chained guardrail log (llmgw/audit)
    }


def is_row_fault(exc: BaseException) -> bool:
    """True when the database answered and refused these rows, rather than being away or broken.

    Refusals (a value too long, a NUL, a constraint, a value the driver cannot bind, a row missing a
    field) are about rows and are isolated; anything else (connection lost, a table missing, a lock)
    would fail every row alike and is retried with the whole batch.
    """
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, StatementError):
        return True  # raised while binding a value, before the database saw the statement
    return not isinstance(exc, SQLAlchemyError | OSError)


def describe(exc: BaseException) -> str:
    """The error without the statement and its parameters (which may hold the row's values)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:300]


def write_isolating(
    engine: Engine,
    handler: BatchHandler,
    rows: list[dict[str, Any]],
    refused: Callable[[dict[str, Any], BaseException], None],
) -> tuple[int, int]:
    """Write ``rows``, isolating those the database refuses by bisection: (rows committed, rows new).

    A refused row is handed to ``refused``; any other failure is raised for the caller to retry
    (every write is idempotent by id, so halves that already committed are not stored twice).
    """
    try:
        with engine.begin() as conn:
            new = handler(conn, rows)
        return len(rows), len(rows) if new is None else int(new)
    except Exception as exc:
        if not is_row_fault(exc):
            raise
        if len(rows) == 1:
            refused(rows[0], exc)
            return 0, 0
        mid = len(rows) // 2
        first = write_isolating(engine, handler, rows[:mid], refused)
        second = write_isolating(engine, handler, rows[mid:], refused)
        return first[0] + second[0], first[1] + second[1]


def _no_handler(conn: Connection, rows: list[dict[str, Any]]) -> None:
    raise LookupError("no storage handler for this table")


def _urgent(item: Any) -> bool:
    return item is _STOP or (isinstance(item, tuple) and item[0] == _FLUSH)


class _Lane:
    """One table's queue and thread."""

    def __init__(self, writer: RowWriter, kind: str, handler: BatchHandler) -> None:
        self.writer = writer
        self.kind = kind
        self.handler = handler
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"llmgw-writer-{kind}", daemon=True)
        self.lock = threading.Lock()  # the in-flight batch and this lane's dead-letter appends
        self.gate = threading.Lock()  # ``abandoned`` against ``put`` (never held during I/O)
        self.wake = threading.Event()  # ends ``_collect``'s wait: a full batch, a stop or a flush
        self.inflight: list[dict[str, Any]] = []
        self.away = False  # the last write found the database away: one try per batch until one succeeds
        self.away_at_stop = False  # a write failed during shutdown: keep the rest on disk without trying
        self.abandoned = False

    def pending(self) -> int:
        return self.queue.qsize() + len(self.inflight)

    def _collect(self, first: Any) -> list[Any]:
        """Gather rows for up to ``flush_interval_s`` after the first one (or ``batch_size`` of them).

        Waiting is what makes batches: requests arriving one at a time would otherwise cost a
        commit each, and a commit's CPU shows up in every request's latency on a small machine.
        The thread sleeps on ``wake`` for the whole window and then drains the queue, rather than
        waking for each row: a wake-up per request is a thread switch and a GIL hand-off that the
        event loop pays in its next socket write. ``put`` sets ``wake`` when a full batch is queued,
        and a stop or flush marker sets it, which ends the wait at once.
        """
        batch = [first]
        if _urgent(first):
            return batch
        with self.lock:  # the first row waits out the window here: still counted as pending
            self.inflight = [first]
        size = self.writer.batch_size
        if self.queue.qsize() < size - 1:
            self.wake.wait(self.writer.flush_interval_s)
        while len(batch) < size and not _urgent(batch[-1]):
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                self.wake.clear()  # only once drained: a marker left behind a full batch must still wake us
                break
        else:
            if _urgent(batch[-1]) and self.queue.empty():
                # a flush or stop marker ended the batch and set ``wake``: consumed here, or the next
                # batch would skip its window and be written one row at a time
                self.wake.clear()
        return batch

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self.queue.get(timeout=1.0)
            except queue.Empty:
                continue
            batch = self._collect(first)
            if any(item is _STOP for item in batch):
                stopping = True
                while True:  # anything after the stop marker was put during shutdown: still write it
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
            rows = [item for item in batch if item is not _STOP and not _urgent(item)]
            size = self.writer.batch_size
            for start in range(0, len(rows), size):
                self._write(rows[start : start + size])
            for item in batch:
                if isinstance(item, tuple) and item[0] == _FLUSH:
                    item[1].set()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with self.lock:
            self.inflight = rows
        try:
            self._write_batch(rows)
        finally:
            with self.lock:
                self.inflight = []
            self.writer.settled(self.kind, rows)

    def _write_batch(self, rows: list[dict[str, Any]]) -> None:
        writer = self.writer
        prepare = getattr(self.handler, "prepare", None)
        try:
            prepared = prepare(rows) if prepare is not None else rows
        except Exception as exc:  # a bug in preparing: keep the rows as they came
            log.exception("preparing %d %s rows failed", len(rows), self.kind)
            self.dead_letter(rows, describe(exc))
            return
        delay = 0.05
        attempt = 0
        while True:
            stopping = writer.stopping.is_set()
            if stopping and self.away_at_stop:  # shutting down with the database away: keep the rows on disk now
                self.dead_letter(prepared, "database unreachable at shutdown")
                return
            try:
                committed, _ = write_isolating(writer.engine, self.handler, prepared, self.refused)
                writer.count("written", committed)
                self.away = False
                return
            except Exception as exc:  # noqa: BLE001 - away or broken for every row: retried, then kept on disk
                attempt += 1
                writer.count("failures", 1)
                if stopping or self.away or attempt >= writer.max_attempts:
                    self.away = True
                    self.away_at_stop = stopping
                    log.error("writing %d %s rows failed (%s); keeping them in the dead-letter file",
                              len(prepared), self.kind, describe(exc))  # fmt: skip
                    self.dead_letter(prepared, describe(exc))
                    return
                log.warning("writing %d %s rows failed (attempt %d: %s); retrying in %.2fs",
                            len(prepared), self.kind, attempt, describe(exc), delay)  # fmt: skip
                writer.stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    def refused(self, row: dict[str, Any], exc: BaseException) -> None:
        """The database refused this row alone: keep it aside, the rest of its batch goes on."""
        self.writer.count("refused", 1)
        # the error's text may quote the refused value (the user's data): only its kind goes to the log
        kind = type(getattr(exc, "orig", None) or exc).__name__
        row_id = row.get("id") if isinstance(row, dict) else None
        log.error("the database refused a %s row (id %s, %s); kept in the dead-letter file", self.kind, row_id, kind)
        self.dead_letter([row], describe(exc))

    def dead_letter(self, rows: list[dict[str, Any]], error: str) -> None:
        with self.lock:
            if self.abandoned:  # close() already kept this lane's rows
                return
            self.writer.keep(self.kind, rows, error)

    def abandon(self) -> None:
        """Called by ``close()`` once the thread ended, or did not in time (stuck in a database call):
        whatever is still queued or in flight goes to the dead-letter file."""
        with self.gate:
            self.abandoned = True
        with self.lock:
            rows = list(self.inflight)
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, tuple) and item[0] == _FLUSH:
                    item[1].set()
                elif item is not _STOP:
                    rows.append(item)
            if rows:
                self.writer.keep(self.kind, rows, "not written before shutdown")


class RowWriter:
    """Queues and threads (one per table) that write what is put on them, in batches."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        max_attempts: int = 12,
        dead_letter_dir: str | Path = "var/dead-letter",
        max_pending_rows: int = 10_000,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_attempts = max_attempts
        self.max_pending_rows = max_pending_rows
        self.dead_letters = DeadLetters(dead_letter_dir)
        self.dead_letter_dir = self.dead_letters.dir
        self.journal = Journal(self.dead_letters.dir)
        self.written = 0
        self.failures = 0
        self.refused = 0
        self.dead_lettered = 0
        self.stopping = threading.Event()
        self._count_lock = threading.Lock()
        #: id → (key id, feedback token digest), until the row is settled
        self._queued_requests: dict[str, tuple[str | None, str | None]] = {}
        self._queued_lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}
        self._started = False
        for kind, handler in default_handlers().items():
            self.register(kind, handler)

    @property
    def handlers(self) -> dict[str, BatchHandler]:
        return {kind: lane.handler for kind, lane in self._lanes.items()}

    def register(self, kind: str, handler: BatchHandler) -> None:
        lane = _Lane(self, kind, handler)
        self._lanes[kind] = lane
        if self._started:
            lane.thread.start()

    def start(self) -> None:
        """Start the lanes; rows left in the journal of a process that died are queued first."""
        if not self._started:
            self._started = True
            for lane in self._lanes.values():
                lane.thread.start()
            with orphans(self.dead_letters.dir) as found:
                for kind, row in found:  # journaled again by put before the orphan file goes
                    self.put(kind, row)
            if found:
                log.warning("%d rows from the journal of a process that died were queued again", len(found))

    def put(self, kind: str, row: dict[str, Any]) -> None:
        """Enqueue a row; never blocks and never touches the database (one append to the journal)."""
        self.journal.add(kind, row)
        if kind == "requests":
            with self._queued_lock:
                self._queued_requests[row["id"]] = (row.get("key_id"), row.get("feedback_sha256"))
        lane = self._lanes.get(kind)
        if lane is None:  # a programming error: the row is dead-lettered by its own lane, not lost
            log.error("no storage handler for %r rows", kind)
            self.register(kind, _no_handler)
            lane = self._lanes[kind]
        with lane.gate:
            if not lane.abandoned:
                lane.queue.put(row)
                if lane.queue.qsize() >= self.batch_size:
                    lane.wake.set()
                return
        self.keep(kind, [row], "queued after shutdown")  # nothing reads the queue any more

    def queued_request(self, request_id: str) -> tuple[bool, str | None, str | None]:
        """``(True, key id, feedback token digest)`` while request ``request_id``'s row is queued and not
        yet settled; ``(False, None, None)`` otherwise."""
        with self._queued_lock:
            owner = self._queued_requests.get(request_id)
        return (True, *owner) if owner is not None else (False, None, None)

    def settled(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """Rows committed or kept on disk: request ids are forgotten only now (see the module doc)."""
        self.journal.settle(rows)
        if kind == "requests":
            with self._queued_lock:
                for row in rows:
                    if isinstance(row, dict) and isinstance(row.get("id"), str):
                        self._queued_requests.pop(row["id"], None)

    @property
    def running(self) -> bool:
        alive = all(lane.thread.is_alive() for lane in self._lanes.values())
        return self._started and not self.stopping.is_set() and alive

    def pending(self) -> int:
        return sum(lane.pending() for lane in self._lanes.values())

    def behind(self) -> bool:
        """More rows wait than ``max_pending_rows``: readiness reports it."""
        return self.pending() > self.max_pending_rows

    def count(self, counter: str, n: int) -> None:
        """Add to a counter (lanes run in several threads)."""
        with self._count_lock:
            setattr(self, counter, getattr(self, counter) + n)

    def keep(self, kind: str, rows: list[dict[str, Any]], error: str) -> None:
        """Append rows to the dead-letter file; they stay there until ``llmgw storage replay``."""
        if not rows:
            return
        try:
            path = self.dead_letters.append(kind, rows, error)
        except OSError:
            log.critical("%d %s rows could not be written to the database nor to the dead-letter file",
                         len(rows), kind, exc_info=True)  # fmt: skip
            return
        self.count("dead_lettered", len(rows))
        self.settled(kind, rows)
        log.error("%d %s rows could not be written; kept in %s", len(rows), kind, path)

    def dead_letter(self, kind: str, rows: list[dict[str, Any]]) -> None:
        self.keep(kind, rows, "")

    def dead_letter_counts(self) -> dict[str, int]:
        """Rows waiting in the dead-letter files, per table (reads the files: call off the event loop)."""
        tables = {*self._lanes, *self.dead_letters.tables()}
        return {table: self.dead_letters.count(table) for table in sorted(tables)}

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the threads.

        Rows that cannot be written (the database is away, or a thread is still stuck in a call after
        ``timeout``) are in the dead-letter file when this returns: nothing queued is lost.
        """
        if not self._started or self.stopping.is_set():
            return
        self.stopping.set()
        for lane in self._lanes.values():
            lane.queue.put(_STOP)
            lane.wake.set()
        deadline = time.monotonic() + timeout
        for lane in self._lanes.values():
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        for lane in self._lanes.values():
            if lane.thread.is_alive():
                log.error("storage writer for %s did not finish within %.0fs; keeping its rows in the "
                          "dead-letter file", lane.kind, timeout)  # fmt: skip
            lane.abandon()  # also rows put after the thread's last look at its queue
        self.journal.close()

    def flush(self, timeout: float = 10.0) -> None:
        """Block until every row put before this call is written or kept (for tests and the CLI)."""
        events = []
        for lane in list(self._lanes.values()):
            done = threading.Event()
            lane.queue.put((_FLUSH, done))
            lane.wake.set()
            events.append(done)
        deadline = time.monotonic() + timeout
        for done in events:
            done.wait(max(0.0, deadline - time.monotonic()))
