"""Upstreams that misbehave at scale or at the end: answers past the size caps, streams that end
without a finish, rate-limit hints in OpenAI's ``x-ratelimit-reset-*`` headers, and rate-limit error
objects in either of their forms.

A real gateway on a port, the official SDKs as clients, and the scripted upstream of
tests/test_upstream_protocol_audit.py (each request answered with exactly the bytes a test gives).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from tests.conftest import RunningGateway
from tests.test_upstream_protocol_audit import (
    JSON,
    PRICE,
    TEXT,
    Script,
    ScriptedUpstream,
    ant,
    anthropic_events,
    anthropic_stream_bytes,
    assert_error_row,
    call_openai,
    completion_body,
    frame,
    message_body,
    only_row,
    openai_events,
    openai_stream_bytes,
    read_openai,
    script_json,
    user,
)

MakeGateway = Callable[..., RunningGateway]
TOO_LARGE = "upstream_response_too_large"
CAPS = {"max_response_bytes": 20_000, "max_event_bytes": 4_000, "max_stream_bytes": 60_000}


class Upstream(ScriptedUpstream):
    """The scripted upstream, on ``/v1/responses`` too (a ``responses: native`` provider)."""

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_post("/v1/responses", self.answer)


@pytest.fixture(scope="module")
def scripted() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


def gateway(
    make_gateway: MakeGateway, scripted: Upstream, tmp_path: Path | None = None, server: Any = None, **provider: Any
) -> Any:
    scripted.requests.clear()
    scripted.queue.clear()
    base = f"http://127.0.0.1:{scripted.port}"
    caps = ["chat", "streaming", "tools"]
    common = {"max_retries": 0, "read_timeout_s": 5, **CAPS, **provider}
    extra: dict[str, Any] = {"server": server} if server else {}
    routes: dict[str, Any] = {"default": {"default_model": "o"}}
    if tmp_path is not None:  # an exact-match cache on the default route
        extra["cache"] = {"enabled": True, "persist_path": str(tmp_path / "cache.sqlite"), "persist_interval_s": 0.05}
        routes["default"]["cache"] = {"semantic": False}
    return make_gateway(
        providers={
            "so": {"type": "openai", "base_url": f"{base}/v1", **common},
            "sa": {"type": "anthropic", "base_url": base, "api_key": "k", **common},
            "sr": {"type": "openai", "base_url": f"{base}/v1", "responses": "native", **common},
        },
        models={
            "o": {"provider": "so", "upstream_id": "up-o", "capabilities": caps, "price": PRICE},
            "a": {"provider": "sa", "upstream_id": "up-a", "capabilities": caps, "price": PRICE},
            "r": {"provider": "sr", "upstream_id": "up-r", "capabilities": caps, "price": PRICE},
        },
        routes=routes,
        **extra,
    )


@pytest.fixture()
def sgw(make_gateway: MakeGateway, scripted: Upstream) -> RunningGateway:
    """Models ``o`` (openai), ``a`` (anthropic), ``r`` (openai, Responses API); small caps, no retries."""
    return gateway(make_gateway, scripted)


def big_completion(provider: str, size: int) -> bytes:
    text = "x" * size
    if provider == "a":
        return json.dumps(message_body(content=[{"type": "text", "text": text}])).encode()
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return json.dumps(completion_body(choices=[choice])).encode()


def assert_too_large_502(info: Any, gw: RunningGateway) -> None:
    assert (info.value.status_code, info.value.body["code"]) == (502, TOO_LARGE), info.value.body
    assert_error_row(gw, TOO_LARGE, 502)


def stream_error_code(gw: RunningGateway, model: str = "o") -> tuple[str, str]:
    """The text a client got before its stream's error event, and the event's code."""
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in gw.client(timeout=30).chat.completions.create(model=model, messages=user(), stream=True):
            got += [c.delta.content or "" for c in chunk.choices]
    assert not isinstance(info.value, openai.APIStatusError), "failed before the stream began"
    return "".join(got), info.value.body["code"]  # type: ignore[index]


# --- 1. size caps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["o", "a"])
def test_an_answer_over_max_response_bytes_is_refused_by_its_content_length(
    sgw: RunningGateway, scripted: Upstream, provider: str
) -> None:
    """One write, so a ``Content-Length``: refused before reading (it was read whole, however large).
    An answer under the cap is read as before."""
    scripted.script = Script([big_completion(provider, 15_000)], headers=JSON)
    assert call_openai(sgw, provider).choices[0].message.content == "x" * 15_000
    scripted.script = Script([big_completion(provider, 30_000)], headers=JSON)
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, provider)
    assert (info.value.status_code, info.value.body["code"]) == (502, TOO_LARGE), info.value.body
    assert [(r["status"], r["error_code"]) for r in sgw.rows()] == [("error", TOO_LARGE), ("ok", None)]


def test_a_chunked_endless_answer_is_refused_as_it_arrives(sgw: RunningGateway, scripted: Upstream) -> None:
    """No ``Content-Length``: counted while read. The upstream would take 20 s to finish; the gateway
    stops reading past the cap instead of waiting for (and holding) the whole body."""
    scripted.script = Script([b'{"id": "c-1", "x": "' + b"y" * 1000] * 200, headers=JSON, gap_s=0.1)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert time.monotonic() - started < 10
    assert_too_large_502(info, sgw)


def test_a_gzip_bomb_is_counted_after_decompression(sgw: RunningGateway, scripted: Upstream) -> None:
    raw = big_completion("o", 5_000_000)
    packed = gzip.compress(raw)
    assert len(packed) < CAPS["max_response_bytes"]
    scripted.script = Script([packed], headers={**JSON, "content-encoding": "gzip"})
    with pytest.raises(openai.APIStatusError) as info:
        call_openai(sgw, "o")
    assert_too_large_502(info, sgw)


def huge_chunk(size: int) -> bytes:
    base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
    return json.dumps(
        {**base, "choices": [{"index": 0, "delta": {"content": "z" * size}, "finish_reason": None}]}
    ).encode()


@pytest.mark.parametrize("where", ["first", "mid-stream"])
def test_a_stream_event_over_max_event_bytes_fails_the_stream(
    sgw: RunningGateway, scripted: Upstream, where: str
) -> None:
    """Before the first byte: a 502 in the client's shape; after it: an error event. Either way an
    error row saying why, and the connection closed."""
    events = openai_events()
    at = 0 if where == "first" else 2
    events.insert(at, huge_chunk(10_000))
    # the big event in small writes: the parser would have joined them without bound
    pieces = [
        p for f in openai_stream_bytes("plain", events) for p in (f[i : i + 1000] for i in range(0, len(f), 1000))
    ]
    scripted.script = Script(pieces, gap_s=0.001)
    if where == "first":
        with pytest.raises(openai.APIStatusError) as info:
            read_openai(sgw)
        assert_too_large_502(info, sgw)
        return
    text, code = stream_error_code(sgw)
    assert code == TOO_LARGE and TEXT.startswith(text)
    assert_error_row(sgw, TOO_LARGE, 200)


def test_a_line_that_never_ends_fails_the_stream(sgw: RunningGateway, scripted: Upstream) -> None:
    """No newline ever: a comment line (no ``data``) growing without bound."""
    first = openai_stream_bytes("plain")[:2]
    scripted.script = Script([*first, b": " + b"z" * 1000, *[b"z" * 1000] * 50], gap_s=0.01)
    _, code = stream_error_code(sgw)
    assert code == TOO_LARGE
    assert_error_row(sgw, TOO_LARGE, 200)


def test_an_endless_stream_is_cut_at_max_stream_bytes(sgw: RunningGateway, scripted: Upstream) -> None:
    base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
    chunk = json.dumps({**base, "choices": [{"index": 0, "delta": {"content": "ab"}, "finish_reason": None}]})
    scripted.script = Script([frame(chunk.encode(), None, "plain")] * 2000, gap_s=0.0005)
    text, code = stream_error_code(sgw)
    assert code == TOO_LARGE and 0 < len(text) < 2 * 2000
    assert_error_row(sgw, TOO_LARGE, 200)


def test_an_anthropic_stream_over_the_cap_ends_with_an_error_event(sgw: RunningGateway, scripted: Upstream) -> None:
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "q" * 10_000}}
    scripted.script = Script(anthropic_stream_bytes("plain", anthropic_events(extra=[delta])), gap_s=0.002)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        ant(sgw).messages.stream(model="a", max_tokens=64, messages=user()) as stream,
    ):
        list(stream)
    assert "larger than 4000 bytes" in info.value.message
    assert_error_row(sgw, TOO_LARGE, 200)


def test_a_responses_upstream_s_json_answer_to_a_stream_is_capped(sgw: RunningGateway, scripted: Upstream) -> None:
    response = {"id": "resp_1", "object": "response", "status": "completed", "model": "up-r",
                "output": [{"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": "w" * 30_000}]}]}  # fmt: skip
    script_json(scripted, response)
    with pytest.raises(openai.APIStatusError) as info:
        read_openai(sgw, "r")
    assert_too_large_502(info, sgw)


# --- 2. streams that end without a finish -------------------------------------------------------------


def without_finish() -> list[bytes]:
    events = openai_events()
    last = json.loads(events[-3])
    last["choices"][0]["finish_reason"] = None
    events[-3] = json.dumps(last).encode()
    return events


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_a_stream_with_done_but_no_finish_reason_is_an_error_not_a_success(
    sgw: RunningGateway, scripted: Upstream, client: str
) -> None:
    """``[DONE]`` came, but no choice got a ``finish_reason``: the answer may be cut, as when the
    connection closes before ``[DONE]`` (which was already an error). It was passed as a success."""
    scripted.script = Script(openai_stream_bytes("plain", without_finish()), gap_s=0.002)
    if client == "openai":
        text, code = stream_error_code(sgw)
        assert text == TEXT and code == "upstream_protocol_error"
    else:
        with (
            pytest.raises(anthropic.APIStatusError) as info,
            ant(sgw).messages.stream(model="o", max_tokens=64, messages=user()) as stream,
        ):
            list(stream)
        assert "finish_reason" in info.value.message
    row = only_row(sgw)
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", "upstream_protocol_error", 200), row


def test_a_second_choice_left_unfinished_is_an_error(sgw: RunningGateway, scripted: Upstream) -> None:
    base = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "up-o"}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None},
                             {"index": 1, "delta": {"content": "b"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]  # fmt: skip
    scripted.script = Script(openai_stream_bytes("plain", [json.dumps(e).encode() for e in events] + [b"[DONE]"]))
    with pytest.raises(openai.APIError, match="choice 1"):
        list(sgw.client(timeout=30).chat.completions.create(model="o", messages=user(), stream=True, n=2))
    assert_error_row(sgw, "upstream_protocol_error", 200)


def test_an_anthropic_message_stop_without_a_stop_reason_is_an_error(sgw: RunningGateway, scripted: Upstream) -> None:
    events = [e for e in anthropic_events() if e[0] != "message_delta"]
    scripted.script = Script(anthropic_stream_bytes("plain", events), gap_s=0.002)
    text, code = stream_error_code(sgw, "a")
    assert text == TEXT and code == "upstream_protocol_error"
    assert_error_row(sgw, "upstream_protocol_error", 200)


def test_a_stream_of_only_done_is_a_502(sgw: RunningGateway, scripted: Upstream) -> None:
    """No chunk at all: nothing was sent, so the client gets a status (and a fallback could be tried)."""
    scripted.script = Script([b"data: [DONE]\n\n"])
    with pytest.raises(openai.APIStatusError) as info:
        read_openai(sgw)
    assert (info.value.status_code, info.value.body["code"]) == (502, "upstream_protocol_error")  # type: ignore[index]
    assert_error_row(sgw, "upstream_protocol_error", 502)


def test_an_unfinished_stream_is_not_cached(make_gateway: MakeGateway, scripted: Upstream, tmp_path: Path) -> None:
    gw = gateway(make_gateway, scripted, tmp_path)
    scripted.script = Script(openai_stream_bytes("plain", without_finish()))
    for _ in range(2):
        _, code = stream_error_code(gw)
        assert code == "upstream_protocol_error"
    assert len(scripted.requests) == 2, "the cut answer was served from the cache"
    scripted.script = Script(openai_stream_bytes("plain"))
    assert read_openai(gw) == TEXT


# --- 3. x-ratelimit-reset-* -----------------------------------------------------------------------------


RATE_LIMITED = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-reset-requests": "1s"}, "1"),
        ({"x-ratelimit-reset-tokens": "6m0s"}, "360"),
        ({"x-ratelimit-reset-requests": "20ms"}, "1"),
        ({"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "1m30s"}, "90"),
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-reset-tokens": "1m30s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-remaining-tokens": "5000",
            },
            "2",
        ),
    ],
    ids=["requests", "tokens", "millis", "later-of-two", "the-spent-one"],
)
@pytest.mark.parametrize("provider", ["o", "a"])
def test_a_429_s_reset_headers_are_its_retry_advice(
    sgw: RunningGateway, scripted: Upstream, headers: dict[str, str], expected: str, provider: str
) -> None:
    script_json(scripted, RATE_LIMITED, 429, headers)
    with pytest.raises(openai.RateLimitError) as info:
        call_openai(sgw, provider)
    assert info.value.response.headers.get("retry-after") == expected
    assert_error_row(sgw, "upstream_rate_limited", 429)


def test_the_reset_hint_paces_the_retry(make_gateway: MakeGateway, scripted: Upstream) -> None:
    """The retry waits for the reset (no backoff of its own here), not at once into the same limit."""
    gw = gateway(make_gateway, scripted, max_retries=1, backoff_base_s=0, backoff_max_s=10)
    raw = json.dumps(RATE_LIMITED).encode()
    scripted.queue = [Script([raw], status=429, headers={**JSON, "x-ratelimit-reset-requests": "1500ms"})]
    scripted.script = Script([json.dumps(completion_body()).encode()], headers=JSON)
    started = time.monotonic()
    assert call_openai(gw, "o").choices[0].message.content == TEXT
    assert time.monotonic() - started >= 1.4 and len(scripted.requests) == 2
    # ``Retry-After`` comes first; on anything but a 429 (OpenAI sends them on every answer) they
    # are no advice
    gw = gateway(make_gateway, scripted)
    script_json(scripted, RATE_LIMITED, 429, {"x-ratelimit-reset-requests": "7s", "retry-after": "3"})
    with pytest.raises(openai.RateLimitError) as info:
        call_openai(gw, "o")
    assert info.value.response.headers.get("retry-after") == "3"
    script_json(scripted, {"error": {"message": "boom"}}, 503, {"x-ratelimit-reset-requests": "9s"})
    with pytest.raises(openai.APIStatusError) as status:
        call_openai(gw, "o")
    assert status.value.status_code == 503 and "retry-after" not in status.value.response.headers


def test_a_reset_past_the_deadline_is_no_wait(make_gateway: MakeGateway, scripted: Upstream) -> None:
    """A reset the request cannot wait for: the 429 at once (its advice passed on), no retry."""
    gw = gateway(make_gateway, scripted, server={"request_timeout_s": 20}, max_retries=1, backoff_base_s=0,
                 backoff_max_s=600)  # fmt: skip
    raw = json.dumps(RATE_LIMITED).encode()
    scripted.queue = [Script([raw], status=429, headers={**JSON, "x-ratelimit-reset-tokens": "6m0s"})]
    scripted.script = Script([json.dumps(completion_body()).encode()], headers=JSON)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        call_openai(gw, "o")
    # a bound: at once is well under 10 s on a busy machine (5 s was close enough to the SDK and the
    # gateway's own start-up work), and waiting for the reset would reach the 20 s request deadline
    assert time.monotonic() - started < 10 and len(scripted.requests) == 1
    assert info.value.response.headers.get("retry-after") == "360"


# --- 4. rate-limit error objects, both forms, on both paths --------------------------------------------


FORMS = {
    "type": {"message": "slow down", "type": "rate_limit_error"},
    "code": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"},
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("where", ["body", "stream"])
def test_a_chat_upstream_s_rate_limit_error_object_is_a_rate_limit(
    sgw: RunningGateway, scripted: Upstream, form: str, where: str
) -> None:
    """A 200 carrying ``{"error": ...}`` (``openai_compat.error_body``): a 429 to the client."""
    payload = json.dumps({"error": FORMS[form]}).encode()
    if where == "body":
        script_json(scripted, payload)
        with pytest.raises(openai.RateLimitError) as info:
            call_openai(sgw, "o")
    else:
        scripted.script = Script([frame(payload, None, "plain")])
        with pytest.raises(openai.RateLimitError) as info:
            read_openai(sgw)
    assert info.value.body["code"] == "upstream_rate_limited"  # type: ignore[index]
    assert_error_row(sgw, "upstream_rate_limited", 429)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("where", ["body", "stream"])
def test_a_responses_upstream_s_rate_limit_error_object_is_a_rate_limit(
    sgw: RunningGateway, scripted: Upstream, form: str, where: str
) -> None:
    """A failed Responses ``response`` (``responses_api.upstream.failure``): a 429 to the client."""
    failed = {"id": "resp_1", "object": "response", "status": "failed", "model": "up-r", "output": [],
              "error": FORMS[form]}  # fmt: skip
    if where == "body":
        script_json(scripted, failed)
        with pytest.raises(openai.RateLimitError) as info:
            call_openai(sgw, "r")
    else:
        event = json.dumps({"type": "response.failed", "response": failed}).encode()
        scripted.script = Script([frame(event, "response.failed", "plain")])
        with pytest.raises(openai.RateLimitError) as info:
            read_openai(sgw, "r")
    assert info.value.body["code"] == "upstream_rate_limited"  # type: ignore[index]
    assert_error_row(sgw, "upstream_rate_limited", 429)
