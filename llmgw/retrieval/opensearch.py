"""The OpenSearch store: one physical index per build, searched through an alias.

``llmgw-<collection>`` is an alias; the index behind it is ``llmgw-<collection>-<timestamp>``.
``rebuild()`` fills a new index and swaps the alias atomically, so a re-index never has a moment
without answers. Hybrid search runs in a search pipeline where the cluster has one, and falls
back to two queries fused on the client (same ``fusion`` as the local store) where it does not.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from llmgw.retrieval import fusion
from llmgw.retrieval import opensearch_queries as q
from llmgw.retrieval.collection import StoreSpec
from llmgw.retrieval.store import Hit, Query, StoredChunk

log = logging.getLogger("llmgw.retrieval")
META_INDEX = "llmgw_meta"  # one small document per collection: its version


def client_for(spec: StoreSpec) -> OpenSearch:
    url = spec.url or os.environ.get("OPENSEARCH_URL")
    if not url:
        raise ValueError("an opensearch store needs store.url (or OPENSEARCH_URL)")
    auth = None
    if spec.username_env and spec.password_env:
        auth = (os.environ.get(spec.username_env, ""), os.environ.get(spec.password_env, ""))
    return OpenSearch(
        hosts=[url],
        http_auth=auth,
        verify_certs=spec.verify_certs,
        ssl_show_warn=False,
        retry_on_timeout=True,
        max_retries=3,
        timeout=30,
    )


class OpenSearchStore:
    def __init__(self, collection: str, spec: StoreSpec, dimensions: int, client: OpenSearch | None = None) -> None:
        self.collection = collection
        self.spec = spec
        self.dimensions = dimensions
        self.alias = spec.index or f"llmgw-{collection}"
        self.client = client or client_for(spec)
        self.write_index: str | None = None  # set during a rebuild: writes go to the new index
        self._pipelines: set[str] = set()
        self.client_side_fusion = spec.hybrid == "client"

    # --- index management ------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the index template, a first index and the alias if they do not exist."""
        self.client.indices.put_index_template(
            name=self.alias, body=q.index_template(f"{self.alias}-*", self.dimensions, self.spec)
        )
        if not self.client.indices.exists_alias(name=self.alias):
            index = self._new_index_name()
            self.client.indices.create(index=index)
            self.client.indices.put_alias(index=index, name=self.alias)

    def _new_index_name(self) -> str:
        return f"{self.alias}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:4]}"

    def indices(self) -> list[str]:
        try:
            return sorted(self.client.indices.get_alias(name=self.alias))
        except NotFoundError:
            return []

    def begin_rebuild(self) -> str:
        self.ensure()
        self.write_index = self._new_index_name()
        self.client.indices.create(index=self.write_index)
        return self.write_index

    def finish_rebuild(self) -> None:
        """Point the alias at the new index in one atomic step, then drop the old ones."""
        assert self.write_index is not None
        self.client.indices.refresh(index=self.write_index)
        old = [i for i in self.indices() if i != self.write_index]
        actions: list[dict[str, Any]] = [{"add": {"index": self.write_index, "alias": self.alias}}]
        actions += [{"remove": {"index": i, "alias": self.alias}} for i in old]
        self.client.indices.update_aliases(body={"actions": actions})
        for index in old:
            self.client.indices.delete(index=index)
        self.write_index = None
        self._bump()

    @property
    def _target(self) -> str:
        return self.write_index or self.alias

    # --- writing ---------------------------------------------------------------------------

    def _scan(self, query: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
        body = {"query": query, "_source": fields, "size": 1000}
        return [hit for hit in helpers.scan(self.client, query=body, index=self._target, preserve_order=False)]

    def manifest(self) -> dict[str, str]:
        counts: dict[tuple[str, str], int] = {}
        expected: dict[tuple[str, str], int] = {}
        for hit in self._scan({"term": {"collection": self.collection}}, ["doc_id", "doc_hash", "doc_chunks"]):
            src = hit["_source"]
            key = (src["doc_id"], src["doc_hash"])
            counts[key] = counts.get(key, 0) + 1
            expected[key] = int(src.get("doc_chunks") or 0)
        return {doc: h for (doc, h), n in counts.items() if n == expected[(doc, h)]}  # only complete documents

    def upsert(self, doc_id: str, doc_hash: str, chunks: list[StoredChunk], vectors: np.ndarray) -> None:
        new_ids = {self._id(c) for c in chunks}
        size = len(chunks)
        actions: list[dict[str, Any]] = [
            {"_op_type": "index", "_index": self._target, "_id": self._id(c), "_source": self._source(c, v, size)}
            for c, v in zip(chunks, vectors, strict=True)
        ]
        mine = self._mine({"term": {"doc_id": doc_id}})
        old = [h["_id"] for h in self._scan(mine, ["doc_id"]) if h["_id"] not in new_ids]
        actions += [{"_op_type": "delete", "_index": self._target, "_id": i} for i in old]
        self._bulk(actions)
        self._bump()

    def delete(self, doc_ids: list[str]) -> None:
        ids = [h["_id"] for h in self._scan(self._mine({"terms": {"doc_id": doc_ids}}), ["doc_id"])] if doc_ids else []
        self._bulk([{"_op_type": "delete", "_index": self._target, "_id": i} for i in ids])
        self._bump()

    def _id(self, chunk: StoredChunk) -> str:
        """The chunk's document id in the index: with the collection, as the same file ingested into two
        collections sharing an index has the same chunk id (searches read ``chunk_id``, not this)."""
        return f"{self.collection}/{chunk.id}"

    def _mine(self, query: dict[str, Any]) -> dict[str, Any]:
        """``query`` within this collection: every search filters on it, and so must every delete, or
        two collections sharing an index (``store.index``) delete each other's documents of the same id."""
        return {"bool": {"filter": [{"term": {"collection": self.collection}}, query]}}

    def _source(self, chunk: StoredChunk, vector: np.ndarray, doc_chunks: int) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "chunk_id": chunk.id,
            "doc_id": chunk.doc_id,
            "doc_hash": chunk.doc_hash,
            "doc_chunks": doc_chunks,
            "ord": chunk.ord,
            "title": chunk.title,
            "heading": chunk.heading,
            "text": chunk.text,
            q.TEXT_FIELD: chunk.search_text,
            "metadata": chunk.metadata,
            q.VECTOR_FIELD: [float(x) for x in vector],
        }

    def _bulk(self, actions: list[dict[str, Any]]) -> None:
        """Bulk writes in batches; throttled (429) items are retried with backoff, other failures raise."""
        if not actions:
            return
        _, errors = helpers.bulk(
            self.client,
            actions,
            chunk_size=200,
            max_retries=5,
            initial_backoff=0.5,
            raise_on_error=False,
            refresh="wait_for",
        )
        real = [e for e in errors if not (_op(e) == "delete" and _status(e) == 404)]  # already gone is fine
        if real:
            raise RuntimeError(f"{len(real)} bulk operations failed, first: {real[0]}")

    def _bump(self) -> None:
        body = {"collection": self.collection, "version": uuid.uuid4().hex[:16]}
        self.client.index(index=META_INDEX, id=self.alias, body=body, refresh=True)

    # --- reading ---------------------------------------------------------------------------

    def version(self) -> str:
        try:
            return str(self.client.get(index=META_INDEX, id=self.alias)["_source"]["version"])
        except NotFoundError:
            return "empty"

    def count(self) -> int:
        return int(
            self.client.count(index=self.alias, body={"query": {"term": {"collection": self.collection}}})["count"]
        )

    def refresh(self) -> bool:
        return False  # the cluster serves the newest data itself

    def search(self, query: Query) -> list[Hit]:
        filters = q.filter_clauses(self.collection, query.filters)
        if query.mode == "bm25":
            return self._hits(self._search(q.search_body(q.bm25_clause(query.text, filters), query.k)), "bm25")
        vector = [float(x) for x in np.asarray(query.vector).ravel()] if query.vector is not None else None
        if vector is None:
            raise ValueError("a dense or hybrid search needs the query vector")
        if query.mode == "dense":
            return self._hits(self._search(q.search_body(q.knn_clause(vector, query.k, filters), query.k)), "dense")
        if not self.client_side_fusion:
            try:
                return self._pipeline_hybrid(query, vector, filters)
            except (RequestError, NotFoundError) as exc:  # no neural-search plugin, or a cluster older than 2.19
                log.warning("hybrid search pipeline unavailable (%s); fusing on the client", exc.error)
                self.client_side_fusion = True
        return self._client_hybrid(query, vector, filters)

    def _pipeline_hybrid(self, query: Query, vector: list[float], filters: list[dict[str, Any]]) -> list[Hit]:
        if query.fusion == "rrf":
            weight = round(query.dense_weight * 100)
            name, body = f"llmgw-rrf-{query.rrf_k}-{weight}", q.rrf_pipeline(query.rrf_k, query.dense_weight)
        else:
            name, body = f"llmgw-minmax-{round(query.dense_weight * 100)}", q.min_max_pipeline(query.dense_weight)
        if name not in self._pipelines:
            self.client.transport.perform_request("PUT", f"/_search/pipeline/{name}", body=body)
            self._pipelines.add(name)
        response = self.client.search(
            index=self.alias,
            body=q.hybrid_body(query.text, vector, query.k, query.per_side, filters),
            params={"search_pipeline": name},
        )
        return self._hits(response, "hybrid")

    def _client_hybrid(self, query: Query, vector: list[float], filters: list[dict[str, Any]]) -> list[Hit]:
        n = query.per_side
        keyword = self._hits(self._search(q.search_body(q.bm25_clause(query.text, filters), n)), "bm25")
        dense = self._hits(self._search(q.search_body(q.knn_clause(vector, n, filters), n)), "dense")
        by_id = {h.chunk.id: h for h in keyword + dense}
        if query.fusion == "rrf":
            fused = fusion.rrf(
                [[h.chunk.id for h in dense], [h.chunk.id for h in keyword]],
                query.rrf_k,
                [query.dense_weight, 1.0 - query.dense_weight],
            )
        else:
            fused = fusion.min_max(
                [{h.chunk.id: h.score for h in dense}, {h.chunk.id: h.score for h in keyword}],
                [query.dense_weight, 1.0 - query.dense_weight],
            )
        dense_scores = {h.chunk.id: h.score for h in dense}
        keyword_scores = {h.chunk.id: h.score for h in keyword}
        return [
            Hit(by_id[i].chunk, s, dense_scores.get(i), keyword_scores.get(i)) for i, s in fusion.top(fused, query.k)
        ]

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.search(index=self.alias, body=body)

    @staticmethod
    def _hits(response: dict[str, Any], kind: str) -> list[Hit]:
        hits = []
        for raw in response["hits"]["hits"]:
            src = raw["_source"]
            chunk = StoredChunk(
                src["chunk_id"],
                src["doc_id"],
                src["doc_hash"],
                int(src.get("ord") or 0),
                src.get("title") or "",
                src.get("heading") or "",
                src["text"],
                src.get("metadata") or {},
            )
            score = float(raw.get("_score") or 0.0)
            hits.append(Hit(chunk, score, score if kind == "dense" else None, score if kind == "bm25" else None))
        return hits

    def close(self) -> None:
        self.client.close()


def _op(error: dict[str, Any]) -> str:
    return next(iter(error), "")


def _status(error: dict[str, Any]) -> int:
    item: Any = next(iter(error.values()), {})
    return int(item.get("status") or 0) if isinstance(item, dict) else 0


__all__ = ["OpenSearchStore", "TransportError", "client_for"]
