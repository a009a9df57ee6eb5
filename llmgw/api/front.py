"""The chat pipeline's three APIs answered in plain ASGI, before Litestar routes the request.

``POST /v1/chat/completions``, ``/v1/responses`` and ``/v1/messages`` carry every request an
organisation sends through the gateway; everything else (models, embeddings, token counts, admin,
audit, health, the OpenAPI document) stays on ordinary Litestar handlers.

Why: measured with ``python -m bench.ab`` (docs/benchmarks.md), Litestar's layers around a
handler (its middleware stack and exception middleware, routing, the ``Request`` and
``Response`` objects, the ``Stream`` response's task group) cost these routes ~0.14 ms of CPU per
non-streamed request and ~0.3 ms per stream, a sixth of the gateway's whole cost, for nothing they
use. What those layers did for these routes is done here once, with the functions the Litestar
routes use:

- the header and URL limits (:meth:`~llmgw.api.limits.RequestLimits.check`), Litestar's Host
  check, and the body cap (413, before the body is read when it declares its length);
- errors in the API's shape with the request id (:func:`~llmgw.api.common.error_reply`, as
  :func:`llmgw.app.error_handler` answers the other routes);
- the disconnect watch while the answer is prepared (:func:`~llmgw.api.common.unless_client_leaves`)
  and while a stream is sent (:func:`send_stream`).

The three routes stay declared on Litestar (:mod:`llmgw.app`) for the OpenAPI document and for the
405 of every other method; a POST never reaches those declarations, because :meth:`Front.endpoint`
reads a path as Litestar's router does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from litestar._asgi.utils import is_valid_host
from litestar.utils.path import normalize_path

from llmgw.anthropic.render import MessagesEvents, message
from llmgw.api.common import (
    as_gateway_error,
    cancel_on_disconnect,
    client_disconnected,
    error_reply,
    request_id_headers,
    unless_client_leaves,
)
from llmgw.errors import GatewayError, PayloadTooLarge
from llmgw.pipeline import ChatEvents, Render, farewell
from llmgw.responses_api.response import to_response
from llmgw.responses_api.stream import ResponsesEvents
from llmgw.schemas import decode_body

if TYPE_CHECKING:
    from litestar.types import HTTPScope, Receive, Send

    from llmgw.api.limits import RequestLimits
    from llmgw.context import RequestContext
    from llmgw.gateway import Gateway
    from llmgw.pipeline import Pipeline, StreamEvents


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of the chat pipeline's APIs: the row's ``api``, and how its stream and answer are written."""

    api: str
    #: called with the request's context once its body is decoded: the stream's events (None: chat's
    #: own chunks) and the completion's rendering in the client's API
    start: Callable[[RequestContext], tuple[StreamEvents | None, Render]]


def _chat(ctx: RequestContext) -> tuple[StreamEvents | None, Render]:
    return None, None


def _responses(ctx: RequestContext) -> tuple[StreamEvents | None, Render]:
    body = ctx.body
    ctx.body = dict(body)  # the translate stage replaces it; ``body`` stays what the client sent
    return ResponsesEvents(body, ctx.request_id), lambda completion: to_response(completion, body, ctx.request_id)


def _messages(ctx: RequestContext) -> tuple[StreamEvents | None, Render]:
    return MessagesEvents(ctx.request_id, ctx.usage), lambda completion: message(
        completion, ctx.request_id, ctx.model_name, ctx.usage()
    )


ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("chat", _chat),
    "/v1/responses": Endpoint("responses", _responses),
    "/v1/messages": Endpoint("messages", _messages),
}


class Front:
    """Answers a POST to one of :data:`ENDPOINTS` through the pipeline, as plain ASGI."""

    def __init__(self, gateway: Gateway, pipeline: Pipeline, limits: RequestLimits) -> None:
        self.gateway = gateway
        self.pipeline = pipeline
        self.limits = limits
        server = gateway.config.server
        self.max_body_bytes = server.max_body_bytes
        self.max_json_depth = server.max_json_depth

    @staticmethod
    def endpoint(scope: HTTPScope) -> Endpoint | None:
        """The endpoint a request's path names, read as Litestar's router reads it (the root path
        taken off, repeated and trailing slashes dropped), so that no POST reaches the routes'
        Litestar declarations."""
        path = scope["path"]
        found = ENDPOINTS.get(path)
        if found is None and (path.endswith("/") or "//" in path or scope.get("root_path")):
            found = ENDPOINTS.get(route_path(scope))
        return found

    async def __call__(self, endpoint: Endpoint, scope: HTTPScope, receive: Receive, send: Send) -> None:
        ctx: RequestContext | None = None
        try:
            self.limits.check(scope)
            headers, declared = read_headers(scope)
            raw = await read_body(receive, declared, self.max_body_bytes, headers)
            client = scope.get("client")
            ctx = self.gateway.new_context(endpoint.api, {}, headers, client[0] if client else None)
            ctx.api = endpoint.api
            ctx.body = decode_body(raw, self.max_body_bytes, self.max_json_depth)
            events, render = endpoint.start(ctx)
            result = await unless_client_leaves(receive, self.pipeline.chat(ctx, events, render))
        except (Exception, asyncio.CancelledError) as exc:  # a bug is logged with its traceback by as_gateway_error
            task = cast("asyncio.Task[None]", asyncio.current_task())
            if isinstance(exc, asyncio.CancelledError):
                if not task.cancelling():
                    raise  # not a cancellation of this request: a bug below, left to the server
                task.uncancel()  # the server's own (the client leaving is a 499 GatewayError)
                error = stopping()
            else:
                error = as_gateway_error(exc, f"POST {scope['path']}")
            request_id, pipeline_headers = (ctx.request_id, ctx.response_headers) if ctx is not None else (None, {})
            body, error_headers = error_reply(error, route_path(scope), request_id, pipeline_headers)
            await send_json(send, error.status, body, error_headers)
            return
        answer_headers = {**request_id_headers(ctx.request_id), **ctx.response_headers}
        if isinstance(result, bytes):
            await send_json(send, 200, result, answer_headers)
        else:
            await send_stream(send, receive, result, answer_headers, events, ctx)


def route_path(scope: HTTPScope) -> str:
    """The path as Litestar's router reads it: the root path taken off, repeated and trailing slashes
    dropped. The error shape is chosen by it, so that ``/v1//messages`` (a base URL with a trailing
    slash) is answered in Anthropic's shape as ``/v1/messages`` is."""
    path = scope["path"]
    if root_path := scope.get("root_path"):
        path = path.split(root_path, maxsplit=1)[-1]
    return normalize_path(path)


def read_headers(scope: HTTPScope) -> tuple[dict[str, str], int | None]:
    """The request's headers as the pipeline reads them (the first of a repeated name, as Litestar's
    ``dict(request.headers)``), and its declared ``content-length``. A malformed Host is refused
    as Litestar refuses it on every other route."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    host = headers.get("host")
    if host is not None and not is_valid_host(host.encode("latin-1")):
        raise GatewayError("Invalid host header", status=400, code="http_error", type="invalid_request_error")
    length = headers.get("content-length")
    return headers, int(length) if length is not None and length.isdigit() else None


async def read_body(receive: Receive, declared: int | None, limit: int, headers: dict[str, str]) -> bytes:
    """The whole body, refused with a 413 as soon as it is known to exceed ``limit``: before a byte
    is read when its ``content-length`` says so, else once the bytes read pass it.

    A client that sent ``Expect: 100-continue`` is refused before it sends its body, and may reuse
    the connection without ever sending it, while the server would wait for those bytes and read
    its next request as them: that 413 closes the connection (RFC 9110 10.1.1). Any other refused
    body is still read and dropped by the server, so that the client, still sending, gets the 413
    rather than a reset."""
    if declared is not None and declared > limit:
        close = {"connection": "close"} if headers.get("expect", "").lower() == "100-continue" else {}
        message = f"request body is {declared} bytes; the limit is {limit} (server.max_body_bytes)"
        raise PayloadTooLarge(message, headers=close)
    parts: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise client_disconnected()
        part = cast("bytes", event.get("body", b""))
        if part:
            size += len(part)
            if size > limit:
                raise PayloadTooLarge(f"request body is over {limit} bytes, the limit (server.max_body_bytes)")
            parts.append(part)
        if not event.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Header values as latin-1, as Litestar writes them; one that has no latin-1 form (a model or
    experiment named in Cyrillic) as UTF-8 bytes, which HTTP carries as opaque octets, rather than an
    exception that would turn every answer naming it into a bare 500 (and leave a stream's row unwritten)."""
    try:
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    except UnicodeEncodeError:
        return [(name.encode(), value.encode()) for name, value in headers.items()]


async def send_json(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    start = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *_raw(headers)]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def stopping() -> GatewayError:
    """What a request cut by the server stopping gets: uvicorn cancels the requests still running
    ``timeout_graceful_shutdown`` after SIGTERM (``server.request_timeout_s`` under ``llmgw serve``).
    A 503 the SDKs retry, in the API's shape, instead of uvicorn's text/plain 500 (or, mid-stream, a
    cut connection) and an "Exception in ASGI application" traceback per request in the log."""
    return GatewayError(
        "the gateway is shutting down; retry the request", status=503, code="shutting_down", type="server_error"
    )


def read_timed_out(scope: HTTPScope | None) -> bytes:
    """The body of the 408 for a request that did not arrive in time (``server.request_read_timeout_s``,
    written by :mod:`llmgw.http_protocol`), in the shape of the API its path names: OpenAI's when
    even its head did not arrive."""
    error = GatewayError(
        "the request was not received in time (server.request_read_timeout_s)",
        status=408, code="request_timeout", type="invalid_request_error",
    )  # fmt: skip
    return error_reply(error, route_path(scope) if scope is not None else "", None, {})[0]


async def send_stream(
    send: Send,
    receive: Receive,
    chunks: AsyncIterator[bytes],
    headers: dict[str, str],
    events: StreamEvents | None = None,
    ctx: RequestContext | None = None,
) -> None:
    """Server-sent events as the pipeline yields them, until the end or until the client leaves.

    A task watches the connection meanwhile (the ASGI server only says the client left when asked,
    and an upstream may go quiet for long between tokens): when the client leaves, the sending is
    cancelled where it waits, the pipeline's generator records the 499 and closes the upstream call,
    and the request ends quietly. However the sending ends, the generator is closed before this returns.
    When the server stops the stream (:func:`stopping`), it ends with that error as an event of the
    client's API (``events``; chat's own when None) rather than a cut connection.
    """
    task = asyncio.current_task()
    assert task is not None
    left: list[bool] = []
    stopped = head_sent = False
    watcher: asyncio.Task[None] | None = None
    try:
        start = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                 (b"x-accel-buffering", b"no"), *_raw(headers)]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": start})
        head_sent = True
        # the watch starts once the head is sent, so that it cannot cancel us before the pipeline's
        # generator has started: closing a generator that never ran skips its ``finally`` (no row,
        # the upstream call left open). A client leaving while the head waits (writing paused) ends
        # that wait: the server resumes a lost connection's writers.
        watcher = asyncio.get_running_loop().create_task(cancel_on_disconnect(receive, task, left))
        async for data in chunks:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        # ours (the client is gone, and the pipeline has recorded it), or the server stopping, which
        # ends the stream with an error event below: the request is this task's only work either way
        if not left and (not head_sent or not task.cancelling()):
            raise  # the server stopping while the head waited (writing paused), or not a cancellation of ours
        stopped = not left
        task.uncancel()
    finally:
        if watcher is not None:  # first, with no await before it: the end of the answer must not read as a disconnect
            watcher.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    if stopped and ctx is not None:
        last = farewell(events or ChatEvents(ctx.client_wants_usage), stopping(), ctx.request_id)
        await send({"type": "http.response.body", "body": last, "more_body": False})
