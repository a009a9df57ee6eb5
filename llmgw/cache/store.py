"""Where entries live: the store protocols and the default in-process store (persisted to SQLite).

The exact tier maps an exact key to an entry; the semantic tier finds the nearest questions
*within one scope*. ``MemoryStore`` is both: a dict, one :class:`VectorIndex` per scope, per-route
LRU order for ``max_entries``. Its methods block (the index may search 100k rows) and are called
off the event loop. ``SqlitePersister`` writes every change from a background thread in batches,
so the cache survives a restart without a database write on the request path.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from llmgw.cache.index import VectorIndex

log = logging.getLogger("llmgw.cache")
_DIM = 384  # MiniLM's vectors


@dataclass(slots=True)
class Entry:
    key: str  # the exact key
    scope: str
    route: str
    question: str | None  # the last user turn (masked), when the semantic tier may use it
    completion: dict[str, Any]
    created: float
    expires: float
    template: str | None = None
    collection: str = ""
    source: str = ""  # the request id that produced the answer
    usage: dict[str, Any] = field(default_factory=dict)  # the tokens and cost a hit saves
    headers: dict[str, str] = field(default_factory=dict)  # response headers a hit repeats (sources)
    vector: np.ndarray | None = None
    answer_vector: np.ndarray | None = None  # the stored answer's, set in the background (cache.match)
    #: this entry's own lowest cosine for a semantic hit, raised by wrong-hit feedback (``tighten``)
    floor: float = 0.0
    #: the question's role signature (``roles.Signature.dumps``), parsed once at insertion
    roles: str | None = None

    def doc(self) -> dict[str, Any]:
        """JSON-able form, without the vector (Redis, SQLite)."""
        return {k: getattr(self, k) for k in ("key", "scope", "route", "question", "completion", "created",
                                              "expires", "template", "collection", "source", "usage",
                                              "headers", "floor", "roles")}  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict[str, Any], vector: np.ndarray | None = None,
                 answer_vector: np.ndarray | None = None) -> Entry:  # fmt: skip
        return cls(**doc, vector=vector, answer_vector=answer_vector)


class ExactTier(Protocol):
    """Exact key → entry. The in-process store, or Redis shared by replicas."""

    async def get(self, key: str) -> Entry | None: ...
    async def put(self, entry: Entry, max_entries: int) -> None: ...


class SemanticTier(Protocol):
    """Nearest questions within one scope. Blocking; called on a worker thread.

    The in-process :class:`MemoryStore` implements it; an OpenSearch k-NN implementation (a filter
    on ``scope`` plus a k-NN query on the vector) is the shared alternative for several replicas.
    """

    def nearest(self, scope: str, vector: np.ndarray, k: int) -> list[tuple[Entry, float]]: ...
    def add(self, entry: Entry, max_entries: int) -> None: ...
    def remove(self, key: str) -> None: ...
    def invalidate(self, *, route: str | None = None, template: str | None = None,
                   collection: str | None = None) -> int: ...  # fmt: skip


class MemoryStore:
    def __init__(self, dim: int = 384, ann_min: int = 20_000, persister: SqlitePersister | None = None) -> None:
        self.dim = dim
        self.ann_min = ann_min
        self.entries: dict[str, Entry] = {}
        self.routes: dict[str, OrderedDict[str, None]] = {}
        self.indexes: dict[str, VectorIndex] = {}
        self.lock = threading.RLock()
        self.persister = persister

    def __len__(self) -> int:
        return len(self.entries)

    # --- exact tier (the dict is fast enough to use on the loop) -----------------------------

    async def get(self, key: str) -> Entry | None:
        return self.get_now(key)

    async def put(self, entry: Entry, max_entries: int) -> None:
        self.add(entry, max_entries)

    def get_now(self, key: str) -> Entry | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return None
            if entry.expires <= time.time():
                self.remove(key)
                return None
            self.routes[entry.route].move_to_end(key)
            return entry

    # --- semantic tier -------------------------------------------------------------------------

    def nearest(self, scope: str, vector: np.ndarray, k: int = 4) -> list[tuple[Entry, float]]:
        with self.lock:
            index = self.indexes.get(scope)
            if index is None:
                return []
            found = []
            now = time.time()
            for key, score in index.search(vector, k):
                entry = self.entries.get(key)
                if entry is None or entry.expires <= now:
                    continue
                found.append((entry, score))
            return found

    def add(self, entry: Entry, max_entries: int, persist: bool = True) -> None:
        with self.lock:
            if entry.key in self.entries:
                self.remove(entry.key, persist=False)
            self.entries[entry.key] = entry
            order = self.routes.setdefault(entry.route, OrderedDict())
            order[entry.key] = None
            if entry.vector is not None:
                index = self.indexes.get(entry.scope)
                if index is None:
                    index = self.indexes[entry.scope] = VectorIndex(self.dim, self.ann_min, self.lock)
                index.add(entry.key, entry.vector)
            while len(order) > max_entries:
                self.remove(next(iter(order)))
        if persist and self.persister is not None:
            self.persister.put(entry)

    def attach_answer(self, key: str, vector: np.ndarray) -> bool:
        """Give a stored entry its answer's vector (computed after the request); False if it is gone."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return False
            entry.answer_vector = vector
        if self.persister is not None:
            self.persister.put(entry)
        return True

    def tighten(self, key: str, floor: float) -> bool:
        """Raise an entry's own threshold for semantic hits (a hit at a lower score was marked
        wrong); past 1.0 it can only answer its own question, so it is demoted. False if it is gone."""
        if floor > 1.0:
            return self.demote(key)
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return False
            entry.floor = max(entry.floor, floor)
        if self.persister is not None:
            self.persister.put(entry)
        return True

    def demote(self, key: str) -> bool:
        """Take an entry out of the semantic tier, keeping it for the exact tier; False if it is gone.

        A semantic hit marked wrong says the answer did not fit the new question, not that it is
        wrong for its own: the identical question may still be answered from it.
        """
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return False
            index = self.indexes.get(entry.scope)
            if index is not None and entry.vector is not None:
                index.remove(key)
                if not len(index):
                    del self.indexes[entry.scope]
            entry.vector = entry.answer_vector = None
            entry.question = None
        if self.persister is not None:
            self.persister.put(entry)
        return True

    def remove(self, key: str, persist: bool = True) -> None:
        with self.lock:
            entry = self.entries.pop(key, None)
            if entry is None:
                return
            self.routes[entry.route].pop(key, None)
            index = self.indexes.get(entry.scope)
            if index is not None:
                index.remove(key)
                if not len(index):
                    del self.indexes[entry.scope]
        if persist and self.persister is not None:
            self.persister.delete(key)

    def invalidate(self, *, route: str | None = None, template: str | None = None,
                   collection: str | None = None) -> int:  # fmt: skip
        """Drop entries of a route, of any version of a template id, or of any version of a collection."""

        def matches(e: Entry) -> bool:
            return ((route is None or e.route == route)
                    and (template is None or (e.template or "").split("@")[0] == template)
                    and (collection is None or e.collection.split("@")[0] == collection))  # fmt: skip

        with self.lock:
            doomed = [key for key, e in self.entries.items() if matches(e)]
            for key in doomed:
                self.remove(key)
        return len(doomed)

    def expire(self) -> int:
        """Drop expired entries (a background sweep; lookups also skip them)."""
        now = time.time()
        with self.lock:
            doomed = [key for key, e in self.entries.items() if e.expires <= now]
            for key in doomed:
                self.remove(key)
        return len(doomed)

    def load(self, limits: dict[str, int], default_limit: int) -> int:
        """Fill the store from the persister (at start-up, before traffic)."""
        if self.persister is None:
            return 0
        count = 0
        for entry in self.persister.load():
            self.add(entry, limits.get(entry.route, default_limit), persist=False)
            count += 1
        return count


class SqlitePersister:
    """Every put and delete, written by one background thread in batched transactions."""

    def __init__(self, path: str, interval_s: float = 1.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._retry: list[tuple[str, Any]] = []
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS cache_entries (key TEXT PRIMARY KEY, doc TEXT NOT NULL, "
                "vector BLOB, expires REAL NOT NULL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a connection closed afterwards."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def put(self, entry: Entry) -> None:
        self.queue.put(("put", entry))

    def delete(self, key: str) -> None:
        self.queue.put(("delete", key))

    def load(self) -> list[Entry]:
        with self._connect() as conn:
            rows = conn.execute("SELECT doc, vector FROM cache_entries WHERE expires > ?", (time.time(),)).fetchall()
        out, unreadable = [], 0
        for doc, blob in rows:
            vectors = np.frombuffer(blob, dtype=np.float32).copy() if blob else None
            vector, answer = _split(vectors)
            try:
                out.append(Entry.from_doc(json.loads(doc), vector, answer))
            except (ValueError, TypeError):  # written by another version, or damaged: a miss, not a failed start
                unreadable += 1
        if unreadable:
            log.warning("cache: %d unreadable entries in %s skipped", unreadable, self.path)
        out.sort(key=lambda e: e.created)  # oldest first: LRU order as close to the old one as we know
        return out

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name="cache-persist")
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(30)
        self._drain()  # anything queued after the thread's last batch

    def flush(self) -> None:
        """Write what is queued now (tests, shutdown)."""
        self._drain()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._drain()
            except Exception:
                log.exception("persisting cache entries failed; will retry")

    _drain_lock = threading.Lock()

    def _drain(self) -> None:
        with self._drain_lock:
            ops: list[tuple[str, Any]] = self._retry
            while True:
                try:
                    ops.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if not ops:
                return
            try:
                with self._connect() as conn:
                    for op, arg in ops:
                        if op == "put":
                            vector = _joined(arg)
                            conn.execute("INSERT OR REPLACE INTO cache_entries VALUES (?, ?, ?, ?)",
                                         (arg.key, json.dumps(arg.doc()), vector, arg.expires))  # fmt: skip
                        else:
                            conn.execute("DELETE FROM cache_entries WHERE key = ?", (arg,))
            except Exception:
                self._retry = ops  # kept, in order, ahead of newer changes (the transaction rolled back)
                raise
            self._retry = []


def _joined(entry: Entry) -> bytes | None:
    """The question's vector, then the answer's when known, as one blob."""
    if entry.vector is None:
        return None
    parts = [entry.vector] + ([entry.answer_vector] if entry.answer_vector is not None else [])
    return np.concatenate(parts).astype(np.float32).tobytes()


def _split(vectors: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    if vectors is None:
        return None, None
    if len(vectors) == 2 * _DIM:  # the question's and the answer's (same model, same width)
        return vectors[:_DIM], vectors[_DIM:]
    return vectors, None
