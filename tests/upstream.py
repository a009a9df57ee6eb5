"""A local OpenAI-compatible upstream for the tests, with scripted failures.

Behaviour is chosen by directives in the last user message, so tests drive it through the
gateway exactly as a client would:

    #status:500        answer that HTTP status (an OpenAI error body); a 429 carries
                       ``Retry-After: FakeUpstream.retry_after`` (default "0")
    #code:NAME         with #status: the error body's ``code`` is NAME (e.g. ``content_filter``)
    #fail-times:2      fail the first 2 attempts of this exact body with 500, then succeed
    #sleep:1.5         wait before answering (timeouts)
    #hold              wait before answering until the test sets ``FakeUpstream.release`` (at most 30 s):
                       requests kept in flight together by a gate, not by a sleep long enough to overlap
    #chunks:50         stream this many content chunks (default 5)
    #drop:3            streamed: cut the connection after 3 chunks, with no [DONE]; not streamed: a 200
                       whose body stops half-way (the connection closed before its Content-Length)
    #slow:0.05         streamed: wait this long between chunks
    #stall:30          streamed: after 2 chunks (``#stall-at:N``: N), send nothing this many seconds
    #stream-error:2    streamed: after 2 chunks, an error event (``data: {"error": ...}``) and the end,
                       as vLLM and OpenRouter report a failure once their 200 has gone out
    #only:MODEL        the failure directives (#status, #sleep, #hold, #drop, #stall, #stream-error, #bad,
                       #fail-times) apply only to upstream model MODEL: another model (a fallback) answers
    #tool              answer with a tool call
    #no-usage          omit usage (streamed and not)
    #echo              answer with the last user message itself (streamed 1-3 characters a chunk)
    #tool-echo         answer with a tool call whose arguments hold the last user message (with #leak:
                       the system prompt, as a model tricked into passing it to a tool would)
    #tool-args         answer with the conversation's last tool call again, its arguments as received
                       (streamed 1-3 characters a chunk)
    #legacy            with #tool-args: the call as a legacy ``function_call``
    #tool-args-all     answer with every tool call of the conversation again (parallel calls); streamed,
                       their argument pieces (1-3 characters) interleaved call by call in one delta stream
    #call:NAME         answer with a call to tool NAME (streamed: its name in the first delta)
    #usage:NAME        report ``FakeUpstream.usages[NAME]`` as the usage (streamed and not)
    #say:NAME          answer with the text registered as ``FakeUpstream.scripts[NAME]``
    #leak              answer with the system prompt (as a model tricked into leaking it would)
    #length            finish with ``finish_reason: length`` (the answer cut at max_tokens; streamed and not)
    #refuse            answer with a ``refusal`` (no content), as OpenAI's structured outputs refuse
                       (streamed 1-3 characters a chunk, in ``delta.refusal``); with #echo, the user's text

A text answer (``#echo``, ``#say``...) is cut at the first of the request's ``stop`` strings, and
``FakeUpstream.stop_field`` says where the server names it (vLLM's, SGLang's, llama-server's way).
    #bad:SHAPE         a malformed answer: ``array`` (the body, or a stream's second chunk, is a JSON
                       array), ``usage_text`` (token counts are strings), ``negative_usage``, ``text``
                       (streamed: the second chunk's ``data:`` line is not JSON)

Every request body and whether the client went away (mid-stream, or during ``#sleep``) are recorded.

``POST /v1/responses`` is a small Responses API upstream (``responses: native`` providers): it
answers ``native: N items`` (``#echo``: the last user text, streamed 1-3 characters an event;
``#tool``: a ``get_weather`` function call; ``#refuse``: a refusal; ``#status:N``: that error status;
``#fail``: streamed, the
text deltas then ``response.failed`` with an error, as OpenAI ends a stream that broke; streamed, after
the text deltas, ``#drop`` cuts the connection, ``#bad`` sends a ``data:`` line that is not JSON and
``#stall:S`` sends nothing for S seconds), streamed with the Responses event types when asked, and records
its bodies like the chat endpoint.

``POST /v1/moderations`` is an OpenAI-compatible moderation endpoint for the guard providers: an
input holding a word of ``FakeUpstream.flag_words`` is flagged (``violence`` 0.97, else 0.01);
``#mod-status:500`` anywhere in the batch answers that status, ``#mod-sleep:2`` waits first.
Its request bodies are in ``FakeUpstream.moderations``. A chat request for an upstream model in
``FakeUpstream.judges`` is answered by that function of its last user message (a guard judge).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from typing import Any, Self

from aiohttp import web

DIRECTIVE = re.compile(r"#([a-z-]+)(?::([0-9A-Za-z_.]+))?")
#: the directives ``#only:MODEL`` keeps for that upstream model
FAILURES = frozenset(
    {"status", "code", "fail-times", "sleep", "hold", "drop", "stall", "stall-at", "stream-error", "bad"}
)


class StubServer:
    """An aiohttp app on a free loopback port, served from a thread of its own: the scaffolding of
    the tests' upstreams (this module's and ``tests.anthropic_upstream``'s), which add their routes
    and record each request's body and headers."""

    thread_name = "stub-upstream"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        threading.Thread(target=self._serve, daemon=True, name=self.thread_name).start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application(handler_args={"tcp_keepalive": True})
        self.routes(app)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def directives(body: dict[str, Any]) -> dict[str, str]:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1].get("content") if users else ""
    if not isinstance(text, str):
        text = json.dumps(text)
    return {name: value or "" for name, value in DIRECTIVE.findall(text)}


class FakeUpstream(StubServer):
    thread_name = "fake-upstream"

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.disconnects = 0
        self.completed_streams = 0
        self.attempts: Counter[str] = Counter()
        self.scripts: dict[str, str] = {}
        self.usages: dict[str, dict[str, Any]] = {}
        self.retry_after = "0"
        self.moderations: list[dict[str, Any]] = []
        self.moderation_peers: list[Any] = []  # the client's (host, port) of each moderation request
        self.flag_words: set[str] = {"forbidden-fruit"}
        #: upstream model id -> the answer to its last user message (a guard judge's verdict)
        self.judges: dict[str, Any] = {}
        #: where a text answer cut at one of the request's ``stop`` strings names it: None (as
        #: OpenAI: nowhere), ``stop_reason`` (vLLM), ``matched_stop`` (SGLang) or ``__verbose``
        #: (llama-server, when the request says ``verbose: true``)
        self.stop_field: str | None = None
        #: what ``#hold`` waits for
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.requests.clear()
        self.headers.clear()
        self.paths.clear()
        self.disconnects = 0
        self.completed_streams = 0
        self.attempts.clear()
        self.retry_after = "0"
        self.moderations.clear()
        self.moderation_peers.clear()
        self.judges.clear()
        self.usages.clear()
        self.stop_field = None
        self.release.set()  # a request a previous test left held goes on; the next test gets a fresh gate
        self.release = threading.Event()

    # --- handlers ----------------------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.path_qs)
        d = directives(body)
        if "only" in d and body.get("model") != d["only"]:
            d = {name: value for name, value in d.items() if name not in FAILURES}
        signature = json.dumps(body.get("messages"), sort_keys=True)
        self.attempts[signature] += 1
        if "sleep" in d:
            try:
                await asyncio.sleep(float(d["sleep"]))
            except asyncio.CancelledError:  # the client (the gateway) went away before the answer
                self.disconnects += 1
                raise
        if "hold" in d:
            try:
                await asyncio.to_thread(self.release.wait, 30)
            except asyncio.CancelledError:
                self.disconnects += 1
                raise
        if "fail-times" in d and self.attempts[signature] <= int(d["fail-times"]):
            return error(500, "scripted failure")
        if "status" in d:
            status = int(d["status"])
            headers = {"retry-after": self.retry_after} if status == 429 else None
            return error(status, f"scripted {status}", headers=headers, code=d.get("code") or None)
        model = body.get("model", "fake")
        n = int(body.get("n") or 1)
        if model in self.judges:
            verdict = self.judges[model](last_user(body))
            message = {"role": "assistant", "content": verdict}
            choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
            return web.json_response({"id": "up-j", "object": "chat.completion", "created": int(time.time()),
                                      "model": model, "usage": usage(body, 1), "choices": choices})  # fmt: skip
        if body.get("stream"):
            return await self.stream(request, body, d, model, n)
        if "drop" in d:
            return await cut_body(request)
        text, matched = cut_at_stop(self.answer(body, d), body.get("stop"))
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if "refuse" in d:
            message = {"role": "assistant", "content": None, "refusal": text}
        if "tool-args-all" in d:
            message = {"role": "assistant", "content": None, "tool_calls": all_calls(body)}
            finish = "tool_calls"
        elif "tool" in d or "tool-echo" in d or "tool-args" in d or "call" in d:
            message = {"role": "assistant", "content": None, "tool_calls": [self.tool_call(body, d)]}
            finish = "tool_calls"
            if "legacy" in d:
                message = {"role": "assistant", "content": None, "function_call": self.tool_call(body, d)["function"]}
                finish = "function_call"
        if "length" in d and finish == "stop":
            finish = "length"
        payload: dict[str, Any] = {
            "id": "up-1", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "message": message, "finish_reason": finish} for i in range(n)],
        }  # fmt: skip
        if matched is not None and finish == "stop":
            self.report_stop(payload, body, matched)
        if "no-usage" not in d:
            payload["usage"] = bad_usage(d) or self.usages.get(d.get("usage", "")) or usage(body, n)
        return web.json_response([payload] if d.get("bad") == "array" else payload)

    def report_stop(self, payload: dict[str, Any], body: dict[str, Any], matched: str) -> None:
        """Say which stop string ended the answer, as the server ``stop_field`` plays would."""
        if self.stop_field == "__verbose":
            if body.get("verbose") is True:
                payload["__verbose"] = {"stop_type": "word", "stopping_word": matched, "prompt": "..."}
        elif self.stop_field is not None:
            for choice in payload["choices"]:
                choice[self.stop_field] = matched

    async def stream(
        self, request: web.Request, body: dict[str, Any], d: dict[str, str], model: str, n: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        count = int(d.get("chunks") or 5)
        drop = int(d["drop"]) if "drop" in d else None
        slow = float(d.get("slow") or 0)
        base = {"id": "up-s", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        if "tool-args-all" in d:
            return await self.stream_parallel(response, base, body)
        if "echo" in d or "say" in d or "tool-echo" in d or "tool-args" in d or "leak" in d or "refuse" in d:
            return await self.stream_text(response, base, body, d)
        try:
            for i in range(count):
                if drop is not None and i == drop:
                    request.transport.close()  # type: ignore[union-attr]
                    return response
                delta: dict[str, Any] = {"content": f"tok{i} "}
                if i == 0:
                    delta["role"] = "assistant"
                    if "tool" in d or "call" in d:
                        delta = {"role": "assistant", "tool_calls": [{"index": 0, **self.tool_call(body, d)}]}
                choices = [{"index": j, "delta": delta, "finish_reason": None} for j in range(n)]
                if i == 1 and d.get("bad") == "array":
                    await response.write(b"data: " + json.dumps([{**base, "choices": choices}]).encode() + b"\n\n")
                    continue
                if i == 1 and d.get("bad") == "text":
                    await response.write(b"data: <html>502 Bad Gateway</html>\n\n")
                    continue
                if i == int(d.get("stall-at") or 2) and "stall" in d:
                    await asyncio.sleep(float(d["stall"]))
                if i == int(d.get("stream-error") or 0) and "stream-error" in d:
                    await response.write(sse({"error": {"message": "scripted stream error", "type": "server_error"}}))
                    return response
                await response.write(sse({**base, "choices": choices}))
                if slow:
                    await asyncio.sleep(slow)
            finish = "tool_calls" if "tool" in d or "call" in d else "length" if "length" in d else "stop"
            choices = [{"index": j, "delta": {}, "finish_reason": finish} for j in range(n)]
            await response.write(sse({**base, "choices": choices}))
            if (body.get("stream_options") or {}).get("include_usage") and "no-usage" not in d:
                u = bad_usage(d) or self.usages.get(d.get("usage", "")) or usage(body, n, completion=count * n)
                await response.write(sse({**base, "choices": [], "usage": u}))
            await self.done(response)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response

    async def done(self, response: web.StreamResponse) -> None:
        """End a stream properly and count it as completed."""
        await response.write(b"data: [DONE]\n\n")
        self.completed_streams += 1

    def answer(self, body: dict[str, Any], d: dict[str, str]) -> str:
        if "say" in d:
            return self.scripts[d["say"]]
        if "refuse" in d and "echo" not in d:
            return REFUSAL
        if "echo" in d:
            return last_user(body)
        if "leak" in d:
            systems = [m for m in body.get("messages", []) if m.get("role") == "system"]
            return f"Sure! My instructions are: {systems[0]['content'] if systems else ''}"
        return answer_text(body)

    def tool_call(self, body: dict[str, Any], d: dict[str, str]) -> dict[str, Any]:
        if "tool-echo" in d:
            arguments = json.dumps({"text": self.answer(body, d) if "leak" in d else last_user(body)})
            return {"id": "call_e", "type": "function", "function": {"name": "save", "arguments": arguments}}
        if "tool-args" in d:
            calls = [c for m in body.get("messages", []) for c in m.get("tool_calls") or ()]
            return {"id": "call_e", "type": "function", "function": dict(calls[-1]["function"])}
        if "call" in d:
            return {"id": "call_n", "type": "function", "function": {"name": d["call"], "arguments": "{}"}}
        return tool_call()

    async def stream_parallel(
        self, response: web.StreamResponse, base: dict[str, Any], body: dict[str, Any]
    ) -> web.StreamResponse:
        """Every call of the conversation again, their arguments 1, 2, 3... characters a delta, the calls
        taking turns (call 0's piece, call 1's piece, ...): parallel calls as one delta stream."""
        calls = all_calls(body)
        pieces = [split_pieces(c["function"]["arguments"]) for c in calls]
        for k, call in enumerate(calls):  # each call opens with its id and name
            first = {"index": k, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
            delta = {"role": "assistant", "tool_calls": [first]} if k == 0 else {"tool_calls": [first]}
            await response.write(sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        for n in range(max((len(p) for p in pieces), default=0)):
            for k, p in enumerate(pieces):
                if n < len(p):
                    delta = {"tool_calls": [{"index": k, "function": {"arguments": p[n]}}]}
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    await response.write(sse({**base, "choices": [choice]}))
        await response.write(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
        await self.done(response)
        return response

    async def stream_text(
        self, response: web.StreamResponse, base: dict[str, Any], body: dict[str, Any], d: dict[str, str]
    ) -> web.StreamResponse:
        """Stream an answer 1, 2, 3, 1, 2, 3... characters a chunk (placeholders get split)."""
        tool = "tool-echo" in d or "tool-args" in d
        function = self.tool_call(body, d)["function"] if tool else {}
        text, matched = (function["arguments"], None) if tool else cut_at_stop(self.answer(body, d), body.get("stop"))
        pieces, i, size = [], 0, 1
        delta: dict[str, Any]
        while i < len(text):
            pieces.append(text[i : i + size])
            i += size
            size = size % 3 + 1
        try:
            for n, piece in enumerate(pieces):
                if tool and "legacy" in d:
                    delta = {"function_call": {"name": function["name"], "arguments": piece} if n == 0 else {
                        "arguments": piece}}  # fmt: skip
                elif tool:
                    call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
                    if n == 0:
                        call.update(
                            id="call_e", type="function", function={"name": function["name"], "arguments": piece}
                        )
                    delta = {"tool_calls": [call]}
                else:
                    delta = {"refusal" if "refuse" in d else "content": piece}
                await response.write(sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
            finish = ("function_call" if "legacy" in d else "tool_calls") if tool else "stop"
            end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            if matched is not None:
                self.report_stop(end, body, matched)
            await response.write(sse(end))
            await self.done(response)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.path_qs)
        items = body.get("input") or []
        users = [i for i in items if i.get("type") == "message" and i.get("role") == "user"]
        text = users[-1]["content"] if users else ""
        text = text if isinstance(text, str) else "".join(p.get("text") or "" for p in text)
        d = {name: value or "" for name, value in DIRECTIVE.findall(text)}
        if "status" in d:
            return error(int(d["status"]), f"scripted {d['status']}")
        answer = text if "echo" in d else f"native: {len(items)} items"
        usage = {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 3,
                 "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 10}  # fmt: skip
        if "tool" in d:
            call = tool_call()
            item: dict[str, Any] = {"type": "function_call", "id": "fc_up", "call_id": call["id"],
                                    "status": "completed", "name": call["function"]["name"],
                                    "arguments": call["function"]["arguments"]}  # fmt: skip
        else:
            part = ({"type": "refusal", "refusal": REFUSAL} if "refuse" in d
                    else {"type": "output_text", "text": answer, "annotations": []})  # fmt: skip
            item = {"type": "message", "id": "msg_up", "role": "assistant", "status": "completed", "content": [part]}
        final = {"id": "resp_up", "object": "response", "created_at": int(time.time()), "model": body.get("model"),
                 "status": "completed", "output": [item], "usage": usage}  # fmt: skip
        if not body.get("stream"):
            return web.json_response(final)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        seq = iter(range(1000))

        async def send(kind: str, **fields: Any) -> None:
            payload = {"type": kind, "sequence_number": next(seq), **fields}
            await response.write(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode())

        await send("response.created", response={**final, "status": "in_progress", "output": []})
        if "tool" in d:
            await send("response.output_item.added", output_index=0, item={**item, "arguments": ""})
            for piece in (item["arguments"][:5], item["arguments"][5:]):
                await send("response.function_call_arguments.delta", output_index=0, item_id="fc_up", delta=piece)
        else:
            await send("response.output_item.added", output_index=0, item={**item, "content": []})
            i, size = 0, 1
            kind, answer = ("refusal", REFUSAL) if "refuse" in d else ("output_text", answer)
            while i < len(answer):
                await send(f"response.{kind}.delta", output_index=0, item_id="msg_up", content_index=0,
                           delta=answer[i : i + size])  # fmt: skip
                i, size = i + size, size % 3 + 1
        if "drop" in d:
            request.transport.close()  # type: ignore[union-attr]
            return response
        if "bad" in d:
            await response.write(b"event: response.output_text.delta\ndata: <html>502 Bad Gateway</html>\n\n")
        if "stall" in d:
            try:
                await asyncio.sleep(float(d["stall"]))
            except asyncio.CancelledError:  # the gateway hung up
                self.disconnects += 1
                raise
        if "fail" in d:
            failure = {"code": "server_error", "message": "scripted stream failure"}
            await send("response.failed", response={**final, "status": "failed", "output": [], "error": failure})
            return response
        await send("response.output_item.done", output_index=0, item=item)
        await send("response.completed", response=final)
        self.completed_streams += 1
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )

    async def moderate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.moderations.append(body)
        self.moderation_peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        self.headers.append(dict(request.headers))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        d = {name: value for name, value in DIRECTIVE.findall(" ".join(inputs))}
        if "mod-sleep" in d:
            await asyncio.sleep(float(d["mod-sleep"]))
        if "mod-status" in d:
            return error(int(d["mod-status"]), "scripted moderation failure")
        results = []
        for text in inputs:
            hit = any(word in text.lower() for word in self.flag_words)
            score = 0.97 if hit else 0.01
            results.append({"flagged": hit, "categories": {"violence": hit, "harassment": False},
                            "category_scores": {"violence": score, "harassment": 0.02}})  # fmt: skip
        return web.json_response({"id": "modr-1", "model": body.get("model") or "fake-moderation", "results": results})

    # --- lifecycle ---------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/moderations", self.moderate)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)


def last_user(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    return content if isinstance(content, str) else json.dumps(content)


def cut_at_stop(text: str, stop: Any) -> tuple[str, str | None]:
    """``text`` up to the first of the request's stop strings (left out, as servers do), and that string."""
    stops = [stop] if isinstance(stop, str) else list(stop or ())
    hits = [(text.find(s), s) for s in stops if isinstance(s, str) and s and s in text]
    if not hits:
        return text, None
    at, matched = min(hits)
    return text[:at], matched


REFUSAL = "I'm sorry, I cannot help with that."


def answer_text(body: dict[str, Any]) -> str:
    return f"echo: {len(body.get('messages', []))} messages"


def all_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [c for m in body.get("messages", []) for c in m.get("tool_calls") or ()]
    return [{"id": f"call_{k}", "type": "function", "function": dict(c["function"])} for k, c in enumerate(calls)]


def split_pieces(text: str) -> list[str]:
    """``text`` in pieces of 1, 2, 3, 1, 2, 3... characters (a placeholder lands split)."""
    pieces, i, size = [], 0, 1
    while i < len(text):
        pieces.append(text[i : i + size])
        i += size
        size = size % 3 + 1
    return pieces


def tool_call() -> dict[str, Any]:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }


def usage(body: dict[str, Any], n: int, completion: int | None = None) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 1
    completion = completion if completion is not None else 4 * n
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = directives(body).get("cached")  # #cached:N — the provider served N prompt tokens from its cache
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": min(prompt, int(cached))}
    return out


def bad_usage(d: dict[str, str]) -> dict[str, Any] | None:
    if d.get("bad") == "usage_text":
        return {"prompt_tokens": "twelve", "completion_tokens": "four", "total_tokens": "sixteen"}
    if d.get("bad") == "negative_usage":
        return {"prompt_tokens": -12, "completion_tokens": -4, "total_tokens": -16}
    return None


def error(status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": "server_error", "code": code}}
    return web.json_response(payload, status=status, headers=headers)


async def cut_body(request: web.Request) -> web.StreamResponse:
    """A 200 whose JSON body stops half-way: the connection closes before its ``Content-Length``."""
    response = web.StreamResponse(headers={"content-type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"id": "up-1", "object": "chat.com')
    request.transport.close()  # type: ignore[union-attr]
    return response


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
