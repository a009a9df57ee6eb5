"""The semantic tier in OpenSearch: one k-NN index shared by every gateway replica.

Each entry is a document: its ``scope`` (keyword, filtered on exactly), ``expires`` (an expired
entry is never returned), the question's vector (``knn_vector``, cosine, HNSW with an explicit
engine), the route, template id and collection name (``DELETE /admin/cache`` selects by them) and the
entry itself, stored but not indexed. A lookup is one k-NN query with the scope
and expiry as an efficient filter, so neighbours from another tenant or version cannot come back.
Blocking, like every tier: the cache calls it on a worker thread.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from llmgw.cache.store import Entry

#: what ``DELETE /admin/cache`` selects entries by: the route, a template id and a collection name (any version)
INVALIDATED_BY = {"route": {"type": "keyword"}, "template": {"type": "keyword"}, "collection": {"type": "keyword"}}


def index_body(dimensions: int, engine: str) -> dict[str, Any]:
    return {
        "settings": {"index": {"knn": True, "number_of_shards": 1}},
        "mappings": {
            "properties": {
                "scope": {"type": "keyword"},
                **INVALIDATED_BY,
                "expires": {"type": "double"},
                "vector": {
                    "type": "knn_vector",
                    "dimension": dimensions,
                    "method": {
                        "name": "hnsw",
                        "space_type": "cosinesimil",
                        "engine": engine,
                        "parameters": {"m": 16, "ef_construction": 128},
                    },
                },
                "entry": {"type": "object", "enabled": False},
            }
        },
    }


def nearest_body(scope: str, vector: np.ndarray, k: int, now: float) -> dict[str, Any]:
    only = {"bool": {"filter": [{"term": {"scope": scope}}, {"range": {"expires": {"gt": now}}}]}}
    return {
        "size": k,
        "_source": {"excludes": ["vector"]},
        "query": {"knn": {"vector": {"vector": [float(x) for x in vector], "k": k, "filter": only}}},
    }


class OpenSearchSemanticTier:
    def __init__(
        self,
        url: str,
        index: str = "llmgw-cache",
        dimensions: int = 384,
        engine: str = "lucene",
        client: OpenSearch | None = None,
    ) -> None:
        self.client = client or OpenSearch(hosts=[url], retry_on_timeout=True, max_retries=3, timeout=10)
        self.index = index
        if not self.client.indices.exists(index=index):
            self.client.indices.create(index=index, body=index_body(dimensions, engine))
        else:  # an index made before ``template`` and ``collection`` were indexed: new fields may be added
            self.client.indices.put_mapping(index=index, body={"properties": INVALIDATED_BY})

    def nearest(self, scope: str, vector: np.ndarray, k: int) -> list[tuple[Entry, float]]:
        response = self.client.search(index=self.index, body=nearest_body(scope, vector, k, time.time()))
        found = []
        for hit in response["hits"]["hits"]:
            source = hit["_source"]
            if source.get("scope") != scope:  # never trust a filter alone with another tenant's answer
                continue
            cosine = 2.0 * float(hit["_score"]) - 1.0  # cosinesimil scores are (1 + cos) / 2
            found.append((Entry.from_doc(source["entry"]), cosine))
        return found

    def add(self, entry: Entry, max_entries: int) -> None:
        """``max_entries`` is not enforced here: entries expire, and the index is bounded by its TTL."""
        if entry.vector is None:  # a question too long to embed: exact tier only
            return
        body = {
            "scope": entry.scope,
            "route": entry.route,
            "template": (entry.template or "").split("@")[0] or None,
            "collection": entry.collection.split("@")[0] or None,
            "expires": entry.expires,
            "vector": [float(x) for x in entry.vector],
            "entry": entry.doc(),
        }
        self.client.index(index=self.index, id=entry.key, body=body)

    def remove(self, key: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.client.delete(index=self.index, id=key)

    def invalidate(self, *, route: str | None = None, template: str | None = None,
                   collection: str | None = None) -> int:  # fmt: skip
        """Delete the entries of a route, of any version of a template id or of a collection (all without
        a filter), as ``DELETE /admin/cache`` does in process and in Redis; returns how many went.
        Entries written before these fields were indexed match only by route (or no filter)."""
        wanted = (("route", route), ("template", template), ("collection", collection))
        filters = [{"term": {name: value}} for name, value in wanted if value is not None]
        query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
        return int(self.client.delete_by_query(index=self.index, body={"query": query}).get("deleted", 0))

    def purge_expired(self) -> int:
        """Delete expired entries (call periodically); returns how many went."""
        body = {"query": {"range": {"expires": {"lte": time.time()}}}}
        return int(self.client.delete_by_query(index=self.index, body=body).get("deleted", 0))


def semantic_tier(config: Any) -> OpenSearchSemanticTier | None:
    """The shared tier the config asks for, or None for the in-process one."""
    if config.semantic_store != "opensearch":
        return None
    import os

    url = config.opensearch_url or os.environ.get("OPENSEARCH_URL")
    if not url:
        raise ValueError("cache.semantic_store: opensearch needs cache.opensearch_url (or OPENSEARCH_URL)")
    return OpenSearchSemanticTier(url, config.opensearch_index)
