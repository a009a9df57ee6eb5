"""Small helpers shared by the HTTP handlers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from llmgw.errors import GatewayError
from llmgw.schemas import decode_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from llmgw.context import RequestContext
    from llmgw.gateway import Gateway
    from llmgw.pipeline import Pipeline

_encode = msgspec.json.Encoder().encode
#: how long an answer may take before the connection is watched for the client leaving (a client
#: that leaves sooner is noticed then: an upstream call is not stopped any earlier than this)
WATCH_AFTER_S = 0.05
JSON = "application/json"
T = TypeVar("T")


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


async def unless_client_leaves(request: Request[Any, Any, Any], work: Awaitable[T]) -> T:
    """``work`` (the pipeline preparing its answer), cancelled if the client disconnects first.

    Why: nothing else reads the connection between the body and the first byte of the answer, so a
    client that gave up (a closed tab, a client timeout) was only noticed once the answer was sent:
    a whole non-streamed generation, or a stream's wait for its first token, ran on and was paid
    for. The body has been read (``open_context``), so the next ASGI message is the disconnect; a
    stream's own disconnect watch (Litestar's ``Stream``) takes over once it starts. The pipeline
    records a cancelled request as ``client_disconnected`` (499) and its row is kept.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    left: list[bool] = []
    watchers: list[asyncio.Task[None]] = []

    def watch() -> None:
        watchers.append(loop.create_task(_cancel_on_disconnect(request, task, left)))

    # the watch starts only once the answer has taken WATCH_AFTER_S: a task per request would cost
    # every fast answer (a cache hit, a refusal) ~10 µs of CPU; a timer handle costs ~1 µs
    timer = loop.call_later(WATCH_AFTER_S, watch)
    try:
        result = await work
    except asyncio.CancelledError:
        if not left:
            raise
        task.uncancel()  # this cancellation was ours: the client is gone, the request ends as a 499
        raise GatewayError(
            "the client disconnected", status=499, code="client_disconnected", type="invalid_request_error"
        ) from None
    finally:
        timer.cancel()
        for watcher in watchers:
            watcher.cancel()
    if left:  # the work swallowed our cancellation and finished: leave the task as it was
        task.uncancel()
    return result


async def _cancel_on_disconnect(request: Request[Any, Any, Any], task: asyncio.Task[Any], left: list[bool]) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    left.append(True)
    task.cancel()


def answer(
    ctx: RequestContext,
    result: dict[str, Any] | AsyncIterator[bytes],
    render: Callable[[dict[str, Any]], Any] | None = None,
) -> Response[Any]:
    """The pipeline's result as the HTTP answer: a completion as JSON (``render`` puts it in the
    client's API), a stream as server-sent events; the request id and the pipeline's headers on both."""
    headers = {"x-llmgw-request-id": ctx.request_id, **ctx.response_headers}
    if isinstance(result, dict):
        return json_response(result if render is None else render(result), headers)
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    return Stream(result, media_type="text/event-stream", headers=headers)


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
