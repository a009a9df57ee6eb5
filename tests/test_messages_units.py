"""The Messages API translation on its own: both directions, stream framing, error types, and the
request row's ``api`` column added to an existing table (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from llmgw.anthropic.inbound import to_internal
from llmgw.anthropic.outbound import ChunksFromEvents, from_message, to_messages
from llmgw.anthropic.render import StreamRenderer, error_body, message
from llmgw.config import LlamaServerProviderConfig, OpenAIProviderConfig
from llmgw.errors import ContentFiltered, GatewayError, InvalidRequest, UpstreamError, UpstreamKind
from llmgw.messages import TOOL_ERROR_PREFIX, with_tool_errors_as_text, without_thinking
from llmgw.providers.base import UpstreamCall
from llmgw.providers.bedrock_translate import from_converse, to_converse
from llmgw.providers.llama_server import LlamaServerProvider, asks_stop_word
from llmgw.providers.openai_compat import OpenAICompatProvider
from llmgw.providers.stops import StopReader
from llmgw.storage.db import make_engine
from llmgw.storage.writer import RowWriter
from llmgw.usage import Usage, read_usage
from tests.upstream import FakeUpstream

PNG = "iVBORw0KGgo="
RICH: dict[str, Any] = {
    "model": "m",
    "max_tokens": 300,
    "system": [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "t1", "name": "look", "input": {"q": "a"}},
            {"type": "tool_use", "id": "t2", "name": "look", "input": {"q": "b"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "A"},
            {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "B"}],
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Go on."},
        ]},
    ],
    "tools": [{"name": "look", "description": "Look it up", "input_schema": {"type": "object"},
               "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["STOP"],
    "metadata": {"user_id": "u-1"},
    "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"},
    "top_k": 4,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stream": True,
}  # fmt: skip


def test_a_rich_request_becomes_the_chat_body() -> None:
    body = to_internal(json.loads(json.dumps(RICH)))
    system, user, assistant, tool1, tool2, user2 = body["messages"]
    assert system == {"role": "system", "content": [{"type": "text", "text": "Rules.",
                                                     "cache_control": {"type": "ephemeral"}}]}  # fmt: skip
    assert user["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert user["content"][2]["image_url"]["url"] == "https://example.com/a.png"
    assert assistant["content"] == "Checking." and [c["id"] for c in assistant["tool_calls"]] == ["t1", "t2"]
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"q": "b"}
    assert tool1 == {"role": "tool", "tool_call_id": "t1", "content": "A"}
    assert tool2["content"] == [{"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]
    assert user2 == {"role": "user", "content": [{"type": "text", "text": "Go on."}]}
    assert body["tools"][0]["function"]["parameters"] == {"type": "object"} and "cache_control" in body["tools"][0]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["stop"] == ["STOP"] and body["user"] == "u-1" and body["max_tokens"] == 300
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert body["output_config"] == {"effort": "low"} and body["top_k"] == 4 and body["thinking"]["budget_tokens"]
    assert "system" not in body and "stop_sequences" not in body and "metadata" not in body


def test_the_round_trip_to_an_anthropic_upstream_keeps_the_request() -> None:
    """What the native provider sends is what the client sent (the model id aside)."""
    sent = to_messages(to_internal(json.loads(json.dumps(RICH))), "m", 4096)
    expected = json.loads(json.dumps(RICH))
    expected["output_config"] = {"effort": "low", "format": RICH["output_config"]["format"]}
    result = expected["messages"][2]["content"][1]  # its cache_control marks the end of its content block
    result["content"][0]["cache_control"] = result.pop("cache_control")
    assert sent == expected


def test_thinking_in_history_reaches_only_an_anthropic_upstream() -> None:
    thought = {"type": "thinking", "thinking": "hmm", "signature": "s"}
    body = to_internal({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [thought, {"type": "text", "text": "hello"}]},
    ]})  # fmt: skip
    assert body["messages"][1] == {"role": "assistant", "content": "hello", "thinking_blocks": [thought]}
    assert without_thinking(body)["messages"][1] == {"role": "assistant", "content": "hello"}
    assert to_messages(body, "claude", 100)["messages"][1]["content"] == [thought, {"type": "text", "text": "hello"}]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
         "messages[0].content[0].source"),
        ({"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]},
         "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x",
                                                     "content": [{"type": "image"}]}]}]},
         "messages[0].content[0].content[0]"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
        ({"system": [{"type": "image"}]}, "system[0]"),
    ],
)  # fmt: skip
def test_malformed_requests_name_the_field(change: dict[str, Any], param: str) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(InvalidRequest) as info:
        to_internal(body)
    assert info.value.param == param and info.value.status == 400


def test_chat_only_fields_are_dropped_or_refused_for_an_anthropic_upstream() -> None:
    chat = {"model": "x", "messages": [{"role": "developer", "content": "A"}, {"role": "system", "content": "B"},
                                       {"role": "user", "content": "hi"}],
            "seed": 1, "presence_penalty": 0.5, "logprobs": True, "store": True, "metadata": {"k": "v"},
            "stream_options": {"include_usage": True}, "n": 1, "max_completion_tokens": 9, "user": "me"}  # fmt: skip
    sent = to_messages(chat, "up", 100)
    assert sent == {"model": "up", "system": "A\n\nB", "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 9, "metadata": {"user_id": "me"}}  # fmt: skip
    with pytest.raises(InvalidRequest, match="n must be 1"):
        to_messages({**chat, "n": 2}, "up", 100)
    with pytest.raises(InvalidRequest) as info:
        to_messages({**chat, "response_format": {"type": "json_object"}}, "up", 100)
    assert info.value.code == "unsupported_parameter"


def test_a_messages_answer_becomes_a_completion_and_back() -> None:
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "up", "stop_reason": "tool_use",
              "content": [{"type": "thinking", "thinking": "…"}, {"type": "text", "text": "Sure."},
                          {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": [1, 2]}}],
              "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 7,
                        "cache_creation_input_tokens": 1}}  # fmt: skip
    completion = from_message(answer)
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["choices"][0]["message"]["content"] == "Sure."
    assert completion["usage"]["prompt_tokens"] == 13
    assert completion["usage"]["prompt_tokens_details"] == {"cached_tokens": 7, "cache_write_tokens": 1}
    tokens = read_usage(completion["usage"])
    assert tokens is not None
    back = message(completion, "r1", "m", tokens)
    assert back["content"] == answer["content"] and back["stop_reason"] == "tool_use"  # thinking first, as sent
    assert back["usage"] == answer["usage"]  # Anthropic's counts survive the internal shape


def parse(stream: bytes) -> list[dict[str, Any]]:
    events = []
    for frame in stream.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            payload = json.loads(data.removeprefix("data: "))
            assert name == f"event: {payload['type']}"
            events.append(payload)
    return events


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_chunks_render_as_events_that_parse_back_to_the_same_chunks() -> None:
    chunks = [chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}),
              chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                     "function": {"name": "f", "arguments": '{"a"'}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
              chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}),
              chunk({}, "tool_calls"), {"choices": [], "usage": {"prompt_tokens": 3}}]  # fmt: skip
    renderer = StreamRenderer("r1", "m")
    raw = b"".join(renderer.chunk(c) for c in chunks) + renderer.end(Usage(3, 2, 0))
    events = parse(raw)
    assert [e["type"] for e in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert [e["index"] for e in events if e["type"] == "content_block_start"] == [0, 1, 2]
    back = ChunksFromEvents()
    out = [c for e in events for c in back.feed(e)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out if c["choices"])
    calls = [call for c in out if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert text == "Hello"
    assert [(c.get("id"), c["function"].get("arguments")) for c in calls] == [
        ("c1", ""), (None, '{"a"'), (None, ": 1}"), ("c2", ""), (None, "{}")
    ]  # fmt: skip
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls" and back.finished
    assert out[-1]["usage"]["prompt_tokens"] == 3 and out[-1]["usage"]["completion_tokens"] == 2


def test_an_output_guard_stop_closes_the_block_then_errors() -> None:
    renderer = StreamRenderer("r1", "m")
    raw = renderer.chunk(chunk({"content": "calm words"})) + renderer.chunk(chunk({}, "content_filter"))
    raw += renderer.error(ContentFiltered("the answer was stopped by the output guard (violence)"))
    events = parse(raw)
    assert [e["type"] for e in events][-3:] == ["content_block_delta", "content_block_stop", "error"]
    assert events[-1]["error"]["type"] == "invalid_request_error" and events[-1]["error"]["code"] == "content_filter"


def test_a_filtered_non_streamed_answer_is_a_refusal() -> None:
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None},
                               "finish_reason": "content_filter"}]}  # fmt: skip
    assert message(completion, "r", "m", Usage(1, 1, 0))["stop_reason"] == "refusal"
    assert message(completion, "r", "m", Usage(1, 1, 0))["content"] == []


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequest("x", code="prompt_injection"), "invalid_request_error"),
        (InvalidRequest("x", code="pii_blocked"), "invalid_request_error"),
        (GatewayError("x", status=401, code="invalid_api_key"), "authentication_error"),
        (GatewayError("x", status=403, code="model_not_allowed"), "permission_error"),
        (GatewayError("x", status=404, code="model_not_found"), "not_found_error"),
        (GatewayError("x", status=413, code="request_too_large"), "request_too_large"),
        (GatewayError("x", status=429, code="budget_exceeded"), "rate_limit_error"),
        (GatewayError("x", status=503, code="guard_unavailable"), "api_error"),
        (UpstreamError(UpstreamKind.UNAVAILABLE, "x"), "overloaded_error"),
        (UpstreamError(UpstreamKind.TIMEOUT, "x"), "timeout_error"),
        (UpstreamError(UpstreamKind.SERVER_ERROR, "x"), "api_error"),
        (UpstreamError(UpstreamKind.RATE_LIMITED, "x"), "rate_limit_error"),
        (GatewayError("x"), "api_error"),
    ],
)
def test_error_types(error: GatewayError, kind: str) -> None:
    body = error_body(error, "r1")
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["code"] == error.code


def test_the_api_column_is_added_to_an_existing_requests_table(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:  # a table from before the column existed
        conn.execute(text("ALTER TABLE requests DROP COLUMN api"))
    engine.dispose()
    engine = make_engine(db_url)  # start-up migrates
    writer = RowWriter(engine, batch_size=10, flush_interval_s=0.01)
    writer.start()
    writer.put("requests", {"id": "r1", "created_at": datetime.now(UTC), "endpoint": "chat", "api": "messages",
                            "route": "default", "status": "ok", "http_status": 200, "meta": {}})  # fmt: skip
    writer.close()
    with engine.connect() as conn:
        assert conn.execute(text("select api from requests where id = 'r1'")).scalar() == "messages"
    engine.dispose()


def test_unknown_fields_follow_the_server_setting() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "top_k": 3}
    assert to_internal(dict(body))["top_k"] == 3
    with pytest.raises(InvalidRequest) as info:
        to_internal(dict(body), "reject")
    assert info.value.code == "unknown_parameter" and info.value.param == "top_k"
    for name, value in (("n", 3), ("user", "u"), ("response_format", {"type": "json_object"}), ("stop", "x")):
        with pytest.raises(InvalidRequest) as info:  # would mean something to the pipeline: never passed
            to_internal({**body, name: value})
        assert info.value.code == "unknown_parameter" and info.value.param == name


# --- which stop sequence ended the answer; a failed tool call's result ------------------------------


def test_the_stop_reader_takes_only_the_requests_own_sequences() -> None:
    reader = StopReader.of({"stop": ["END", "ZZZ"]})
    assert reader is not None and StopReader.of({"stop": []}) is None and StopReader.of({}) is None
    vllm = {"choices": [{"index": 0, "finish_reason": "stop", "stop_reason": "ZZZ"}]}
    token_id = {"choices": [{"index": 0, "finish_reason": "stop", "stop_reason": 128009}]}  # vLLM's stop token
    foreign = {"choices": [{"index": 0, "finish_reason": "stop", "stop_sequence": "OTHER"}]}
    length = {"choices": [{"index": 0, "finish_reason": "length", "matched_stop": "END"}]}
    assert reader.completion(vllm)["choices"][0]["stop_sequence"] == "ZZZ"
    for answer in (token_id, foreign, length):
        assert "stop_sequence" not in reader.completion(answer)["choices"][0]
    sglang = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "matched_stop": "END"}]}
    assert StopReader(("END",)).chunk(sglang)["choices"][0]["stop_sequence"] == "END"


def test_llama_servers_stopping_word_is_read_and_its_debug_object_removed() -> None:
    reader = StopReader(("END",), strip_debug=True)
    verbose = {"stop_type": "word", "stopping_word": "END", "prompt": "<|im_start|>user ..."}
    # streamed, ``__verbose`` rides on the first chunk of the final batch, before the finish
    first = reader.chunk({"__verbose": verbose, "choices": [{"index": 0, "delta": {"content": "x"}}]})
    last = reader.chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert "__verbose" not in first and last["choices"][0]["stop_sequence"] == "END"
    eos = StopReader(("END",), strip_debug=True).completion(
        {"__verbose": {"stop_type": "eos", "stopping_word": ""}, "choices": [{"index": 0, "finish_reason": "stop"}]}
    )
    assert "__verbose" not in eos and "stop_sequence" not in eos["choices"][0]
    kept = StopReader(("END",)).completion({"__verbose": verbose, "choices": [{"index": 0, "finish_reason": "stop"}]})
    assert kept["__verbose"] == verbose and kept["choices"][0]["stop_sequence"] == "END"  # the client asked for it


@pytest.mark.parametrize("stream", [False, True])
def test_the_llama_server_provider_asks_which_stop_word_ended_the_answer(upstream: FakeUpstream, stream: bool) -> None:
    """The provider as it talks to llama-server, here to the stub playing one (no process started)."""
    upstream.reset()
    upstream.stop_field = "__verbose"
    provider = LlamaServerProvider("local", LlamaServerProviderConfig(type="llama_server", default_max_tokens=None))
    provider.base_url = upstream.base_url
    body = {"model": "m", "stop": ["END"], "stream": stream, "messages": [{"role": "user", "content": "a END b #echo"}]}

    async def run() -> list[dict[str, Any]]:
        await OpenAICompatProvider.start(provider)  # the HTTP session only
        try:
            call = UpstreamCall(dict(body), "m", time.monotonic() + 10)
            if not stream:
                return [await provider.complete(call)]
            return [chunk async for chunk in await provider.stream(call)]
        finally:
            await provider.aclose()

    answers = asyncio.run(run())
    assert upstream.requests[-1]["verbose"] is True and all("__verbose" not in a for a in answers)
    (finish,) = [c for a in answers for c in a["choices"] if c.get("finish_reason")]
    assert finish["stop_sequence"] == "END"
    assert asks_stop_word(body) and not asks_stop_word({**body, "verbose": False}) and not asks_stop_word({"stop": []})


def test_a_failed_tool_result_says_so_in_its_text() -> None:
    body = {"messages": [
        {"role": "user", "content": "go"},
        {"role": "tool", "tool_call_id": "a", "is_error": True, "content": "boom"},
        {"role": "tool", "tool_call_id": "b", "is_error": True,
         "content": [{"type": "text", "text": "bad"}, {"type": "text", "text": "worse"}]},
        {"role": "tool", "tool_call_id": "c", "is_error": False, "content": "fine"},
    ]}  # fmt: skip
    out = with_tool_errors_as_text(body)["messages"]
    assert out[1] == {"role": "tool", "tool_call_id": "a", "content": TOOL_ERROR_PREFIX + "boom"}
    assert out[2]["content"] == [{"type": "text", "text": TOOL_ERROR_PREFIX + "bad"}, {"type": "text", "text": "worse"}]
    assert out[3] == {"role": "tool", "tool_call_id": "c", "content": "fine"}
    assert body["messages"][1]["is_error"] is True  # the body the cache and the log read keeps the flag
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    assert with_tool_errors_as_text(plain) is plain


def test_a_responses_upstream_reads_the_failure_in_the_function_call_output() -> None:
    config = OpenAIProviderConfig(type="openai", base_url="http://127.0.0.1:9/v1", responses="native")
    provider = OpenAICompatProvider("native", config)
    body = {"model": "m", "messages": [{"role": "tool", "tool_call_id": "a", "is_error": True, "content": "boom"}]}
    path, content = provider._request(UpstreamCall(body, "m", time.monotonic() + 5))
    (item,) = json.loads(content)["input"]
    assert path == "/responses" and item == {"type": "function_call_output", "call_id": "a",
                                             "output": TOOL_ERROR_PREFIX + "boom"}  # fmt: skip


def test_an_anthropic_upstream_gets_is_error_and_names_the_stop_sequence() -> None:
    chat = to_internal({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": True}]},
    ]})  # fmt: skip
    assert chat["messages"] == [{"role": "tool", "tool_call_id": "t", "content": "boom", "is_error": True}]
    sent = to_messages(chat, "up", 10)
    assert sent["messages"][0]["content"] == [{"type": "tool_result", "tool_use_id": "t", "content": "boom",
                                               "is_error": True}]  # fmt: skip
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "up", "stop_reason": "stop_sequence",
              "stop_sequence": "END", "content": [{"type": "text", "text": "a "}],
              "usage": {"input_tokens": 1, "output_tokens": 1}}  # fmt: skip
    completion = from_message(answer)
    assert completion["choices"][0]["stop_sequence"] == "END"
    rendered = message(completion, "r", "m", Usage(1, 1, 0))
    assert (rendered["stop_reason"], rendered["stop_sequence"]) == ("stop_sequence", "END")
    events = ChunksFromEvents()
    chunks = events.feed({"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                          "usage": {"output_tokens": 1}})  # fmt: skip
    assert chunks[-1]["choices"][0] | {"delta": {}} == {"index": 0, "delta": {}, "finish_reason": "stop",
                                                        "stop_sequence": "END"}  # fmt: skip


def test_converse_names_the_stop_sequence_or_the_only_one_asked() -> None:
    stops = ("END", "ZZZ")
    named = {"stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "ZZZ"}}
    assert from_converse({**named}, "m", "r", stops)["choices"][0]["stop_sequence"] == "ZZZ"
    unnamed = {"stopReason": "stop_sequence"}
    assert "stop_sequence" not in from_converse(unnamed, "m", "r", stops)["choices"][0]  # which of two: unknown
    assert from_converse(unnamed, "m", "r", ("END",))["choices"][0]["stop_sequence"] == "END"  # the only one
    assert "stop_sequence" not in from_converse({"stopReason": "end_turn"}, "m", "r", ("END",))["choices"][0]
    kwargs = to_converse({"messages": [{"role": "user", "content": "x"}], "stop": "END"}, "m")
    assert kwargs["additionalModelResponseFieldPaths"] == ["/stop_sequence"]
    assert "additionalModelResponseFieldPaths" not in to_converse({"messages": [{"role": "user", "content": "x"}]}, "m")
