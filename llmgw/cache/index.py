"""Nearest-neighbour search over the vectors of one scope.

Rows of a float32 matrix, searched exactly (one matrix-vector product) while the scope is small;
past ``ann_min`` rows an HNSW graph (faiss) is built in the background and used for search,
because an exact product over 100k x 384 floats costs ~15-30 ms on this class of machine. Removed
rows are zeroed and skipped; the matrix (and graph) is compacted when half of it is dead.
Blocking: the store calls it off the event loop, holding the lock it passed in (which the
background build takes too).
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

import numpy as np

log = logging.getLogger("llmgw.cache")


@lru_cache(maxsize=1)
def _faiss() -> Any:
    """faiss, imported when a scope first grows large (0.6 s); None without it: exact search only."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        return None
    faiss.omp_set_num_threads(1)
    return faiss


class VectorIndex:
    def __init__(self, dim: int, ann_min: int, lock: threading.RLock) -> None:
        self.dim = dim
        self.ann_min = ann_min
        self.matrix = np.zeros((16, dim), dtype=np.float32)
        self.keys: list[str | None] = []
        self.row_of: dict[str, int] = {}
        self.dead = 0
        self.graph: Any = None  # faiss.IndexHNSWFlat over rows [0, graph.ntotal)
        self._building = False
        self.generation = 0  # bumped by compaction: a graph built before it is stale
        self.lock = lock

    def __len__(self) -> int:
        return len(self.row_of)

    def add(self, key: str, vector: np.ndarray) -> None:
        if key in self.row_of:
            self.remove(key)
        row = len(self.keys)
        if row == self.matrix.shape[0]:
            grown = np.zeros((row * 2, self.dim), dtype=np.float32)
            grown[:row] = self.matrix
            self.matrix = grown
        self.matrix[row] = vector
        self.keys.append(key)
        self.row_of[key] = row
        if self.graph is not None:
            self.graph.add(self.matrix[row : row + 1])
        elif len(self.row_of) >= self.ann_min and not self._building and _faiss() is not None:
            self._building = True
            threading.Thread(target=self._build, args=(row + 1,), daemon=True, name="cache-hnsw").start()

    def remove(self, key: str) -> None:
        row = self.row_of.pop(key, None)
        if row is None:
            return
        self.keys[row] = None
        self.matrix[row] = 0.0
        self.dead += 1
        if self.dead > 64 and self.dead * 2 > len(self.keys):
            self._compact()

    def search(self, vector: np.ndarray, k: int = 4) -> list[tuple[str, float]]:
        """Up to ``k`` live (key, cosine) pairs, best first."""
        n = len(self.keys)
        if n == 0:
            return []
        graph = self.graph
        if graph is not None and graph.ntotal == n:
            scores, rows = graph.search(vector.reshape(1, -1), k + min(self.dead, 16))
            found = [(self.keys[r], float(s)) for s, r in zip(scores[0], rows[0], strict=True) if r >= 0]
        else:
            scores = self.matrix[:n] @ vector
            top = np.argpartition(-scores, k)[:k] if n > k else np.arange(n)
            found = [(self.keys[r], float(scores[r])) for r in top]
        live = [(key, score) for key, score in found if key is not None]
        live.sort(key=lambda pair: -pair[1])
        return live[:k]

    def _build(self, rows: int) -> None:
        """Build the graph over a snapshot of the rows, then catch up and swap it in."""
        generation = self.generation
        try:
            faiss = _faiss()
            graph = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = 64
            graph.hnsw.efSearch = 128
            graph.add(np.ascontiguousarray(self.matrix[:rows]))
            with self.lock:
                n = len(self.keys)
                if generation == self.generation and rows <= n:
                    graph.add(np.ascontiguousarray(self.matrix[rows:n]))
                    self.graph = graph
        except Exception:
            log.exception("building the cache's HNSW index failed; searching exactly")
        finally:
            self._building = False

    def _compact(self) -> None:
        live = [(key, row) for row, key in enumerate(self.keys) if key is not None]
        matrix = np.zeros((max(16, len(live) * 2), self.dim), dtype=np.float32)
        for new, (_, row) in enumerate(live):
            matrix[new] = self.matrix[row]
        self.matrix = matrix
        self.keys = [key for key, _ in live]
        self.row_of = {key: i for i, (key, _) in enumerate(live)}
        self.dead = 0
        self.generation += 1
        if self.graph is not None:
            self.graph = None
            if len(self.keys) >= self.ann_min and _faiss() is not None:
                self._building = True
                threading.Thread(target=self._build, args=(len(self.keys),), daemon=True, name="cache-hnsw").start()
