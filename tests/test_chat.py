"""Chat completions through a real gateway server, with the official openai SDK as the client."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.conftest import RunningGateway
from tests.upstream import FakeUpstream

USER = [{"role": "user", "content": "Hello there"}]


def test_non_streamed_completion(gw: RunningGateway, upstream: FakeUpstream) -> None:
    raw = gw.client().chat.completions.with_raw_response.create(model="test-model", messages=USER, user="u-42")
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: 1 messages"
    assert completion.model == "test-model"
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    request_id = raw.headers["x-llmgw-request-id"]
    assert completion.id == f"chatcmpl-{request_id}"
    assert raw.headers["x-llmgw-model"] == "test-model"
    # the upstream saw its own model id and the gateway's provider key, not the client's
    assert upstream.requests[-1]["model"] == "fake-1"
    assert upstream.headers[-1]["Authorization"] == "Bearer sk-upstream-secret"
    row = next(r for r in gw.rows() if r["id"] == request_id)
    assert row["status"] == "ok" and row["model_used"] == "test-model" and row["user"] == "u-42"
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    expected_cost = (completion.usage.prompt_tokens * 1.0 + completion.usage.completion_tokens * 2.0) / 1e6
    assert row["cost_usd"] == pytest.approx(expected_cost)


def test_streamed_chunk_by_chunk(gw: RunningGateway, upstream: FakeUpstream) -> None:
    stream = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "count #chunks:7"}], stream=True
    )
    chunks = list(stream)
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert contents == [f"tok{i} " for i in range(7)]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "usage was not asked for, so none is sent"
    assert len({c.id for c in chunks}) == 1
    # the gateway always asks the upstream for usage: it is the ground truth for cost
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}


def test_stream_usage_chunk_when_asked(gw: RunningGateway) -> None:
    stream = gw.client().chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "count #chunks:3"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    row = gw.rows()[0]
    assert row["stream"] is True and row["completion_tokens"] == 3 and row["ttft_ms"] is not None


def test_stream_and_non_stream_cost_the_same(gw: RunningGateway) -> None:
    messages = [{"role": "user", "content": "same question #chunks:4"}]
    gw.client().chat.completions.create(model="test-model", messages=messages)
    list(gw.client().chat.completions.create(model="test-model", messages=messages, stream=True))
    rows = gw.rows()
    assert len(rows) == 2
    assert rows[0]["prompt_tokens"] == rows[1]["prompt_tokens"]


def test_client_disconnect_cancels_upstream(gw: RunningGateway, upstream: FakeUpstream) -> None:
    body = {"model": "test-model", "stream": True,
            "messages": [{"role": "user", "content": "long #chunks:400 #slow:0.1"}]}  # fmt: skip
    headers = {"authorization": "Bearer sk-admin-test-0123456789"}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=headers) as response,
    ):
        request_id = response.headers["x-llmgw-request-id"]
        lines = response.iter_lines()
        seen = [line for _, line in zip(range(6), lines, strict=False)]
        assert any(line.startswith("data: ") for line in seen)
    # bounds, not timings: the upstream's 400 chunks, 100 ms apart, would take 40 s to complete (at
    # 20 ms apart, 8 s, a 5 s wait for the disconnect was a race with a busy machine)
    deadline = time.monotonic() + 15
    while upstream.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.disconnects == 1, "the upstream call should be cancelled when the client leaves"
    assert upstream.completed_streams == 0
    deadline = time.monotonic() + 30
    while not (rows := [r for r in gw.rows() if r["id"] == request_id]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows and rows[0]["status"] == "client_disconnected"


def test_tools_and_tool_calls(gw: RunningGateway, upstream: FakeUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    completion = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "weather? #tool"}], tools=tools
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert upstream.requests[-1]["tools"] == tools
    stream = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "weather? #tool #chunks:1"}], tools=tools,
        stream=True,
    )  # fmt: skip
    deltas = [c.choices[0].delta for c in stream if c.choices]
    assert deltas[0].tool_calls[0].function.name == "get_weather"


def test_n_response_format_user_and_unknown_fields_pass_through(gw: RunningGateway, upstream: FakeUpstream) -> None:
    completion = gw.client().chat.completions.create(
        model="test-model", messages=USER, n=2, response_format={"type": "json_object"}, user="alice",
        extra_body={"top_k": 5, "llmgw": {"route": "default"}},
    )  # fmt: skip
    assert len(completion.choices) == 2
    sent = upstream.requests[-1]
    assert sent["n"] == 2 and sent["response_format"] == {"type": "json_object"} and sent["user"] == "alice"
    assert sent["top_k"] == 5, "unknown fields pass through under the default rule"
    assert "llmgw" not in sent, "gateway options never reach the provider"


def test_unknown_fields_rejected_when_configured(make_gateway, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(server={"unknown_fields": "reject"})
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=USER, extra_body={"top_k": 5})
    assert info.value.body["code"] == "unknown_parameter" and info.value.body["param"] == "top_k"


def test_header_options_mirror_body(gw: RunningGateway) -> None:
    client = gw.client()
    with pytest.raises(openai.PermissionDeniedError):
        # the narrow route allows only other-model
        client.chat.completions.create(model="test-model", messages=USER, extra_headers={"x-llmgw-route": "narrow"})
    raw = client.chat.completions.with_raw_response.create(
        model="other-model", messages=USER, extra_headers={"x-llmgw-route": "narrow"}
    )
    assert raw.headers["x-llmgw-route"] == "narrow"


def test_auto_uses_route_default(gw: RunningGateway) -> None:
    raw = gw.client().chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-llmgw-model"] == "test-model"
