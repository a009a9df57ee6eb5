"""The chat pipeline's APIs answered before Litestar (``llmgw.api.front``): what Litestar's layers did
for these routes still happens, through a real gateway on a port.

Each test names the duty of the front it checks; with that duty removed from ``Front.__call__`` (or
from ``send_stream``) the test fails.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import anthropic
import httpx
import pytest

from llmgw.api import front
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import FakeUpstream

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "test-model", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
BODIES = {
    "/v1/chat/completions": CHAT,
    "/v1/responses": {"model": "test-model", "input": "hi"},
    "/v1/messages": MESSAGE,
}


def wait_until(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("form", ["{}", "{}/", "{}//"])
def test_every_path_form_litestar_would_route_is_answered(gw: RunningGateway, path: str, form: str) -> None:
    """A trailing or doubled slash reaches the same route on Litestar's router: the front reads the
    path the same way, so no POST lands on the routes' Litestar declarations (a 500)."""
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
        response = client.post(form.format(path), json=BODIES[path])
    assert response.status_code == 200, response.text
    assert response.headers["x-llmgw-request-id"]


@pytest.mark.parametrize("path", list(BODIES))
def test_other_methods_are_litestar_405s_with_allow(gw: RunningGateway, path: str) -> None:
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
        response = client.get(path)
    assert response.status_code == 405 and "POST" in response.headers["allow"]
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_body_over_the_limit_is_refused_before_it_is_read(make_gateway: Any) -> None:
    """A declared length over ``server.max_body_bytes`` is a 413 sent while the body is still
    unsent (the client gets it after the headers alone); an undeclared (chunked) body is cut off
    once it passes the limit. Neither leaves a row."""
    gw = make_gateway(server={"max_body_bytes": 2000})
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {ADMIN_KEY}\r\n"
            "content-type: application/json\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(f"{head}content-length: 1000000\r\n\r\n".encode())
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "request body is 1000000 bytes; the limit is 2000 (server.max_body_bytes)" in reply
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(f"{head}transfer-encoding: chunked\r\n\r\n".encode())
        for _ in range(3):
            sock.sendall(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413") and "the limit (server.max_body_bytes)" in reply, reply
    assert gw.rows() == []


def test_the_request_limits_hold_on_the_front_routes(make_gateway: Any) -> None:
    gw = make_gateway(server={"max_headers": 20})
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as client:
        many = {f"x-pad-{i}": "1" for i in range(25)}
        too_many = client.post("/v1/chat/completions", json=CHAT, headers=many)
        nul = client.post("/v1/messages?x=%00", json=MESSAGE)
        host = client.post("/v1/responses", json=BODIES["/v1/responses"], headers={"host": "bad host/"})
    assert too_many.status_code == 431 and too_many.json()["error"]["code"] == "request_headers_too_large"
    assert too_many.headers["connection"] == "close"
    assert nul.status_code == 400 and nul.json()["type"] == "error"  # Anthropic's shape under /v1/messages
    assert host.status_code == 400 and host.json()["error"]["message"] == "Invalid host header"
    assert gw.rows() == []


@pytest.mark.parametrize("path", list(BODIES))
def test_a_bug_is_a_500_in_the_apis_shape_with_its_id_and_row(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """An exception escaping the rendering of an answer is logged with its traceback and answered as
    a 500 in the API's error shape (naming the exception's type, not its message, as any bug in the
    pipeline), carrying the request id; the row says that 500 (tests/test_render_failures.py)."""
    endpoint = front.ENDPOINTS[path]

    def broken(ctx: Any) -> Any:
        events, _ = endpoint.start(ctx)
        return events, lambda completion: 1 / 0

    monkeypatch.setitem(front.ENDPOINTS, path, front.Endpoint(endpoint.api, broken))
    with caplog.at_level(logging.ERROR, "llmgw"), httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as c:
        response = c.post(path, json=BODIES[path])
    assert response.status_code == 500, response.text
    body = response.json()
    error = body["error"]
    assert error["message"] == "internal error: ZeroDivisionError" and "division by zero" not in response.text
    assert (body.get("type") == "error") == (path == "/v1/messages")
    assert response.headers["x-llmgw-request-id"]
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    [row] = gw.rows()
    assert (row["id"], row["http_status"], row["error_code"]) == (
        response.headers["x-llmgw-request-id"],
        500,
        "internal_error",
    )


def test_a_client_leaving_a_quiet_stream_is_noticed_without_a_chunk(gw: RunningGateway, upstream: FakeUpstream) -> None:
    """The upstream goes quiet after its first chunks (a model thinking for a minute): nothing is sent,
    so only the watch on the connection can see the client leave. The upstream call is closed within
    seconds and the row says 499."""
    body = {"model": "test-model", "stream": True,
            "messages": [{"role": "user", "content": "think #chunks:5 #stall:60 #stall-at:2"}]}  # fmt: skip
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=AUTH) as response,
    ):
        request_id = response.headers["x-llmgw-request-id"]
        first = next(response.iter_lines())
        assert first.startswith("data: ")
        time.sleep(0.3)  # into the stall
    wait_until(lambda: upstream.disconnects == 1, 5)
    wait_until(lambda: any(r["id"] == request_id for r in gw.rows()), 5)
    [row] = [r for r in gw.rows() if r["id"] == request_id]
    assert (row["status"], row["http_status"]) == ("client_disconnected", 499)


def test_a_finished_stream_is_not_taken_for_a_disconnect(gw: RunningGateway) -> None:
    """The connection watch ends with the stream: the end of the answer (after which the server says
    "disconnect" to anyone still asking) must not turn a complete stream into a 499. Many streams
    on one kept-alive connection, each a success."""
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    for _ in range(20):
        with client.messages.stream(**MESSAGE) as stream:
            assert stream.get_final_message().stop_reason == "end_turn"
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as http:
        for _ in range(20):
            assert "[DONE]" in http.post("/v1/chat/completions", json={**CHAT, "stream": True}).text
    rows = gw.rows()
    assert len(rows) == 40 and {r["status"] for r in rows} == {"ok"}, {r["status"] for r in rows}
