"""``POST /v1/responses`` when something goes wrong: the fault matrix of ``tests.test_stream_faults``
(a real gateway on a port, the fake upstream's scripted failures) with the official ``openai`` SDK's
``client.responses`` as the client.

The Responses API reports a stream that broke as events, not as an exception: an ``error`` event
then ``response.failed`` (docs/api.md, ``/v1/responses``, Streaming). The SDK yields both (it raises
only for Chat Completions' ``data: {"error": ...}``) and its stream helper's ``get_final_response()``
raises, since no ``response.completed`` came. So a stream that broke must never end with
``response.completed``; failures before the first event are HTTP errors the SDK raises as its own
exception classes, after the fallback model was tried; every request leaves its row.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseErrorEvent

from tests import test_stream_faults
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.test_stream_faults import (
    CLIENT_GETS,
    FAILS_BEFORE_THE_FIRST_CHUNK,
    OPENAI_RAISES,
    PRICE,
    READ_TIMEOUT_S,
    SLACK_S,
    MakeGateway,
    assert_billed_failure,
    assert_served_by_the_fallback,
    fallback_gw,
    only_row,
    stored_rows,
    wait_until,
)
from tests.upstream import FakeUpstream

error_logs = test_stream_faults.error_logs  # the fixture: records at ERROR and above
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


def events_of(gw: RunningGateway, text: str, model: str = "test-model") -> list[Any]:
    """Every event of a streamed answer, as the SDK yields them (it raises on none of them)."""
    return list(gw.client(timeout=30).responses.create(model=model, input=text, stream=True))


def deltas(events: list[Any]) -> list[str]:
    return [e.delta for e in events if e.type == "response.output_text.delta"]


def assert_failed(events: list[Any], code: str) -> tuple[ResponseErrorEvent, Response]:
    """The stream ended as docs/api.md says a broken one does: ``error`` then ``response.failed``
    (both with ``code``), never ``response.completed``; every item it opened closed ``incomplete``;
    ``usage`` null, since the upstream reported none."""
    kinds = [e.type for e in events]
    assert "response.completed" not in kinds and kinds[-2:] == ["error", "response.failed"], kinds
    assert kinds[0] == "response.created"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    error, failed = events[-2], events[-1].response
    assert error.code == code and error.message, error
    assert failed.status == "failed" and failed.error is not None and failed.error.code == code, failed
    assert all(e.item.status == "incomplete" for e in events if e.type == "response.output_item.done")
    assert failed.usage is None, "the upstream reported no usage before it stopped: not zeros (the row bills)"
    return error, failed


def raw_events(gw: RunningGateway, text: str) -> tuple[httpx.Response, list[str]]:
    """The stream on the wire, read with httpx: the response and its ``event:`` names in order."""
    body = {"model": "test-model", "stream": True, "input": text}
    response = httpx.post(f"{gw.url}/v1/responses", json=body, headers=AUTH, timeout=10)
    kinds = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]
    return response, kinds


# --- 1. the upstream closes the connection mid-stream --------------------------------------------------


def test_a_cut_stream_ends_failed_and_is_not_retried_elsewhere(
    make_gateway: MakeGateway, upstream: FakeUpstream
) -> None:
    """Three deltas reach the client, then ``error`` and ``response.failed`` (never a completed
    response); the fallback model is not tried (the client already has text); the row has the
    failure and the tokens produced so far."""
    gw = fallback_gw(make_gateway, upstream)
    events = events_of(gw, "#chunks:10 #drop:3", model="primary")
    error, failed = assert_failed(events, "upstream_protocol_error")
    assert deltas(events) == ["tok0 ", "tok1 ", "tok2 "]
    assert "closed it before the answer was complete" in error.message, error.message
    assert failed.output_text == "tok0 tok1 tok2 "
    assert [b["model"] for b in upstream.requests] == ["fake_a"]
    row = only_row(gw)
    assert_billed_failure(row, "upstream_protocol_error")
    assert row["api"] == "responses" and row["model_used"] == "primary" and not row["meta"].get("fallbacks")


def test_a_cut_stream_fails_the_sdk_helper_and_ends_failed_on_the_wire(gw: RunningGateway) -> None:
    """``client.responses.stream(...)``: ``get_final_response()`` raises (no ``response.completed``);
    a client reading raw SSE sees ``response.failed`` last."""
    with (
        gw.client(timeout=30).responses.stream(model="test-model", input="#chunks:10 #drop:3") as stream,
        pytest.raises(RuntimeError, match=r"response\.completed"),
    ):
        stream.get_final_response()
    response, kinds = raw_events(gw, "#chunks:10 #drop:3")
    assert response.status_code == 200 and kinds[-2:] == ["error", "response.failed"], kinds
    assert "response.completed" not in kinds and "[DONE]" not in response.text
    for row in gw.rows():
        assert_billed_failure(row, "upstream_protocol_error")


def test_an_error_event_after_chunks_ends_failed_and_is_not_retried_elsewhere(
    make_gateway: MakeGateway, upstream: FakeUpstream
) -> None:
    gw = fallback_gw(make_gateway, upstream)
    events = events_of(gw, "#stream-error:2", model="primary")
    error, _ = assert_failed(events, "upstream_server_error")
    assert deltas(events) == ["tok0 ", "tok1 "] and "scripted stream error" in error.message
    assert [b["model"] for b in upstream.requests] == ["fake_a"]
    assert_billed_failure(only_row(gw), "upstream_server_error")


# --- 2. the upstream stalls mid-stream ------------------------------------------------------------------


def test_a_stalled_stream_ends_with_a_timeout_within_the_read_timeout(
    make_gateway: MakeGateway, upstream: FakeUpstream
) -> None:
    """Two deltas, then 30 s of nothing; ``read_timeout_s`` is 1 s: ``upstream_timeout`` soon after,
    and the upstream connection is closed, not left to run."""
    gw = make_gateway(
        providers={"up": {"type": "openai", "base_url": upstream.base_url, "read_timeout_s": READ_TIMEOUT_S}}
    )
    started = time.monotonic()
    events = events_of(gw, "#chunks:5 #stall:30")
    elapsed = time.monotonic() - started
    assert_failed(events, "upstream_timeout")
    assert deltas(events) == ["tok0 ", "tok1 "]
    assert READ_TIMEOUT_S <= elapsed < READ_TIMEOUT_S + SLACK_S, elapsed
    wait_until(lambda: upstream.disconnects == 1, 10)
    assert upstream.completed_streams == 0 and len(upstream.requests) == 1, "a started stream is not retried"
    assert_billed_failure(only_row(gw), "upstream_timeout")


# --- 3. the upstream sends a data line that is not JSON -------------------------------------------------


def test_a_non_json_data_line_ends_the_stream_with_a_protocol_error(gw: RunningGateway) -> None:
    """Not skipped (the client would lose text without knowing it), not an HTML page in the events:
    the delta before it, then the protocol error."""
    events = events_of(gw, "#chunks:5 #bad:text")
    error, failed = assert_failed(events, "upstream_protocol_error")
    assert deltas(events) == ["tok0 "] and "invalid stream chunk" in error.message
    assert failed.output_text == "tok0 "
    response, kinds = raw_events(gw, "#chunks:5 #bad:text")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "<html" not in response.text and kinds[-1] == "response.failed"
    rows = gw.rows()
    assert len(rows) == 2
    for row in rows:
        assert_billed_failure(row, "upstream_protocol_error")


# --- 1-3 with an upstream that speaks Responses (``responses: native``) ---------------------------------


@pytest.mark.parametrize(
    ("fault", "code"),
    [("#drop", "upstream_protocol_error"), ("#bad", "upstream_protocol_error"), ("#stall:30", "upstream_timeout")],
    ids=["cut", "non-json-line", "stall"],
)
def test_a_native_responses_upstream_failing_mid_stream_ends_failed(
    make_gateway: MakeGateway, upstream: FakeUpstream, fault: str, code: str
) -> None:
    """The upstream's own Responses stream cut, sending a line that is not JSON, or stalling past
    ``read_timeout_s`` after its text deltas: the client gets the text, then the same classified
    failure as with a chat upstream, within the read timeout; the row bills the text received."""
    provider = {"type": "openai", "base_url": upstream.base_url, "responses": "native", "max_retries": 0,
                "read_timeout_s": READ_TIMEOUT_S}  # fmt: skip
    model = {"provider": "resp", "upstream_id": "fake-r", "capabilities": ["chat", "streaming"], "price": PRICE}
    gw = make_gateway(providers={"resp": provider}, models={"native-model": model}, routes={"default": {}})
    started = time.monotonic()
    events = events_of(gw, f"Hello {fault}", model="native-model")
    assert time.monotonic() - started < READ_TIMEOUT_S + SLACK_S
    assert_failed(events, code)
    assert "".join(deltas(events)) == "native: 1 items" and upstream.paths == ["/v1/responses"]
    if fault.startswith("#stall"):
        wait_until(lambda: upstream.disconnects == 1, 10)  # the stalled upstream call is closed, not left to run
    assert_billed_failure(only_row(gw), code)


# --- 4. the client goes away --------------------------------------------------------------------------


@pytest.mark.parametrize("helper", [False, True], ids=["create-stream", "stream-helper"])
def test_a_client_leaving_mid_stream_stops_the_upstream_and_leaves_a_row(
    gw: RunningGateway, upstream: FakeUpstream, error_logs: list[logging.LogRecord], helper: bool
) -> None:
    """The SDK's stream is closed after a few events; the upstream (400 chunks, 100 ms apart) sees the
    gateway hang up within seconds; the row says client_disconnected (499) with the tokens relayed so
    far; the logs hold no traceback (one ERROR line at most)."""
    client, text = gw.client(timeout=30), "#chunks:400 #slow:0.1"  # 40 s
    if helper:
        with client.responses.stream(model="test-model", input=text) as events:
            for n, _ in enumerate(events):
                if n == 6:
                    break
    else:
        stream = client.responses.create(model="test-model", input=text, stream=True)
        for n, _ in enumerate(stream):
            if n == 6:
                break
        stream.close()
    wait_until(lambda: upstream.disconnects == 1, 10)
    assert upstream.completed_streams == 0
    [row] = stored_rows(gw)
    assert (row["status"], row["http_status"], row["error_code"]) == ("client_disconnected", 499, "client_disconnected")
    assert 0 < row["completion_tokens"] < 400 and row["usage_estimated"] is True and row["api"] == "responses"
    assert len(error_logs) <= 1 and not any(r.exc_info for r in error_logs), [r.getMessage() for r in error_logs]


# --- 5. the upstream refuses before the first byte ------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_an_upstream_error_status_reaches_a_streaming_client_as_its_sdk_exception(
    make_gateway: MakeGateway, upstream: FakeUpstream, status: int
) -> None:
    """Every model in line fails before its first byte: an HTTP error (not a 200 stream of events),
    raised as the SDK's own class, by ``create(stream=True)`` and by the stream helper alike."""
    gw = fallback_gw(make_gateway, upstream)
    client_status, code, _ = CLIENT_GETS[status]
    client = gw.client(timeout=30)
    with pytest.raises(OPENAI_RAISES[status]) as info:
        client.responses.create(model="primary", input=f"#status:{status}", stream=True)
    assert info.value.status_code == client_status and info.value.code == code
    with (
        pytest.raises(OPENAI_RAISES[status]) as helper,
        client.responses.stream(model="primary", input=f"#status:{status}"),
    ):
        pass
    assert helper.value.status_code == client_status and helper.value.code == code
    assert [b["model"] for b in upstream.requests] == ["fake_a", "fake_b"] * 2, "the fallback was tried"
    rows = gw.rows()
    assert len(rows) == 2
    for row in rows:
        assert (row["status"], row["http_status"], row["error_code"]) == ("error", client_status, code)


@FAILS_BEFORE_THE_FIRST_CHUNK
def test_a_failure_before_the_first_chunk_falls_back_unseen(
    make_gateway: MakeGateway, upstream: FakeUpstream, failure: str
) -> None:
    """``primary`` fails before its first chunk; ``backup`` answers and the client gets one whole
    stream of events, ending ``response.completed``."""
    gw = fallback_gw(make_gateway, upstream, read_timeout_s=READ_TIMEOUT_S)
    stream = gw.client(timeout=30).responses.create(model="primary", input=f"{failure} #only:fake_a", stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed" and "error" not in kinds, kinds
    assert deltas(events) == [f"tok{i} " for i in range(5)]
    assert events[-1].response.output_text == "tok0 tok1 tok2 tok3 tok4 "
    assert_served_by_the_fallback(gw, upstream, stream.response.headers)


def test_a_cut_before_the_first_chunk_is_an_http_error_not_an_empty_stream(gw: RunningGateway) -> None:
    """The upstream's 200 came, then the connection closed before any chunk: no event was sent yet,
    so the client gets a 502 the SDK raises at once, not a ``response.created`` then a failure."""
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().responses.create(model="test-model", input="#drop:0", stream=True)
    assert info.value.status_code == 502 and info.value.code == "upstream_protocol_error"
    row = only_row(gw)
    assert (row["status"], row["http_status"], row["error_code"]) == ("error", 502, "upstream_protocol_error")


# --- 6. not streamed ----------------------------------------------------------------------------------

#: the upstream's failure → the SDK's exception, the client's status, code and error type (docs/api.md,
#: Errors), whether ``backup`` is tried
NOT_STREAMED = {
    "#status:429": (openai.RateLimitError, 429, "upstream_rate_limited", "rate_limit_error", True),
    "#status:500": (openai.InternalServerError, 502, "upstream_server_error", "upstream_error", True),
    "#status:503": (openai.InternalServerError, 503, "upstream_unavailable", "upstream_error", True),
    "#sleep:3": (openai.InternalServerError, 504, "upstream_timeout", "upstream_error", True),
    "#drop": (openai.InternalServerError, 502, "upstream_protocol_error", "upstream_error", False),
}


@pytest.mark.parametrize("failure", list(NOT_STREAMED), ids=["429", "500", "503", "timeout", "cut-body"])
def test_a_failed_non_streamed_response_is_an_openai_error(
    make_gateway: MakeGateway, upstream: FakeUpstream, failure: str
) -> None:
    """OpenAI's error shape with the right status (the SDK's class), the fallback tried when the
    failure is worth another model (a cut body is a protocol error: never retried); one row."""
    raises, status, code, kind, falls_back = NOT_STREAMED[failure]
    gw = fallback_gw(make_gateway, upstream, read_timeout_s=READ_TIMEOUT_S)
    with pytest.raises(raises) as info:
        gw.client(timeout=30).responses.create(model="primary", input=failure)
    assert info.value.status_code == status and info.value.code == code
    body: Any = info.value.body
    assert set(body) >= {"message", "type", "code", "param"} and body["type"] == kind, body
    assert info.value.response.headers["x-llmgw-request-id"]
    assert [b["model"] for b in upstream.requests] == (["fake_a", "fake_b"] if falls_back else ["fake_a"])
    row = only_row(gw)
    assert (row["status"], row["http_status"], row["error_code"], row["api"]) == ("error", status, code, "responses")
