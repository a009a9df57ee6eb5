"""uvicorn's httptools protocol, with the writes of one event-loop turn sent as one, and a read timeout.

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

The protocol also bounds how long a request may take to arrive (``server.request_read_timeout_s``):
uvicorn has none, so a client that stalled mid-request held its connection forever. See
:class:`CoalescingHttpToolsProtocol`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


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


#: the answer to a request whose head or body did not arrive in time, in OpenAI's error shape (the
#: default of :meth:`CoalescingHttpToolsProtocol.with_read_timeout`; the gateway shapes it per API)
_TIMEOUT_BODY = (
    b'{"error":{"message":"the request was not received in time (server.request_read_timeout_s)",'
    b'"type":"invalid_request_error","param":null,"code":"request_timeout"}}'
)
_TIMEOUT_HEAD = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
#: the body of a 408, given the request's scope (None: its head did not arrive, so no path is known)
TimeoutReply = Callable[[Any], bytes]
_NO_BYTE: Any = object()  # ``_prior_cycle`` of a connection that has not sent a byte yet

logger = logging.getLogger("llmgw.http")


class _Sweeper:
    """The read timeout of one server's connections: one timer, not one per request.

    It runs every ``interval`` while some connection of the server (uvicorn's ``ServerState``) is in
    the middle of receiving a request, and closes those whose request began more than ``timeout``
    ago. Idle, it does not run (the next request re-arms it), so a stopped server leaves nothing
    behind; a timer still armed when the loop closes is simply dropped (a task would be destroyed
    pending)."""

    __slots__ = ("armed", "connections", "interval", "loop", "timeout")

    def __init__(self, connections: set[Any], loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.connections = connections
        self.loop = loop
        self.timeout = timeout
        self.interval = min(1.0, max(timeout / 4, 0.05))
        self.armed = False

    def arm(self) -> None:
        self.armed = True
        self.loop.call_later(self.interval, self.sweep)

    def sweep(self) -> None:
        self.armed = False
        now = time.monotonic()
        cutoff = now - self.timeout
        pending = False
        for connection in list(self.connections):  # closing one takes it out, later
            if not isinstance(connection, CoalescingHttpToolsProtocol):
                continue
            started = connection._read_started
            if started is None:
                continue
            pending = True
            if started > cutoff:
                continue
            cycle = connection.cycle
            if connection.flow.read_paused or (
                cycle is not None and cycle is connection._prior_cycle and not cycle.response_complete
            ):
                # the server is not reading (a body the application has not taken yet, or a request
                # pipelined behind one still answered): the client is not the late one; its clock
                # restarts when the server reads again
                connection._read_started = now
                continue
            connection.read_timed_out()
        if pending:
            self.arm()


#: the sweeper of each running server, by its uvicorn ``ServerState`` (one per server and loop)
_sweepers: weakref.WeakKeyDictionary[ServerState, _Sweeper] = weakref.WeakKeyDictionary()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport` (``uvicorn.Config(http=...)``),
    with a read timeout.

    uvicorn has no timeout for a request in progress (``timeout_keep_alive`` covers only the idle
    time between requests) nor for a new connection that sends nothing: a client that sends half
    its headers, or its headers and part of its body, and stalls, held the connection (and, past
    the headers, a request task waiting for its body) for as long as it liked. A request whose
    head and body have not all arrived ``read_timeout_s`` after its first byte (a new connection:
    after it opened) is closed, with a 408 ``request_timeout`` first when no answer has started
    and a byte has come. A request whose body is in is not timed: a long answer or stream is not
    cut. The common path pays a clock read and two attribute writes per request; the timing is
    done by one :class:`_Sweeper` per server."""

    #: ``server.request_read_timeout_s``; None or 0: no read timeout (see :meth:`with_read_timeout`)
    read_timeout_s: float | None = 30.0
    #: the 408's body for a request's scope (see :meth:`with_read_timeout`)
    timeout_reply: TimeoutReply = staticmethod(lambda scope: _TIMEOUT_BODY)

    _sweeper: _Sweeper | None = None
    #: when the request being received began (``time.monotonic``); None: none is being received
    _read_started: float | None = None
    #: ``self.cycle`` when that request began: still it while its head is incomplete
    _prior_cycle: Any = _NO_BYTE

    @classmethod
    def with_read_timeout(
        cls, timeout_s: float | None, reply: TimeoutReply | None = None
    ) -> type[CoalescingHttpToolsProtocol]:
        """This protocol with ``read_timeout_s`` set (uvicorn instantiates the class it is given), and
        the 408's body made by ``reply`` from the request's scope: the application knows the error
        shape of each of its paths (an Anthropic SDK on ``/v1/messages`` reads Anthropic's)."""
        fields: dict[str, Any] = {"read_timeout_s": timeout_s or None}
        if reply is not None:
            fields["timeout_reply"] = staticmethod(reply)
        return type(cls.__name__, (cls,), fields)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if self.read_timeout_s:
            sweeper = _sweepers.get(self.server_state)
            if sweeper is None:
                sweeper = _sweepers[self.server_state] = _Sweeper(self.connections, self.loop, self.read_timeout_s)
            self._sweeper = sweeper
            self._read_started = time.monotonic()  # a connection that sends nothing is timed too
            if not sweeper.armed:
                sweeper.arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._prior_cycle = self.cycle
        if self._read_started is None and (sweeper := self._sweeper) is not None:
            # (a new connection's first request is timed from the connection's opening)
            self._read_started = time.monotonic()
            if not sweeper.armed:
                sweeper.arm()

    def on_message_complete(self) -> None:
        self._read_started = None
        super().on_message_complete()

    def read_timed_out(self) -> None:
        """Close the connection of a request that did not arrive in time: the 408 first if the
        client sent a byte of it and no answer has started; the request, if its head is in, sees
        the client gone (its ``receive`` answers ``http.disconnect``, its answer is not written)."""
        self._read_started = None
        cycle = self.cycle
        scope = None  # the request's, once its head is in
        if self._prior_cycle is _NO_BYTE:
            reply = False  # a connection that never sent a byte: closed as an idle one is
        elif cycle is self._prior_cycle:
            reply = True  # the head is incomplete: no request has started
        else:
            scope = cycle.scope
            reply = not cycle.response_started
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        logger.debug("closing a connection whose request did not arrive within %ss", self.read_timeout_s)
        if not self.transport.is_closing():
            if reply:
                body = self.timeout_reply(scope)
                head = [b"HTTP/1.1 408 Request Timeout\r\n"]
                head.extend(b"%s: %s\r\n" % header for header in self.server_state.default_headers)
                head.append(_TIMEOUT_HEAD % len(body))
                self.transport.write(b"".join([*head, body]))
            self.transport.close()
