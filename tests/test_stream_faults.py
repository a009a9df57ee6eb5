"""What a streaming client sees when something goes wrong: a real gateway on a port, the official
``openai`` and ``anthropic`` SDKs as clients, the fake upstreams of ``tests.upstream`` and
``tests.anthropic_upstream``.

A stream must never end in a way that looks complete when it is not, hang, or leave the upstream
call running: a failure after the first chunk is an error event in the client's API (OpenAI's
``data: {"error": ...}``, Anthropic's ``event: error``) with no ``[DONE]`` / ``message_stop``; a
failure before it is an HTTP error status (and the next model in line is tried first). Every request
leaves its row, with the failure and the tokens produced so far.

An upstream ``data:`` line that is not JSON ends the stream with ``upstream_protocol_error`` rather
than being skipped: a skipped line is text the client never gets, with nothing telling it so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.anthropic_upstream import AnthropicUpstream
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import FakeUpstream

READ_TIMEOUT_S = 1.0
#: a stalled stream must end within the read timeout plus this: generous, as a busy 2-core machine
#: took 6.5 s for a stream's first request on a fresh gateway (5 s failed); the stalls last 30 s, the
#: clients' own timeout, so a read timeout that is not applied still fails at ~30 s
SLACK_S = 10.0
#: two models on the one fake upstream; the route falls back from ``primary`` to ``backup``
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
TWO = {
    "primary": {"provider": "up", "upstream_id": "fake_a", "capabilities": ["chat", "streaming"], "price": PRICE},
    "backup": {"provider": "up", "upstream_id": "fake_b", "capabilities": ["chat", "streaming"], "price": PRICE},
}
CLAUDE = {"provider": "claude", "upstream_id": "claude-up-1", "capabilities": ["chat", "streaming"], "price": PRICE}

MakeGateway = Callable[..., RunningGateway]


def fallback_gw(make_gateway: MakeGateway, upstream: FakeUpstream, **provider: Any) -> RunningGateway:
    """``primary`` with ``backup`` as its fallback; the provider does not retry on its own (so each
    upstream request is one model's one attempt)."""
    up = {"type": "openai", "base_url": upstream.base_url, "max_retries": 0, **provider}
    routes = {"default": {"default_model": "primary", "selection": {"fallbacks": ["backup"]}}}
    return make_gateway(providers={"up": up}, models=TWO, routes=routes)


def native_gw(make_gateway: MakeGateway, anthropic_upstream: AnthropicUpstream) -> RunningGateway:
    """Model ``claude`` on the native ``anthropic`` provider, with a short read timeout."""
    provider = {"type": "anthropic", "base_url": anthropic_upstream.base_url, "api_key": "sk-ant-up",
                "max_retries": 0, "read_timeout_s": READ_TIMEOUT_S}  # fmt: skip
    return make_gateway(
        providers={"claude": provider}, models={"claude": CLAUDE}, routes={"default": {"default_model": "claude"}}
    )


def ant(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0, timeout=30)


def user(text: str) -> Any:
    """One user message (``Any``: each SDK types its own message parameters)."""
    return [{"role": "user", "content": text}]


def openai_stream(gw: RunningGateway, text: str, model: str = "test-model") -> tuple[list[str], openai.APIError]:
    """Read a stream that must fail mid-way: the text received, and what the SDK raised."""
    stream = gw.client(timeout=30).chat.completions.create(model=model, messages=user(text), stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received += [c.delta.content or "" for c in chunk.choices]
    return received, info.value


def anthropic_stream(gw: RunningGateway, text: str, model: str) -> tuple[list[str], anthropic.APIStatusError]:
    """The same through the Anthropic SDK on ``/v1/messages``: the event types received, what it raised."""
    types: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        ant(gw).messages.stream(model=model, max_tokens=64, messages=user(text)) as stream,
    ):
        for event in stream:
            types.append(event.type)
    return types, info.value


def only_row(gw: RunningGateway) -> dict[str, Any]:
    [row] = gw.rows()
    return row


def wait_until(check: Callable[[], bool], bound_s: float) -> float:
    """Seconds until ``check`` held; fails the test after ``bound_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound_s, f"not within {bound_s} s"
        time.sleep(0.02)
    return time.monotonic() - started


#: a primary that fails before its first chunk: an error status, or a 200 whose first event is an error or
#: that sends nothing within the read timeout
FAILS_BEFORE_THE_FIRST_CHUNK = pytest.mark.parametrize(
    "failure",
    ["#status:429", "#status:500", "#status:503", "#stream-error:0", "#stall:30 #stall-at:0"],
    ids=["429", "500", "503", "error-event-first", "stall-before-first-chunk"],
)


def assert_served_by_the_fallback(gw: RunningGateway, upstream: FakeUpstream, headers: Any) -> None:
    """The primary was asked once, the backup answered, and the header and row say so."""
    assert [b["model"] for b in upstream.requests] == ["fake_a", "fake_b"]
    assert headers["x-llmgw-route"].endswith("fallbacks=1")
    row = only_row(gw)
    assert row["status"] == "ok" and row["model_used"] == "backup"
    assert [f["to"] for f in row["meta"]["fallbacks"]] == ["backup"]


def stored_rows(gw: RunningGateway, bound_s: float = 30) -> list[dict[str, Any]]:
    """The gateway's request rows once there is one (they are written off the request path)."""
    rows: list[dict[str, Any]] = []

    def stored() -> bool:
        rows[:] = gw.rows()
        return bool(rows)

    wait_until(stored, bound_s)
    return rows


def assert_billed_failure(row: dict[str, Any], code: str, http_status: int = 200) -> None:
    """The row says the stream failed, with what the client got and the tokens produced up to then."""
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", code, http_status), row
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["usage_estimated"] is True, row
    assert row["cost_usd"] > 0, row


# --- 1. the upstream closes the connection mid-stream --------------------------------------------------


def test_a_cut_openai_stream_raises_in_the_sdk_and_is_not_retried_elsewhere(
    make_gateway: MakeGateway, upstream: FakeUpstream
) -> None:
    """Three chunks reach the client, then the SDK raises on the error event (never a clean end). The
    fallback model is not tried: the client already has text, and would get it twice."""
    gw = fallback_gw(make_gateway, upstream)
    received, err = openai_stream(gw, "#chunks:10 #drop:3", model="primary")
    assert received == ["tok0 ", "tok1 ", "tok2 "]
    assert err.body["code"] == "upstream_protocol_error" and err.body["request_id"]  # type: ignore[index]
    assert "closed it before the answer was complete" in err.message, err.message  # not aiohttp's "400"
    assert [b["model"] for b in upstream.requests] == ["fake_a"]
    row = only_row(gw)
    assert_billed_failure(row, "upstream_protocol_error")
    assert row["model_used"] == "primary" and not row["meta"].get("fallbacks")


def test_a_cut_stream_has_no_done_on_the_wire(gw: RunningGateway) -> None:
    """A client reading raw SSE sees the error object last and no ``[DONE]``."""
    body = {"model": "test-model", "stream": True, "messages": user("#chunks:10 #drop:3")}
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    response = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=auth, timeout=10)
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.status_code == 200 and len(events) == 4
    assert '"upstream_protocol_error"' in events[-1] and "[DONE]" not in response.text


@pytest.mark.parametrize("native", [False, True], ids=["openai-upstream", "anthropic-upstream"])
def test_a_cut_anthropic_stream_ends_with_an_error_event(
    make_gateway: MakeGateway, gw: RunningGateway, anthropic_upstream: AnthropicUpstream, native: bool
) -> None:
    """``/v1/messages``: the open block is closed, then ``event: error`` instead of ``message_delta``
    / ``message_stop``; the SDK raises. Whether the upstream speaks chat or Messages."""
    served = native_gw(make_gateway, anthropic_upstream) if native else gw
    text, model = ("hello #drop", "claude") if native else ("#chunks:10 #drop:3", "test-model")
    types, err = anthropic_stream(served, text, model)
    assert types[0] == "message_start" and "text" in types and types[-1] == "content_block_stop"
    assert "message_stop" not in types and "message_delta" not in types
    assert err.body["error"]["code"] == "upstream_protocol_error"  # type: ignore[index]
    assert err.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert_billed_failure(only_row(served), "upstream_protocol_error")


# --- 2. the upstream stalls mid-stream ------------------------------------------------------------------


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_a_stalled_stream_ends_with_a_timeout_within_the_read_timeout(
    make_gateway: MakeGateway, upstream: FakeUpstream, client: str
) -> None:
    """The upstream sends two chunks and then nothing for 30 s; ``read_timeout_s`` is 1 s and the
    request's deadline (600 s) is far. The stream ends with upstream_timeout soon after 1 s, and the
    upstream connection is closed (not left to run)."""
    gw = make_gateway(
        providers={"up": {"type": "openai", "base_url": upstream.base_url, "read_timeout_s": READ_TIMEOUT_S}}
    )
    started = time.monotonic()
    if client == "openai":
        received, err = openai_stream(gw, "#chunks:5 #stall:30")
        assert received == ["tok0 ", "tok1 "]
        assert err.body["code"] == "upstream_timeout"  # type: ignore[index]
    else:
        types, aerr = anthropic_stream(gw, "#chunks:5 #stall:30", "test-model")
        assert "text" in types and "message_stop" not in types
        assert aerr.body["error"]["code"] == "upstream_timeout"  # type: ignore[index]
        assert aerr.body["error"]["type"] == "timeout_error"  # type: ignore[index]
    elapsed = time.monotonic() - started
    assert READ_TIMEOUT_S <= elapsed < READ_TIMEOUT_S + SLACK_S, elapsed
    wait_until(lambda: upstream.disconnects == 1, 10)
    assert upstream.completed_streams == 0 and len(upstream.requests) == 1, "a started stream is not retried"
    assert_billed_failure(only_row(gw), "upstream_timeout")


def test_a_stalled_native_anthropic_stream_ends_with_a_timeout(
    make_gateway: MakeGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    gw = native_gw(make_gateway, anthropic_upstream)
    started = time.monotonic()
    types, err = anthropic_stream(gw, "hello #stall:30", "claude")
    assert time.monotonic() - started < READ_TIMEOUT_S + SLACK_S
    assert "text" in types and "message_stop" not in types
    assert err.body["error"]["code"] == "upstream_timeout"  # type: ignore[index]
    assert_billed_failure(only_row(gw), "upstream_timeout")


# --- 3. the upstream sends a data line that is not JSON -------------------------------------------------


def test_a_non_json_data_line_ends_the_stream_with_a_protocol_error(gw: RunningGateway) -> None:
    """Not skipped (the client would lose text without knowing), not an HTML page inside the SSE body:
    the chunk before it, then the error event, no ``[DONE]``."""
    received, err = openai_stream(gw, "#chunks:5 #bad:text")
    assert received == ["tok0 "]
    assert err.body["code"] == "upstream_protocol_error" and "invalid stream chunk" in err.message  # type: ignore[index]
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    body = {"model": "test-model", "stream": True, "messages": user("#chunks:5 #bad:text")}
    response = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=auth, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert "<html" not in response.text and "[DONE]" not in response.text
    assert '"upstream_protocol_error"' in response.text.strip().splitlines()[-1]
    rows = gw.rows()
    assert len(rows) == 2
    for row in rows:
        assert_billed_failure(row, "upstream_protocol_error")


def test_a_non_json_event_from_an_anthropic_upstream_is_a_protocol_error(
    make_gateway: MakeGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    gw = native_gw(make_gateway, anthropic_upstream)
    types, err = anthropic_stream(gw, "hello #bad", "claude")
    assert "text" in types and "message_stop" not in types
    assert err.body["error"]["code"] == "upstream_protocol_error"  # type: ignore[index]
    assert_billed_failure(only_row(gw), "upstream_protocol_error")


# --- 4. the client goes away mid-stream -----------------------------------------------------------------


class Errors(logging.Handler):
    """Records at ERROR and above, from llmgw and from uvicorn (whose loggers do not propagate)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture()
def error_logs() -> Iterator[list[logging.LogRecord]]:
    handler = Errors()
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "litestar")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_a_client_leaving_mid_stream_stops_the_upstream_and_leaves_a_row(
    gw: RunningGateway, upstream: FakeUpstream, error_logs: list[logging.LogRecord], client: str
) -> None:
    """The SDK's stream is closed after a few events; the upstream (400 chunks, 100 ms apart) sees the
    gateway hang up within seconds, the row says client_disconnected with the tokens relayed so far,
    and the logs hold no traceback for it (one ERROR line at most)."""
    text = "#chunks:400 #slow:0.1"  # 40 s: the disconnect is noticed long before it would end
    if client == "openai":
        stream = gw.client(timeout=30).chat.completions.create(model="test-model", messages=user(text), stream=True)
        for n, _ in enumerate(stream):
            if n == 3:
                break
        stream.close()
    else:
        with ant(gw).messages.stream(model="test-model", max_tokens=64, messages=user(text)) as events:
            for n, _ in enumerate(events):
                if n == 5:
                    break
    wait_until(lambda: upstream.disconnects == 1, 10)
    assert upstream.completed_streams == 0
    row = stored_rows(gw)[0]
    assert (row["status"], row["http_status"], row["error_code"]) == ("client_disconnected", 499, "client_disconnected")
    assert 0 < row["completion_tokens"] < 400 and row["usage_estimated"] is True
    assert len(error_logs) <= 1 and not any(r.exc_info for r in error_logs), [r.getMessage() for r in error_logs]


@pytest.mark.parametrize(
    ("api", "stream"),
    [
        ("chat", True),
        ("chat", False),
        ("messages", True),
        ("messages", False),
        ("responses", True),
        ("responses", False),
    ],
)
def test_a_client_leaving_before_the_first_byte_stops_the_upstream(
    gw: RunningGateway, upstream: FakeUpstream, api: str, stream: bool
) -> None:
    """The client gives up while the upstream has not answered yet (a long prefill, a slow model): the
    gateway notices the disconnect, closes the upstream call (it is still in its 30 s ``#sleep``) and
    keeps the request's row, as client_disconnected (499)."""
    text = "#sleep:30 #chunks:200 #slow:0.02"
    path, body = {
        "chat": ("/v1/chat/completions", {"model": "test-model", "stream": stream, "messages": user(text)}),
        "messages": (
            "/v1/messages",
            {"model": "test-model", "stream": stream, "max_tokens": 64, "messages": user(text)},
        ),
        "responses": ("/v1/responses", {"model": "test-model", "stream": stream, "input": text}),
    }[api]
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.post(f"{gw.url}{path}", json=body, headers=auth)
    wait_until(lambda: upstream.disconnects == 1, 10)  # the upstream is still in its 30 s #sleep
    assert upstream.completed_streams == 0
    assert [(r["status"], r["http_status"], r["error_code"]) for r in stored_rows(gw)] == [
        ("client_disconnected", 499, "client_disconnected")
    ]


# --- 5. the upstream refuses before the first byte ------------------------------------------------------

OPENAI_RAISES = {429: openai.RateLimitError, 500: openai.InternalServerError, 503: openai.InternalServerError}
ANTHROPIC_RAISES = {429: anthropic.RateLimitError, 500: anthropic.InternalServerError,
                    503: anthropic.ServiceUnavailableError}  # fmt: skip
#: the upstream's status → (the client's, code, Anthropic error type)
CLIENT_GETS = {429: (429, "upstream_rate_limited", "rate_limit_error"),
               500: (502, "upstream_server_error", "api_error"),
               503: (503, "upstream_unavailable", "overloaded_error")}  # fmt: skip


@pytest.mark.parametrize("status", [429, 500, 503])
def test_an_upstream_error_status_reaches_a_streaming_client_as_its_sdk_exception(
    make_gateway: MakeGateway, upstream: FakeUpstream, status: int
) -> None:
    """Every model in line fails: an HTTP error (not a 200 stream), the SDKs' own exception class."""
    gw = fallback_gw(make_gateway, upstream)
    client_status, code, anthropic_type = CLIENT_GETS[status]
    with pytest.raises(OPENAI_RAISES[status]) as info:
        gw.client().chat.completions.create(model="primary", messages=user(f"#status:{status}"), stream=True)
    assert info.value.status_code == client_status and info.value.code == code
    with (
        pytest.raises(ANTHROPIC_RAISES[status]) as ainfo,
        ant(gw).messages.stream(model="primary", max_tokens=64, messages=user(f"#status:{status}")),
    ):
        pass
    assert ainfo.value.status_code == client_status
    assert ainfo.value.body["error"]["type"] == anthropic_type  # type: ignore[index]
    assert [b["model"] for b in upstream.requests] == ["fake_a", "fake_b"] * 2, "the fallback was tried"
    for row in gw.rows():
        assert (row["status"], row["http_status"], row["error_code"]) == ("error", client_status, code)


@FAILS_BEFORE_THE_FIRST_CHUNK
def test_a_failure_before_the_first_chunk_falls_back_unseen(
    make_gateway: MakeGateway, upstream: FakeUpstream, failure: str
) -> None:
    """``primary`` fails before its first chunk (an error status; or a 200 whose first event is an
    error, or that sends nothing within the read timeout): ``backup`` answers, and the client gets
    one whole, clean stream."""
    gw = fallback_gw(make_gateway, upstream, read_timeout_s=READ_TIMEOUT_S)
    stream = gw.client(timeout=30).chat.completions.create(
        model="primary", messages=user(f"{failure} #only:fake_a"), stream=True
    )
    received = [c.delta.content for chunk in stream for c in chunk.choices if c.delta.content]
    assert received == [f"tok{i} " for i in range(5)]
    assert_served_by_the_fallback(gw, upstream, stream.response.headers)


def test_a_cut_before_the_first_chunk_is_an_http_error_not_an_empty_stream(gw: RunningGateway) -> None:
    """The upstream's 200 came, then the connection closed before any chunk: nothing was sent to the
    client yet, so it gets a 502 the SDK raises at once (a protocol error: not retried elsewhere)."""
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="test-model", messages=user("#drop:0"), stream=True)
    assert info.value.status_code == 502 and info.value.code == "upstream_protocol_error"
    row = only_row(gw)
    assert (row["status"], row["http_status"], row["error_code"]) == ("error", 502, "upstream_protocol_error")


def test_an_error_event_after_chunks_is_not_retried_elsewhere(
    make_gateway: MakeGateway, upstream: FakeUpstream
) -> None:
    gw = fallback_gw(make_gateway, upstream)
    received, err = openai_stream(gw, "#stream-error:2", model="primary")
    assert received == ["tok0 ", "tok1 "] and err.body["code"] == "upstream_server_error"  # type: ignore[index]
    assert "scripted stream error" in err.message
    assert [b["model"] for b in upstream.requests] == ["fake_a"]
    assert_billed_failure(only_row(gw), "upstream_server_error")
