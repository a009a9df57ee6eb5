"""``POST /v1/messages`` through a real gateway, driven by the official ``anthropic`` SDK.

Against the OpenAI-compatible stub upstream (the Messages request is translated to Chat
Completions and back), the native ``anthropic`` provider's stub (Messages all the way) and
Bedrock's Converse through botocore's own parser.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx
import pytest

from llmgw.anthropic.render import MessagesEvents
from llmgw.context import RequestContext
from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.usage import Usage
from tests.anthropic_upstream import AnthropicUpstream
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.test_bedrock import HAPPY_STREAM, STREAM_HEADERS, Raw, on_send
from tests.test_bedrock_gateway import CONVERSE, bedrock_gw  # noqa: F401  (the fixture)
from tests.test_guards_e2e import ATTACK, events, guarded  # noqa: F401  (the fixture)
from tests.test_local_model import local_gw  # noqa: F401  (the fixture: the embedded models)
from tests.upstream import FakeUpstream

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip


def client(gw: RunningGateway, api_key: str = ADMIN_KEY, **kwargs: Any) -> anthropic.Anthropic:
    """The official SDK as a client would configure it: ``x-api-key`` and ``anthropic-version``."""
    return anthropic.Anthropic(base_url=gw.url, api_key=api_key, max_retries=0, **kwargs)


def row(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    return next(r for r in gw.rows() if r["id"] == request_id)


# --- against the OpenAI-compatible stub: translated both ways ------------------------------------


def test_create_translates_to_chat_and_back(gw: RunningGateway, upstream: FakeUpstream) -> None:
    raw = client(gw).messages.with_raw_response.create(
        model="test-model", max_tokens=50, system="Be brief.", stop_sequences=["END"], extra_body={"top_k": 5},
        metadata={"user_id": "user-7"}, messages=[{"role": "user", "content": "Hello"}],
    )  # fmt: skip
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model == "test-model"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "echo: 2 messages"
    assert message.stop_reason == "end_turn"
    request_id = raw.headers["x-llmgw-request-id"]
    assert message.id == f"msg_{request_id}"
    sent = upstream.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert sent["max_tokens"] == 50 and sent["stop"] == ["END"] and sent["top_k"] == 5
    assert sent["model"] == "fake-1" and "system" not in sent and "stop_sequences" not in sent
    assert message.usage.input_tokens == sent_prompt_tokens(sent) and message.usage.output_tokens == 4
    stored = row(gw, request_id)
    assert stored["api"] == "messages" and stored["endpoint"] == "messages" and stored["status"] == "ok"
    assert stored["user"] == "user-7" and stored["completion_tokens"] == 4
    assert float(raw.headers["x-llmgw-cost-usd"]) == pytest.approx(stored["cost_usd"])


def sent_prompt_tokens(sent: dict[str, Any]) -> int:
    return sum(len(str(m.get("content") or "")) for m in sent["messages"]) // 4 + 1  # the stub's count


def test_chat_rows_say_chat(gw: RunningGateway) -> None:
    completion = gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    assert row(gw, completion.id.removeprefix("chatcmpl-"))["api"] == "chat"


def test_stream_has_anthropic_events_and_the_sdk_accumulates_them(gw: RunningGateway, upstream: FakeUpstream) -> None:
    with client(gw).messages.stream(
        model="test-model", max_tokens=50, messages=[{"role": "user", "content": "Count #chunks:4"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 " and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4 and final.usage.input_tokens > 0
    assert upstream.requests[-1]["stream"] is True
    rows = gw.rows()
    assert rows[0]["api"] == "messages" and rows[0]["stream"] is True and rows[0]["status"] == "ok"


def test_raw_event_sequence(gw: RunningGateway) -> None:
    body = {"model": "test-model", "max_tokens": 20, "stream": True,
            "messages": [{"role": "user", "content": "#tool"}], "tools": [WEATHER]}  # fmt: skip
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        response = http.post("/v1/messages", json=body, headers={"x-api-key": ADMIN_KEY})
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") >= 2  # text, then tool_use
    datas = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert all(d["type"] == n for d, n in zip(datas, names, strict=True))
    delta = next(d for d in datas if d["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] == 5


@pytest.mark.parametrize("fails", [False, True], ids=["clean end", "error mid-stream"])
def test_a_messages_stream_is_logged_before_its_last_event(gw: RunningGateway, fails: bool) -> None:
    """As for chat (tests/test_pipeline.py): the row is queued before message_stop or the error event."""
    finished: list[str] = []
    route: Any = SimpleNamespace(
        done_stages=[SimpleNamespace(name="recorder", done=lambda c: finished.append(c.status))]
    )
    ctx = RequestContext(request_id="r1", endpoint="chat", body={}, options={}, headers={}, stream=True)

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield {"model": "m", "choices": [{"index": 0, "delta": {"content": "Hal"}}]}
        if fails:
            raise UpstreamError(UpstreamKind.RATE_LIMITED, "upstream said slow down")

    async def read() -> list[tuple[bytes, int]]:
        events = MessagesEvents("r1", lambda: Usage(3, 1, 0))
        return [(event, len(finished)) async for event in gw.pipeline.sse(ctx, chunks(), route, events)]

    seen = asyncio.run(read())
    assert [n for _, n in seen] == [0, 1], "done() runs once, after the content and before the last event"
    last = seen[-1][0]
    if fails:
        assert last.startswith(b"event: content_block_stop") and b"event: error" in last and b"rate_limit_error" in last
    else:
        assert b"event: message_delta" in last and last.endswith(
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        )


def test_tool_use_round_trip(gw: RunningGateway, upstream: FakeUpstream) -> None:
    sdk = client(gw)
    first = sdk.messages.create(
        model="test-model", max_tokens=100, tools=[WEATHER], tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "Weather in Paris? #tool"}],
    )  # fmt: skip
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"} and call.id == "call_1"
    sent = upstream.requests[-1]
    function = {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER["input_schema"]}
    assert sent["tools"] == [{"type": "function", "function": function}]
    assert sent["tool_choice"] == "auto"
    second = sdk.messages.create(
        model="test-model", max_tokens=100, tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"},
                                         {"type": "text", "text": "Thanks, summarise."}]},
        ],
    )  # fmt: skip
    assert second.content[0].text == "echo: 4 messages"
    turns = upstream.requests[-1]["messages"]
    assert [m["role"] for m in turns] == ["user", "assistant", "tool", "user"]
    assert turns[1]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(turns[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert turns[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"}


def test_streamed_tool_use(gw: RunningGateway) -> None:
    with client(gw).messages.stream(
        model="test-model", max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": "#tool"}]
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert final.stop_reason == "tool_use"


def test_missing_max_tokens_is_400_in_anthropics_shape(gw: RunningGateway, upstream: FakeUpstream) -> None:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        response = http.post("/v1/messages", json=body, headers={"x-api-key": ADMIN_KEY})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in error["error"]["message"] and error["request_id"] == response.headers["x-llmgw-request-id"]
    assert upstream.requests == []
    stored = row(gw, error["request_id"])
    assert stored["api"] == "messages" and stored["http_status"] == 400 and stored["model_requested"] == "test-model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "document"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "w"}]},
         "tools[0].type"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 1.5}, "temperature"),
    ],
)  # fmt: skip
def test_bad_requests_name_the_messages_field(gw: RunningGateway, body: dict[str, Any], param: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gw).post("/v1/messages", body={"model": "test-model", "max_tokens": 5, **body}, cast_to=httpx.Response)
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert info.value.body["error"]["param"] == param  # type: ignore[index]


def test_x_api_key_and_bearer_auth(gw: RunningGateway) -> None:
    created = gw.create_key()
    key = created["key"]
    ask = {"model": "test-model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    raw = client(gw, api_key=key).messages.with_raw_response.create(**ask)  # x-api-key
    assert row(gw, raw.headers["x-llmgw-request-id"])["key_id"] == created["id"]
    bearer = anthropic.Anthropic(base_url=gw.url, auth_token=key, max_retries=0)  # Authorization: Bearer
    assert bearer.messages.create(**ask).content[0].text
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(gw, api_key="sk-llmgw-not-a-key").messages.create(**ask)
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with httpx.Client(base_url=gw.url, timeout=30) as http:  # no key at all, and an old anthropic-version
        response = http.post("/v1/messages", json=ask, headers={"anthropic-version": "2023-01-01"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"


def test_upstream_failure_is_an_anthropic_error(gw: RunningGateway) -> None:
    with pytest.raises(anthropic.InternalServerError) as info:
        client(gw).messages.create(
            model="test-model", max_tokens=5, messages=[{"role": "user", "content": "#status:503"}]
        )
    assert info.value.status_code == 503
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert info.value.body["error"]["code"] == "upstream_unavailable"  # type: ignore[index]


def test_a_stream_cut_midway_ends_with_an_error_event(gw: RunningGateway) -> None:
    sdk = client(gw)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        sdk.messages.stream(model="test-model", max_tokens=5, messages=[{"role": "user", "content": "#drop:2"}]) as s,
    ):
        list(s.text_stream)
    assert "upstream_protocol_error" in str(info.value)
    assert gw.rows()[0]["error_code"] == "upstream_protocol_error"


# --- guards: refusals in Anthropic's shape, PII restored inside streams and tool arguments ----------


def test_guard_refusal_is_an_anthropic_error(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gw).messages.create(model="test-model", max_tokens=20, messages=[{"role": "user", "content": ATTACK}])
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert body["error"]["code"] == "prompt_injection" and body["error"]["param"] == "messages[0].content"  # type: ignore[index]
    assert upstream.requests == []
    blocked = events(gw, guard="injection", verdict="block")
    assert len(blocked) == 1 and blocked[0]["request_id"] == body["request_id"]  # type: ignore[index]


def test_an_injection_inside_a_tool_result_is_scored_as_tool_output(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded(action="flag")
    email = f"From: it@corp.example\nSubject: numbers\n\nHi team, numbers attached. {ATTACK}"
    client(gw).messages.create(
        model="test-model", max_tokens=20, tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Summarise my latest email."},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "inbox", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": email}]},
        ],
    )  # fmt: skip
    flagged = events(gw, guard="injection", verdict="flag")
    assert [e["source"] for e in flagged] == ["tool"]
    assert upstream.requests[-1]["messages"][-1]["role"] == "tool"


def test_pii_is_masked_upstream_and_restored_in_the_stream(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    content = "Please write to jane.doe@example.com about the invoice #echo"
    with client(gw).messages.stream(
        model="test-model", max_tokens=50, messages=[{"role": "user", "content": content}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == content  # restored, though the placeholder arrived split over several events
    sent = json.dumps(upstream.requests[-1])
    assert "jane.doe@example.com" not in sent and "<EMAIL_ADDRESS_1>" in sent


def test_pii_is_restored_inside_streamed_tool_arguments(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    content = "Save a note for jane.doe@example.com #tool-echo"
    save = {"name": "save", "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}}}
    with client(gw).messages.stream(
        model="test-model", max_tokens=50, tools=[save], messages=[{"role": "user", "content": content}]
    ) as stream:
        final = stream.get_final_message()
    (call,) = [b for b in final.content if b.type == "tool_use"]
    assert call.name == "save" and call.input == {"text": content}
    assert "jane.doe@example.com" not in json.dumps(upstream.requests[-1])


# --- the cache stores the internal shape: a chat answer serves a Messages client ------------------


def test_a_chat_answer_is_a_cache_hit_for_messages(make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway(cache={"enabled": True, "persist_path": str(tmp_path / "cache.sqlite")})
    question = "What is the capital of France?"
    chat = gw.client().chat.completions.with_raw_response.create(
        model="test-model", max_tokens=40, messages=[{"role": "user", "content": question}]
    )
    assert chat.headers["x-llmgw-cache"] == "miss"
    answer = chat.parse().choices[0].message.content
    raw = client(gw).messages.with_raw_response.create(
        model="test-model", max_tokens=40, messages=[{"role": "user", "content": question}]
    )
    assert raw.headers["x-llmgw-cache"] == "hit"
    message = raw.parse()
    assert message.type == "message" and message.content[0].text == answer and message.stop_reason == "end_turn"
    with client(gw).messages.stream(
        model="test-model", max_tokens=40, messages=[{"role": "user", "content": question}]
    ) as stream:
        assert "".join(stream.text_stream) == answer
        assert stream.response.headers["x-llmgw-cache"] == "hit"
    rows = gw.rows()
    assert sorted((r["api"], r["status"]) for r in rows) == [("chat", "ok"), ("messages", "cached"),
                                                              ("messages", "cached")]  # fmt: skip


# --- the native anthropic provider ---------------------------------------------------------------


def test_native_provider_passes_a_messages_request_through(
    native_gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    message = client(native_gw).messages.create(
        model="claude", max_tokens=64, system=system, extra_body={"top_k": 3}, tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": "Weather? #tool"}]}],
    )  # fmt: skip
    sent, headers = anthropic_upstream.requests[-1], anthropic_upstream.headers[-1]
    assert headers["x-api-key"] == "sk-ant-up" and headers["anthropic-version"] == "2023-06-01"
    assert sent["model"] == "claude-up-1" and sent["max_tokens"] == 64 and sent["top_k"] == 3
    assert sent["system"] == system  # cache_control passed through untouched
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Weather? #tool"}]}]
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert [b.type for b in message.content] == ["text", "tool_use"] and message.stop_reason == "tool_use"
    assert message.content[1].input == {"city": "Paris"} and message.content[1].id == "toolu_1"
    assert message.usage.input_tokens == 10 and message.usage.cache_read_input_tokens == 4  # as the upstream said
    assert message.usage.cache_creation_input_tokens == 2
    stored = native_gw.rows()[0]
    assert stored["provider"] == "claude" and stored["prompt_tokens"] == 16 and stored["completion_tokens"] == 7
    assert stored["cost_usd"] == pytest.approx((12 * 3.0 + 4 * 0.3 + 7 * 15.0) / 1e6)


def test_native_provider_streams(native_gw: RunningGateway, anthropic_upstream: AnthropicUpstream) -> None:
    with client(native_gw).messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "Say hello back #echo"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Say hello back #echo" and final.usage.output_tokens == 7 and final.stop_reason == "end_turn"
    assert anthropic_upstream.requests[-1]["stream"] is True
    with client(native_gw).messages.stream(
        model="claude", max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "#tool"}]
    ) as stream:
        final = stream.get_final_message()
    assert [(b.type, getattr(b, "input", None)) for b in final.content] == [("text", None),
                                                                           ("tool_use", {"city": "Paris"})]  # fmt: skip


def test_chat_completions_through_the_native_provider(
    native_gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    """An OpenAI client reaches an Anthropic upstream: system, tools and tool results translated."""
    openai_client = native_gw.client()
    completion = openai_client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi #tool"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        seed=3,
    )  # fmt: skip
    sent = anthropic_upstream.requests[-1]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 333 and "seed" not in sent
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    assert completion.usage.prompt_tokens == 16 and completion.usage.prompt_tokens_details.cached_tokens == 4
    chunks = list(openai_client.chat.completions.create(
        model="claude", stream=True, messages=[{"role": "user", "content": "ping #echo"}]
    ))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ping #echo"


def test_native_provider_errors(native_gw: RunningGateway, anthropic_upstream: AnthropicUpstream) -> None:
    with pytest.raises(anthropic.InternalServerError) as info:
        client(native_gw).messages.create(
            model="claude", max_tokens=5, messages=[{"role": "user", "content": "#status:529"}]
        )
    assert info.value.body["error"]["code"] == "upstream_server_error"  # type: ignore[index]
    assert len(anthropic_upstream.requests) == 2  # retried once: 529 is Anthropic's "overloaded"
    sdk = client(native_gw)
    drop = [{"role": "user", "content": "#drop"}]
    with (
        pytest.raises(anthropic.APIStatusError, match="message_stop"),
        sdk.messages.stream(model="claude", max_tokens=5, messages=drop) as s,
    ):
        list(s.text_stream)


# --- Bedrock's Anthropic models through Converse --------------------------------------------------


def test_messages_reach_bedrock_converse(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    sent = on_send(
        provider, "Converse", [(200, {"content-type": "application/json"}, Raw([json.dumps(CONVERSE).encode()]))]
    )
    message = client(bedrock_gw).messages.create(
        model="claude", max_tokens=50, system="Be French.", messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.content[0].text == "Bonjour" and message.usage.input_tokens == 11
    request = json.loads(sent[0].body)
    assert request["system"] == [{"text": "Be French."}] and request["inferenceConfig"]["maxTokens"] == 50
    assert "anthropic.claude-3-haiku" in sent[0].url and bedrock_gw.rows()[0]["api"] == "messages"


def test_messages_stream_from_bedrock_converse_stream(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    on_send(bedrock_gw.gateway.providers["aws"], "ConverseStream", [(200, STREAM_HEADERS, Raw(HAPPY_STREAM))])
    with client(bedrock_gw).messages.stream(
        model="claude", max_tokens=50, tools=[WEATHER], messages=[{"role": "user", "content": "Weather in Paris?"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Let me check."
    assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Paris"}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 7


# --- the embedded model: what `llmgw serve` runs out of the box --------------------------------------


@pytest.mark.slow
def test_messages_on_the_embedded_model(local_gw: RunningGateway) -> None:  # noqa: F811
    sdk = client(local_gw)
    ask = {"model": "smollm2-135m-instruct", "max_tokens": 32,
           "messages": [{"role": "user", "content": "What is the capital of France?"}]}  # fmt: skip
    message = sdk.messages.create(**ask)
    assert "Paris" in message.content[0].text and message.model == "smollm2-135m-instruct"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    with sdk.messages.stream(**ask) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and "Paris" in text and final.usage.output_tokens > 0
    # llama-server says which stop word ended the answer once asked (``verbose``): "The capital…" stops at " "
    stopped = sdk.messages.create(**ask, stop_sequences=[" ", "."])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence in (" ", ".")
    assert stopped.stop_sequence not in stopped.content[0].text
    story = [{"role": "user", "content": "A very long story. Once upon a time"}]
    short = sdk.messages.create(model="gemma-3-270m", max_tokens=8, messages=story)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 8
