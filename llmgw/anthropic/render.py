"""The internal answer as the Messages API answers: a ``message`` object, Anthropic's SSE events,
and errors as ``{"type": "error", "error": {"type", "message"}}``.

A stream is re-framed chunk by chunk with constant work per chunk: ``message_start`` on the first
chunk, then for each content block ``content_block_start``, its deltas (``text_delta``,
``input_json_delta``, and ``thinking_delta``/``signature_delta`` for an Anthropic upstream's
reasoning) and ``content_block_stop``; at the end ``message_delta`` (stop reason and
usage) and ``message_stop``. A failure after the first event is an ``error`` event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec

from llmgw.errors import GatewayError, UpstreamError, UpstreamKind
from llmgw.messages import THINKING, text_of
from llmgw.usage import Usage, to_anthropic

_encode = msgspec.json.Encoder().encode

#: OpenAI ``finish_reason`` → Anthropic ``stop_reason``
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}  # fmt: skip

#: Anthropic's error type for each way an upstream fails (the rest go by HTTP status)
UPSTREAM_TYPES = {
    UpstreamKind.RATE_LIMITED: "rate_limit_error",
    UpstreamKind.UNAVAILABLE: "overloaded_error",
    UpstreamKind.TIMEOUT: "timeout_error",
    UpstreamKind.NOT_FOUND: "not_found_error",
}
STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error"}  # fmt: skip


def message_id(request_id: str) -> str:
    return f"msg_{request_id}"


def error_type(exc: GatewayError) -> str:
    """Anthropic's error type name for an llmgw error: guard refusals (400 ``prompt_injection``,
    ``pii_blocked``, ``content_filter``) are ``invalid_request_error``, as Anthropic's own are."""
    if isinstance(exc, UpstreamError) and exc.kind in UPSTREAM_TYPES:
        return UPSTREAM_TYPES[exc.kind]
    if exc.status in STATUS_TYPES:
        return STATUS_TYPES[exc.status]
    return "api_error" if exc.status >= 500 else "invalid_request_error"


def error_body(exc: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """llmgw's error in Anthropic's shape; llmgw's ``code`` and ``param`` ride along in ``error``."""
    error: dict[str, Any] = {"type": error_type(exc), "message": exc.message, "code": exc.code}
    if exc.param is not None:
        error["param"] = exc.param
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id:
        body["request_id"] = request_id
    return body


NO_USAGE = Usage(0, 0)


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's ``arguments`` as the ``input`` object; text that is no JSON object is kept
    under ``_arguments`` rather than lost."""
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        return {"_arguments": arguments}
    return value if isinstance(value, dict) else {"_arguments": arguments}


def stop_of(choice: dict[str, Any]) -> tuple[str, str | None]:
    """A choice's ``stop_reason`` and ``stop_sequence``: ``stop_sequence`` when the answer ended on
    one of the request's stop sequences and the upstream said which (``llmgw.providers.stops``);
    otherwise the finish reason's mapping, with no sequence."""
    finish = choice.get("finish_reason") or "stop"
    matched = choice.get("stop_sequence")
    if finish == "stop" and isinstance(matched, str):
        return "stop_sequence", matched
    return STOP_REASONS.get(finish, "end_turn"), None


def message(completion: dict[str, Any], request_id: str, model: str | None, tokens: Usage) -> dict[str, Any]:
    """A non-streamed completion's first choice as a Messages response."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    reply = choice.get("message") or {}
    content: list[dict[str, Any]] = [b for b in reply.get(THINKING) or () if isinstance(b, dict)]
    text = text_of(reply.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "",
                        "input": tool_input(function.get("arguments"))})  # fmt: skip
    stop_reason, stop_sequence = stop_of(choice)
    out: dict[str, Any] = {
        "id": message_id(request_id), "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": to_anthropic(tokens),
    }  # fmt: skip
    if "llmgw" in completion:  # retrieval's sources, as on a chat completion
        out["llmgw"] = completion["llmgw"]
    return out


def event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encode(payload) + b"\n\n"


_TEXT_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def text_delta(index: int, text: str) -> bytes:
    """The one event per chunk of a text stream, assembled from bytes (a third of the dict's cost)."""
    return b'%s%d,"delta":{"type":"text_delta","text":%s}}\n\n' % (_TEXT_DELTA, index, _encode(text))


class StreamRenderer:
    """Chat chunks in, Anthropic SSE events out, for one stream (the first choice only)."""

    __slots__ = ("block", "blocks", "calls", "model", "opened", "request_id", "started", "stop_reason",
                 "stop_sequence")  # fmt: skip

    def __init__(self, request_id: str, model: str | None) -> None:
        self.request_id = request_id
        self.model = model
        self.started = False
        self.blocks = 0  # content blocks opened so far
        self.block: str | None = None  # the open block: "text" or "tool:<call index>"
        self.calls: dict[int, bool] = {}
        self.opened: set[str] = set()  # thinking blocks opened so far
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None

    def start(self, extra: dict[str, Any] | None = None) -> bytes:
        self.started = True
        started: dict[str, Any] = {
            "id": message_id(self.request_id), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": to_anthropic(NO_USAGE),
        }  # fmt: skip
        if extra:
            started["llmgw"] = extra
        return event("message_start", {"type": "message_start", "message": started}) + event("ping", {"type": "ping"})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.block = kind
        out += event("content_block_start", {"type": "content_block_start", "index": self.blocks,
                                             "content_block": block})  # fmt: skip
        self.blocks += 1
        return out

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        self.block = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta", "index": self.blocks - 1, "delta": delta})

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = b"" if self.started else self.start(chunk.get("llmgw"))
        choices = chunk.get("choices")
        if not choices:
            return out
        choice = choices[0]
        if choice.get("index", 0) != 0:  # Messages has one answer: n > 1 is rendered as its first
            choice = next((c for c in choices if c.get("index", 0) == 0), None)
            if choice is None:
                return out
        delta = choice.get("delta") or {}
        for piece in delta.get(THINKING) or ():
            out += self._thinking(piece)
        text = delta.get("content")
        if text:
            if self.block != "text":
                out += self._open("text", {"type": "text", "text": ""})
            out += text_delta(self.blocks - 1, text)
        calls = delta.get("tool_calls")
        for call in calls or ():
            index = call.get("index", 0)
            function = call.get("function") or {}
            if index not in self.calls:
                self.calls[index] = True
                block: dict[str, Any] = {"type": "tool_use", "id": call.get("id") or "",
                                         "name": function.get("name") or "", "input": {}}  # fmt: skip
                out += self._open(f"tool:{index}", block)
            elif self.block != f"tool:{index}":
                continue  # a late piece of an earlier call: Anthropic's blocks never interleave
            if function.get("arguments"):
                out += self._delta({"type": "input_json_delta", "partial_json": function["arguments"]})
        if choice.get("finish_reason"):
            self.stop_reason, self.stop_sequence = stop_of(choice)
            out += self._close()
        return out

    def _thinking(self, piece: Any) -> bytes:
        """A piece of an Anthropic upstream's thinking block (``ChunksFromEvents``): its start
        opens the block, then ``thinking_delta`` and ``signature_delta`` as Anthropic sent them."""
        if not isinstance(piece, dict):
            return b""
        key, out = f"thinking:{piece.get('index', 0)}", b""
        if self.block != key:
            if key in self.opened:
                return b""  # a late piece of a closed block: Anthropic's blocks never interleave
            self.opened.add(key)
            if piece.get("type") == "redacted_thinking":
                return self._open(key, {"type": "redacted_thinking", "data": piece.get("data") or ""})
            out = self._open(key, {"type": "thinking", "thinking": "", "signature": ""})
        if piece.get("thinking"):
            out += self._delta({"type": "thinking_delta", "thinking": piece["thinking"]})
        if piece.get("signature"):
            out += self._delta({"type": "signature_delta", "signature": piece["signature"]})
        return out

    def end(self, tokens: Usage) -> bytes:
        """``message_delta`` with the stop reason and the usage, then ``message_stop``."""
        out = (b"" if self.started else self.start()) + self._close()
        delta = {"type": "message_delta", "delta": {"stop_reason": self.stop_reason or "end_turn",
                                                    "stop_sequence": self.stop_sequence},
                 "usage": to_anthropic(tokens)}  # fmt: skip
        return out + event("message_delta", delta) + event("message_stop", {"type": "message_stop"})

    def error(self, exc: GatewayError) -> bytes:
        """A failure mid-stream: the open block is closed, then Anthropic's ``error`` event."""
        out = self._close()
        if isinstance(exc, GatewayError) and exc.code == "content_filter":
            self.stop_reason = "refusal"
        return out + event("error", error_body(exc, self.request_id))


class MessagesEvents:
    """The pipeline's stream writer for ``/v1/messages`` (``llmgw.pipeline.StreamEvents``).

    ``tokens`` reads the request's final counts when the stream ends (``RequestContext.usage``):
    the upstream's usage, or the local estimate for a stream it never sent one for.
    """

    __slots__ = ("renderer", "tokens")

    def __init__(self, request_id: str, tokens: Callable[[], Usage]) -> None:
        self.renderer = StreamRenderer(request_id, None)
        self.tokens = tokens

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if not self.renderer.started:
            self.renderer.model = chunk.get("model")  # the catalog name the pipeline stamped
        return self.renderer.chunk(chunk)

    def end(self) -> bytes:
        return self.renderer.end(self.tokens())

    def error(self, exc: GatewayError, request_id: str) -> bytes:
        return self.renderer.error(exc)

    def bare_error(self, exc: GatewayError, request_id: str) -> bytes:
        """Anthropic's ``error`` event alone, when :meth:`error` itself failed (``pipeline.farewell``)."""
        return event("error", error_body(exc, request_id))
