"""The cache's shared semantic tier in OpenSearch: writes and deletes on osmem, k-NN by its documented shapes."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from llmgw.cache.opensearch_tier import OpenSearchSemanticTier, nearest_body
from llmgw.cache.store import Entry


def entry(key: str, scope: str, vector: np.ndarray, ttl: float = 60.0) -> Entry:
    now = time.time()
    completion = {"choices": [{"message": {"role": "assistant", "content": f"answer {key}"}}]}
    return Entry(key, scope, "default", "a question", completion, now, now + ttl, vector=vector)


@pytest.fixture()
def tier(osmem_url: str) -> OpenSearchSemanticTier:
    return OpenSearchSemanticTier(osmem_url, "llmgw-cache-test", dimensions=4, client=OpenSearch(hosts=[osmem_url]))


def test_index_entries_and_remove_them(tier: OpenSearchSemanticTier) -> None:
    mapping = tier.client.indices.get_mapping(index=tier.index)[tier.index]["mappings"]["properties"]
    assert mapping["vector"]["type"] == "knn_vector" and mapping["scope"]["type"] == "keyword"
    tier.add(entry("k1", "tenant-a", np.array([1, 0, 0, 0], dtype=np.float32)), 100)
    stored = tier.client.get(index=tier.index, id="k1")["_source"]
    assert (
        stored["scope"] == "tenant-a"
        and stored["entry"]["completion"]["choices"][0]["message"]["content"] == "answer k1"
    )
    tier.remove("k1")
    tier.remove("k1")  # already gone: fine
    assert not tier.client.exists(index=tier.index, id="k1")


def test_nearest_sends_a_scoped_knn_query_and_reads_the_answer(tier: OpenSearchSemanticTier) -> None:
    sent: list[dict[str, Any]] = []
    own = entry("k1", "tenant-a", np.ones(4, dtype=np.float32))
    other = entry("k2", "tenant-b", np.ones(4, dtype=np.float32))

    def search(index: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        sent.append(body)
        hits = [{"_id": e.key, "_score": 0.95, "_source": {"scope": e.scope, "entry": e.doc()}} for e in (own, other)]
        return {"hits": {"total": {"value": 2, "relation": "eq"}, "hits": hits}}

    tier.client.search = search  # type: ignore[method-assign]  # osmem executes no k-NN query
    found = tier.nearest("tenant-a", np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32), 3)
    knn = sent[0]["query"]["knn"]["vector"]
    assert knn["k"] == 3 and knn["vector"] == [0.5, 0.5, 0.5, 0.5]
    scope_filter, expiry = knn["filter"]["bool"]["filter"]
    assert scope_filter == {"term": {"scope": "tenant-a"}} and expiry["range"]["expires"]["gt"] > 0
    assert [(e.key, round(c, 3)) for e, c in found] == [("k1", 0.9)]  # (1 + cos) / 2 = 0.95; tenant-b dropped


def test_nearest_body_shape() -> None:
    body = nearest_body("s", np.zeros(2, dtype=np.float32), 4, 10.0)
    assert body["size"] == 4 and body["_source"] == {"excludes": ["vector"]}


def test_gateway_with_the_opensearch_tier_answers_and_stores(make_gateway: Any, osmem_url: str) -> None:
    cache = {
        "enabled": True,
        "semantic_store": "opensearch",
        "opensearch_url": osmem_url,
        "opensearch_index": "gw-cache",
        "persist_path": None,
        "threshold": 0.9,  # the shipped bound's 1.0 turns the semantic tier (and its store) off
    }
    gw = make_gateway(cache=cache)
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    first = gw.client().chat.completions.with_raw_response.create(model="test-model", messages=ask)
    assert first.headers["x-llmgw-cache"] == "miss"  # osmem rejects the k-NN lookup: a miss, never an error
    second = gw.client().chat.completions.with_raw_response.create(model="test-model", messages=ask)
    assert second.headers["x-llmgw-cache"] == "hit"  # the exact tier
    client = OpenSearch(hosts=[osmem_url])
    for _ in range(50):  # the semantic entry is written off the request path
        if client.indices.exists(index="gw-cache") and client.count(index="gw-cache")["count"] == 1:
            break
        time.sleep(0.1)
    assert client.count(index="gw-cache")["count"] == 1
