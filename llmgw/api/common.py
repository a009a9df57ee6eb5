"""Small helpers shared by the HTTP handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.types import Send

if TYPE_CHECKING:
    from llmgw.gateway import Gateway
    from llmgw.pipeline import Pipeline

_encode = msgspec.json.Encoder().encode
encode_json = _encode
JSON = "application/json"
_JSON_CONTENT_TYPE = (b"content-type", JSON.encode())
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


async def send_json(send: Send, body: bytes, headers: dict[str, str], status: int = 200) -> None:
    """Send a JSON answer as raw ASGI events, with the headers :func:`json_response` would give
    (the given ones lower-cased, in order, then content-type and content-length unless given)."""
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    names = {name for name, _ in encoded}
    if b"content-type" not in names:
        encoded.append(_JSON_CONTENT_TYPE)
    if b"content-length" not in names:
        encoded.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def read_body_as(request: Request[Any, Any, Any], kind: type[T], what: str) -> tuple[T, dict[str, Any]]:
    """The request's JSON body (size and nesting capped, as for chat) as ``kind``, and the raw dict:
    every decoding or validation problem is a 400 in the API's own shape."""
    from llmgw.schemas import decode_body, validation_error

    server = gateway_of(request).config.server
    body = decode_body(await request.body(), server.max_body_bytes, server.max_json_depth)
    try:
        return msgspec.convert(body, kind), body
    except msgspec.ValidationError as exc:
        raise validation_error(exc, what) from None
