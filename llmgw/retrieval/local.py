"""The embedded store: SQLite on disk, exact cosine in numpy and BM25 in memory.

Writes (``llmgw ingest``) are one SQLite transaction per document, so an interrupted run leaves
every document either old or new, never half; each write bumps the store's version. Readers
search an immutable in-memory snapshot (vectors matrix, BM25 index, filter postings) that
``refresh()`` rebuilds when the version moved; the BM25 index is cached on disk per version so
a gateway start does not re-tokenise the collection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from llmgw.retrieval import bm25, fusion
from llmgw.retrieval.store import Filters, Hit, Query, StoredChunk

SCHEMA = """
create table if not exists documents (doc_id text primary key, doc_hash text not null, chunks integer not null);
create table if not exists chunks (
    id text primary key, doc_id text not null, ord integer not null, title text, heading text,
    text text not null, metadata text not null, vector blob not null);
create index if not exists chunks_doc on chunks (doc_id);
create table if not exists meta (key text primary key, value text not null);
"""


#: ``local_index: auto`` searches exactly below this many chunks (≈ 3 ms here), through HNSW above
AUTO_HNSW_ROWS = 20_000


class Snapshot:
    """One version of the store, searchable without touching SQLite."""

    def __init__(
        self, version: str, chunks: list[StoredChunk], vectors: np.ndarray, index: bm25.BM25Index, graph: Any = None
    ) -> None:
        self.version = version
        self.chunks = chunks
        self.vectors = vectors
        self.bm25 = index
        self.graph = graph  # an HNSW graph over ``vectors`` (store.local_index: hnsw), or None: exact
        self._postings: dict[str, dict[Any, np.ndarray]] = {}
        self._lock = threading.Lock()

    def rows(self, filters: Filters) -> np.ndarray | None:
        """Row numbers passing every filter (sorted); None when there is no filter."""
        if not filters:
            return None
        selected = np.ones(len(self.chunks), dtype=bool)
        for name, wanted in filters.items():
            postings = self._field(name)
            allowed = np.zeros(len(self.chunks), dtype=bool)
            for value in wanted if isinstance(wanted, list) else [wanted]:
                if _hashable(value) and value in postings:
                    allowed[postings[value]] = True
            selected &= allowed
        return np.flatnonzero(selected)

    def _field(self, name: str) -> dict[Any, np.ndarray]:
        postings = self._postings.get(name)
        if postings is None:
            with self._lock:
                by_value: dict[Any, list[int]] = {}
                for row, chunk in enumerate(self.chunks):
                    value = chunk.metadata.get(name)
                    if _hashable(value):
                        by_value.setdefault(value, []).append(row)
                postings = {v: np.asarray(rows, dtype=np.int64) for v, rows in by_value.items()}
                self._postings[name] = postings
        return postings


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


class LocalStore:
    def __init__(self, path: str | Path, dimensions: int | None = None, index: str = "auto", hnsw: Any = None) -> None:
        self.index = index
        self.hnsw = hnsw
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.dimensions = dimensions
        self._db = sqlite3.connect(self.path / "store.db", check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    # --- writing ---------------------------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("select doc_id, doc_hash from documents"))

    def upsert(self, doc_id: str, doc_hash: str, chunks: list[StoredChunk], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [
            (c.id, c.doc_id, c.ord, c.title, c.heading, c.text, json.dumps(c.metadata), v.tobytes())
            for c, v in zip(chunks, vectors, strict=True)
        ]
        with self._lock:
            self._db.execute("begin immediate")
            try:
                self._db.execute("delete from chunks where doc_id = ?", (doc_id,))
                self._db.executemany("insert into chunks values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                if rows:
                    self._db.execute("insert or replace into documents values (?, ?, ?)", (doc_id, doc_hash, len(rows)))
                else:  # a document without text is not kept, as on OpenSearch (where a document is its chunks)
                    self._db.execute("delete from documents where doc_id = ?", (doc_id,))
                self._bump()
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise

    def delete(self, doc_ids: list[str]) -> None:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                for doc_id in doc_ids:
                    self._db.execute("delete from chunks where doc_id = ?", (doc_id,))
                    self._db.execute("delete from documents where doc_id = ?", (doc_id,))
                self._bump()
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise

    def _bump(self) -> None:
        self._db.execute("insert or replace into meta values ('version', ?)", (uuid.uuid4().hex[:16],))

    # --- reading ---------------------------------------------------------------------------

    def version(self) -> str:
        with self._lock:
            row = self._db.execute("select value from meta where key = 'version'").fetchone()
        return row[0] if row else "empty"

    def count(self) -> int:
        return len(self.snapshot().chunks)

    def refresh(self) -> bool:
        """Rebuild the snapshot if the stored version moved (blocking); True when it did."""
        version = self.version()
        if self._snapshot is not None and self._snapshot.version == version:
            return False
        self._snapshot = self._load()
        return True

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self.refresh()
        assert self._snapshot is not None
        return self._snapshot

    def _load(self) -> Snapshot:
        """The rows and the version they are, read in one transaction: an ingest committing after
        :meth:`refresh` read the version must not put its rows under the older version (nor a BM25
        file of them under that version's name, which another replica at that version would load)."""
        with self._lock:
            self._db.execute("begin")
            try:
                found = self._db.execute("select value from meta where key = 'version'").fetchone()
                rows = self._db.execute(
                    "select id, doc_id, ord, title, heading, text, metadata, vector, d.doc_hash "
                    "from chunks join documents d using (doc_id) order by doc_id, ord"
                ).fetchall()
            finally:
                self._db.execute("commit")
        version = found[0] if found else "empty"
        chunks = [StoredChunk(r[0], r[1], r[8], r[2], r[3] or "", r[4] or "", r[5], json.loads(r[6])) for r in rows]
        dims = len(rows[0][7]) // 4 if rows else (self.dimensions or 0)
        vectors = np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(len(rows), dims)
        cached = self.path / f"bm25-{version}.npz"
        if cached.is_file():
            index = bm25.load(str(cached))
        else:
            index = bm25.BM25Index([c.search_text for c in chunks])
            for old in self.path.glob("bm25-*.npz"):
                old.unlink(missing_ok=True)
            tmp = self.path / f"bm25-{version}.tmp.npz"
            bm25.save(index, str(tmp))
            tmp.replace(cached)
        return Snapshot(version, chunks, vectors, index, self._graph(vectors))

    def _graph(self, vectors: np.ndarray) -> Any:
        """An HNSW graph for approximate dense search, built with the snapshot (off the request path)."""
        if self.index == "exact" or len(vectors) < (AUTO_HNSW_ROWS if self.index == "auto" else 1000):
            return None
        import faiss

        graph = faiss.IndexHNSWFlat(vectors.shape[1], self.hnsw.m if self.hnsw else 16, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.hnsw.ef_construction if self.hnsw else 128
        graph.hnsw.efSearch = self.hnsw.ef_search if self.hnsw else 100
        graph.add(np.ascontiguousarray(vectors))
        return graph

    def search(self, query: Query) -> list[Hit]:
        snap = self.snapshot()
        if not snap.chunks:
            return []
        rows = snap.rows(query.filters)
        if rows is not None and len(rows) == 0:
            return []
        dense: dict[int, float] = {}
        keyword: dict[int, float] = {}
        n = query.per_side if query.mode == "hybrid" else query.k
        if query.mode in ("hybrid", "dense"):
            if query.vector is None:
                raise ValueError("a dense or hybrid search needs the query vector")
            dense = self._dense(snap, np.asarray(query.vector, dtype=np.float32), rows, n)
        if query.mode in ("hybrid", "bm25"):
            scores = snap.bm25.scores(query.text)
            if rows is not None:
                scores = scores[rows]
            keyword = {r: s for r, s in _best(scores, rows, n, scores).items() if s > 0}
        if query.mode == "dense":
            fused = {str(r): s for r, s in dense.items()}
        elif query.mode == "bm25":
            fused = {str(r): s for r, s in keyword.items()}
        elif query.fusion == "rrf":
            fused = fusion.rrf(
                [_ranked(dense), _ranked(keyword)], query.rrf_k, [query.dense_weight, 1.0 - query.dense_weight]
            )
        else:
            fused = fusion.min_max(
                [{str(r): s for r, s in dense.items()}, {str(r): s for r, s in keyword.items()}],
                [query.dense_weight, 1.0 - query.dense_weight],
            )
        return [
            Hit(snap.chunks[int(key)], score, dense.get(int(key)), keyword.get(int(key)))
            for key, score in fusion.top(fused, query.k)
        ]

    @staticmethod
    def _dense(snap: Snapshot, vector: np.ndarray, rows: np.ndarray | None, n: int) -> dict[int, float]:
        """The ``n`` nearest rows, scored as OpenSearch's cosinesimil: ``(1 + cos) / 2``."""
        if rows is None and snap.graph is not None:  # approximate: the graph's n nearest (exact scores)
            scores, found = snap.graph.search(vector.reshape(1, -1), n)
            return {int(r): (float(s) + 1.0) / 2.0 for s, r in zip(scores[0], found[0], strict=True) if r >= 0}
        if rows is None:
            cosine = snap.vectors @ vector
        elif len(rows) * 8 >= len(snap.chunks):  # a wide filter: scan all, keep the rows' scores
            cosine = (snap.vectors @ vector)[rows]
        else:  # a narrow one: only the rows' vectors
            cosine = snap.vectors[rows] @ vector
        return _best(cosine, rows, n, (cosine + 1.0) / 2.0)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _best(ranking: np.ndarray, rows: np.ndarray | None, n: int, scores: np.ndarray) -> dict[int, float]:
    """The ``n`` best rows by ``ranking``, as store row → score."""
    n = min(n, len(ranking))
    if n <= 0:
        return {}
    part = np.argpartition(-ranking, n - 1)[:n]
    part = part[np.argsort(-ranking[part], kind="stable")]
    return {int(rows[i] if rows is not None else i): float(scores[i]) for i in part}


def _ranked(scores: dict[int, float]) -> list[str]:
    return [str(r) for r, _ in sorted(scores.items(), key=lambda item: -item[1])]
