"""Server-sent events: a small incremental parser for upstream streams and the encoder for ours.

The parser takes raw byte pieces as they arrive (split anywhere, ``\\n``, ``\\r\\n`` or a lone
``\\r`` line ends) and yields the ``data`` payload of each complete event, with constant work per
byte. As the SSE spec says, a leading byte order mark is skipped and an event whose data is empty
(a keep-alive ``data:``) is none.

It bounds what it holds: an event (or a line) past ``max_event`` bytes, or a stream past
``max_total``, raises :func:`llmgw.errors.response_too_large` instead of buffering on; the cost is
an addition and a comparison per piece and per ``data`` line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from llmgw.errors import response_too_large

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"
#: the provider configs' defaults (``max_event_bytes``, ``max_stream_bytes``)
MAX_EVENT_BYTES = 4 * 2**20
MAX_STREAM_BYTES = 256 * 2**20


class SSEParser:
    """Incremental ``text/event-stream`` parser yielding each event's joined ``data`` field."""

    __slots__ = ("_buffer", "_cr", "_data", "_pending", "_received", "_started", "max_event", "max_total")

    def __init__(self, max_event: int = MAX_EVENT_BYTES, max_total: int = MAX_STREAM_BYTES) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._pending = 0  # bytes in ``_data``
        self._received = 0  # bytes fed so far
        self._cr = False  # the last piece ended with "\r": a "\n" opening the next one ends no line
        self._started = False
        self.max_event = max_event
        self.max_total = max_total

    def feed(self, piece: bytes) -> Iterator[bytes]:
        self._received += len(piece)
        if self._received > self.max_total:
            raise response_too_large("stream", self.max_total, "max_stream_bytes")
        if self._cr and piece.startswith(b"\n"):
            piece = piece[1:]
        self._cr = piece.endswith(b"\r")
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + piece if self._buffer else piece
        if not self._started and buffer:
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(buffer):
                self._buffer = buffer  # perhaps the start of a BOM: wait for more
                return
            self._started = True
            if buffer.startswith(b"\xef\xbb\xbf"):
                buffer = buffer[3:]
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if not line:
                if self._data:
                    data = b"\n".join(self._data)
                    self._data = []
                    self._pending = 0
                    if data and not data.isspace():  # an event without data is none (a keep-alive ``data:``)
                        yield data
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._pending += len(value)
                if self._pending > self.max_event:
                    raise response_too_large("stream event", self.max_event, "max_event_bytes")
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # comments (":") and other fields (event, id, retry) are not used by OpenAI streams
        self._buffer = buffer[start:]
        if len(self._buffer) > self.max_event:  # a line that does not end
            raise response_too_large("stream event", self.max_event, "max_event_bytes")

    def close(self) -> Iterator[bytes]:
        """Flush an event left without its closing blank line."""
        if self._buffer:
            yield from self.feed(b"\n")
        if self._data:
            data = b"\n".join(self._data)
            self._data = []
            self._pending = 0
            if data and not data.isspace():
                yield data


def encode_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"
