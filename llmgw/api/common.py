"""Small helpers shared by the HTTP handlers."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request, Response

from llmgw.anthropic.render import error_body as anthropic_error
from llmgw.errors import GatewayError
from llmgw.schemas import decode_body
from llmgw.storage.db import UNAVAILABLE as DATABASE_UNAVAILABLE
from llmgw.storage.db import unavailable as database_unavailable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import Receive

    from llmgw.context import RequestContext
    from llmgw.gateway import Gateway
    from llmgw.pipeline import Pipeline

log = logging.getLogger("llmgw.app")
_encode = msgspec.json.Encoder().encode
#: how long an answer may take before the connection is watched for the client leaving (a client
#: that leaves sooner is noticed then: an upstream call is not stopped any earlier than this)
WATCH_AFTER_S = 0.05
JSON = "application/json"
T = TypeVar("T")

#: paths whose errors take another API's shape than OpenAI's
ERROR_SHAPES: dict[str, Callable[[GatewayError, str | None], dict[str, Any]]] = {
    "/v1/messages": anthropic_error,
    "/v1/messages/count_tokens": anthropic_error,
}


def as_gateway_error(exc: Exception, where: str) -> GatewayError:
    """Any failure as the error the client gets: a :class:`GatewayError` as it is, the database
    away as a 503 naming ``where``, anything else (a bug) logged with its traceback and a bare 500."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable(exc, where)
    log.exception("unhandled error on %s", where)
    return GatewayError("internal error", status=500)


def request_id_headers(request_id: str) -> dict[str, str]:
    """The request id under llmgw's own header and the two the official SDKs read it from:
    ``x-request-id`` (openai: ``completion._request_id``, ``APIStatusError.request_id``) and
    ``request-id`` (anthropic: ``message._request_id``, ``APIStatusError.request_id``), so a client
    quoting "the request id" from its SDK quotes the id of the gateway's row."""
    return {"x-llmgw-request-id": request_id, "x-request-id": request_id, "request-id": request_id}


def error_reply(
    error: GatewayError, path: str, request_id: str | None, response_headers: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    """An error's body in the shape of the API at ``path`` (:data:`ERROR_SHAPES`, else OpenAI's),
    and its headers: the pipeline's so far, the error's own, the request id when there is one."""
    headers = {**response_headers, **error.headers}
    if request_id:
        headers.update(request_id_headers(request_id))
    shape = ERROR_SHAPES.get(path.rstrip("/"))
    return (_encode(shape(error, request_id)) if shape is not None else error.json()), headers


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    return request.app.state.gateway


def pipeline_of(request: Request[Any, Any, Any]) -> Pipeline:
    return request.app.state.pipeline


def client_of(request: Request[Any, Any, Any]) -> str | None:
    """The peer's address (a proxy's, behind one: failed-auth limits then count the proxy)."""
    return request.client.host if request.client else None


def json_response(payload: Any, headers: dict[str, str], status: int = 200) -> Response[bytes]:
    return Response(_encode(payload), status_code=status, media_type=JSON, headers=headers)


async def open_context(request: Request[Any, Any, Any], api: str) -> RequestContext:
    """A chat-pipeline request's context, for the client's ``api`` (``chat``, ``responses``,
    ``messages``: the row's ``api`` and ``endpoint``), with the body decoded (size and nesting
    capped). Its id and response headers are on ``request.state`` first, so that even an
    undecodable body's error carries them."""
    gateway = gateway_of(request)
    server = gateway.config.server
    raw = await request.body()
    ctx = gateway.new_context(api, {}, dict(request.headers), client_of(request))
    ctx.api = api
    request.state.request_id = ctx.request_id
    request.state.response_headers = ctx.response_headers
    ctx.body = decode_body(raw, server.max_body_bytes, server.max_json_depth)
    return ctx


async def unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T:
    """``work`` (the pipeline preparing its answer), cancelled if the client disconnects first.

    Why: nothing else reads the connection between the body and the first byte of the answer, so a
    client that gave up (a closed tab, a client timeout) was only noticed once the answer was sent:
    a whole non-streamed generation, or a stream's wait for its first token, ran on and was paid
    for. The body has been read, so the next ASGI message from ``receive`` is the disconnect; a
    stream's own disconnect watch (:func:`llmgw.api.front.send_stream`) takes over once it starts.
    The pipeline records a cancelled request as ``client_disconnected`` (499) and its row is kept.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    left: list[bool] = []
    watchers: list[asyncio.Task[None]] = []

    def watch() -> None:
        watchers.append(loop.create_task(cancel_on_disconnect(receive, task, left)))

    # the watch starts only once the answer has taken WATCH_AFTER_S: a task per request would cost
    # every fast answer (a cache hit, a refusal) ~10 µs of CPU; a timer handle costs ~1 µs
    timer = loop.call_later(WATCH_AFTER_S, watch)
    try:
        result = await work
    except asyncio.CancelledError:
        if not left:
            raise
        task.uncancel()  # this cancellation was ours: the client is gone, the request ends as a 499
        raise client_disconnected() from None
    finally:
        timer.cancel()
        for watcher in watchers:
            watcher.cancel()
    if left:  # the work swallowed our cancellation and finished: leave the task as it was
        task.uncancel()
    return result


def client_disconnected() -> GatewayError:
    """The client left before its answer (499): while its body was read, or the answer prepared."""
    return GatewayError("the client disconnected", status=499, code="client_disconnected", type="invalid_request_error")


async def cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any], left: list[bool]) -> None:
    """Cancel ``task`` when the client disconnects, noting it in ``left`` (the body has been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    left.append(True)
    task.cancel()


def not_reached(request: Request[Any, Any, Any]) -> GatewayError:
    """What a Litestar declaration of a :mod:`llmgw.api.front` route raises if a POST ever reached
    it: a 500 naming the path (a bug: :meth:`~llmgw.api.front.Front.endpoint` missed a path form)."""
    return as_gateway_error(RuntimeError(f"{request.url.path} was not answered by llmgw.api.front"),
                            f"{request.method} {request.url.path}")  # fmt: skip


async def read_body_as(request: Request[Any, Any, Any], kind: type[T], what: str) -> tuple[T, dict[str, Any]]:
    """The request's JSON body (size and nesting capped, as for chat) as ``kind``, and the raw dict:
    every decoding or validation problem is a 400 in the API's own shape."""
    from llmgw.schemas import validation_error

    server = gateway_of(request).config.server
    body = decode_body(await request.body(), server.max_body_bytes, server.max_json_depth)
    try:
        return msgspec.convert(body, kind), body
    except msgspec.ValidationError as exc:
        raise validation_error(exc, what) from None
