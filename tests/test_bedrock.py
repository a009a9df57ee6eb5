"""Bedrock provider: translation units, and real boto3/botocore calls answered by ``before-send`` handlers.

Streaming tests feed genuine AWS event-stream frames through botocore's own parser.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import json
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from llmgw.config import BedrockProviderConfig
from llmgw.errors import InvalidRequest, UpstreamError
from llmgw.providers.base import UpstreamCall
from llmgw.providers.bedrock import BedrockProvider
from llmgw.providers.bedrock_translate import StreamTranslator, from_converse, to_converse

MODEL = "anthropic.claude-3-haiku"

# ------------------------------------------------------------------ helpers


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers."""
    hb = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(hb) + len(payload) + 4, len(hb))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + hb + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


class Raw:
    """Stands in for urllib3's response: ``stream()`` yields bytes, ``close()`` may unblock it."""

    def __init__(self, chunks: list[bytes], block: bool = False, forever: bytes | None = None) -> None:
        self.chunks = chunks
        self.block = block
        self.forever = forever
        self.closed = threading.Event()

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from self.chunks
        if self.block:
            self.closed.wait(10)
        while self.forever is not None:
            time.sleep(0.005)
            yield self.forever

    def close(self) -> None:
        self.closed.set()


def provider(**overrides: Any) -> BedrockProvider:
    cfg = {"type": "bedrock", "region": "us-east-1", "access_key_id": "test", "secret_access_key": "test"}
    cfg["backoff_base_s"] = 0.001
    return BedrockProvider("bedrock", BedrockProviderConfig(**(cfg | overrides)))


def call(body: dict[str, Any] | None = None) -> UpstreamCall:
    body = body or {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    return UpstreamCall(body=body, upstream_model=MODEL, deadline=time.monotonic() + 10, request_id="r1")


def on_send(p: BedrockProvider, operation: str, responses: list[Any]) -> list[Any]:
    """Answer ``operation`` with the given responses in turn (the last one repeats); returns sent requests."""
    sent: list[Any] = []

    def handler(request: Any, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        status, headers, raw = responses[min(len(sent), len(responses)) - 1]
        return AWSResponse(request.url, status, headers, raw)

    name = f"before-send.bedrock-runtime.{operation}"
    p.client.meta.events.unregister(name, unique_id=name)  # replace an earlier answer, if any
    p.client.meta.events.register(name, handler, unique_id=name)
    return sent


STREAM_HEADERS = {"content-type": "application/vnd.amazon.eventstream"}

HAPPY_STREAM = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me "}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "check."}}),
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event(
        "contentBlockStart",
        {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "weather"}}},
    ),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": '}}}),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}}),
    event("contentBlockStop", {"contentBlockIndex": 1}),
    event("messageStop", {"stopReason": "tool_use"}),
    event(
        "metadata",
        {"usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}, "metrics": {"latencyMs": 5}},
    ),
]


async def collect(it: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in it]


# ------------------------------------------------------------------ to_converse


def test_system_merging_and_inference_config() -> None:
    body = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Speak French."}]},
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "three"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "response_format": {"type": "json_object"},
        "user": "u",
        "seed": 1,
    }
    out = to_converse(body, MODEL)
    assert out["modelId"] == MODEL
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
        {"role": "assistant", "content": [{"text": "ok"}]},
        {"role": "user", "content": [{"text": "three"}]},
    ]
    assert out["system"][:2] == [{"text": "Be brief."}, {"text": "Speak French."}]
    assert "JSON" in out["system"][2]["text"]
    assert out["inferenceConfig"] == {
        "maxTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert "additionalModelRequestFields" not in out and "toolConfig" not in out


def test_tools_tool_calls_and_results() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny"},
        {"role": "user", "content": "Thanks"},
    ]
    out = to_converse({"messages": messages, "tools": tools, "tool_choice": "required", "stop": ["a", "b"]}, MODEL)
    assert out["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "weather", "description": "Weather now",
                                "inputSchema": {"json": tools[0]["function"]["parameters"]}}}],
        "toolChoice": {"any": {}},
    }  # fmt: skip
    assert out["inferenceConfig"]["stopSequences"] == ["a", "b"]
    assert out["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "c1", "name": "weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "c2", "name": "weather", "input": {"city": "Rome"}}},
    ]}  # fmt: skip
    assert out["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "c1", "content": [{"json": {"temp": 21}}]}},
        {"toolResult": {"toolUseId": "c2", "content": [{"text": "sunny"}]}},
        {"text": "Thanks"},
    ]}  # fmt: skip
    assert len(out["messages"]) == 3

    named = to_converse(
        {
            "messages": messages[:1],
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
        },
        MODEL,
    )
    assert named["toolConfig"]["toolChoice"] == {"tool": {"name": "weather"}}
    assert to_converse({"messages": messages[:1], "tools": tools, "tool_choice": "auto"}, MODEL)["toolConfig"][
        "toolChoice"
    ] == {"auto": {}}
    assert "toolConfig" not in to_converse({"messages": messages[:1], "tools": tools, "tool_choice": "none"}, MODEL)
    # with tool blocks in the history Converse needs the tools, so "none" keeps them and asks in the system
    kept = to_converse({"messages": messages, "tools": tools, "tool_choice": "none"}, MODEL)
    assert "toolChoice" not in kept["toolConfig"] and kept["system"]


def test_images_unknown_fields_and_rejections() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                  {"type": "image_url", "image_url": {"url": url}}]}],
        "top_k": 40,
        "anthropic_beta": ["x"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "llmgw": {"cache": False},
    }  # fmt: skip
    out = to_converse(body, MODEL)
    assert out["messages"][0]["content"] == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": png}}},
    ]
    assert out["additionalModelRequestFields"] == {"top_k": 40, "anthropic_beta": ["x"]}

    with pytest.raises(InvalidRequest) as info:
        to_converse({"messages": [{"role": "user", "content": "x"}], "n": 2}, MODEL)
    assert info.value.param == "n" and info.value.code == "unsupported_parameter"
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(InvalidRequest):
        to_converse({"messages": [{"role": "user", "content": [remote]}]}, MODEL)


# ------------------------------------------------------------------ from_converse / StreamTranslator


def test_from_converse() -> None:
    resp = {
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Checking "}, {"text": "now."},
            {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Paris"}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14},
    }  # fmt: skip
    out = from_converse(resp, MODEL, "r1")
    assert out["id"] == "chatcmpl-r1" and out["object"] == "chat.completion" and out["model"] == MODEL
    assert isinstance(out["created"], int)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking now."
    (tc,) = choice["message"]["tool_calls"]
    assert tc["id"] == "tu1" and tc["type"] == "function" and tc["function"]["name"] == "weather"
    assert json.loads(tc["function"]["arguments"]) == {"city": "Paris"}
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}

    for reason, expected in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
    ]:
        resp = {"output": {"message": {"content": []}}, "stopReason": reason, "usage": {}}
        out = from_converse(resp, MODEL, "r1")
        assert out["choices"][0]["finish_reason"] == expected
        assert out["choices"][0]["message"]["content"] is None


def test_stream_translator_counts_tool_calls_not_blocks() -> None:
    t = StreamTranslator(MODEL, "r9")
    chunks = []
    for ev in [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}},
        {
            "contentBlockStart": {
                "contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "a", "name": "f"}},
            }
        },
        {
            "contentBlockStart": {
                "contentBlockIndex": 2,
                "start": {"toolUse": {"toolUseId": "b", "name": "g"}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}},
    ]:
        chunks += t.feed(ev)
    assert {c["id"] for c in chunks} == {"chatcmpl-r9"}
    assert [c["choices"][0]["delta"]["tool_calls"][0]["index"] for c in chunks[2:]] == [0, 1, 1]


# ------------------------------------------------------------------ through botocore


def test_stream_through_botocore_parser() -> None:
    async def main() -> None:
        p = provider()
        await p.start()
        try:
            sent = on_send(p, "ConverseStream", [(200, STREAM_HEADERS, Raw(HAPPY_STREAM))])
            c = call()
            chunks = await collect(await p.stream(c))
        finally:
            await p.aclose()
        assert len(sent) == 1 and c.attempts == 1
        assert json.loads(sent[0].body)["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
        assert {ch["id"] for ch in chunks} == {"chatcmpl-r1"}
        assert {ch["object"] for ch in chunks} == {"chat.completion.chunk"}
        assert len({ch["created"] for ch in chunks}) == 1 and {ch["model"] for ch in chunks} == {MODEL}
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        deltas = [ch["choices"][0]["delta"] for ch in chunks if ch["choices"]]
        assert "".join(d.get("content") or "" for d in deltas) == "Let me check."
        calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
        assert calls[0] == {
            "index": 0,
            "id": "tu1",
            "type": "function",
            "function": {"name": "weather", "arguments": ""},
        }
        assert {tc["index"] for tc in calls} == {0}
        assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"city": "Paris"}
        finish = [ch for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"]]
        assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "tool_calls"
        assert finish[0]["choices"][0]["delta"] == {}
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}

    asyncio.run(main())


def test_stream_exception_mid_stream() -> None:
    async def main() -> None:
        p = provider()
        await p.start()
        frames = [*HAPPY_STREAM[:3], exception("throttlingException", "Too many tokens"), *HAPPY_STREAM[3:]]
        on_send(p, "ConverseStream", [(200, STREAM_HEADERS, Raw(frames))])
        got: list[dict[str, Any]] = []
        try:
            with pytest.raises(UpstreamError) as info:
                async for chunk in await p.stream(call()):
                    got.append(chunk)
        finally:
            await p.aclose()
        assert info.value.kind == "rate_limited" and info.value.status == 429
        assert "Too many tokens" in info.value.message
        assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in got) == "Let me check."

    asyncio.run(main())


def test_stream_errors_before_first_event_are_raised_by_stream_and_retried() -> None:
    async def main() -> None:
        p = provider(max_retries=2)
        await p.start()
        try:
            # an exception event in place of messageStart is retried, then the real stream is served
            first = [exception("throttlingException", "slow down")]
            sent = on_send(p, "ConverseStream", [(200, STREAM_HEADERS, Raw(first)),
                                                 (200, STREAM_HEADERS, Raw(HAPPY_STREAM))])  # fmt: skip
            c = call()
            chunks = await collect(await p.stream(c))
            assert len(sent) == 2 and c.attempts == 2 and chunks[-1]["usage"]["total_tokens"] == 19

            q = provider(max_retries=1)
            await q.start()
            body = json.dumps({"message": "Malformed input request"}).encode()
            headers = {"x-amzn-ErrorType": "ValidationException", "content-type": "application/json"}
            sent = on_send(q, "ConverseStream", [(400, headers, Raw([body]))])
            with pytest.raises(UpstreamError) as info:
                await q.stream(call())
            assert info.value.kind == "bad_request" and info.value.status == 400 and len(sent) == 1
            await q.aclose()
        finally:
            await p.aclose()

    asyncio.run(main())


def test_converse_non_streamed() -> None:
    async def main() -> None:
        p = provider()
        await p.start()
        resp = {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hello!"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
            "metrics": {"latencyMs": 12},
        }
        body = json.dumps(resp).encode()
        sent = on_send(p, "Converse", [(200, {"content-type": "application/json"}, Raw([body]))])
        try:
            out = await p.complete(call({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}))
        finally:
            await p.aclose()
        assert json.loads(sent[0].body)["inferenceConfig"] == {"maxTokens": 9}
        assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hello!"}
        assert out["choices"][0]["finish_reason"] == "stop"
        assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        assert out["id"] == "chatcmpl-r1" and out["model"] == MODEL

    asyncio.run(main())


def test_converse_throttled_is_classified_and_retried() -> None:
    async def main() -> None:
        p = provider(max_retries=2)
        await p.start()
        body = json.dumps({"message": "Too many requests, please wait"}).encode()
        headers = {"x-amzn-ErrorType": "ThrottlingException", "content-type": "application/json"}
        sent = on_send(p, "Converse", [(429, headers, Raw([body]))])
        c = call()
        try:
            with pytest.raises(UpstreamError) as info:
                await p.complete(c)
        finally:
            await p.aclose()
        assert info.value.kind == "rate_limited" and info.value.status == 429 and info.value.retryable
        assert info.value.upstream_status == 429 and "Too many requests" in info.value.message
        assert len(sent) == 3 and c.attempts == 3  # max_retries + 1, botocore's own retries are off

    asyncio.run(main())


async def _second_call_succeeds(p: BedrockProvider) -> None:
    """With one worker thread, another call can only run once the previous reader thread has left."""
    resp = {"output": {"message": {"content": [{"text": "ok"}]}}, "stopReason": "end_turn", "usage": {}}
    on_send(p, "Converse", [(200, {"content-type": "application/json"}, Raw([json.dumps(resp).encode()]))])
    out = await asyncio.wait_for(p.complete(call()), timeout=3)
    assert out["choices"][0]["message"]["content"] == "ok"


@pytest.mark.parametrize("mode", ["blocked_read", "endless_stream"])
def test_early_close_stops_reader_thread(mode: str) -> None:
    async def main() -> None:
        p = provider(max_concurrency=1)
        await p.start()
        if mode == "blocked_read":  # upstream goes quiet; only closing the response can wake the reader
            raw = Raw(HAPPY_STREAM[:2], block=True)
        else:  # upstream keeps talking; the stop flag must end the reading
            raw = Raw(HAPPY_STREAM[:2], forever=HAPPY_STREAM[1])
        on_send(p, "ConverseStream", [(200, STREAM_HEADERS, raw)])
        try:
            it = await p.stream(call())
            assert (await it.__anext__())["choices"][0]["delta"]["role"] == "assistant"
            assert (await it.__anext__())["choices"][0]["delta"]["content"] == "Let me "
            await it.aclose()  # type: ignore[attr-defined]
            assert await asyncio.to_thread(raw.closed.wait, 3)
            await _second_call_succeeds(p)
        finally:
            await p.aclose()

    asyncio.run(main())


def test_cancelled_consumer_and_dropped_iterator_release_the_thread() -> None:
    async def main() -> None:
        p = provider(max_concurrency=1)
        await p.start()
        try:
            raw = Raw(HAPPY_STREAM[:1], block=True)
            on_send(p, "ConverseStream", [(200, STREAM_HEADERS, raw)])
            it = await p.stream(call())
            await it.__anext__()
            task = asyncio.ensure_future(it.__anext__())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await asyncio.to_thread(raw.closed.wait, 3)
            await _second_call_succeeds(p)

            raw = Raw(HAPPY_STREAM[:1], block=True)
            on_send(p, "ConverseStream", [(200, STREAM_HEADERS, raw)])
            it = await p.stream(call())
            del it  # never iterated, never closed
            gc.collect()
            assert await asyncio.to_thread(raw.closed.wait, 3)
        finally:
            await p.aclose()

    asyncio.run(main())


def test_classify_bedrock_error() -> None:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        EventStreamError,
        ReadTimeoutError,
    )

    from llmgw.providers.bedrock_translate import classify_bedrock_error

    def client_error(code: str, status: int = 400, cls: type[ClientError] = ClientError) -> ClientError:
        response: Any = {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return cls(response, "Converse")

    cases = [
        (client_error("ThrottlingException", 429), "rate_limited"),
        (client_error("ServiceQuotaExceededException"), "rate_limited"),
        (client_error("ModelTimeoutException", 408), "timeout"),
        (client_error("InternalServerException", 500), "server_error"),
        (client_error("ModelErrorException", 424), "server_error"),
        (client_error("ServiceUnavailableException", 503), "unavailable"),
        (client_error("ModelNotReadyException", 429), "unavailable"),
        (client_error("ValidationException"), "bad_request"),
        (client_error("AccessDeniedException", 403), "auth"),
        (client_error("UnrecognizedClientException", 403), "auth"),
        (client_error("ResourceNotFoundException", 404), "not_found"),
        (client_error("modelStreamErrorException", 200, EventStreamError), "server_error"),
        (client_error("internalServerException", 200, EventStreamError), "server_error"),
        (client_error("validationException", 200, EventStreamError), "bad_request"),
        (EndpointConnectionError(endpoint_url="https://x"), "unavailable"),
        (ConnectTimeoutError(endpoint_url="https://x"), "unavailable"),
        (ReadTimeoutError(endpoint_url="https://x"), "timeout"),
    ]
    for exc, kind in cases:
        err = classify_bedrock_error(exc)
        assert isinstance(err, UpstreamError) and err.kind == kind, (exc, err.kind)
    assert classify_bedrock_error(cases[0][0]).retryable
    assert not classify_bedrock_error(client_error("ValidationException")).retryable


def test_blocking_boto3_call_does_not_block_the_event_loop() -> None:
    async def main() -> None:
        p = provider()
        await p.start()
        resp = {"output": {"message": {"content": [{"text": "slow"}]}}, "stopReason": "end_turn", "usage": {}}
        body = json.dumps(resp).encode()

        ticked = threading.Event()  # the loop ran while the call was in flight

        def slow(request: Any, **kwargs: Any) -> AWSResponse:
            # held until the loop has ticked five times, not for a fixed 0.3 s (fewer ticks fit in it on
            # a busy machine); a call that blocks the loop never sees them and gives up after 10 s
            ticked.wait(10)
            return AWSResponse(request.url, 200, {"content-type": "application/json"}, Raw([body]))

        p.client.meta.events.register("before-send.bedrock-runtime.Converse", slow)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1
                if ticks >= 5:
                    ticked.set()

        task = asyncio.ensure_future(ticker())
        try:
            out = await p.complete(call())
            held = ticked.is_set()
        finally:
            task.cancel()
            await p.aclose()
        assert out["choices"][0]["message"]["content"] == "slow"
        assert held, "the loop did not run while the call was in flight: it was blocked"

    asyncio.run(main())
