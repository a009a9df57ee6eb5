"""What an attacker or a picky client found at ``llmgw.api.front`` (the chat pipeline's APIs answered
before Litestar), each checked against a real gateway on a port where it can be.

Each test fails with its fix undone (see the docstrings).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import threading
import time
from typing import Any

import httpx
import pytest

from llmgw.api import front
from llmgw.config import parse_config
from tests.conftest import ADMIN_KEY, RunningGateway, base_config
from tests.upstream import FakeUpstream

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("path", ["/v1//messages", "/v1///messages//"])
def test_an_error_under_any_spelling_of_messages_is_in_anthropics_shape(gw: RunningGateway, path: str) -> None:
    """The front answers ``/v1//messages`` as ``/v1/messages`` (as Litestar's router would); its
    errors took the shape of the path as spelled, so they left in OpenAI's shape there. The shape is
    chosen by the path as routed (``front.route_path``)."""
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
        response = client.post(path, content=b"{bad", headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    assert body["request_id"] == response.headers["x-llmgw-request-id"]


def test_behind_a_root_path_messages_errors_are_in_anthropics_shape(upstream: FakeUpstream, tmp_path: Any) -> None:
    """Served under a root path (``uvicorn --root-path /api`` behind a proxy that strips it), the
    scope's path carries the prefix: errors under ``/v1/messages`` (the front) and
    ``/v1/messages/count_tokens`` (Litestar's handler) were chosen by it and left in OpenAI's shape."""
    gw = RunningGateway(parse_config(base_config(upstream.base_url, f"sqlite:///{tmp_path}/root.db")))
    gw.server.config.root_path = "/api"
    gw.start()
    try:
        with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
            assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
            for path in ("/v1/messages", "/v1/messages/count_tokens"):
                response = client.post(path, content=b"{bad", headers={"content-type": "application/json"})
                assert response.status_code == 400, response.text
                assert response.json()["type"] == "error", (path, response.text)
    finally:
        gw.stop()


def test_a_header_value_without_a_latin1_form_does_not_break_the_answer(make_gateway: Any) -> None:
    """A model configured under a Cyrillic name is named in ``x-llmgw-model``: its latin-1 encoding
    raised past the front's error handling, so every answer for it was uvicorn's bare text/plain 500
    (a stream's also lost its row and left the upstream call to the garbage collector). The value
    goes out as UTF-8 octets now, which clients read back."""
    model = {"provider": "up", "upstream_id": "fake-1", "capabilities": ["chat", "streaming"]}
    gw = make_gateway(models={"модель": model})
    plain = {"model": "модель", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
        answer = client.post("/v1/chat/completions", json=plain)
        stream = client.post("/v1/chat/completions", json={**plain, "stream": True})
        message = client.post("/v1/messages", json={**plain, "max_tokens": 5})
    for response in (answer, stream, message):
        assert response.status_code == 200, response.text
        assert response.headers["x-llmgw-model"] == "модель"
    assert "[DONE]" in stream.text
    raw = gw.client().chat.completions.with_raw_response.create(model="модель", messages=plain["messages"])
    assert raw.headers["x-llmgw-model"] == "модель" and raw.parse().choices[0].message.content  # the openai SDK
    rows = gw.rows()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}, rows


def test_a_client_leaving_while_the_stream_head_waits_still_closes_the_stream() -> None:
    """The head of a stream waits when the connection's writing is paused (a client not reading); a
    client leaving then resumes that wait (uvicorn's ``connection_lost``). The disconnect watch was
    started before the head, so it could cancel the request while the pipeline's generator had not
    started: closing it then skips its ``finally`` (no row, the upstream call left open). Driven
    here with the ASGI callables uvicorn passes, the head's send waiting as it does when paused."""
    closed: list[str] = []

    async def chunks() -> Any:
        try:
            yield b"data: 1\n\n"
            await asyncio.sleep(10)  # the upstream quiet
            yield b"data: 2\n\n"
        finally:
            closed.append("finally")  # the pipeline records the 499 and closes the upstream here

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}  # the client is already gone

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(0.05)  # flow.drain(), until connection_lost resumes it

    async def main() -> None:
        await asyncio.wait_for(front.send_stream(send, receive, chunks(), {}), 5)  # type: ignore[arg-type]

    asyncio.run(main())
    assert closed == ["finally"]


def _head(gw: RunningGateway, extra: str) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {ADMIN_KEY}\r\n"
            f"content-type: application/json\r\n{extra}\r\n").encode()  # fmt: skip


def _read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


def test_a_refused_expect_100_continue_closes_the_connection(make_gateway: Any) -> None:
    """``Expect: 100-continue`` with a body over ``server.max_body_bytes``: the 413 goes out before
    the body, so the client never sends it. With the connection kept open the server waited for those
    bytes and took the client's next request on it for them (no answer, ever). The 413 now says
    ``connection: close`` and the server closes it; the next request goes on a new connection."""
    gw = make_gateway(server={"max_body_bytes": 2000})
    with socket.create_connection(("127.0.0.1", gw.port), timeout=3) as sock:
        sock.sendall(_head(gw, "expect: 100-continue\r\ncontent-length: 5000\r\n"))
        reply, closed = _read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert b"100 Continue" not in reply and b"\r\nconnection: close\r\n" in reply.lower(), reply
    assert closed, "the connection stays open, waiting for a body the client was told not to send"


def test_a_body_that_never_comes_is_not_waited_for_forever(make_gateway: Any) -> None:
    """Slowloris: the headers, part of the declared body, then nothing. The request (a coroutine and
    a connection) was held until the client went, on these routes as on Litestar's: uvicorn has no
    read timeout. ``server.request_read_timeout_s`` closes it, with a 408 (tests/test_read_timeout.py)."""
    gw = make_gateway(server={"request_read_timeout_s": 1})
    # a bound, as this is a timeout: 10 s leaves a busy machine room over the 1 s setting (4 s was
    # close: the timeout, a sweep, the 408), and the client keeps the connection for 20 s
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as sock:
        started = time.monotonic()
        sock.sendall(_head(gw, "content-length: 100\r\n") + b'{"model"')
        reply, _ = _read_until_closed(sock)
    assert time.monotonic() - started < 10, "held for as long as the client kept it"
    assert reply.startswith(b"HTTP/1.1 408 "), reply


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_requests_cut_by_the_server_stopping_end_in_the_apis_shape(upstream: FakeUpstream, tmp_path: Any) -> None:
    """SIGTERM, then ``timeout_graceful_shutdown`` later uvicorn cancels the requests still running.
    A non-streamed one got uvicorn's text/plain 500 and a stream a cut connection, each with an
    "Exception in ASGI application" traceback in the log. Now: a 503 ``shutting_down`` in the API's
    shape (the SDKs retry it), and a stream ends with that error as its last event; no traceback.
    The rows are kept and the upstream calls closed, as before."""
    db = tmp_path / "stop.db"
    gw = RunningGateway(parse_config(base_config(upstream.base_url, f"sqlite:///{db}")))
    gw.server.config.timeout_graceful_shutdown = 1
    gw.start()
    stalled = [{"role": "user", "content": "x #chunks:5 #stall:60 #stall-at:2"}]
    slow = [{"role": "user", "content": "x #sleep:60"}]
    model = {"model": "test-model"}
    asks = {
        "chat": ("/v1/chat/completions", {**model, "messages": slow}),
        "messages": ("/v1/messages", {**model, "max_tokens": 9, "messages": slow}),
        "chat stream": ("/v1/chat/completions", {**model, "stream": True, "messages": stalled}),
        "messages stream": ("/v1/messages", {**model, "stream": True, "max_tokens": 9, "messages": stalled}),
    }
    answers: dict[str, httpx.Response | Exception] = {}

    def ask(name: str) -> None:
        path, body = asks[name]
        try:
            with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
                response = client.post(path, json=body)
                answers[name] = response
        except Exception as exc:  # noqa: BLE001 - what the client saw is the result
            answers[name] = exc

    records = _Records()
    logging.getLogger("uvicorn.error").addHandler(records)
    try:
        threads = [threading.Thread(target=ask, args=(name,)) for name in asks]
        for thread in threads:
            thread.start()
        # all four waiting on the upstream before the stop (a fixed 1.5 s sleep assumed they got there by
        # then; on a busy machine a request still on its way would be refused, not cut)
        deadline = time.monotonic() + 60
        while len(upstream.requests) < len(asks):
            assert time.monotonic() < deadline, f"only {len(upstream.requests)} reached the upstream"
            time.sleep(0.02)
        gw.stop()
        for thread in threads:
            thread.join(10)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(records)
    for name in ("chat", "messages"):
        response = answers[name]
        assert isinstance(response, httpx.Response) and response.status_code == 503, (name, response)
        error = response.json()["error"]
        assert error["message"].startswith("the gateway is shutting down"), error
        assert (response.json().get("type") == "error") == (name == "messages")
    chat_stream, messages_stream = answers["chat stream"], answers["messages stream"]
    assert isinstance(chat_stream, httpx.Response) and isinstance(messages_stream, httpx.Response), answers
    assert '"code":"shutting_down"' in chat_stream.text.splitlines()[-2] and "[DONE]" not in chat_stream.text
    assert "event: error" in messages_stream.text and "shutting down" in messages_stream.text
    assert not [
        r.getMessage() for r in records.records if r.levelno >= logging.ERROR and "Cancel" not in r.getMessage()
    ]
    assert upstream.disconnects >= 4
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT endpoint, http_status FROM requests").fetchall()
    assert len(rows) == 4, rows
