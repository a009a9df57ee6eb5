"""Errors in OpenAI's shape.

Every failure a client can see is a :class:`GatewayError`; it knows its HTTP status and renders
as ``{"error": {"message", "type", "code", "param"}}`` so that the official SDKs raise the
matching exception class (``BadRequestError``, ``AuthenticationError``, ...).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

MAX_MESSAGE_CHARS = 1000


def clip(value: object, limit: int = 80) -> str:
    """``repr`` of a value the client sent, shortened for an error message.

    An error names what was wrong (``unknown route 'x'``) but never echoes a megabyte header back.
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


class GatewayError(Exception):
    """A failure with an HTTP status and an OpenAI error body.

    Messages longer than :data:`MAX_MESSAGE_CHARS` are cut: whatever a message quotes (a client's
    value, an upstream's error text) it stays small. Quote client values with :func:`clip`.
    """

    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[: MAX_MESSAGE_CHARS - 1]}…"
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }

    def json(self) -> bytes:
        return msgspec.json.encode(self.body())


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """A provider failed. ``kind`` classifies it; ``retryable`` says whether another try may help."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "server_error",
        upstream_status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.kind = kind
        self.upstream_status = upstream_status
        self.retryable = retryable
        self.retry_after = retry_after


def upstream_error(
    kind: str,
    message: str,
    *,
    upstream_status: int | None = None,
    retry_after: float | None = None,
) -> UpstreamError:
    """Classify a provider failure into the status, code and retry policy the client sees.

    ``kind`` is one of: ``rate_limited``, ``server_error``, ``timeout``, ``unavailable``,
    ``bad_request``, ``auth``, ``content_filter``, ``not_found``, ``protocol``.
    """
    table: dict[str, tuple[int, str, str, bool]] = {
        "rate_limited": (429, "rate_limit_error", "upstream_rate_limited", True),
        "server_error": (502, "upstream_error", "upstream_server_error", True),
        "unavailable": (503, "upstream_error", "upstream_unavailable", True),
        "timeout": (504, "upstream_error", "upstream_timeout", True),
        "bad_request": (400, "invalid_request_error", "upstream_bad_request", False),
        "not_found": (404, "invalid_request_error", "upstream_model_not_found", False),
        "auth": (502, "upstream_error", "upstream_auth_failed", False),
        "content_filter": (400, "invalid_request_error", "upstream_content_filter", False),
        "protocol": (502, "upstream_error", "upstream_protocol_error", False),
    }
    status, type_, code, retryable = table.get(kind, table["server_error"])
    # RFC 9110: delta-seconds is a non-negative integer; round up so a client never retries early
    headers = {"retry-after": str(math.ceil(retry_after))} if retry_after is not None and status == 429 else None
    return UpstreamError(
        message,
        kind=kind,
        upstream_status=upstream_status,
        retryable=retryable,
        retry_after=retry_after,
        status=status,
        type=type_,
        code=code,
        headers=headers,
    )
