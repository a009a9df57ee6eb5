"""The pipeline's contracts: early answers, stage selection per route, Azure-style upstreams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import openai
import pytest

from llmgw.context import RequestContext
from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.options import GatewayOptions
from llmgw.responses_api.stream import ResponsesEvents
from llmgw.stages.cache import CacheLookup
from tests.conftest import RunningGateway
from tests.upstream import FakeUpstream

CANNED = {
    "id": "cached-1",
    "object": "chat.completion",
    "created": 1,
    "model": "test-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the cache"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
}


class AnswersEarly(CacheLookup):
    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        ctx.model_name = "test-model"
        ctx.status = "cached"
        return dict(CANNED)


def test_a_stage_can_answer_early_streamed_and_not(
    make_gateway, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("llmgw.pipeline.BEFORE_PROVIDER", (AnswersEarly,))
    gw = make_gateway(cache={"enabled": True})
    client = gw.client()
    completion = client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "q"}])
    assert completion.choices[0].message.content == "from the cache"
    chunks = list(
        client.chat.completions.create(
            model="test-model",
            messages=[{"role": "user", "content": "q"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from the cache"
    assert chunks[-1].usage.total_tokens == 6
    assert upstream.requests == [], "an early answer never reaches the provider"
    assert {r["status"] for r in gw.rows()} == {"cached"}


def test_pass_through_stages_are_not_in_the_chain(gw: RunningGateway) -> None:
    route = gw.pipeline.routes["default"]
    # the tool allow-list is always on: a key's list is read per request
    names = ["tool_allow_list", "plan", "select_model", "audit_log"]
    assert route.names == names, "stages whose features are off are left out"
    assert [s.name for s in route.request_stages] == ["tool_allow_list", "plan", "select_model"]
    assert route.stream_stages == []


def test_route_toggles_turn_stages_off(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(
        cache={"enabled": True},
        routes={"default": {"default_model": "test-model"}, "nocache": {"stages": {"cache": False}}},
    )
    assert "cache_lookup" in gw.pipeline.routes["default"].names
    assert "cache_lookup" not in gw.pipeline.routes["nocache"].names


def test_azure_style_upstream(make_gateway, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    base = upstream.base_url.removesuffix("/v1")
    gw = make_gateway(
        providers={
            "az": {
                "type": "openai",
                "azure": True,
                "base_url": base,
                "api_key": "az-secret",
                "api_version": "2024-06-01",
            }
        },
        models={"test-model": {"provider": "az", "upstream_id": "my-deployment"}},
        routes={"default": {}},
    )
    gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
    assert upstream.paths[-1] == "/openai/deployments/my-deployment/chat/completions?api-version=2024-06-01"
    assert upstream.headers[-1]["api-key"] == "az-secret"
    assert "Authorization" not in upstream.headers[-1]


def test_error_responses_carry_request_id_and_model(gw: RunningGateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#status:500"}])
    headers = info.value.response.headers
    assert headers["x-llmgw-model"] == "test-model"
    request_id = headers["x-llmgw-request-id"]
    time.sleep(0.01)
    assert gw.rows()[0]["id"] == request_id


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("fails", [False, True], ids=["clean end", "error mid-stream"])
def test_a_stream_is_logged_before_its_last_event(gw: RunningGateway, fails: bool, api: str) -> None:
    """The client may query the audit log the moment its stream ends: the row must be queued by then."""
    finished: list[str] = []
    done_stage = SimpleNamespace(name="recorder", done=lambda ctx: finished.append(ctx.status))
    route: Any = SimpleNamespace(done_stages=[done_stage])
    ctx = RequestContext(request_id="r1", endpoint="chat", body={}, options=GatewayOptions(), headers={}, stream=True)

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield {"choices": [{"index": 0, "delta": {"content": "Hal"}}]}
        if fails:
            raise UpstreamError(UpstreamKind.RATE_LIMITED, "upstream said slow down")

    async def read() -> list[tuple[bytes, int]]:
        seen = []
        events = ResponsesEvents({"model": "m"}, "r1") if api == "responses" else None
        async for event in gw.pipeline.sse(ctx, chunks(), route, events):
            seen.append((event, len(finished)))  # how many times done() had run when this event left
        return seen

    seen = asyncio.run(read())
    assert [n for _, n in seen] == [0, 1], "done() runs once, after the content and before the last event"
    last = seen[-1][0]
    clean_end = b"data: [DONE]\n\n" if api == "chat" else b"event: response.completed\n"
    assert (b"upstream_rate_limited" in last) if fails else clean_end in last
    assert finished == ["error" if fails else "ok"]
