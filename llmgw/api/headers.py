"""Bounds on request headers: too many, or too many bytes, is 431 before any handler runs.

uvicorn's httptools parser accepts any number of headers of any size, and every header is
copied into ``dict(request.headers)`` and the request context, hashed, scanned for ``x-llmgw-*``
options and so on. Refusing oversized header sets here keeps that work bounded. (The server has
already read them by now; a reverse proxy in front is what bounds the bytes read off the socket.)
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from llmgw.errors import GatewayError


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"
    code = "request_headers_too_large"


class HeaderLimits(ASGIMiddleware):
    """Refuse requests with more than ``max_count`` headers or ``max_bytes`` of names and values."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = scope["headers"]
        if len(headers) > self.max_count:
            raise HeadersTooLarge(
                f"the request has {len(headers)} headers; the limit is {self.max_count} (server.max_headers)",
                headers={"connection": "close"},
            )
        size = sum(len(name) + len(value) for name, value in headers)
        if size > self.max_bytes:
            raise HeadersTooLarge(
                f"the request headers are {size} bytes; the limit is {self.max_bytes} (server.max_header_bytes)",
                headers={"connection": "close"},
            )
        await next_app(scope, receive, send)
