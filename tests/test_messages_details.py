"""``/v1/messages`` details through a real gateway and the official ``anthropic`` SDK: which stop
sequence ended an answer, a failed tool call's ``is_error``, and ``/v1/messages/count_tokens``.

Against the OpenAI-compatible stub (which cuts a text answer at the request's ``stop`` and names
the string the way vLLM, SGLang or no server at all does), the native ``anthropic`` provider's
stub, and Bedrock's Converse through botocore's own parsers.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from llmgw import tokens
from llmgw.messages import TOOL_ERROR_PREFIX
from tests.anthropic_upstream import AnthropicUpstream
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.test_bedrock import STREAM_HEADERS, Raw, event, on_send
from tests.test_bedrock_gateway import CONVERSE, bedrock_gw  # noqa: F401  (the fixture)
from tests.test_messages import WEATHER, client
from tests.upstream import FakeUpstream

ECHO = "alpha beta END gamma #echo"  # the stub answers with this text, cut at a stop string


def ask(gw: RunningGateway, stream: bool, model: str = "test-model", **kwargs: Any) -> anthropic.types.Message:
    """One answer through the SDK, streamed (``messages.stream``, accumulated) or not."""
    sdk = client(gw)
    if not stream:
        return sdk.messages.create(model=model, max_tokens=50, **kwargs)
    with sdk.messages.stream(model=model, max_tokens=50, **kwargs) as events:
        return events.get_final_message()


# --- stop_sequence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("field", ["stop_reason", "matched_stop"], ids=["vllm", "sglang"])
def test_the_stop_sequence_an_openai_compatible_upstream_names_is_reported(
    gw: RunningGateway, upstream: FakeUpstream, field: str, stream: bool
) -> None:
    upstream.stop_field = field
    message = ask(gw, stream, stop_sequences=["ZZZ", "END"], messages=[{"role": "user", "content": ECHO}])
    assert message.content[0].text == "alpha beta "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"
    assert upstream.requests[-1]["stop"] == ["ZZZ", "END"]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_an_upstream_that_does_not_say_which_stop_matched_answers_end_turn(
    gw: RunningGateway, upstream: FakeUpstream, stream: bool
) -> None:
    """As OpenAI itself: the stop string is cut and ``finish_reason`` is "stop", as at a turn's end."""
    message = ask(gw, stream, stop_sequences=["END"], messages=[{"role": "user", "content": ECHO}])
    assert message.content[0].text == "alpha beta "
    assert message.stop_reason == "end_turn" and message.stop_sequence is None


def test_a_named_string_that_is_none_of_the_requests_stop_sequences_is_ignored(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    upstream.stop_field = "stop_reason"
    message = ask(gw, False, stop_sequences=["END"], messages=[{"role": "user", "content": "no stop here #echo"}])
    assert message.stop_reason == "end_turn" and message.stop_sequence is None


def test_the_stop_sequence_rides_in_message_delta(gw: RunningGateway, upstream: FakeUpstream) -> None:
    upstream.stop_field = "stop_reason"
    body = {"model": "test-model", "max_tokens": 20, "stream": True, "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": ECHO}]}  # fmt: skip
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        response = http.post("/v1/messages", json=body, headers={"x-api-key": ADMIN_KEY})
    datas = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    (delta,) = [d for d in datas if d["type"] == "message_delta"]
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    start = next(d for d in datas if d["type"] == "message_start")
    assert start["message"]["stop_sequence"] is None  # not known until the end, as Anthropic sends it


def test_a_cached_answer_keeps_its_stop_sequence(make_gateway: Any, upstream: FakeUpstream, tmp_path: Any) -> None:
    gw = make_gateway(cache={"enabled": True, "persist_path": str(tmp_path / "cache.sqlite")})
    upstream.stop_field = "stop_reason"
    kwargs: dict[str, Any] = {"stop_sequences": ["END"],
                              "messages": [{"role": "user", "content": ECHO}]}  # fmt: skip
    first = ask(gw, True, **kwargs)  # stored from the stream's chunks
    raw = client(gw).messages.with_raw_response.create(model="test-model", max_tokens=50, **kwargs)
    again, streamed_again = raw.parse(), ask(gw, True, **kwargs)
    assert raw.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    for message in (first, again, streamed_again):
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")


def test_chat_completions_carry_the_stop_sequence_as_an_extension(gw: RunningGateway, upstream: FakeUpstream) -> None:
    upstream.stop_field = "matched_stop"
    completion = gw.client().chat.completions.create(
        model="test-model", stop=["END"], messages=[{"role": "user", "content": ECHO}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.model_extra is not None
    assert choice.model_extra["stop_sequence"] == "END"


# --- the native anthropic provider passes the upstream's values through ------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_native_provider_passes_the_stop_sequence_through(
    native_gw: RunningGateway,
    anthropic_upstream: AnthropicUpstream,
    stream: bool,
) -> None:
    message = ask(native_gw, stream, "claude", stop_sequences=["END"], messages=[{"role": "user", "content": ECHO}])
    assert anthropic_upstream.requests[-1]["stop_sequences"] == ["END"]
    assert message.content[0].text == "alpha beta "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"
    plain = ask(native_gw, stream, "claude", stop_sequences=["END"], messages=[{"role": "user", "content": "hi #echo"}])
    assert plain.stop_reason == "end_turn" and plain.stop_sequence is None


# --- Bedrock: the model's own stop_sequence field, asked for ------------------------------------------


def test_bedrock_names_the_stop_sequence_in_its_additional_fields(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    answer = {**CONVERSE, "stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "END"}}
    sent = on_send(
        provider, "Converse", [(200, {"content-type": "application/json"}, Raw([json.dumps(answer).encode()]))]
    )
    message = ask(
        bedrock_gw, False, "claude", stop_sequences=["ZZZ", "END"], messages=[{"role": "user", "content": "Hi"}]
    )
    request = json.loads(sent[0].body)
    assert request["inferenceConfig"]["stopSequences"] == ["ZZZ", "END"]
    assert request["additionalModelResponseFieldPaths"] == ["/stop_sequence"]
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"


def test_bedrock_stream_names_the_stop_sequence(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "alpha beta "}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "stop_sequence",
                              "additionalModelResponseFields": {"stop_sequence": "END"}}),
        event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                           "metrics": {"latencyMs": 1}}),
    ]  # fmt: skip
    on_send(bedrock_gw.gateway.providers["aws"], "ConverseStream", [(200, STREAM_HEADERS, Raw(frames))])
    message = ask(
        bedrock_gw, True, "claude", stop_sequences=["ZZZ", "END"], messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].text == "alpha beta "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"


# --- is_error on a tool_result ---------------------------------------------------------------------


def failed_call(text: str = "Weather in Paris?") -> list[dict[str, Any]]:
    """A conversation whose tool call failed, then a question about it."""
    return [
        {"role": "user", "content": text},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                                      "content": "ConnectionError: the weather service is down"},
                                     {"type": "text", "text": "What now?"}]},
    ]  # fmt: skip


def test_a_failed_tool_result_reads_as_one_for_an_openai_compatible_upstream(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    client(gw).messages.create(model="test-model", max_tokens=20, tools=[WEATHER], messages=failed_call())
    tool = upstream.requests[-1]["messages"][2]
    assert tool == {"role": "tool", "tool_call_id": "t1",
                    "content": f"{TOOL_ERROR_PREFIX}ConnectionError: the weather service is down"}  # fmt: skip
    ok = failed_call()
    del ok[2]["content"][0]["is_error"]
    client(gw).messages.create(model="test-model", max_tokens=20, tools=[WEATHER], messages=ok)
    assert upstream.requests[-1]["messages"][2]["content"] == "ConnectionError: the weather service is down"


def test_is_error_reaches_an_anthropic_upstream_unchanged(
    native_gw: RunningGateway,
    anthropic_upstream: AnthropicUpstream,
) -> None:
    client(native_gw).messages.create(model="claude", max_tokens=20, tools=[WEATHER], messages=failed_call())
    result = anthropic_upstream.requests[-1]["messages"][2]["content"][0]
    assert result == {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                      "content": "ConnectionError: the weather service is down"}  # fmt: skip


def test_is_error_is_a_tool_result_status_for_bedrock(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    sent = on_send(
        provider, "Converse", [(200, {"content-type": "application/json"}, Raw([json.dumps(CONVERSE).encode()]))]
    )
    client(bedrock_gw).messages.create(model="claude", max_tokens=20, tools=[WEATHER], messages=failed_call())
    result = json.loads(sent[0].body)["messages"][2]["content"][0]["toolResult"]
    assert result["status"] == "error" and result["content"] == [
        {"text": "ConnectionError: the weather service is down"}
    ]


def test_is_error_must_be_a_boolean(gw: RunningGateway) -> None:
    messages = failed_call()
    messages[2]["content"][0]["is_error"] = "yes"
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gw).messages.create(model="test-model", max_tokens=20, messages=messages)
    assert info.value.body["error"]["param"] == "messages[2].content[0].is_error"  # type: ignore[index]


# --- /v1/messages/count_tokens ---------------------------------------------------------------------


def test_count_tokens_counts_with_the_gateways_tokenizer(gw: RunningGateway, upstream: FakeUpstream) -> None:
    sdk = client(gw)
    counted = sdk.messages.count_tokens(
        model="test-model", system="Be brief.", messages=[{"role": "user", "content": "Hello there, how are you?"}]
    )
    assert counted.input_tokens == tokens.count("Be brief.\nHello there, how are you?") > 0
    longer = sdk.messages.count_tokens(
        model="test-model", system="Be brief.",
        messages=[{"role": "user", "content": "Hello there, how are you? " * 20}],
    )  # fmt: skip
    with_tools = sdk.messages.count_tokens(
        model="test-model", system="Be brief.", tools=[WEATHER],
        messages=[{"role": "user", "content": "Hello there, how are you?"}],
    )  # fmt: skip
    assert longer.input_tokens > counted.input_tokens and with_tools.input_tokens > counted.input_tokens
    raw = sdk.messages.with_raw_response.count_tokens(model="test-model", messages=failed_call())
    assert raw.parse().input_tokens > 0 and raw.headers["x-llmgw-usage-estimated"] == "true"
    assert upstream.requests == [] and gw.rows() == []  # nothing generated, nothing spent, nothing logged


def test_count_tokens_errors_are_anthropic_shaped(gw: RunningGateway) -> None:
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(gw).messages.count_tokens(model="no-such-model", messages=hi)
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError) as refused:
        client(gw, api_key="sk-llmgw-not-a-key").messages.count_tokens(model="test-model", messages=hi)
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(gw).messages.count_tokens(model="test-model", messages=[{"role": "system", "content": "x"}])  # type: ignore[list-item]
    assert bad.value.body["error"]["param"] == "messages[0].role"  # type: ignore[index]
    with httpx.Client(base_url=gw.url, timeout=30) as http:  # the same key rules as /v1/messages
        response = http.post("/v1/messages/count_tokens", json={"model": "test-model", "messages": hi})
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"


def test_count_tokens_with_the_native_provider_counts_locally(
    native_gw: RunningGateway,
    anthropic_upstream: AnthropicUpstream,
) -> None:
    counted = client(native_gw).messages.count_tokens(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert counted.input_tokens == tokens.count("Hi") and anthropic_upstream.requests == []
