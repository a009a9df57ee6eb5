"""Database writes off the request path.

Handlers enqueue rows (a non-blocking ``put``); one writer thread drains the queue in batches,
one transaction per batch, and retries a failed batch with backoff without dropping it.
``close()`` drains everything before returning, so a graceful shutdown (SIGTERM) loses nothing.

Request rows are also remembered (id → key id) from ``put`` until their batch is committed (or
dead-lettered): :meth:`RowWriter.queued_request` answers for a request that exists but is not in
the table yet, so a caller checking "queued, else in the table" never misses one (an id leaves
memory only after its row is readable).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from llmgw.audit.chain import GuardEventWriter
from llmgw.storage.models import FeedbackRow, RequestRow, UsageRow

log = logging.getLogger("llmgw.storage")

BatchHandler = Callable[[Connection, list[dict[str, Any]]], None]
_STOP = object()


_USAGE_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")


@lru_cache(maxsize=4)
def _request_statements(dialect: str) -> tuple[Any, Any]:
    """Both statements, built once per dialect (building them cost a quarter of the writer's time)."""
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    requests = insert_fn(RequestRow.__table__).on_conflict_do_nothing(index_elements=["id"])
    usage = UsageRow.__table__
    upsert = insert_fn(usage)
    excluded = upsert.excluded
    upsert = upsert.on_conflict_do_update(
        index_elements=["day", "key_id", "team", "model"],
        set_={name: getattr(usage.c, name) + getattr(excluded, name) for name in _USAGE_SUMS},
    )
    return requests, upsert


def write_requests(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert request rows and add them to the per-day usage totals."""
    insert_requests, upsert_usage = _request_statements(conn.dialect.name)
    conn.execute(insert_requests, rows)
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
    conn.execute(upsert_usage, values)


def write_feedback(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(FeedbackRow.__table__), rows)


def _urgent(item: Any) -> bool:
    return item is _STOP or (isinstance(item, tuple) and item[0] == "__flush__")


class RowWriter:
    """A queue and one thread that writes what is put on it, in batches."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        max_attempts: int = 12,
        dead_letter_dir: str | Path = "var/dead-letter",
    ) -> None:
        self.max_attempts = max_attempts
        self.dead_letter_dir = Path(dead_letter_dir)
        self.dead_lettered = 0
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.handlers: dict[str, BatchHandler] = {
            "requests": write_requests,
            "feedback": write_feedback,
            "guard_events": GuardEventWriter(),  # hash-chained guardrail log (llmgw/audit)
        }
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued_requests: dict[str, str | None] = {}  # id → key id, until the row is committed
        self._queued_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0

    def register(self, kind: str, handler: BatchHandler) -> None:
        self.handlers[kind] = handler

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmgw-writer", daemon=True)
            self._thread.start()

    def put(self, kind: str, row: dict[str, Any]) -> None:
        """Enqueue a row; never blocks and never touches the database."""
        if kind == "requests":
            with self._queued_lock:
                self._queued_requests[row["id"]] = row.get("key_id")
        self._queue.put((kind, row))

    def queued_request(self, request_id: str) -> tuple[bool, str | None]:
        """``(True, key id)`` while request ``request_id``'s row is queued and not yet committed."""
        with self._queued_lock:
            if request_id in self._queued_requests:
                return True, self._queued_requests[request_id]
        return False, None

    def _settled(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """Rows committed or dead-lettered: request ids are forgotten only now (see the module doc)."""
        if kind == "requests":
            with self._queued_lock:
                for row in rows:
                    self._queued_requests.pop(row["id"], None)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("storage writer did not drain within %.0fs; %d rows pending", timeout, self.pending())
        self._thread = None

    def flush(self, timeout: float = 10.0) -> None:
        """Block until every row put before this call is written (for tests and the CLI)."""
        done = threading.Event()
        self._queue.put(("__flush__", done))
        done.wait(timeout)

    def _collect(self, first: Any) -> list[Any]:
        """Gather rows for up to ``flush_interval_s`` after the first one (or ``batch_size`` of them).

        Waiting is what makes batches: requests arriving one at a time would otherwise cost a
        commit each, and a commit's CPU shows up in every request's latency on a small machine.
        A stop or flush marker ends the wait at once.
        """
        batch = [first]
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < self.batch_size and not _urgent(batch[-1]):
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            batch = self._collect(first)
            if any(item is _STOP for item in batch):
                stopping = True
                # anything after the stop marker was put during shutdown: still write it
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            self._write_with_retry([item for item in batch if item is not _STOP])

    def _write_with_retry(self, batch: list[tuple[str, Any]]) -> None:
        flushes = [item[1] for item in batch if item[0] == "__flush__"]
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for kind, row in batch:
            if kind == "__flush__":
                continue
            if kind not in self.handlers:  # a programming error: retrying would never succeed
                log.error("no storage handler for %r rows; dropping one", kind)
                continue
            grouped[kind].append(row)
        for kind, rows in grouped.items():
            self._write_kind(kind, rows)
        for event in flushes:
            event.set()

    def _write_kind(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """One transaction per kind, so one table's trouble never holds up another's rows.

        A database that is away is waited for (retries with backoff, for as long as it takes while the
        gateway runs); rows that still fail after ``max_attempts`` while the database answers other
        writes, or at shutdown, go to a dead-letter file rather than being lost.
        """
        delay = 0.05
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.engine.begin() as conn:
                    self.handlers[kind](conn, rows)
                self.written += len(rows)
                self._settled(kind, rows)
                return
            except Exception:
                self.failures += 1
                log.exception(
                    "writing %d %s rows failed (attempt %d); retrying in %.2fs", len(rows), kind, attempt, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.dead_letter(kind, rows)

    def dead_letter(self, kind: str, rows: list[dict[str, Any]]) -> None:
        self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        path = self.dead_letter_dir / f"{kind}.jsonl"
        with path.open("a") as out:
            for row in rows:
                out.write(json.dumps(row, default=str) + "\n")
        self.dead_lettered += len(rows)
        self._settled(kind, rows)
        log.error("%d %s rows could not be written; kept in %s", len(rows), kind, path)
