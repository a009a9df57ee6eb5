"""The size caps (``max_response_bytes``, ``max_event_bytes``, ``max_stream_bytes``) on what botocore
reads from Bedrock, or from whatever ``endpoint_url`` names.

botocore reads a non-streamed body whole inside its HTTP session's ``send`` (``AWSResponse.content``)
and a ConverseStream through ``raw.stream()`` into a buffer that grows until an event is complete;
no event hook runs before either (``before-parse`` comes after the body is read). So the client's
HTTP session is wrapped (:func:`cap_client`): each response's urllib3 body is read through
:class:`CappedBody`, which counts bytes as they arrive and, for a stream, reads each event's length
from its prelude before botocore buffers it. Past a cap it closes the connection and raises
:func:`llmgw.errors.response_too_large`, the error the HTTP providers give.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from llmgw.config import UpstreamSizeCaps
from llmgw.errors import response_too_large


class _FrameLengths:
    """Follows AWS event-stream framing (each message opens with its total length, 4 bytes big-endian)
    to find a message over ``limit`` from its prelude: work per message, not per byte."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._left = 0  # bytes of the current message still to come, after its length
        self._head = b""  # the start of a length split between pieces

    def feed(self, piece: bytes) -> int | None:
        """Where in ``piece`` a message over the limit begins (0: in an earlier piece), else None."""
        at = 0
        while at < len(piece):
            if self._left:
                step = min(self._left, len(piece) - at)
                self._left -= step
                at += step
                continue
            begins = 0 if self._head else at
            take = piece[at : at + 4 - len(self._head)]
            self._head += take
            at += len(take)
            if len(self._head) == 4:
                total = int.from_bytes(self._head, "big")
                self._head = b""
                if total > self.limit:
                    return begins
                self._left = max(total - 4, 0)  # a malformed length is botocore's to reject
        return None


class CappedBody:
    """urllib3's response as botocore uses it (``stream()``, ``close()``, ...), refusing more than
    ``limit`` bytes in all and, with ``frames``, any event longer than its cap (the events before
    it are handed on first, as the HTTP providers' SSE parser does)."""

    def __init__(self, raw: Any, limit: int, what: str, knob: str, frames: _FrameLengths | None = None) -> None:
        self._raw = raw
        self._limit = limit
        self._what = what
        self._knob = knob
        self._frames = frames
        self._size = 0

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        frames = self._frames
        for piece in self._raw.stream(*args, **kwargs):
            self._size += len(piece)
            if self._size > self._limit:
                self._refuse(self._what, self._limit, self._knob)
            if frames is not None and (cut := frames.feed(piece)) is not None:
                if cut:
                    yield piece[:cut]
                self._refuse("stream event", frames.limit, "max_event_bytes")
            yield piece

    def _refuse(self, what: str, limit: int, knob: str) -> NoReturn:
        self._raw.close()  # the connection too: the rest of the body is never read
        raise response_too_large(what, limit, knob)

    def __getattr__(self, name: str) -> Any:  # close, shutdown, _sock_shutdown, ...: urllib3's own
        return getattr(self._raw, name)


class CappedSession:
    """botocore's HTTP session, with every response body read through :class:`CappedBody`.

    A non-streamed answer (and any error status's body) is refused by its ``Content-Length`` before
    a byte is read, else counted as botocore would have read it here; a 2xx event stream is handed
    on unread, capped per event and in all. botocore asks urllib3 not to decompress, so what is
    counted is what it parses."""

    def __init__(self, session: Any, caps: UpstreamSizeCaps) -> None:
        self._session = session
        self._caps = caps

    def send(self, request: Any) -> Any:
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError, SSLError
        from urllib3.exceptions import HTTPError
        from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError
        from urllib3.exceptions import SSLError as URLLib3SSLError

        streamed = request.stream_output
        request.stream_output = True  # the body is read here, through the cap
        try:
            response = self._session.send(request)
        finally:  # botocore's retry loop sends the same request again: it must still say what it asked
            request.stream_output = streamed
        raw = response.raw
        caps = self._caps
        if streamed and response.status_code < 300:
            frames = _FrameLengths(caps.max_event_bytes)
            response.raw = CappedBody(raw, caps.max_stream_bytes, "stream", "max_stream_bytes", frames)
            return response
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > caps.max_response_bytes:
            raw.close()
            raise response_too_large("answer", caps.max_response_bytes, "max_response_bytes")
        response.raw = CappedBody(raw, caps.max_response_bytes, "answer", "max_response_bytes")
        try:  # botocore's own session reads it here too, and names read errors so (httpsession.send)
            response.content  # noqa: B018 - reads the body
        except URLLib3ReadTimeoutError as exc:
            raw.close()
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
        except URLLib3SSLError as exc:
            raw.close()
            raise SSLError(endpoint_url=request.url, error=exc) from exc
        except HTTPError as exc:
            raw.close()
            raise ConnectionClosedError(error=exc, request=request, endpoint_url=request.url) from exc
        return response

    def close(self) -> None:
        self._session.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def cap_client(client: Any, caps: UpstreamSizeCaps) -> None:
    """Read every answer of a botocore ``client`` through the caps. botocore offers no public hook
    between the socket and its read of the body, so this replaces its endpoint's HTTP session."""
    endpoint = client._endpoint
    endpoint.http_session = CappedSession(endpoint.http_session, caps)
