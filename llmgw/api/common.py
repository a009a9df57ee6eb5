"""Small helpers shared by the HTTP handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

_encode = msgspec.json.Encoder().encode
JSON = "application/json"


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def client_of(request: Request[Any, Any, Any]) -> str | None:
    """The peer's address (a proxy's, behind one: failed-auth limits then count the proxy)."""
    return request.client.host if request.client else None


def json_response(payload: Any, headers: dict[str, str], status: int = 200) -> Response[bytes]:
    return Response(_encode(payload), status_code=status, media_type=JSON, headers=headers)
