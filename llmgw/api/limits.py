"""Request shapes refused before any handler runs: oversized header sets, NUL bytes in the URL.

uvicorn's httptools parser accepts any number of headers of any size, and every header is
copied into ``dict(request.headers)`` and the request context, scanned for ``x-llmgw-*``
options and so on. Refusing oversized header sets here (431) keeps that work bounded. (The server
has already read them by now; a reverse proxy in front is what bounds the bytes read off the
socket.)

A NUL byte in the path or a query parameter is never meaningful, and PostgreSQL refuses it in
any text value, so a filter like ``?key_id=%00`` would fail deep in a query (or halfway through
a streamed export). One check here covers every endpoint and every filter, present and future.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from llmgw.errors import HeadersTooLarge, InvalidRequest


class RequestLimits(ASGIMiddleware):
    """Refuse more than ``max_headers`` headers, more than ``max_header_bytes`` of them, or a NUL in the URL."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, max_headers: int, max_header_bytes: int) -> None:
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        self.check(scope)
        await next_app(scope, receive, send)

    def check(self, scope: Scope | HTTPScope) -> None:
        """Raise the request's refusal, if any (also called by :mod:`llmgw.api.front` for its routes)."""
        headers = list(scope["headers"])
        if len(headers) > self.max_headers:
            raise HeadersTooLarge(
                f"the request has {len(headers)} headers; the limit is {self.max_headers} (server.max_headers)",
                headers={"connection": "close"},
            )
        size = sum(len(name) + len(value) for name, value in headers)
        if size > self.max_header_bytes:
            raise HeadersTooLarge(
                f"the request headers are {size} bytes; the limit is {self.max_header_bytes} (server.max_header_bytes)",
                headers={"connection": "close"},
            )
        query = scope["query_string"]
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            raise InvalidRequest("the URL holds a NUL byte (%00)", code="invalid_value")
