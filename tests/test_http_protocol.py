"""The coalescing transport under uvicorn's protocol (llmgw.http_protocol), on real sockets.

What is sent is checked by reading it back from the peer; how many ``write`` calls reached the
socket's transport is counted by a thin recorder between the two (the segmentation itself is
not observable from the peer: TCP may merge or split segments either way).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from llmgw.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class Recorder:
    """Forwards to a real transport and counts its writes."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


#: the client's stream writers: one dropped closes its connection (StreamWriter.__del__)
_CLIENTS: list[asyncio.StreamWriter] = []


async def _pair() -> tuple[asyncio.StreamReader, Recorder, CoalescingTransport, asyncio.Server]:
    accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, client = await asyncio.open_connection("127.0.0.1", port)
    _CLIENTS.append(client)
    writer = await accepted
    recorder = Recorder(writer.transport)  # type: ignore[arg-type]
    return reader, recorder, CoalescingTransport(recorder, asyncio.get_running_loop()), server  # type: ignore[arg-type]


def test_writes_of_one_turn_leave_in_two_writes_in_order() -> None:
    asyncio.run(_test_writes_of_one_turn_leave_in_two_writes_in_order())


async def _test_writes_of_one_turn_leave_in_two_writes_in_order() -> None:
    reader, recorder, transport, server = await _pair()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recorder.writes == []  # the turn's first write is held
    transport.write(memoryview(b"body-1"))  # the second goes out at once, with the first
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody-1"]
    transport.write(b"")  # nothing to send: no write of its own
    transport.writelines([b"-body-2", b"-body-3"])  # later writes wait for the end of the turn
    assert len(recorder.writes) == 1
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert recorder.writes[1:] == [b"-body-2-body-3"]
    transport.write(b"|turn 2")  # a new turn: held again, then sent alone when the turn ends
    assert len(recorder.writes) == 2
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert recorder.writes[2:] == [b"|turn 2"]
    transport.write(b"|turn 3a")
    transport.write(b"|turn 3b")  # the new turn's second write: at once again
    assert recorder.writes[3:] == [b"|turn 3a|turn 3b"]
    transport.close()
    assert await reader.read() == b"HTTP/1.1 200 OK\r\n\r\nbody-1-body-2-body-3|turn 2|turn 3a|turn 3b"
    server.close()


def test_close_sends_what_is_held_first() -> None:
    asyncio.run(_test_close_sends_what_is_held_first())


async def _test_close_sends_what_is_held_first() -> None:
    reader, recorder, transport, server = await _pair()
    transport.write(b"last words")
    transport.close()
    assert recorder.writes == [b"last words"]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert recorder.writes == [b"last words"]  # the scheduled flush finds nothing left
    assert await reader.read() == b"last words"
    server.close()


def test_abort_drops_what_is_held() -> None:
    asyncio.run(_test_abort_drops_what_is_held())


async def _test_abort_drops_what_is_held() -> None:
    reader, recorder, transport, server = await _pair()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert recorder.writes == []
    assert await reader.read() == b""  # the connection ended without the held bytes
    server.close()


def test_uvicorn_serves_responses_and_streams_through_it() -> None:
    asyncio.run(_test_uvicorn_serves_responses_and_streams_through_it())


async def _test_uvicorn_serves_responses_and_streams_through_it() -> None:
    """A real uvicorn server on the protocol: keep-alive requests, a body, a chunked stream."""
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for i in range(3):
                await send({"type": "http.response.body", "body": b"chunk%d;" % i, "more_body": True})
                await asyncio.sleep(0)  # some chunks in a turn of their own, some together
                await send({"type": "http.response.body", "body": b"same-turn;", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body = b'{"ok":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=CoalescingHttpToolsProtocol, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):  # one connection, kept alive
                response = await client.post("/", content=b"x")
                assert response.status_code == 200 and response.json() == {"ok": True}
            response = await client.get("/stream")
            assert response.text == "".join(f"chunk{i};same-turn;" for i in range(3))
    finally:
        server.should_exit = True
        await task
