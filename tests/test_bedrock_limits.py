"""Bedrock answers past the size caps (``max_response_bytes``, ``max_event_bytes``, ``max_stream_bytes``).

A real gateway on a port with the openai SDK as client, and boto3/botocore (real urllib3, real
parsers) calling a local server that speaks Bedrock's wire format through ``endpoint_url``: JSON for
Converse, AWS event-stream frames for ConverseStream, in the writes a test gives. An answer over a
cap never ends on its own (``hold``): reading on, the gateway would wait for it, so a missing cap
shows as a timeout (or a success), not as ``upstream_response_too_large``. The server records the
client going away: the connection must be closed, not left open with the body unread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from aiohttp import web

from llmgw.errors import UpstreamError
from llmgw.providers.bedrock_caps import _FrameLengths
from tests.conftest import RunningGateway
from tests.test_bedrock import STREAM_HEADERS, call, event, provider
from tests.test_upstream_limits import TOO_LARGE, stream_error_code
from tests.test_upstream_protocol_audit import assert_error_row, read_openai, user
from tests.upstream import StubServer

MakeGateway = Callable[..., RunningGateway]
CAPS = {"max_response_bytes": 20_000, "max_event_bytes": 4_000, "max_stream_bytes": 60_000}
JSON = {"content-type": "application/json"}
USAGE = {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}


@dataclass
class Answer:
    """The status, headers and body writes of the next answers; ``length``: the ``Content-Length``
    sent (else chunked); ``hold``: after the writes, wait for the client to go away, never end."""

    pieces: list[bytes]
    headers: dict[str, str]
    length: int | None = None
    hold: bool = False
    reset: bool = False  # after the writes, close the connection mid-answer


class BedrockUpstream(StubServer):
    thread_name = "bedrock-upstream"

    def __init__(self) -> None:
        super().__init__()
        self.answer = Answer([b"{}"], JSON)
        self.cut = threading.Event()  # a client went away before its answer ended

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/converse", self.serve)
        app.router.add_post("/model/{model}/converse-stream", self.serve)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        answer = self.answer
        response = web.StreamResponse(headers=answer.headers)
        if answer.length is not None:
            response.content_length = answer.length
        try:
            await response.prepare(request)
            for piece in answer.pieces:
                await response.write(piece)
            if answer.reset and request.transport is not None:
                request.transport.close()
                return response
            if answer.hold:
                await asyncio.Event().wait()  # until the handler is cancelled: the connection closed
            await response.write_eof()
        except BaseException:  # a write to a closed connection, or cancelled by its close
            self.cut.set()
            raise
        return response


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockUpstream]:
    server = BedrockUpstream().start()
    yield server
    server.stop()


@pytest.fixture()
def bgw(make_gateway: MakeGateway, bedrock: BedrockUpstream) -> RunningGateway:
    """Model ``claude`` on a Bedrock provider at the local server: small caps, no retries."""
    return bedrock_gateway(make_gateway, bedrock, read_timeout_s=5)


def bedrock_gateway(make_gateway: MakeGateway, bedrock: BedrockUpstream, read_timeout_s: float) -> RunningGateway:
    bedrock.requests.clear()
    bedrock.cut.clear()
    aws = {"type": "bedrock", "endpoint_url": f"http://127.0.0.1:{bedrock.port}", "access_key_id": "AKIATEST",
           "secret_access_key": "secret", "max_retries": 0, "read_timeout_s": read_timeout_s, **CAPS}  # fmt: skip
    return make_gateway(
        providers={"aws": aws, "up": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        models={
            "claude": {
                "provider": "aws",
                "upstream_id": "anthropic.claude-3-haiku",
                "capabilities": ["chat", "streaming"],
            },
            "test-model": {"provider": "up", "upstream_id": "x"},
        },
        routes={"default": {"default_model": "claude"}},
    )


def converse(text: str) -> bytes:
    message = {"role": "assistant", "content": [{"text": text}]}
    return json.dumps({"output": {"message": message}, "stopReason": "end_turn", "usage": USAGE}).encode()


def delta(text: str) -> bytes:
    return event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})


def writes(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def chat(gw: RunningGateway) -> Any:
    return gw.client(timeout=30).chat.completions.create(model="claude", messages=user())


def assert_too_large_502(info: Any, gw: RunningGateway) -> None:
    assert (info.value.status_code, info.value.body["code"]) == (502, TOO_LARGE), info.value.body
    assert_error_row(gw, TOO_LARGE, 502)


def test_a_converse_answer_over_max_response_bytes_is_refused_by_its_content_length(
    bgw: RunningGateway, bedrock: BedrockUpstream
) -> None:
    """Under the cap: read as before. Over it: refused by its ``Content-Length`` before a byte is
    read (the server sends 100 bytes of it, then nothing)."""
    body = converse("x" * 15_000)
    bedrock.answer = Answer([body], JSON, length=len(body))
    assert chat(bgw).choices[0].message.content == "x" * 15_000
    body = converse("x" * 30_000)
    bedrock.answer = Answer([body[:100]], JSON, length=len(body), hold=True)
    with pytest.raises(openai.APIStatusError) as info:
        chat(bgw)
    assert (info.value.status_code, info.value.body["code"]) == (502, TOO_LARGE), info.value.body  # type: ignore[index]
    assert [(r["status"], r["error_code"]) for r in bgw.rows()] == [("error", TOO_LARGE), ("ok", None)]
    assert bedrock.cut.wait(10), "the connection was left open"


def test_a_chunked_converse_answer_is_cut_at_max_response_bytes(bgw: RunningGateway, bedrock: BedrockUpstream) -> None:
    """No ``Content-Length``: counted as it arrives, not read whole first."""
    bedrock.answer = Answer(writes(converse("y" * 200_000))[:-1], JSON, hold=True)
    with pytest.raises(openai.APIStatusError) as info:
        chat(bgw)
    assert_too_large_502(info, bgw)
    assert bedrock.cut.wait(10), "the connection was left open"


@pytest.mark.parametrize("where", ["first", "mid-stream"])
def test_a_converse_stream_event_over_max_event_bytes_fails_the_stream(
    bgw: RunningGateway, bedrock: BedrockUpstream, where: str
) -> None:
    """The event arrives in small writes (botocore's buffer would have joined them): refused by the
    length in its prelude. First: a 502 in the client's shape; after text: the stream's error event."""
    big = delta("z" * 10_000)
    start = event("messageStart", {"role": "assistant"})
    frames = [big] if where == "first" else [start, delta("Hal"), big]
    bedrock.answer = Answer(writes(b"".join(frames)), STREAM_HEADERS, hold=True)
    if where == "first":
        with pytest.raises(openai.APIStatusError) as info:
            list(bgw.client(timeout=30).chat.completions.create(model="claude", messages=user(), stream=True))
        assert_too_large_502(info, bgw)
    else:
        text, code = stream_error_code(bgw, "claude")
        assert (text, code) == ("Hal", TOO_LARGE)
        assert_error_row(bgw, TOO_LARGE, 200)
    assert bedrock.cut.wait(10), "the connection was left open"


def test_an_endless_converse_stream_is_cut_at_max_stream_bytes(bgw: RunningGateway, bedrock: BedrockUpstream) -> None:
    """Small events, each under ``max_event_bytes``, that never end: cut at ``max_stream_bytes``.
    A whole stream under the caps, in the same writes, is read as before."""
    end = [event("messageStop", {"stopReason": "end_turn"}), event("metadata", {"usage": USAGE, "metrics": {}})]
    frames = [event("messageStart", {"role": "assistant"})] + [delta("ab")] * 100 + end
    bedrock.answer = Answer(writes(b"".join(frames)), STREAM_HEADERS)
    assert read_openai(bgw, "claude") == "ab" * 100
    frames = [event("messageStart", {"role": "assistant"})] + [delta("ab")] * 1000
    assert len(b"".join(frames)) > 2 * CAPS["max_stream_bytes"]
    bedrock.answer = Answer(writes(b"".join(frames)), STREAM_HEADERS, hold=True)
    text, code = stream_error_code(bgw, "claude")
    assert code == TOO_LARGE and 0 < len(text) < 2 * 1000
    rows = [(r["status"], r["error_code"], r["http_status"]) for r in bgw.rows()]
    assert rows == [("error", TOO_LARGE, 200), ("ok", None, 200)]
    assert bedrock.cut.wait(10), "the connection was left open"


def test_the_refused_answer_s_connection_is_closed_at_once(bedrock: BedrockUpstream) -> None:
    """Closed by the refusal itself, not when the garbage collector frees the response: here the
    error (whose traceback holds the response) is still alive when the server sees the close."""

    async def main() -> None:
        p = provider(endpoint_url=f"http://127.0.0.1:{bedrock.port}", max_retries=0, read_timeout_s=5, **CAPS)
        await p.start()
        try:
            with pytest.raises(UpstreamError) as info:
                await p.complete(call())
            assert info.value.code == TOO_LARGE
            assert await asyncio.to_thread(bedrock.cut.wait, 10), "the connection was left open"
        finally:
            await p.aclose()

    bedrock.cut.clear()
    body = converse("y" * 30_000)
    bedrock.answer = Answer([body[:100]], JSON, length=len(body), hold=True)  # refused by its length
    asyncio.run(main())


def test_a_converse_answer_that_stalls_is_still_a_timeout(bedrock: BedrockUpstream) -> None:
    """The body is read through the cap now, outside botocore's own read: a stall in it is still
    named a read timeout (504 ``upstream_timeout``), not an unknown failure."""

    async def main() -> None:
        p = provider(endpoint_url=f"http://127.0.0.1:{bedrock.port}", max_retries=0, read_timeout_s=0.5, **CAPS)
        await p.start()
        try:
            with pytest.raises(UpstreamError) as info:
                await p.complete(call())
            assert (info.value.kind, info.value.code) == ("timeout", "upstream_timeout"), info.value.message
        finally:
            await p.aclose()

    body = converse("y" * 1000)
    bedrock.answer = Answer([body[:100]], JSON, length=len(body), hold=True)
    asyncio.run(main())


def test_a_converse_stream_that_stalls_midway_is_a_timeout(make_gateway: MakeGateway, bedrock: BedrockUpstream) -> None:
    """A stream that stops sending after some text: urllib3's read timeout comes from botocore's
    event stream unwrapped, and is named for what it is (``upstream_timeout``, as the HTTP
    providers say), not an unknown failure (``upstream_protocol_error``)."""
    gw = bedrock_gateway(make_gateway, bedrock, read_timeout_s=0.5)
    frames = [event("messageStart", {"role": "assistant"}), delta("Hal")]
    bedrock.answer = Answer([b"".join(frames)], STREAM_HEADERS, hold=True)
    text, code = stream_error_code(gw, "claude")
    assert (text, code) == ("Hal", "upstream_timeout")
    assert_error_row(gw, "upstream_timeout", 200)


def test_a_converse_stream_cut_midway_says_so(bgw: RunningGateway, bedrock: BedrockUpstream) -> None:
    """The connection closed after some text (urllib3's ProtocolError, unwrapped too): an upstream
    protocol error whose message says the answer was cut, not an unknown failure's class name."""
    frames = [event("messageStart", {"role": "assistant"}), delta("Hal")]
    bedrock.answer = Answer([b"".join(frames)], STREAM_HEADERS, reset=True)
    with pytest.raises(openai.APIError) as info:
        list(bgw.client(timeout=30).chat.completions.create(model="claude", messages=user(), stream=True))
    error: Any = info.value.body
    assert error["code"] == "upstream_protocol_error", error
    assert "closed before the answer was complete" in error["message"], error


@pytest.mark.parametrize("size", [1, 3, 5, 4096])
def test_event_lengths_are_read_across_any_split(size: int) -> None:
    """A prelude's length split between writes anywhere is still read: the 5000-byte event is the
    one found, in the write that ends its length, and where it begins is said."""
    data = delta("a" * 10) + delta("b" * 4800) + delta("c" * 10)
    second = len(delta("a" * 10))
    lengths, fed = _FrameLengths(4_000), 0
    for piece in writes(data, size):
        cut = lengths.feed(piece)
        if cut is not None:
            break
        fed += len(piece)
    assert cut is not None and fed <= second + 3 < fed + size
    assert fed + cut == max(second, fed)
    lengths = _FrameLengths(5_000)
    assert [lengths.feed(piece) for piece in writes(data, size)] == [None] * len(writes(data, size))


def test_read_errors_of_a_capped_body_are_named_as_botocore_names_them() -> None:
    """The body is read in the cap's session, not in botocore's ``send``, so its read errors are
    translated as botocore's session does (``httpsession.URLLib3Session.send``): a TLS failure while
    reading is botocore's ``SSLError`` (Bedrock unavailable), not a closed connection (a server error)."""
    from botocore.awsrequest import AWSRequest, AWSResponse
    from urllib3.exceptions import ProtocolError
    from urllib3.exceptions import SSLError as URLLib3SSLError

    from llmgw.config import UpstreamSizeCaps
    from llmgw.providers.bedrock_caps import CappedSession
    from llmgw.providers.bedrock_translate import classify_bedrock_error

    class Raw:  # urllib3's response as far as botocore reads it, failing as the socket would
        def __init__(self, error: Exception) -> None:
            self.error = error

        def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
            yield b'{"output":'
            raise self.error

        def close(self) -> None:
            pass

    class Session:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def send(self, request: Any) -> AWSResponse:
            return AWSResponse(request.url, 200, {}, Raw(self.error))

    request = AWSRequest(method="POST", url="https://bedrock.example/model/m/converse").prepare()
    kinds = {}  # one request sent twice, as botocore's retry loop does: the session must leave it as it was
    for error in (URLLib3SSLError("bad record mac"), ProtocolError("reset")):
        session = CappedSession(Session(error), UpstreamSizeCaps.model_construct(**CAPS))
        with pytest.raises(Exception) as info:
            session.send(request)
        kinds[type(error).__name__] = classify_bedrock_error(info.value).kind
    assert kinds == {"SSLError": "unavailable", "ProtocolError": "server_error"}, kinds
