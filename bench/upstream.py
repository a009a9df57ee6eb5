"""A cheap OpenAI-compatible upstream for benchmarks: every answer is precomputed bytes.

``POST /v1/chat/completions`` answers a fixed completion, or with ``"stream": true`` an SSE
stream of ``--chunks`` content chunks (each its own write), then a usage chunk when the body asks
for ``stream_options.include_usage``, then ``[DONE]``. The body is not parsed as JSON: two byte
searches decide the shape, so the upstream costs as little CPU as possible.

    python -m bench.upstream --port 8301 --chunks 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

from aiohttp import web

MODEL = "bench-upstream"
PROMPT_TOKENS = 12
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_USAGE = re.compile(rb'"include_usage"\s*:\s*true')


def completion_bytes(chunks: int) -> bytes:
    """The non-streamed answer: the same text the stream carries, with usage."""
    text = "".join(f"tok{i} " for i in range(chunks))
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": chunks,
            "total_tokens": PROMPT_TOKENS + chunks,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def stream_events(chunks: int, usage: bool) -> list[bytes]:
    """SSE events: ``chunks`` content deltas (the last with finish_reason), usage, ``[DONE]``."""
    created = int(time.time())
    events: list[bytes] = []
    for i in range(chunks):
        delta: dict[str, str] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if i == chunks - 1 else None}],
        }
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    if usage:
        last = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": chunks,
                "total_tokens": PROMPT_TOKENS + chunks,
            },
        }
        events.append(b"data: " + json.dumps(last, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def make_app(chunks: int, chunk_delay_s: float = 0.0) -> web.Application:
    """The aiohttp application; ``chunk_delay_s`` paces streamed chunks (0: as fast as possible)."""
    completion = completion_bytes(chunks)
    with_usage = stream_events(chunks, usage=True)
    without_usage = stream_events(chunks, usage=False)
    sse_headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}

    async def chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if not _STREAM.search(raw):
            return web.Response(body=completion, content_type="application/json")
        events = with_usage if _USAGE.search(raw) else without_usage
        response = web.StreamResponse(headers=sse_headers)
        await response.prepare(request)
        for event in events:
            await response.write(event)
            if chunk_delay_s:
                await asyncio.sleep(chunk_delay_s)
        await response.write_eof()
        return response

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8301)
    parser.add_argument("--chunks", type=int, default=50, help="content chunks per streamed answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between streamed chunks")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = make_app(args.chunks, args.chunk_delay_ms / 1000.0)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    main()
