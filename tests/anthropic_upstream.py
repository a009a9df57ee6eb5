"""A local Anthropic-compatible upstream (``POST /v1/messages``) for the native ``anthropic`` provider.

Driven by directives in the last user turn's text, like ``tests.upstream.FakeUpstream``:

    (none)          answer "echo: N messages" (N turns received), streamed in 5 text pieces
    #echo           answer with the last user text (streamed 1-3 characters an event)
    #tool           answer with a ``tool_use`` of get_weather {"city": "Paris"} after some text
    #status:529     answer that status with Anthropic's error body
    #drop           streamed: stop before ``message_stop`` (a cut stream)
    #stall:30       streamed: after the first delta, send nothing for this many seconds
    #bad            streamed: after the first delta, an event whose ``data:`` line is not JSON

A text answer is cut at the first of the request's ``stop_sequences``, reported as Anthropic does
(``stop_reason: "stop_sequence"`` and the ``stop_sequence``). A ``tool_result``'s ``is_error`` is
recorded with the body, like everything else.

Usage: input_tokens 10, cache_read_input_tokens 4, cache_creation_input_tokens 2, output_tokens 7.
Every request body and its headers are recorded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.upstream import DIRECTIVE, StubServer, cut_at_stop

USAGE = {"input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}


def last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


class AnthropicUpstream(StubServer):
    thread_name = "anthropic-upstream"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def blocks(self, body: dict[str, Any], d: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
        """The answer's content blocks, and the stop sequence its text was cut at (if any)."""
        text = last_user_text(body) if "echo" in d else f"echo: {len(body.get('messages', []))} messages"
        if "tool" in d:
            call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            return [{"type": "text", "text": "Let me look."}, call], None
        text, matched = cut_at_stop(text, body.get("stop_sequences"))
        return [{"type": "text", "text": text}], matched

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        d = {name: value for name, value in DIRECTIVE.findall(last_user_text(body))}
        if "status" in d:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": f"scripted {d['status']}"}}
            return web.json_response(error, status=int(d["status"]))
        blocks, matched = self.blocks(body, d)
        stop = "tool_use" if "tool" in d else "stop_sequence" if matched is not None else "end_turn"
        if not body.get("stream"):
            return web.json_response({"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"],
                                      "content": blocks, "stop_reason": stop, "stop_sequence": matched,
                                      "usage": {**USAGE, "output_tokens": 7}})  # fmt: skip
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        start = {"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"], "content": [],
                 "stop_reason": None, "stop_sequence": None, "usage": {**USAGE, "output_tokens": 1}}  # fmt: skip
        await response.write(event("message_start", {"type": "message_start", "message": start}))
        await response.write(event("ping", {"type": "ping"}))
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                opened = {"type": "text", "text": ""}
                text, pieces, at, size = block["text"], [], 0, 1
                while at < len(text):
                    pieces.append(text[at : at + size])
                    at, size = at + size, size % 3 + 1
                deltas = [{"type": "text_delta", "text": p} for p in pieces]
            else:
                opened = {**block, "input": {}}
                raw = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": raw[j : j + 5]} for j in range(0, len(raw), 5)]
            await response.write(event("content_block_start", {"type": "content_block_start", "index": i,
                                                               "content_block": opened}))  # fmt: skip
            for n, delta in enumerate(deltas):
                await response.write(event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                                   "delta": delta}))  # fmt: skip
                if n == 0 and "stall" in d:
                    await asyncio.sleep(float(d["stall"]))
                if n == 0 and "bad" in d:
                    await response.write(b"event: content_block_delta\ndata: <html>502 Bad Gateway</html>\n\n")
            await response.write(event("content_block_stop", {"type": "content_block_stop", "index": i}))
        if "drop" in d:
            return response
        delta = {"stop_reason": stop, "stop_sequence": matched}
        await response.write(
            event("message_delta", {"type": "message_delta", "usage": {"output_tokens": 7}, "delta": delta})
        )
        await response.write(event("message_stop", {"type": "message_stop"}))
        return response

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
