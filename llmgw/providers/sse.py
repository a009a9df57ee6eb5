"""Server-sent events: a small incremental parser for upstream streams and the encoder for ours.

The parser takes raw byte pieces as they arrive (split anywhere, ``\\n`` or ``\\r\\n`` line
ends) and yields the ``data`` payload of each complete event, with constant work per byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"


class SSEParser:
    """Incremental ``text/event-stream`` parser yielding each event's joined ``data`` field."""

    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, piece: bytes) -> Iterator[bytes]:
        buffer = self._buffer + piece if self._buffer else piece
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    yield b"\n".join(self._data)
                    self._data = []
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
            yield b"\n".join(self._data)
            self._data = []


def encode_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"
