"""The OpenSearch store against a real cluster: runs only when OPENSEARCH_URL is set.

    docker compose -f docs/opensearch/docker-compose.yml up -d
    OPENSEARCH_URL=http://127.0.0.1:9200 ./scripts/test.sh tests/test_opensearch_live.py

Here k-NN, hybrid queries and search pipelines execute for real, with the real embedding model,
and the local store must rank the same collection the same way (within approximate search).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmgw.retrieval.chunking import model_tokenizer
from llmgw.retrieval.collection import CollectionSpec, StoreSpec
from llmgw.retrieval.embeddings import Embedder, LocalBackend
from llmgw.retrieval.ingest import ingest
from llmgw.retrieval.local import LocalStore
from llmgw.retrieval.opensearch import OpenSearchStore
from llmgw.retrieval.service import Collection
from tests.test_opensearch_store import documents

URL = os.environ.get("OPENSEARCH_URL")
pytestmark = pytest.mark.skipif(not URL, reason="set OPENSEARCH_URL to run against a real OpenSearch cluster")
QUESTIONS = {
    "Which volcano erupts most in Europe?": "etna",
    "How hot should the water be for green tea?": "tea",
    "Which river crosses many countries?": "danube",
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(LocalBackend(CollectionSpec().embedding))


@pytest.fixture()
def pair(embedder: Embedder, tmp_path: Path) -> Iterator[tuple[Collection, Collection]]:
    name = f"live{uuid.uuid4().hex[:8]}"
    spec = CollectionSpec(name=name, store=StoreSpec(kind="opensearch", url=URL, engine="lucene"))
    remote = OpenSearchStore(name, spec.store, 384)
    remote.ensure()
    local = LocalStore(tmp_path / "local")
    for store in (remote, local):
        ingest(spec, store, embedder, model_tokenizer(), documents())
    local.refresh()
    yield Collection(spec, embedder, remote), Collection(spec, embedder, local)
    for index in remote.indices():
        remote.client.indices.delete(index=index)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_both_stores_find_the_same_answers(pair: tuple[Collection, Collection], mode: str) -> None:
    remote, local = pair
    for question, doc in QUESTIONS.items():
        if mode == "bm25" and doc == "danube":
            continue  # no shared words: BM25 cannot find it in either store
        got_remote = [h.chunk.doc_id for h in remote.search(question, 3, mode=mode)]
        got_local = [h.chunk.doc_id for h in local.search(question, 3, mode=mode)]
        assert got_remote[0] == got_local[0] == doc, (question, got_remote, got_local)


def test_dense_scores_match_opensearch_cosinesimil(pair: tuple[Collection, Collection]) -> None:
    remote, local = pair
    question = next(iter(QUESTIONS))
    r = remote.search(question, 1, mode="dense")[0]
    ll = local.search(question, 1, mode="dense")[0]
    assert r.score == pytest.approx(ll.score, abs=1e-3)


@pytest.mark.parametrize("fusion", ["rrf", "min_max"])
def test_pipeline_and_client_side_fusion_agree(pair: tuple[Collection, Collection], fusion: str) -> None:
    remote, _ = pair
    remote.spec.search.fusion = fusion  # type: ignore[assignment]
    store = remote.store
    assert isinstance(store, OpenSearchStore)
    question = next(iter(QUESTIONS))
    in_pipeline = [h.chunk.doc_id for h in remote.search(question, 3)]
    assert store.client_side_fusion is False
    store.client_side_fusion = True
    on_client = [h.chunk.doc_id for h in remote.search(question, 3)]
    assert in_pipeline[0] == on_client[0] == "etna"
