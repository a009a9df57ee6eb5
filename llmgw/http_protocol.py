"""uvicorn's httptools protocol, with the writes of one event-loop turn sent as one.

uvicorn writes a response's status line and headers (ASGI ``http.response.start``) and its body
(``http.response.body``) with two ``transport.write`` calls, and uvloop sends each at once: two
``send`` system calls per non-streamed answer, and two wake-ups of the client, which reads the
headers, goes back to waiting and is woken again for the body. A stream does the same per event:
the upstream's events often arrive several to a read, and each left in its own ``send``. The
profile of the request path (docs/benchmarks.md) had those writes as the largest single cost of
the event loop's thread.

:class:`CoalescingTransport` holds the first write of an event-loop turn; a second write in the
same turn goes out at once together with it, and any later writes of the turn wait for its end
(a callback scheduled by the first write, ``loop.call_soon``), where they leave as one. So the
headers and body of a non-streamed answer (written in one task step: Litestar never suspends
between them) leave in one segment, without waiting for the turn to end; a burst of upstream
events leaves in two writes (the first two events at once, so the time to first token does not
wait for the whole burst to be encoded, then the rest); a lone write (a stream's headers, a
slow stream's event) leaves when the task that wrote it yields to the loop. Order is kept (one
buffer per connection), ``close`` sends what is held first, and everything else is the real
transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes within one event-loop turn go out in (at most) two ``write`` calls."""

    __slots__ = ("_early", "_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        #: what this turn wrote and has not sent; None: no flush is scheduled (nothing written this turn)
        self._pending: list[bytes] | None = None
        self._early = False  # this turn has sent its first two writes already

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        pending = self._pending
        if pending is None:  # the turn's first write: held, in case a second follows
            self._pending = [bytes(data)]
            self._early = False
            self._loop.call_soon(self.flush)
            return
        pending.append(bytes(data))
        if not self._early:
            # the turn's second write goes out at once with the first: a response's headers and
            # body, or a stream's first events, which must not wait for the rest of a burst of
            # upstream events (time to first token); later writes of the turn wait for its end
            self._early = True
            self._transport.write(b"".join(pending))
            pending.clear()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what this turn wrote and has not sent (nothing when ``close`` sent it already)."""
        pending, self._pending = self._pending, None
        if pending:
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # e.g. an upgrade's reply: sent before the new protocol writes
        self._transport.set_protocol(protocol)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # anything else a protocol may ask of its transport
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport` (``uvicorn.Config(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
