"""The cache with retrieval on: hits repeat the sources, and a re-ingested collection is a new scope."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import RunningGateway
from tests.test_retrieval_server import ROOT, make_collection, routes
from tests.upstream import FakeUpstream

QUESTION = {"model": "test-model", "messages": [{"role": "user", "content": "Which river crosses ten countries?"}]}


def grounded(gw: RunningGateway, stream: bool = False) -> Any:
    return gw.client().chat.completions.with_raw_response.create(
        **QUESTION, stream=stream, extra_headers={"x-llmgw-route": "grounded"}
    )


def test_hits_repeat_sources_and_a_new_collection_version_misses(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    folder = make_collection(tmp_path)
    retrieval = {"enabled": True, "collections_dir": str(folder), "refresh_s": 0.1}
    cache = {"enabled": True, "persist_path": str(tmp_path / "cache.sqlite")}
    gw = make_gateway(retrieval=retrieval, templates={"repo": str(ROOT)}, routes=routes(), cache=cache)

    first = grounded(gw)
    assert first.headers["x-llmgw-cache"] == "bypass", "the collection's version is not known before its first use"
    second = grounded(gw)
    assert second.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert second.headers["x-llmgw-sources"] == first.headers["x-llmgw-sources"]
    assert second.parse().model_extra["llmgw"]["sources"][0]["doc_id"] == "docs/rivers.md"
    streamed = grounded(gw, stream=True)
    chunks = list(streamed.parse())
    assert streamed.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert chunks[0].model_extra["llmgw"]["sources"][0]["doc_id"] == "docs/rivers.md"

    version = gw.gateway.retrieval.collection_version("kb")
    make_collection(tmp_path, docs={"rivers.md": "# Rivers\n\nThe Danube flows through ten countries, and more."})
    deadline = time.monotonic() + 10
    while gw.gateway.retrieval.collection_version("kb") == version:
        assert time.monotonic() < deadline, "the re-ingested collection was not picked up"
        time.sleep(0.05)
    after = grounded(gw)
    assert after.headers["x-llmgw-cache"] == "miss", "answers grounded in the old version are not served"
    assert len(upstream.requests) == 2
    assert grounded(gw).headers["x-llmgw-cache"] == "hit"
