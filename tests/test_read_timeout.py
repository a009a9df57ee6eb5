"""The read timeout of llmgw's HTTP protocol (``server.request_read_timeout_s``, llmgw.http_protocol):
slow or stalled clients against a real gateway on a port, over raw sockets.

uvicorn has no timeout for a request in progress, nor for a new connection that sends nothing: a
client that stalled held its connection (and, past the headers, a request task) for as long as it
liked. The tests that a stalled client is closed fail without the timeout; the others check that it
reaches no further than the request's arrival (each fails with the clock not stopped when the body
is in, ``on_message_complete``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmgw.config import ConfigError, parse_config
from llmgw.http_protocol import CoalescingHttpToolsProtocol, _sweepers
from tests.conftest import ADMIN_KEY, RunningGateway, base_config, free_port
from tests.upstream import FakeUpstream

TIMEOUT = 1.0  # the sweep runs every TIMEOUT / 4
#: a bound on a close by the read timeout: the timeout, a sweep, and room for a busy 2-core machine
#: (the timeout + a sweep + 1 s was close); the clients keep the connection 10 s longer, so one held
#: open still fails
CLOSED_BY = 10.0
#: past the timeout and a sweep, well within uvicorn's 5 s keep-alive
IDLE_S = TIMEOUT + TIMEOUT / 4 + 1.0
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture()
def slow_gw(make_gateway: Any) -> RunningGateway:
    return make_gateway(server={"request_read_timeout_s": TIMEOUT})  # type: ignore[no-any-return]


def _head(path: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {ADMIN_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {length}\r\n\r\n").encode()  # fmt: skip


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float | None]:
    """What the server sent, and when it closed (None: still open at the socket's timeout)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, None
    return data, time.monotonic()


def _read_response(sock: socket.socket) -> bytes:
    """One response with a ``content-length`` off a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"!closed"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))[15:])
    while len(body) < length:
        body += sock.recv(65536) or b"!closed"
    return head + b"\r\n\r\n" + body


def _connect(gw: RunningGateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=CLOSED_BY + 10)


def _assert_408(reply: bytes) -> None:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), reply
    assert b"\r\nconnection: close" in head.lower(), reply
    assert json.loads(body)["error"]["code"] == "request_timeout", reply


def test_a_connection_that_sends_nothing_is_closed(slow_gw: RunningGateway) -> None:
    with _connect(slow_gw) as sock:
        started = time.monotonic()
        reply, closed = _read_until_closed(sock)
    assert closed is not None, "a connection that sends nothing is held open"
    assert closed - started < CLOSED_BY and reply == b"", reply  # closed as an idle connection is: no 408


def test_partial_headers_then_nothing_get_a_408_and_are_closed(slow_gw: RunningGateway) -> None:
    with _connect(slow_gw) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthor")
        reply, closed = _read_until_closed(sock)
    assert closed is not None, "half a head is waited for forever"
    assert closed - started < CLOSED_BY
    _assert_408(reply)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/admin/keys"])  # the front, and a Litestar route
def test_a_body_that_stops_coming_gets_a_408_and_runs_nothing(
    slow_gw: RunningGateway, upstream: FakeUpstream, path: str
) -> None:
    with _connect(slow_gw) as sock:
        started = time.monotonic()
        sock.sendall(_head(path, 100) + b'{"model": "test-model", "messages"')
        reply, closed = _read_until_closed(sock)
    assert closed is not None, "the request task waits for the rest of the body forever"
    assert closed - started < CLOSED_BY
    _assert_408(reply)
    assert upstream.requests == [] and slow_gw.rows() == []  # the pipeline never ran
    with httpx.Client(base_url=slow_gw.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        assert client.get("/admin/keys").status_code == 200  # no key was made either


def test_a_slow_but_steady_client_is_served(make_gateway: Any) -> None:
    """Two requests on one connection, each sent in pieces over 3 s of a 5 s timeout: the clock is
    per request (from its first byte), not per connection (6 s in all). A 1 s timeout paced over
    0.6 s left a busy machine 0.4 s of room."""
    steady_timeout = 5.0
    gw = make_gateway(server={"request_read_timeout_s": steady_timeout})
    body = json.dumps({"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = _head("/v1/chat/completions", len(body)) + body
    pieces = [request[i : i + len(request) // 6 + 1] for i in range(0, len(request), len(request) // 6 + 1)]
    with _connect(gw) as sock:
        for _ in range(2):
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(steady_timeout * 0.6 / len(pieces))
            reply = _read_response(sock)
            assert reply.startswith(b"HTTP/1.1 200 ") and b'"chat.completion"' in reply, reply


def test_a_long_stream_is_not_cut(slow_gw: RunningGateway) -> None:
    """The body is in: answering may take as long as it takes."""
    ask = {"model": "test-model", "stream": True, "messages": [{"role": "user", "content": "x #chunks:8 #slow:0.4"}]}
    started = time.monotonic()
    with httpx.Client(base_url=slow_gw.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as client:
        response = client.post("/v1/chat/completions", json=ask)
    assert time.monotonic() - started > TIMEOUT + TIMEOUT / 4  # the read timeout would have cut it
    assert response.status_code == 200 and response.text.rstrip().endswith("data: [DONE]"), response.text
    assert [row["status"] for row in slow_gw.rows()] == ["ok"]


def test_a_request_pipelined_behind_a_long_answer_is_timed_from_when_it_is_read(slow_gw: RunningGateway) -> None:
    """A streamed request, and half the head of a next one sent right behind it: the server reads
    that head only once the stream is answered, so the stream is not cut (nor a 408 written into
    it) when the second request's clock runs out; that request is timed out after the stream."""
    ask = {"model": "test-model", "stream": True, "messages": [{"role": "user", "content": "x #chunks:8 #slow:0.4"}]}
    body = json.dumps(ask).encode()
    with _connect(slow_gw) as sock:
        sock.settimeout(15)
        sock.sendall(_head("/v1/chat/completions", len(body)) + body + b"POST /v1/chat/completions HTTP/1.1\r\nho")
        reply, closed = _read_until_closed(sock)
    assert closed is not None
    stream, _, rest = reply.partition(b"data: [DONE]")
    assert stream.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408" not in stream, reply
    assert b"HTTP/1.1 408 " in rest, reply


def test_an_idle_kept_alive_connection_is_reused_after_the_read_timeout(slow_gw: RunningGateway) -> None:
    """Between requests the connection is idle, not late: uvicorn's ``timeout_keep_alive`` (5 s) is
    what bounds that, as before."""
    with httpx.Client(base_url=slow_gw.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as client:
        first = client.get("/admin/keys")
        time.sleep(IDLE_S)
        second = client.get("/admin/keys")
        assert first.status_code == second.status_code == 200
        assert first.extensions["network_stream"] is second.extensions["network_stream"]  # the same connection


def test_the_sweeper_stops_when_no_request_is_arriving(slow_gw: RunningGateway) -> None:
    """One timer per server, armed only while a request is arriving: an idle server runs nothing."""
    with _connect(slow_gw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sweeper = _sweepers[slow_gw.server.server_state]
        deadline = time.monotonic() + CLOSED_BY
        while sweeper.armed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sweeper.armed


def test_zero_or_null_disables_it(upstream: FakeUpstream) -> None:
    config = base_config(upstream.base_url, "sqlite:///:memory:")
    assert parse_config(config).server.request_read_timeout_s == 30.0
    for off in (0, None):
        server = parse_config({**config, "server": {"request_read_timeout_s": off}}).server
        assert CoalescingHttpToolsProtocol.with_read_timeout(server.request_read_timeout_s).read_timeout_s is None
    with pytest.raises(ConfigError):
        parse_config({**config, "server": {"request_read_timeout_s": -1}})
    assert CoalescingHttpToolsProtocol.with_read_timeout(0).read_timeout_s is None
    assert CoalescingHttpToolsProtocol.with_read_timeout(None).read_timeout_s is None
    assert CoalescingHttpToolsProtocol.with_read_timeout(7.5).read_timeout_s == 7.5


def test_llmgw_serve_applies_it(upstream: FakeUpstream, tmp_path: Path) -> None:
    """``llmgw serve`` (uvloop, the config file's knob): a stalled body gets the 408 (in Anthropic's shape on
    the Messages API), a request is served."""
    config = base_config(
        upstream.base_url, f"sqlite:///{tmp_path}/serve.db", server={"request_read_timeout_s": TIMEOUT}
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llmgw",
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        for _ in range(900):  # importing torch and friends takes a while on a busy machine
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("llmgw serve did not start")
        with socket.create_connection(("127.0.0.1", port), timeout=CLOSED_BY + 10) as sock:
            started = time.monotonic()
            sock.sendall(_head("/v1/chat/completions", 100) + b'{"model"')
            reply, closed = _read_until_closed(sock)
        assert closed is not None and closed - started < CLOSED_BY, "llmgw serve waits for the body forever"
        _assert_408(reply)
        with socket.create_connection(("127.0.0.1", port), timeout=CLOSED_BY + 10) as sock:
            sock.sendall(_head("/v1/messages", 100) + b'{"model"')
            reply, _ = _read_until_closed(sock)
        assert json.loads(reply.partition(b"\r\n\r\n")[2])["type"] == "error", reply  # Anthropic's shape
        chat = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat, headers=AUTH, timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1//messages/", "/v1/messages/count_tokens"])
def test_the_408_is_in_the_shape_of_the_api_the_path_names(slow_gw: RunningGateway, path: str) -> None:
    """An Anthropic SDK reads ``{"type": "error", "error": {...}}``: a stalled body on the Messages
    API gets its 408 in that shape, as every other error of that path (OpenAI's everywhere else)."""
    with _connect(slow_gw) as sock:
        sock.sendall(_head(path, 100) + b'{"model": "test-model", "messages"')
        reply, closed = _read_until_closed(sock)
    assert closed is not None
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"\r\nconnection: close" in head.lower(), reply
    error = json.loads(body)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error", error
    assert "request_read_timeout_s" in error["error"]["message"], error
