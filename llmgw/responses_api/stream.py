"""Internal chat chunks as Responses API stream events.

The pipeline's stream (after the output guards restored PII and passed each window) goes through
:class:`ResponsesEvents` instead of chat's encoder. Each chunk becomes zero or more events with
constant work per chunk; the text is kept as a list of pieces for the ``.done`` events::

    response.created, response.in_progress
    response.output_item.added (message) → response.content_part.added → response.output_text.delta…
    response.output_item.added (function_call) → response.function_call_arguments.delta…
    … response.output_text.done, response.content_part.done, response.function_call_arguments.done,
    response.output_item.done (each item)
    response.completed | response.incomplete (length, content filter)

A failure after the stream began ends it with an ``error`` event (OpenAI's error fields) and then
``response.failed`` (or ``response.incomplete`` when the output guard stopped the answer), items
still open closed first, its ``usage`` null unless the upstream had reported it (the ``error`` event
alone, :meth:`ResponsesEvents.bare_error`, when that ending fails to render). Events carry
increasing ``sequence_number`` s from 0, and every stream opens with ``response.created`` (the
SDK's stream helper requires it), even one that fails before its first chunk.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from llmgw.errors import GatewayError
from llmgw.responses_api.response import (
    base_response,
    function_call_item,
    message_item,
    output_text,
    status_of,
    usage_of,
)

_encode = msgspec.json.Encoder().encode
#: a message content part's type -> its delta and done events' infix
DELTA = {"output_text": "output_text", "refusal": "refusal"}


def content_part(kind: str, text: str) -> dict[str, Any]:
    return output_text(text) if kind == "output_text" else {"type": "refusal", "refusal": text}


class ResponsesEvents:
    """One stream's encoder: ``chunk`` for each internal chunk, then ``end`` or ``error``."""

    def __init__(self, request: dict[str, Any], request_id: str) -> None:
        self.request = request
        self.request_id = request_id
        self.sequence = 0
        self.response: dict[str, Any] | None = None
        self.items: list[dict[str, Any]] = []  # output items in order, each updated when it closes
        self.message: int | None = None  # the open message item's output index
        self.parts: list[tuple[str, list[str]]] = []  # the open message's content parts: (type, pieces)
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its open item's state
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.extra: dict[str, Any] | None = None
        self.text_prefix = b""  # the open message's text delta event up to its sequence number

    def event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + _encode(payload) + b"\n\n"

    def start(self, model: str | None, created: float | None) -> bytes:
        self.response = base_response(self.request, self.request_id, model, int(created or time.time()))
        return self.event("response.created", response=self.response) + self.event(
            "response.in_progress", response=self.response
        )

    # --- the chunks -------------------------------------------------------------------------

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = self.start(chunk.get("model"), chunk.get("created")) if self.response is None else b""
        if "llmgw" in chunk:
            self.extra = chunk["llmgw"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # the Responses API has no ``n``: only the first choice is an answer
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self.text(delta["content"])
            if delta.get("refusal"):
                out += self.text(delta["refusal"], "refusal")
            for call in delta.get("tool_calls") or ():
                out += self.call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def text(self, piece: str, kind: str = "output_text") -> bytes:
        """A piece of the message's ``output_text`` or (a chat delta's ``refusal``) ``refusal`` part."""
        out = b""
        if self.message is None or self.items[self.message]["status"] != "in_progress":
            # a message, or (rare: text after a tool call) another one with an id of its own
            suffix = "" if self.message is None else f"_{len(self.items)}"
            self.message, self.parts = len(self.items), []
            item = message_item(self.request_id + suffix, None, None, status="in_progress")
            self.items.append(item)
            out += self.event("response.output_item.added", output_index=self.message, item=item)
        if not self.parts or self.parts[-1][0] != kind:
            out += self.close_part()
            item_id, index, content_index = self.items[self.message]["id"], self.message, len(self.parts)
            self.parts.append((kind, []))
            out += self.event("response.content_part.added", item_id=item_id, output_index=index,
                              content_index=content_index, part=content_part(kind, ""))  # fmt: skip
            self.text_prefix = self.prefix(f"response.{DELTA[kind]}.delta", item_id, index, content_index)
        self.parts[-1][1].append(piece)
        return out + self.delta(self.text_prefix, piece, b',"logprobs":[]}\n\n' if kind == "output_text" else b"}\n\n")

    def delta(self, prefix: bytes, piece: str, suffix: bytes) -> bytes:
        """A delta event from its constant parts: the hot path, one per chunk, encodes only the piece."""
        self.sequence += 1
        return prefix + str(self.sequence - 1).encode() + b',"delta":' + _encode(piece) + suffix

    def prefix(self, kind: str, item_id: str, output_index: int, content_index: int | None) -> bytes:
        """``event: KIND`` and the event's JSON up to its sequence number, which is filled in per event."""
        fields = f'"item_id":{_encode(item_id).decode()},"output_index":{output_index},'
        if content_index is not None:
            fields += f'"content_index":{content_index},'
        return f'event: {kind}\ndata: {{"type":"{kind}",{fields}"sequence_number":'.encode()

    def call(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        function = call.get("function") or {}
        state = self.calls.get(index)
        if state is None:
            out += self.close_message()  # the text before a call is complete
            item = function_call_item(self.request_id, index, call, "in_progress")
            state = self.calls[index] = {"output_index": len(self.items), "arguments": [], "item": item}
            state["item"]["arguments"] = ""
            state["prefix"] = self.prefix("response.function_call_arguments.delta", state["item"]["id"],
                                          state["output_index"], None)  # fmt: skip
            self.items.append(state["item"])
            out += self.event("response.output_item.added", output_index=state["output_index"], item=state["item"])
        else:  # some upstreams send the id or name after the first piece
            if call.get("id"):
                state["item"]["call_id"] = call["id"]
            if function.get("name"):
                state["item"]["name"] = function["name"]
        piece = function.get("arguments")
        if piece:
            state["arguments"].append(piece)
            out += self.delta(state["prefix"], piece, b"}\n\n")
        return out

    # --- closing ----------------------------------------------------------------------------

    def close_part(self) -> bytes:
        """The ``.done`` events of the open message's last content part, if it has one."""
        if self.message is None or not self.parts:
            return b""
        index, item = self.message, self.items[self.message]
        content_index = len(self.parts) - 1
        if len(item["content"]) > content_index:
            return b""  # already closed
        kind, pieces = self.parts[-1]
        part = content_part(kind, "".join(pieces))
        item["content"].append(part)
        done = {"text": part["text"], "logprobs": []} if kind == "output_text" else {"refusal": part["refusal"]}
        return self.event(f"response.{DELTA[kind]}.done", item_id=item["id"], output_index=index,
                          content_index=content_index, **done) + self.event(
            "response.content_part.done", item_id=item["id"], output_index=index, content_index=content_index,
            part=part)  # fmt: skip

    def close_message(self, status: str = "completed") -> bytes:
        if self.message is None or self.items[self.message]["status"] != "in_progress":
            return b""
        out = self.close_part()
        item = self.items[self.message]
        item["status"] = status
        return out + self.event("response.output_item.done", output_index=self.message, item=item)

    def close_all(self, status: str = "completed") -> bytes:
        out = self.close_message(status)
        for state in self.calls.values():
            item = state["item"]
            if item["status"] != "in_progress":
                continue
            item["arguments"], item["status"] = "".join(state["arguments"]), status
            out += self.event("response.function_call_arguments.done", item_id=item["id"], name=item["name"],
                              output_index=state["output_index"], arguments=item["arguments"])  # fmt: skip
            out += self.event("response.output_item.done", output_index=state["output_index"], item=item)
        return out

    def final(self, status: str, **fields: Any) -> dict[str, Any]:
        assert self.response is not None
        response = {**self.response, "status": status, "output": self.items, "usage": usage_of(self.usage),
                    "completed_at": time.time(), **fields}  # fmt: skip
        if self.extra is not None:
            response["llmgw"] = self.extra
        return response

    def end(self) -> bytes:
        """The upstream's stream ended cleanly (every chunk passed the output guards)."""
        out = self.start(None, None) if self.response is None else b""
        out += self.close_all()
        status, incomplete = status_of(self.finish_reason)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self.event(kind, response=self.final(status, incomplete_details=incomplete))

    def error(self, exc: GatewayError, request_id: str) -> bytes:
        """The stream failed or was stopped: an ``error`` event, then the response's final state."""
        out = self.start(None, None) if self.response is None else b""
        filtered = exc.code == "content_filter"
        out += self.close_all("incomplete")
        out += self.event("error", code=exc.code, message=exc.message, param=exc.param, request_id=request_id)
        usage = self.reported_usage()
        if filtered:
            final = self.final("incomplete", incomplete_details={"reason": "content_filter"}, usage=usage)
            return out + self.event("response.incomplete", response=final)
        final = self.final("failed", error={"code": exc.code, "message": exc.message}, usage=usage)
        return out + self.event("response.failed", response=final)

    def bare_error(self, exc: GatewayError, request_id: str) -> bytes:
        """The ``error`` event alone, when :meth:`error` itself failed (``pipeline.farewell``)."""
        return self.event("error", code=exc.code, message=exc.message, param=exc.param, request_id=request_id)

    def reported_usage(self) -> dict[str, Any] | None:
        """The upstream's usage, or None when it sent none before the stream stopped (the usual case:
        usage comes last). Zeros would tell the client that nothing was produced, while the request's
        row bills the tokens it received, counted locally (``usage_estimated``)."""
        return usage_of(self.usage) if self.usage is not None else None
