"""Cold start: every model a request needs is loaded before the server takes requests.

The process-wide model caches are emptied first, so this is a real cold start even when other
tests of the session loaded the same models: what the requests then load is what a first request
after a deploy would have paid for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmgw import embedder, encoders, tokens, warmup
from llmgw.cache import embed
from llmgw.config import parse_config
from llmgw.guards import output, pii, runtime
from llmgw.retrieval import screening
from llmgw.routing import tasks
from tests.conftest import RunningGateway, base_config
from tests.test_retrieval_server import make_collection
from tests.upstream import FakeUpstream

CACHED_LOADERS = (
    embedder.load,
    encoders.encoder,
    encoders._query_encoder,
    tokens._tokenizer,
    runtime.injection_detector,
    output.moderator,
    pii.presidio_engine,
    screening.fingerprint,
    output._pattern_recognizers,
)


def empty_model_caches() -> None:
    for loader in CACHED_LOADERS:
        loader.cache_clear()
    embed.embed.cache_clear()
    tasks._cache.clear()


def loads(gw: RunningGateway) -> tuple[Any, ...]:
    """Everything that changes when a model is loaded: cache misses, classifiers, analyzers' engines."""
    analyzers = tuple(a._engine is not None for a in gw.gateway.guards._analyzers.values())
    misses = tuple(loader.cache_info().misses for loader in CACHED_LOADERS)
    return misses, len(tasks._cache), analyzers, tuple(gw.gateway.retrieval._open)


@pytest.fixture()
def everything_on(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Any]:
    """A gateway config with routing, guards, the semantic cache and a preloaded collection."""
    folder = make_collection(tmp_path)

    def config(**overrides: Any) -> Any:
        return parse_config(
            base_config(
                upstream.base_url,
                f"sqlite:///{tmp_path}/gw.db",
                routing={"enabled": True},
                guards={"enabled": True, "hash_salt": "s"},
                cache={"enabled": True, "persist_path": None, "threshold": 0.9},  # the shipped bound: no semantic tier
                retrieval={"enabled": True, "collections_dir": str(folder), "preload": ["kb"]},
                routes={"default": {"default_model": "test-model", "retrieval": {"collections": ["kb"]}}},
                **overrides,
            )
        )

    running: list[RunningGateway] = []
    upstream.reset()
    yield config, running
    for gw in running:
        gw.stop()


def test_nothing_a_request_needs_loads_on_the_request_path(everything_on: Any) -> None:
    config, running = everything_on
    empty_model_caches()
    gw = RunningGateway(config()).start()
    running.append(gw)
    assert gw.gateway.loaded == ["tokenizer", "guards", "cache_encoder", "task_classifier", "collection:kb"]
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["models"] is True
    before = loads(gw)
    client = gw.client()
    for stream, question in ((False, "Which volcano is the most active in Europe?"), (True, "How is green tea made?")):
        response = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": f"{question} #echo"}],
            extra_body={"llmgw": {"retrieval": {"collection": "kb"}}},
            stream=stream,
        )
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in response if c.choices)
        else:
            assert response.choices[0].message.content
    rows = gw.rows()
    assert len(rows) == 2 and all("classifier" in r["meta"]["route_decision"]["task_source"] for r in rows), rows
    assert all(r["meta"]["retrieval"]["collection"] == "kb" for r in rows)
    assert loads(gw) == before, "a request loaded a model"


def test_readyz_is_not_ready_until_every_model_is_loaded(everything_on: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a loader runs the server takes no connection; a loader that fails keeps /readyz at 503."""
    config, running = everything_on
    entered, release = threading.Event(), threading.Event()
    real = warmup.loaders

    def slow_first(gateway: Any) -> list[warmup.Loader]:
        def block() -> None:
            entered.set()
            release.wait(60)

        return [("blocking", block), *real(gateway)]

    monkeypatch.setattr(warmup, "loaders", slow_first)
    gw = RunningGateway(config())
    running.append(gw)
    gw.thread.start()
    assert entered.wait(90), "the loaders never ran"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gw.url}/readyz")
    release.set()
    deadline = time.monotonic() + 90
    while not gw.server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 200 and gw.gateway.loaded[0] == "blocking"

    def broken(tasks: Any, replace: Any) -> None:
        raise RuntimeError("no exemplars")

    monkeypatch.setattr(warmup, "loaders", real)
    monkeypatch.setattr(warmup, "_task_classifier", broken)
    failed = RunningGateway(config()).start()
    running.append(failed)
    ready = httpx.get(f"{failed.url}/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["models"] is False
    assert failed.gateway.load_failed == ["task_classifier"]
