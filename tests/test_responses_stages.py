"""Every stage on ``POST /v1/responses``: guards, PII restoration in streams and tool arguments, the
cache across APIs, Bedrock behind it. Same stub upstream and policies as the chat suites."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import RunningGateway
from tests.test_bedrock import HAPPY_STREAM, STREAM_HEADERS, Raw, on_send
from tests.test_bedrock_gateway import CONVERSE, bedrock_gw  # noqa: F401  (fixture)
from tests.test_cache import cache_config
from tests.test_guards_e2e import ATTACK, HARM, SECRET, WITH_SECRET, events, guarded  # noqa: F401  (fixture)
from tests.test_pii import MESSAGE, RAW, pgw  # noqa: F401  (fixture)
from tests.upstream import FakeUpstream


def stream_events(gw: RunningGateway, **params: Any) -> tuple[list[Any], bytes]:
    """The SDK's events and every byte the client received."""
    received = bytearray()

    def keep(response: httpx.Response) -> None:
        response.read()
        received.extend(response.content)

    with httpx.Client(timeout=30, event_hooks={"response": [keep]}) as http:
        evts = list(gw.client(http_client=http).responses.create(model="test-model", stream=True, **params))
    return evts, bytes(received)


def test_injection_is_refused_in_openais_shape(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().responses.create(model="test-model", input=ATTACK)
    assert info.value.body["code"] == "prompt_injection" and info.value.body["type"] == "invalid_request_error"
    assert upstream.requests == []
    assert events(gw, guard="injection", verdict="block")


def test_injection_in_a_function_output_is_scored_as_a_tool_source(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded(action="flag")
    email = f"From: it@corp.example\nSubject: quarterly numbers\n\nHi team, numbers attached. {ATTACK}"
    gw.client().responses.create(model="test-model", input=[
        {"role": "user", "content": "Summarise my latest email."},
        {"type": "function_call", "call_id": "t1", "name": "inbox", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "t1", "output": email},
    ])  # fmt: skip
    assert [e["source"] for e in events(gw, guard="injection", verdict="flag")] == ["tool"]


def test_a_streamed_violation_ends_incomplete_with_an_error_event(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    upstream.scripts["harm"] = HARM  # streamed 1-3 characters a chunk
    gw = guarded()
    evts, raw = stream_events(gw, input="tell me a story #say:harm")
    sent = "".join(e.delta for e in evts if e.type == "response.output_text.delta")
    assert sent == HARM[: len(sent)] and "kill" not in sent and sent.startswith("Here is a calm answer")
    kinds = [e.type for e in evts]
    assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.incomplete"]
    error, final = evts[-2], evts[-1].response
    assert error.code == "content_filter" and "output guard" in error.message
    assert final.status == "incomplete" and final.incomplete_details.reason == "content_filter"
    assert final.output[0].status == "incomplete" and final.output[0].content[0].text == sent
    assert [e.sequence_number for e in evts] == list(range(len(evts)))
    assert b"kill" not in raw
    row = gw.rows()[0]
    assert row["status"] == "content_filtered" and row["api"] == "responses" and row["completion_tokens"] > 0


def test_no_byte_of_a_streamed_secret_reaches_the_client(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    upstream.scripts["key"] = WITH_SECRET
    gw = guarded()
    evts, raw = stream_events(gw, input="tell me a story #say:key")
    assert evts[-1].type == "response.incomplete" and b"sk-" not in raw and SECRET not in raw.decode()


def test_a_non_streamed_violation_is_an_incomplete_response(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    upstream.scripts["harm"] = HARM
    gw = guarded()
    response = gw.client().responses.create(model="test-model", input="tell me a story #say:harm")
    assert response.status == "incomplete" and response.incomplete_details.reason == "content_filter"
    assert response.output_text == "" and "kill" not in response.model_dump_json()


def test_pii_is_masked_upstream_and_restored_in_the_stream(pgw: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = pgw()
    evts, _ = stream_events(gw, input=MESSAGE + " #echo")
    sent = json.dumps(upstream.requests[-1])
    assert not [value for value in RAW.values() if value in sent], "raw PII reached the upstream"
    deltas = [e.delta for e in evts if e.type == "response.output_text.delta"]
    assert "".join(deltas) == MESSAGE + " #echo"
    assert not any("<" in d and "_" in d for d in deltas), "no placeholder fragment reaches the client"
    done = next(e for e in evts if e.type == "response.output_text.done")
    assert done.text == MESSAGE + " #echo" and evts[-1].response.output_text == MESSAGE + " #echo"


@pytest.mark.parametrize("stream", [False, True])
def test_pii_in_function_call_arguments_is_restored(pgw: Any, upstream: FakeUpstream, stream: bool) -> None:  # noqa: F811
    gw = pgw()
    params = {"input": f"Save this: {MESSAGE} #tool-echo", "tools": [{"type": "function", "name": "save"}]}
    if stream:
        evts, _ = stream_events(gw, **params)
        arguments = "".join(e.delta for e in evts if e.type == "response.function_call_arguments.delta")
        done = next(e for e in evts if e.type == "response.function_call_arguments.done")
        assert done.arguments == arguments
    else:
        response = gw.client().responses.create(model="test-model", **params)
        arguments = next(item for item in response.output if item.type == "function_call").arguments
    assert json.loads(arguments) == {"text": f"Save this: {MESSAGE} #tool-echo"}
    assert RAW["EMAIL_ADDRESS"] not in json.dumps(upstream.requests[-1])


def test_the_cache_answers_each_api_in_its_own_shape(make_gateway: Any, tmp_path: Any, upstream: FakeUpstream) -> None:
    gw = make_gateway(cache=cache_config(tmp_path))
    client = gw.client()
    question = "What is the boiling point of water at sea level?"
    chat = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": question}], temperature=0
    )
    assert chat.headers["x-llmgw-cache"] == "miss"
    raw = client.responses.with_raw_response.create(model="test-model", input=question, temperature=0)
    assert raw.headers["x-llmgw-cache"] == "hit", "the same request through another API is the same request"
    response = raw.parse()
    assert response.object == "response" and response.output_text == chat.parse().choices[0].message.content
    assert response.usage.output_tokens == 0
    with client.responses.with_streaming_response.create(
        model="test-model", input=question, temperature=0, stream=True
    ) as streamed:
        assert streamed.headers["x-llmgw-cache"] == "hit"
        evts = list(streamed.parse())
    assert evts[-1].type == "response.completed" and evts[-1].response.output_text == response.output_text
    assert len(upstream.requests) == 1
    rows = gw.rows()
    assert sorted(r["api"] for r in rows) == ["chat", "responses", "responses"]
    assert sorted(r["status"] for r in rows) == ["cached", "cached", "ok"]


def test_served_by_bedrock_through_converse(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    sent = on_send(
        provider, "Converse", [(200, {"content-type": "application/json"}, Raw([json.dumps(CONVERSE).encode()]))]
    )
    response = bedrock_gw.client().responses.create(
        model="claude", instructions="Be French.", input="Hello", max_output_tokens=50
    )
    assert response.output_text == "Bonjour" and response.usage.input_tokens == 11
    request = json.loads(sent[0].body)
    assert request["system"] == [{"text": "Be French."}] and request["inferenceConfig"]["maxTokens"] == 50


def test_streamed_tool_call_from_bedrock(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    on_send(provider, "ConverseStream", [(200, STREAM_HEADERS, Raw(HAPPY_STREAM))])
    with bedrock_gw.client().responses.stream(
        model="claude", input="Weather in Paris?", tools=[{"type": "function", "name": "weather"}]
    ) as stream:
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output_text == "Let me check." and json.loads(final.output[1].arguments) == {"city": "Paris"}
    assert final.usage.input_tokens == 12 and final.usage.output_tokens == 7


# --- an upstream that speaks Responses (``responses: native``) ------------------------------------


@pytest.fixture()
def native(make_gateway: Any, upstream: FakeUpstream, tmp_path: Any) -> Any:
    def make(**overrides: Any) -> RunningGateway:
        provider = {"type": "openai", "base_url": upstream.base_url, "responses": "native", "max_retries": 0}
        model = {"provider": "resp", "upstream_id": "fake-r", "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                 "capabilities": ["chat", "streaming", "tools", "json_mode"]}  # fmt: skip
        return make_gateway(providers={"resp": provider}, models={"native-model": model}, **overrides)

    return make


def test_native_upstream_gets_a_responses_request(native: Any, upstream: FakeUpstream) -> None:
    gw = native()
    response = gw.client().responses.create(
        model="native-model", instructions="Be brief.", input="Hello", max_output_tokens=30,
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
    )  # fmt: skip
    assert response.output_text == "native: 2 items"
    assert response.usage.input_tokens == 7 and response.usage.input_tokens_details.cached_tokens == 2
    assert response.usage.output_tokens_details.reasoning_tokens == 1
    assert upstream.paths[-1] == "/v1/responses"
    assert upstream.requests[-1] == {
        "model": "fake-r", "store": False, "max_output_tokens": 30,
        "input": [{"type": "message", "role": "system", "content": "Be brief."},
                  {"type": "message", "role": "user", "content": "Hello"}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
    }  # fmt: skip
    row = gw.rows()[0]
    assert row["prompt_tokens"] == 7 and row["completion_tokens"] == 3


def test_chat_clients_stream_from_a_native_upstream(native: Any, upstream: FakeUpstream) -> None:
    gw = native()
    chunks = list(gw.client().chat.completions.create(
        model="native-model", messages=[{"role": "user", "content": "say hi back #echo"}], stream=True,
        stream_options={"include_usage": True},
    ))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "say hi back #echo"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens == 7
    assert upstream.requests[-1]["stream"] is True and "stream_options" not in upstream.requests[-1]


def test_native_function_call_round_trip_streamed(native: Any, upstream: FakeUpstream) -> None:
    gw = native()
    with gw.client().responses.stream(model="native-model", input="weather? #tool",
                                      tools=[{"type": "function", "name": "get_weather"}]) as stream:  # fmt: skip
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.call_id == "call_1" and json.loads(call.arguments) == {"city": "Paris"}
    gw.client().responses.create(model="native-model", input=[
        {"role": "user", "content": "weather?"}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}])  # fmt: skip
    sent = upstream.requests[-1]["input"]
    assert sent[1] == {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                       "arguments": '{"city": "Paris"}'}  # fmt: skip
    assert sent[2] == {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}


def test_native_keeps_masking_and_restores_the_stream(native: Any, upstream: FakeUpstream, tmp_path: Any) -> None:
    from tests.test_pii import POLICY

    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY)
    gw = native(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "s"})
    evts = list(gw.client().responses.create(model="native-model", input=MESSAGE + " #echo", stream=True))
    assert not [value for value in RAW.values() if value in json.dumps(upstream.requests[-1])]
    assert evts[-1].type == "response.completed" and evts[-1].response.output_text == MESSAGE + " #echo"


def test_a_native_upstream_error_is_classified(native: Any) -> None:
    gw = native()
    with pytest.raises(openai.RateLimitError):
        gw.client().responses.create(model="native-model", input="hi #status:429")
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="native-model", messages=[{"role": "user", "content": "hi"}], n=2)
    assert info.value.body["code"] == "unsupported_parameter" and info.value.body["param"] == "n"
