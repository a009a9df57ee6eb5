"""Server-sent events: a small incremental parser for upstream streams and the encoder for ours.

The parser takes raw byte pieces as they arrive (split anywhere, ``\\n``, ``\\r\\n`` or a lone
``\\r`` line ends) and yields the ``data`` payload of each complete event, with constant work per
byte. As the SSE spec says, a leading byte order mark is skipped and an event whose data is empty
(a keep-alive ``data:``) is none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"


class SSEParser:
    """Incremental ``text/event-stream`` parser yielding each event's joined ``data`` field."""

    __slots__ = ("_buffer", "_cr", "_data", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._cr = False  # the last piece ended with "\r": a "\n" opening the next one ends no line
        self._started = False

    def feed(self, piece: bytes) -> Iterator[bytes]:
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
                    if data and not data.isspace():  # an event without data is none (a keep-alive ``data:``)
                        yield data
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # comments (":") and other fields (event, id, retry) are not used by OpenAI streams
        self._buffer = buffer[start:]

    def close(self) -> Iterator[bytes]:
        """Flush an event left without its closing blank line."""
        if self._buffer:
            yield from self.feed(b"\n")
        if self._data:
            data = b"\n".join(self._data)
            self._data = []
            if data and not data.isspace():
                yield data


def encode_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"
