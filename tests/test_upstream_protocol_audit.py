"""How the providers read what real upstreams send: SSE framing, odd bodies, odd statuses.

A real gateway on a port, the official ``openai`` and ``anthropic`` SDKs as clients, and a scripted
upstream (below) that answers each request with exactly the bytes a test gives it, in the writes it
gives them. Every case must end as the right answer or as a classified error in the client's API
shape, never a 500 and never a cut answer reported as a success, with a request row saying which.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import StubServer

MakeGateway = Callable[..., RunningGateway]
TEXT = "Héllo, 日本語 wörld 🎉 done."
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


@dataclass
class Script:
    """One scripted answer: a status, headers, and the body as the writes to make (a pause between)."""

    pieces: list[bytes]
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    gap_s: float = 0.0


class ScriptedUpstream(StubServer):
    thread_name = "scripted-upstream"

    def __init__(self) -> None:
        super().__init__()
        self.script = Script([b""])
        self.queue: list[Script] = []  # scripts for the next requests, in order (then ``script``)
        self.paths: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.answer)
        app.router.add_post("/v1/messages", self.answer)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.paths.append(request.path)
        script = self.queue.pop(0) if self.queue else self.script
        response = web.StreamResponse(status=script.status, headers=script.headers)
        if len(script.pieces) == 1:
            response.content_length = len(script.pieces[0])
        await response.prepare(request)
        for piece in script.pieces:
            await response.write(piece)
            if script.gap_s:
                await asyncio.sleep(script.gap_s)
        await response.write_eof()
        return response


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture()
def sgw(make_gateway: MakeGateway, scripted: ScriptedUpstream) -> RunningGateway:
    """Model ``o`` on an ``openai`` provider and ``a`` on an ``anthropic`` one, both the scripted
    upstream, neither retrying."""
    scripted.requests.clear()
    scripted.queue.clear()
    base = f"http://127.0.0.1:{scripted.port}"
    caps = ["chat", "streaming", "tools"]
    return make_gateway(
        providers={
            "so": {"type": "openai", "base_url": f"{base}/v1", "max_retries": 0, "read_timeout_s": 5},
            "sa": {"type": "anthropic", "base_url": base, "api_key": "k", "max_retries": 0, "read_timeout_s": 5},
        },
        models={
            "o": {"provider": "so", "upstream_id": "up-o", "capabilities": caps, "price": PRICE},
            "a": {"provider": "sa", "upstream_id": "up-a", "capabilities": caps, "price": PRICE},
        },
        routes={
            "default": {"default_model": "o"},
            "a-then-o": {"default_model": "a", "selection": {"fallbacks": ["o"]}},
        },
    )


def user(text: str = "hi") -> Any:
    return [{"role": "user", "content": text}]


def ant(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0, timeout=30)


def only_row(gw: RunningGateway) -> dict[str, Any]:
    [row] = gw.rows()
    return row


# --- what the upstreams send ------------------------------------------------------------------------


def openai_events(text: str = TEXT, usage: Any = None) -> list[bytes]:
    """An OpenAI chat stream's JSON payloads: role, the text in 3 pieces, the finish, usage."""
    base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    third = len(text) // 3
    for piece in (text[:third], text[third : 2 * third], text[2 * third :]):
        out.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    u = usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    out.append({**base, "choices": [], "usage": u})
    return [json.dumps(e, ensure_ascii=False).encode() for e in out] + [b"[DONE]"]


def anthropic_events(text: str = TEXT, extra: list[dict[str, Any]] | None = None) -> list[tuple[str, bytes]]:
    """An Anthropic stream's (event name, JSON payload) pairs; ``extra`` goes after the first text delta."""
    third = len(text) // 3
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "up-a", "content": [],
               "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 1}}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:third]}},
        *(extra or []),
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[third : 2 * third]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[2 * third :]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    ]  # fmt: skip
    return [(e["type"], json.dumps(e, ensure_ascii=False).encode()) for e in events]


def frame(payload: bytes, name: str | None, style: str) -> bytes:
    """One SSE event in the framing ``style``."""
    head = f"event: {name}\n".encode() if name else b""
    if style == "crlf":
        return (head + b"data: " + payload + b"\n\n").replace(b"\n", b"\r\n")
    if style == "cr":
        return (head + b"data: " + payload + b"\n\n").replace(b"\n", b"\r")
    if style == "nospace":
        return head + b"data:" + payload + b"\n\n"
    if style == "comments":
        return b": ping\n\n" + head + b": keep-alive\ndata: " + payload + b"\n\n"
    if style == "fields":
        return b"event: message\nid: 7\nretry: 3000\n" + head + b"data: " + payload + b"\n\n"
    if style == "multiline" and payload.startswith(b"{") and b"," in payload:
        # a JSON payload across two data lines (joined by "\n": still the same JSON)
        at = payload.index(b",") + 1
        return head + b"data: " + payload[:at] + b"\ndata: " + payload[at:] + b"\n\n"
    return head + b"data: " + payload + b"\n\n"


STYLES = ["plain", "crlf", "cr", "nospace", "comments", "fields", "multiline"]


def openai_stream_bytes(style: str, events: list[bytes] | None = None) -> list[bytes]:
    return [frame(p, None, style) for p in events or openai_events()]


def anthropic_stream_bytes(style: str, events: list[tuple[str, bytes]] | None = None) -> list[bytes]:
    return [frame(p, name, style) for name, p in events or anthropic_events()]


def read_openai(gw: RunningGateway, model: str = "o") -> str:
    stream = gw.client(timeout=30).chat.completions.create(model=model, messages=user(), stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def read_anthropic(gw: RunningGateway, model: str = "a") -> tuple[str, str | None]:
    with ant(gw).messages.stream(model=model, max_tokens=64, messages=user()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    return text, final.stop_reason


def assert_ok_row(gw: RunningGateway) -> dict[str, Any]:
    row = only_row(gw)
    assert (row["status"], row["http_status"]) == ("ok", 200), row
    return row


# --- 1. SSE framing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_openai_stream_framings_give_the_whole_answer(
    sgw: RunningGateway, scripted: ScriptedUpstream, style: str
) -> None:
    scripted.script = Script(openai_stream_bytes(style), gap_s=0.002)
    assert read_openai(sgw) == TEXT
    row = assert_ok_row(sgw)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 9), row


@pytest.mark.parametrize("style", STYLES)
def test_anthropic_stream_framings_give_the_whole_answer(
    sgw: RunningGateway, scripted: ScriptedUpstream, style: str
) -> None:
    scripted.script = Script(anthropic_stream_bytes(style), gap_s=0.002)
    assert read_anthropic(sgw) == (TEXT, "end_turn")
    row = assert_ok_row(sgw)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 9), row


def every_offset(events: list[bytes]) -> list[bytes]:
    """The stream as writes that split event k at byte k (mod its length): every offset, UTF-8
    characters and ``\\r\\n`` pairs included, over a long enough answer."""
    pieces = []
    for k, event in enumerate(events):
        at = k % len(event)
        pieces += [event[:at], event[at:]] if at else [event]
    return pieces


LONG = "".join(f"{n}é日🎉 " for n in range(120))


@pytest.mark.parametrize("style", ["plain", "crlf", "cr"])
def test_an_openai_stream_split_at_every_byte_offset_gives_the_whole_answer(
    sgw: RunningGateway, scripted: ScriptedUpstream, style: str
) -> None:
    base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"content": ch}, "finish_reason": None}]} for ch in LONG]
    payloads = [json.dumps(c, ensure_ascii=False).encode() for c in chunks] + openai_events("")[-3:]
    scripted.script = Script(every_offset([frame(p, None, style) for p in payloads]), gap_s=0.001)
    assert read_openai(sgw) == LONG
    assert_ok_row(sgw)


@pytest.mark.parametrize("style", ["plain", "crlf", "cr"])
def test_an_anthropic_stream_split_at_every_byte_offset_gives_the_whole_answer(
    sgw: RunningGateway, scripted: ScriptedUpstream, style: str
) -> None:
    deltas = [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ch}} for ch in LONG]
    events = anthropic_events("", extra=deltas)
    scripted.script = Script(every_offset([frame(p, n, style) for n, p in events]), gap_s=0.001)
    assert read_anthropic(sgw) == (LONG, "end_turn")
    assert_ok_row(sgw)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_opening_with_a_byte_order_mark_loses_nothing(
    sgw: RunningGateway, scripted: ScriptedUpstream, provider: str
) -> None:
    """SSE says a leading BOM is skipped; read as part of the first line it made the first event's
    ``data:`` an unknown field: Anthropic's ``message_start`` lost (no id, no input tokens), OpenAI's
    first chunk dropped without a word. The BOM is split across writes too."""
    if provider == "openai":  # a first chunk with text (real ones carry the role and "")
        base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": "First."}, "finish_reason": None}]}
        pieces = [frame(json.dumps(chunk).encode(), None, "plain"), *openai_stream_bytes("plain")]
    else:
        pieces = anthropic_stream_bytes("plain")
    first = b"\xef\xbb\xbf" + pieces[0]
    scripted.script = Script([first[:2], first[2:], *pieces[1:]], gap_s=0.002)
    if provider == "openai":
        assert read_openai(sgw) == "First." + TEXT
    else:
        assert read_anthropic(sgw) == (TEXT, "end_turn")
    row = assert_ok_row(sgw)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 9), row


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_whole_stream_in_one_write_without_the_last_blank_line(
    sgw: RunningGateway, scripted: ScriptedUpstream, provider: str
) -> None:
    """Every event in a single write, the last one ended by the close instead of a blank line."""
    pieces = openai_stream_bytes("plain") if provider == "openai" else anthropic_stream_bytes("plain")
    scripted.script = Script([b"".join(pieces).removesuffix(b"\n\n")])
    assert (read_openai(sgw) if provider == "openai" else read_anthropic(sgw)[0]) == TEXT
    assert_ok_row(sgw)


def test_data_after_done_is_ignored(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    scripted.script = Script([*openai_stream_bytes("plain"), b"data: not json\n\n", b"data: [DONE]\n\n"])
    assert read_openai(sgw) == TEXT
    assert_ok_row(sgw)


def test_an_openai_stream_without_done_is_a_protocol_error_not_a_success(
    sgw: RunningGateway, scripted: ScriptedUpstream
) -> None:
    """The finish and usage chunks came, but no ``[DONE]``: the answer may be cut (documented)."""
    scripted.script = Script(openai_stream_bytes("plain")[:-1], gap_s=0.002)
    stream = sgw.client(timeout=30).chat.completions.create(model="o", messages=user(), stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert info.value.body["code"] == "upstream_protocol_error"  # type: ignore[index]
    row = only_row(sgw)
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", "upstream_protocol_error", 200)


# --- 2. Anthropic stream events ---------------------------------------------------------------------


def test_anthropic_pings_unknown_events_and_unknown_blocks_are_skipped(
    sgw: RunningGateway, scripted: ScriptedUpstream
) -> None:
    """``ping``, an event type added later, a server tool's blocks and deltas, a citations delta: the
    text answer is whole and the stream ends normally."""
    extra = [
        {"type": "ping"},
        {"type": "future_event", "payload": {"x": 1}},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "citations_delta", "citation": {"type": "web_search_result_location", "url": "u"}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "x": 1}},
    ]  # fmt: skip
    events = anthropic_events(extra=extra)
    scripted.script = Script(anthropic_stream_bytes("plain", events), gap_s=0.002)
    assert read_anthropic(sgw) == (TEXT, "end_turn")
    assert read_openai_after(sgw, scripted, events) == TEXT
    assert [r["status"] for r in sgw.rows()] == ["ok", "ok"]


def read_openai_after(gw: RunningGateway, scripted: ScriptedUpstream, events: list[tuple[str, bytes]]) -> str:
    scripted.script = Script(anthropic_stream_bytes("plain", events), gap_s=0.002)
    return read_openai(gw, model="a")


def test_anthropic_message_delta_without_usage_and_null_counts(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    events = anthropic_events()
    start = json.loads(events[0][1])
    start["message"]["usage"] = {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": None,
                                 "cache_creation_input_tokens": None}  # fmt: skip
    events[0] = ("message_start", json.dumps(start).encode())
    events[-2] = ("message_delta", b'{"type": "message_delta", "delta": {"stop_reason": "end_turn"}}')
    scripted.script = Script(anthropic_stream_bytes("plain", events))
    assert read_anthropic(sgw) == (TEXT, "end_turn")
    row = assert_ok_row(sgw)
    assert row["prompt_tokens"] == 5, row


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_an_anthropic_error_event_after_text_ends_the_stream_as_a_classified_error(
    sgw: RunningGateway, scripted: ScriptedUpstream, client: str
) -> None:
    events = anthropic_events()[:4]
    events.append(("error", b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'))
    scripted.script = Script(anthropic_stream_bytes("plain", events), gap_s=0.002)
    if client == "openai":
        stream = sgw.client(timeout=30).chat.completions.create(model="a", messages=user(), stream=True)
        with pytest.raises(openai.APIError) as info:
            list(stream)
        assert info.value.body["code"] == "upstream_server_error", info.value.body  # type: ignore[index]
    else:
        with (
            pytest.raises(anthropic.APIStatusError) as ainfo,
            ant(sgw).messages.stream(model="a", max_tokens=64, messages=user()) as stream,
        ):
            list(stream)
        assert "Overloaded" in ainfo.value.message
    row = only_row(sgw)
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", "upstream_server_error", 200), row


# --- 3. non-streamed bodies and statuses -------------------------------------------------------------------


def completion_body(**over: Any) -> dict[str, Any]:
    body = {"id": "c-1", "object": "chat.completion", "created": 1, "model": "up-o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}  # fmt: skip
    body.update(over)
    return body


def message_body(**over: Any) -> dict[str, Any]:
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "up-a",
            "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 9}}  # fmt: skip
    body.update(over)
    return body


JSON = {"content-type": "application/json"}


def script_json(
    scripted: ScriptedUpstream, body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    scripted.script = Script([raw], status=status, headers={**JSON, **(headers or {})})


def call_openai(gw: RunningGateway, model: str) -> Any:
    return gw.client(timeout=30).chat.completions.create(model=model, messages=user())


def call_anthropic(gw: RunningGateway, model: str) -> Any:
    return ant(gw).messages.create(model=model, max_tokens=64, messages=user())


def assert_error_row(gw: RunningGateway, code: str, http_status: int) -> None:
    row = only_row(gw)
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", code, http_status), row


BAD_BODIES = {
    "not-json": (b"<html>oops</html>", "upstream_protocol_error", 502),
    "truncated-json": (b'{"id": "c-1", "choices": [{"index": 0, "mess', "upstream_protocol_error", 502),
    "choices-missing": ({"id": "c-1", "object": "chat.completion"}, "upstream_protocol_error", 502),
    "array": ([1, 2], "upstream_protocol_error", 502),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
@pytest.mark.parametrize("provider", ["o", "a"])
def test_a_malformed_200_is_a_protocol_error(
    sgw: RunningGateway, scripted: ScriptedUpstream, case: str, provider: str
) -> None:
    body, code, status = BAD_BODIES[case]
    script_json(scripted, body)
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, provider)
    assert (info.value.status_code, info.value.body["code"]) == (status, code)  # type: ignore[index]
    assert_error_row(sgw, code, status)


def test_an_html_502_from_a_proxy_is_an_upstream_server_error(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    scripted.script = Script([html], status=502, headers={"content-type": "text/html"})
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_server_error")  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        call_anthropic(sgw, "a")
    assert ainfo.value.status_code == 502 and "502 Bad Gateway" in ainfo.value.message
    assert [r["error_code"] for r in sgw.rows()] == ["upstream_server_error"] * 2


def test_an_anthropic_529_is_an_upstream_server_error(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    script_json(scripted, body, status=529)
    with pytest.raises(anthropic.APIStatusError) as info:
        call_anthropic(sgw, "a")
    assert info.value.status_code == 502 and "Overloaded" in info.value.message
    assert_error_row(sgw, "upstream_server_error", 502)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, "7"),
        ({"retry-after-ms": "2500"}, "3"),
        ({"retry-after-ms": "900", "retry-after": "1"}, "1"),
    ],
    ids=["retry-after", "retry-after-ms", "both"],
)
@pytest.mark.parametrize("provider", ["o", "a"])
def test_an_upstream_429_passes_its_retry_advice_on(
    sgw: RunningGateway, scripted: ScriptedUpstream, headers: dict[str, str], expected: str, provider: str
) -> None:
    """OpenAI and Azure send ``retry-after-ms`` (the SDKs read it first); it was dropped."""
    script_json(scripted, {"error": {"message": "slow down", "type": "rate_limit_error"}}, 429, headers)
    with pytest.raises(openai.RateLimitError) as info:
        call_openai(sgw, provider)
    assert info.value.body["code"] == "upstream_rate_limited"  # type: ignore[index]
    assert info.value.response.headers.get("retry-after") == expected
    assert_error_row(sgw, "upstream_rate_limited", 429)


@pytest.mark.parametrize("provider", ["o", "a"])
def test_a_200_with_an_error_body_is_the_upstream_s_error(
    sgw: RunningGateway, scripted: ScriptedUpstream, provider: str
) -> None:
    """Some servers and proxies answer 200 with an error object (as the same failure mid-stream is an
    error event): its message reaches the client as an upstream server error (retried, falls back),
    not as "choices is not a list"."""
    if provider == "o":
        script_json(scripted, {"error": {"message": "the model crashed", "type": "server_error", "code": None}})
    else:
        script_json(scripted, {"type": "error", "error": {"type": "api_error", "message": "the model crashed"}})
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, provider)
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_server_error")  # type: ignore[index]
    assert "the model crashed" in info.value.message
    assert_error_row(sgw, "upstream_server_error", 502)


def compressed(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(raw)
    return zlib.compress(raw)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("provider", ["o", "a"])
def test_compressed_answers_are_read(
    sgw: RunningGateway, scripted: ScriptedUpstream, encoding: str, provider: str
) -> None:
    raw = json.dumps(completion_body() if provider == "o" else message_body()).encode()
    scripted.script = Script([compressed(raw, encoding)], headers={**JSON, "content-encoding": encoding})
    assert call_openai(sgw, provider).choices[0].message.content == TEXT
    pieces = openai_stream_bytes("plain") if provider == "o" else anthropic_stream_bytes("plain")
    scripted.script = Script(
        [compressed(b"".join(pieces), encoding)],
        headers={"content-type": "text/event-stream", "content-encoding": encoding},
    )
    assert read_openai(sgw, provider) == TEXT
    assert [r["status"] for r in sgw.rows()] == ["ok", "ok"]


def test_an_undecodable_content_encoding_is_a_protocol_error(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    """``br`` without a brotli decoder installed (aiohttp does not ask for it then), or garbage: 502."""
    scripted.script = Script([b"\x8b\x00garbage"], headers={**JSON, "content-encoding": "gzip"})
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_protocol_error"  # type: ignore[index]
    scripted.script = Script([b"\x8b\x00garbage"], headers={**JSON, "content-encoding": "br"})
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_protocol_error"  # type: ignore[index]


@pytest.mark.parametrize("provider", ["o", "a"])
def test_json_served_as_text_plain_and_a_huge_body_are_read(
    sgw: RunningGateway, scripted: ScriptedUpstream, provider: str
) -> None:
    big = "word " * 2_000_000  # 10 MB of answer
    body = completion_body() if provider == "o" else message_body()
    scripted.script = Script([json.dumps(body).encode()], headers={"content-type": "text/plain"})
    assert call_openai(sgw, provider).choices[0].message.content == TEXT
    big_body = completion_body(choices=[{"index": 0, "message": {"role": "assistant", "content": big},
                                         "finish_reason": "stop"}]) if provider == "o" else message_body(
        content=[{"type": "text", "text": big}])  # fmt: skip
    script_json(scripted, big_body)
    assert call_openai(sgw, provider).choices[0].message.content == big
    assert [r["status"] for r in sgw.rows()] == ["ok", "ok"]


# --- 4. odd but legal-looking answers --------------------------------------------------------------------


ODD = {
    "choices-empty": completion_body(choices=[]),
    "usage-missing": {k: v for k, v in completion_body().items() if k != "usage"},
    "usage-nulls": completion_body(usage={"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}),
    "finish-null": completion_body(
        choices=[{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": None}]
    ),
    "finish-unknown": completion_body(
        choices=[{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "eos_token"}]
    ),
}


@pytest.mark.parametrize("case", ODD, ids=list(ODD))
@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_odd_openai_answers_end_as_an_answer_or_a_classified_error(
    sgw: RunningGateway, scripted: ScriptedUpstream, case: str, client: str
) -> None:
    """``choices: []`` is no answer (it came back as a 200 with no choices, or an empty ``end_turn``
    message); a usage of nulls is no usage (it was billed as 0 tokens, not estimated)."""
    script_json(scripted, ODD[case])
    call = call_openai if client == "openai" else call_anthropic
    if case == "choices-empty":
        with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as info:
            call(sgw, "o")
        assert info.value.status_code == 502 and "choices is empty" in info.value.message
        assert_error_row(sgw, "upstream_protocol_error", 502)
        return
    answer = call(sgw, "o")
    text = answer.choices[0].message.content if client == "openai" else answer.content[0].text
    assert text == TEXT
    row = assert_ok_row(sgw)
    assert row["completion_tokens"] > 0 and row["prompt_tokens"] > 0, row
    assert row["usage_estimated"] is case.startswith("usage"), row


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_odd_openai_streams_end_as_an_answer(sgw: RunningGateway, scripted: ScriptedUpstream, client: str) -> None:
    """A finish_reason the gateway does not know still says the answer is whole."""
    events = openai_events()
    last = json.loads(events[-3])
    last["choices"][0]["finish_reason"] = "eos_token"
    events[-3] = json.dumps(last).encode()
    scripted.script = Script(openai_stream_bytes("plain", events), gap_s=0.002)
    if client == "openai":
        assert read_openai(sgw) == TEXT
    else:
        text, _ = read_anthropic(sgw, model="o")
        assert text == TEXT
    assert_ok_row(sgw)


OVERLOADED = ("error", b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')


@pytest.mark.parametrize("after", [0, 1], ids=["first-event", "after-message-start"])
def test_an_anthropic_error_event_before_any_content_is_an_http_error(
    sgw: RunningGateway, scripted: ScriptedUpstream, after: int
) -> None:
    """Nothing of the answer was sent: the client gets the failure as a status (and a fallback model
    would be tried), not a 200 stream that dies at once."""
    scripted.script = Script(anthropic_stream_bytes("plain", [*anthropic_events()[:after], OVERLOADED]), gap_s=0.002)
    with pytest.raises(openai.APIStatusError) as info:
        list(sgw.client(timeout=30).chat.completions.create(model="a", messages=user(), stream=True))
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_server_error")  # type: ignore[index]
    assert_error_row(sgw, "upstream_server_error", 502)


def test_an_anthropic_overload_right_after_message_start_falls_back(
    sgw: RunningGateway, scripted: ScriptedUpstream
) -> None:
    scripted.queue = [Script(anthropic_stream_bytes("plain", [*anthropic_events()[:1], OVERLOADED]))]
    scripted.script = Script(openai_stream_bytes("plain"))
    stream = sgw.client(timeout=30).chat.completions.create(
        model="a", messages=user(), stream=True, extra_body={"llmgw": {"route": "a-then-o"}}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == TEXT
    assert scripted.paths[-2:] == ["/v1/messages", "/v1/chat/completions"]
    row = assert_ok_row(sgw)
    assert row["model_used"] == "o" and [f["to"] for f in row["meta"]["fallbacks"]] == ["o"], row


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_empty_data_field_is_no_event(sgw: RunningGateway, scripted: ScriptedUpstream, provider: str) -> None:
    """SSE dispatches no event whose data is empty (``data:`` alone, a keep-alive some servers send);
    decoded as JSON it ended the stream as a protocol error."""
    pieces = openai_stream_bytes("plain") if provider == "openai" else anthropic_stream_bytes("plain")
    pieces[2:2] = [b"data:\n\n", b"data: \n\n", b"event: ping\ndata:\n\n"]
    scripted.script = Script(pieces, gap_s=0.002)
    assert (read_openai(sgw) if provider == "openai" else read_anthropic(sgw)[0]) == TEXT
    assert_ok_row(sgw)


def test_an_empty_200_is_a_protocol_error(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    script_json(scripted, b"")
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_protocol_error")  # type: ignore[index]
    assert_error_row(sgw, "upstream_protocol_error", 502)


def test_anthropic_answers_with_unknown_blocks_and_null_usage(sgw: RunningGateway, scripted: ScriptedUpstream) -> None:
    content = [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": TEXT, "citations": [{"type": "web_search_result_location", "url": "u"}]},
    ]
    usage = {"input_tokens": 5, "output_tokens": 9, "cache_read_input_tokens": None, "server_tool_use": None}
    script_json(scripted, message_body(content=content, usage=usage))
    assert call_anthropic(sgw, "a").content[0].text == TEXT  # type: ignore[union-attr]
    row = assert_ok_row(sgw)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 9), row


# --- 5. stream chunk shapes real servers send ---------------------------------------------------------


def stream_variant(name: str) -> list[bytes]:
    """OpenAI streams as Azure, vLLM and others send them."""
    base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
    events = [json.loads(e) for e in openai_events()[:-1]]
    if name == "azure-filter-results":  # a first chunk of prompt filter results and no choices, ids empty
        first = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                 "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}  # fmt: skip
        events.insert(0, first)
        events[-2]["choices"][0]["content_filter_results"] = {}
    elif name == "finish-with-text":  # the last text and the finish in one chunk
        events[-3]["choices"][0]["finish_reason"] = "stop"
        del events[-2]
    elif name == "usage-with-finish":  # usage on the finishing chunk, no usage-only chunk
        events[-2]["usage"] = events[-1]["usage"]
        del events[-1]
    elif name == "usage-null-everywhere":  # vLLM: "usage": null on every chunk but the last
        for e in events[:-1]:
            e["usage"] = None
    elif name == "delta-missing":  # the finish chunk without a delta
        del events[-2]["choices"][0]["delta"]
    elif name == "delta-null":
        events[-2]["choices"][0]["delta"] = None
    elif name == "content-null":
        events.insert(1, {**base, "choices": [{"index": 0, "delta": {"content": None}, "finish_reason": None}]})
    return [json.dumps(e, ensure_ascii=False).encode() for e in events] + [b"[DONE]"]


VARIANTS = ["azure-filter-results", "finish-with-text", "usage-with-finish", "usage-null-everywhere",
            "delta-missing", "delta-null", "content-null"]  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_openai_stream_variants_give_the_whole_answer(
    sgw: RunningGateway, scripted: ScriptedUpstream, variant: str, client: str
) -> None:
    scripted.script = Script(openai_stream_bytes("plain", stream_variant(variant)), gap_s=0.002)
    if client == "openai":
        assert read_openai(sgw) == TEXT
    else:
        assert read_anthropic(sgw, model="o") == (TEXT, "end_turn")
    row = assert_ok_row(sgw)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (5, 9, False), row


@pytest.mark.parametrize("case", ["message-missing", "message-null"])
@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_a_choice_without_a_message_is_a_protocol_error_not_an_empty_answer(
    sgw: RunningGateway, scripted: ScriptedUpstream, case: str, client: str
) -> None:
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    if case == "message-null":
        choice["message"] = None
    script_json(scripted, completion_body(choices=[choice]))
    call = call_openai if client == "openai" else call_anthropic
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as info:
        call(sgw, "o")
    assert info.value.status_code == 502, info.value.message
    assert_error_row(sgw, "upstream_protocol_error", 502)


@pytest.mark.parametrize("stream", [True, False], ids=["asked-stream-got-json", "asked-json-got-stream"])
def test_the_wrong_kind_of_answer_is_a_protocol_error(
    sgw: RunningGateway, scripted: ScriptedUpstream, stream: bool
) -> None:
    if stream:
        script_json(scripted, completion_body())
    else:
        scripted.script = Script(openai_stream_bytes("plain"))
    with pytest.raises(openai.APIStatusError) as info:
        list(sgw.client(timeout=30).chat.completions.create(model="o", messages=user(), stream=True)) if stream else (
            call_openai(sgw, "o"))  # fmt: skip
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_protocol_error")  # type: ignore[index]
    assert_error_row(sgw, "upstream_protocol_error", 502)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_anthropic_answer_without_usage_counts_is_estimated_not_billed_as_zero(
    sgw: RunningGateway, scripted: ScriptedUpstream, stream: bool
) -> None:
    """Compatible servers that send no usage (or nulls): the tokens are estimated, as for an OpenAI
    upstream without usage, instead of billed as 0 prompt and 0 completion tokens."""
    if stream:
        events = anthropic_events()
        start = json.loads(events[0][1])
        del start["message"]["usage"]
        events[0] = ("message_start", json.dumps(start).encode())
        events[-2] = ("message_delta", b'{"type": "message_delta", "delta": {"stop_reason": "end_turn"}}')
        scripted.script = Script(anthropic_stream_bytes("plain", events))
        assert read_anthropic(sgw) == (TEXT, "end_turn")
    else:
        script_json(scripted, message_body(usage={"input_tokens": None, "output_tokens": None}))
        assert call_anthropic(sgw, "a").content[0].text == TEXT  # type: ignore[union-attr]
    row = assert_ok_row(sgw)
    assert row["usage_estimated"] is True and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0, row


VLLM_ERROR = {
    "object": "error",
    "message": "the engine died",
    "type": "InternalServerError",
    "param": None,
    "code": 500,
}


def test_a_vllm_style_error_event_mid_stream_is_an_error_not_a_short_success(
    sgw: RunningGateway, scripted: ScriptedUpstream
) -> None:
    """vLLM's error object (``"object": "error"``, no ``error`` key) mid-stream, then ``[DONE]``: it
    passed as a chunk without choices, and the cut answer ended as a success."""
    events = [*openai_events()[:2], json.dumps(VLLM_ERROR).encode(), b"[DONE]"]
    scripted.script = Script(openai_stream_bytes("plain", events), gap_s=0.002)
    stream = sgw.client(timeout=30).chat.completions.create(model="o", messages=user(), stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert info.value.body["code"] == "upstream_server_error" and "the engine died" in info.value.message  # type: ignore[index]
    row = only_row(sgw)
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", "upstream_server_error", 200), row


def test_a_vllm_style_error_body_with_200_is_the_upstream_s_error(
    sgw: RunningGateway, scripted: ScriptedUpstream
) -> None:
    script_json(scripted, VLLM_ERROR)
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_server_error")  # type: ignore[index]
    assert "the engine died" in info.value.message
    assert_error_row(sgw, "upstream_server_error", 502)


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_a_stream_of_only_done_is_no_500(sgw: RunningGateway, scripted: ScriptedUpstream, client: str) -> None:
    """``data: [DONE]`` and nothing else: no answer, no finish. An empty answer or a classified error,
    but never a 500."""
    scripted.script = Script([b"data: [DONE]\n\n"])
    try:
        if client == "openai":
            assert read_openai(sgw) == ""
        else:
            assert read_anthropic(sgw, model="o")[0] == ""
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        assert exc.status_code == 502, exc.message
    row = only_row(sgw)
    assert row["error_code"] != "internal_error" and row["http_status"] != 500, row
