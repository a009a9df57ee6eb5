"""What the gateway's retrieval stage calls: named collections, each an embedder and a store.

Collections are loaded on first use from ``retrieval/<name>.yaml`` and kept for the life of the
process. Every method here blocks; the stage calls them on a worker thread. ``collection_version``
is what the semantic cache keys on, so a re-ingested collection never serves stale answers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmgw.retrieval.collection import CollectionSpec, load_collection
from llmgw.retrieval.embeddings import Embedder, backend_for
from llmgw.retrieval.local import LocalStore
from llmgw.retrieval.store import SHARED_TENANT, Filters, Hit, Query, Store

DEFAULT_STORE_ROOT = Path(".llmgw") / "retrieval"
log = logging.getLogger("llmgw.retrieval")


@dataclass(slots=True)
class Collection:
    spec: CollectionSpec
    embedder: Embedder
    store: Store

    def search(
        self,
        text: str,
        k: int | None = None,
        filters: Filters | None = None,
        tenant: str | None = None,
        min_score: float | None = None,
        mode: str | None = None,
    ) -> list[Hit]:
        s = self.spec.search
        filters = dict(filters or {})
        if self.spec.tenant_field:
            # a caller sees its own tenant's chunks and the shared ones, whatever filters it sent
            filters[self.spec.tenant_field] = [tenant, SHARED_TENANT] if tenant else [SHARED_TENANT]
        mode = mode or s.mode
        vector = self.embedder.query(text) if mode in ("hybrid", "dense") else None
        # ``mode`` is a caller's str, checked against the Literal modes by the store's search
        query = Query(text, vector, k or s.k, mode, filters, s.candidates, s.fusion, s.rrf_k, s.dense_weight)  # type: ignore[arg-type]
        floor = s.min_score if min_score is None else min_score
        return [hit for hit in self.store.search(query) if hit.score >= floor]


def open_store(spec: CollectionSpec, dimensions: int | None = None) -> Store:
    if spec.store.kind == "opensearch":
        from llmgw.retrieval.opensearch import OpenSearchStore

        return OpenSearchStore(spec.name, spec.store, dimensions or 384)
    path = Path(spec.store.path) if spec.store.path else DEFAULT_STORE_ROOT / spec.name
    if not path.is_absolute():
        path = Path(spec.root).parent / path if spec.store.path is None else Path(spec.root) / path
    return LocalStore(path, dimensions, spec.store.local_index, spec.store.hnsw)


def open_collection(directory: str | Path, name: str) -> Collection:
    spec = load_collection(directory, name)
    embedder = Embedder(backend_for(spec.embedding), spec.embedding.cache_size)
    return Collection(spec, embedder, open_store(spec, spec.embedding.dimensions))


class Retrieval:
    def __init__(self, collections_dir: str) -> None:
        from threadpoolctl import threadpool_limits

        # One BLAS thread: a search is one matrix-vector product, and a second BLAS thread waking for
        # it competes with the event loop for the other core (measured: 0.8 ms searches became 12 ms).
        threadpool_limits(1, user_api="blas")
        self.collections_dir = collections_dir
        self._open: dict[str, Collection] = {}
        self._versions: dict[str, str] = {}
        self._lock = threading.Lock()

    def collection(self, name: str) -> Collection:
        """Blocking: the first use of a collection loads its definition and store."""
        found = self._open.get(name)
        if found is None:
            with self._lock:
                found = self._open.get(name)
                if found is None:
                    found = open_collection(self.collections_dir, name)
                    self._refresh_one(name, found)
                    self._open[name] = found
                    if found.store.count() == 0:
                        log.warning("collection %s is empty: fill it with `llmgw ingest %s`", name, name)
        return found

    def collection_version(self, name: str) -> str:
        """The version of a collection as last seen ('' for one never used); never blocks.

        Changes when its chunks do: the semantic cache keys on it.
        """
        return self._versions.get(name, "")

    def refresh(self) -> None:
        """Pick up re-ingested collections (blocking; the gateway calls it in the background)."""
        for name, collection in list(self._open.items()):
            self._refresh_one(name, collection)

    def _refresh_one(self, name: str, collection: Collection) -> None:
        collection.store.refresh()
        self._versions[name] = f"{name}:{collection.store.version()}"

    def close(self) -> None:
        for collection in self._open.values():
            collection.store.close()
        self._open.clear()

    def describe(self) -> dict[str, Any]:
        return {name: {"store": c.spec.store.kind, "embedding": c.embedder.name} for name, c in self._open.items()}
