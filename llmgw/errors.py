"""Errors in OpenAI's shape: every failure a client can see is defined here.

Each is a :class:`GatewayError`; it knows its HTTP status and renders as
``{"error": {"message", "type", "code", "param"}}`` so that the official SDKs raise the matching
exception class (``BadRequestError``, ``AuthenticationError``, ...). The hierarchy::

    GatewayError                    500 server_error / internal_error
    ├── InvalidRequest              400
    ├── AuthenticationFailed        401
    ├── PermissionDenied            403
    │   ├── CollectionNotAllowed    403 collection_not_allowed
    │   └── ToolNotAllowed          403 tool_not_allowed: a tool the key's or route's allow-list refuses
    ├── NotFound                    404
    ├── PayloadTooLarge             413
    ├── HeadersTooLarge             431 request_headers_too_large
    ├── RateLimited                 429
    │   └── BudgetExceeded          429 budget_exceeded
    ├── ContentFiltered             400 content_filter: the output guards stopped the answer
    ├── TemplateProblem             500 template_error: a prompt template is broken
    ├── ServiceUnavailable          503 server_error: a part of llmgw itself cannot serve
    │   ├── GuardUnavailable        503 guard_unavailable
    │   ├── LimitsUnavailable       503 limits_unavailable
    │   ├── RetrievalUnavailable    503 retrieval_unavailable
    │   └── RetrievalTemplateMissing  503 retrieval_template_missing
    ├── ToolNotOffered              502 tool_not_offered: the answer calls a tool the request did not offer
    └── UpstreamError               a provider failed; its UpstreamKind sets status, code and policy

:class:`UpstreamKind` is the one table of provider failures: for each kind, what the client
sees (status, type, code) and what the gateway does about it (retry the same deployment, fall
back to the next model, count it against the deployment's circuit breaker).
"""

from __future__ import annotations

import math
from enum import StrEnum
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


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"
    code = "request_headers_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ContentFiltered(GatewayError):
    """The output guards stopped the answer (a stream ends with this as its error event)."""

    status = 400
    type = "content_filter"
    code = "content_filter"


class CollectionNotAllowed(PermissionDenied):
    code = "collection_not_allowed"


class CollectionNotFound(NotFound):
    """A request named a collection its route allows (``collections: ["*"]``) that does not exist."""

    code = "collection_not_found"


class ToolNotAllowed(PermissionDenied):
    code = "tool_not_allowed"


class ToolNotOffered(GatewayError):
    """The upstream's answer calls a tool the request did not offer (``llmgw.guards.tools``)."""

    status = 502
    type = "upstream_error"
    code = "tool_not_offered"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class TemplateProblem(GatewayError):
    """A prompt template itself is broken (syntax, undefined name, sandbox violation)."""

    status = 500
    type = "server_error"
    code = "template_error"


class ServiceUnavailable(GatewayError):
    """A part of llmgw the request needs cannot serve it (a guard, the limits store, retrieval):
    the request fails closed rather than running without it."""

    status = 503
    type = "server_error"
    code = "service_unavailable"


class GuardUnavailable(ServiceUnavailable):
    code = "guard_unavailable"


class LimitsUnavailable(ServiceUnavailable):
    code = "limits_unavailable"


class RetrievalUnavailable(ServiceUnavailable):
    code = "retrieval_unavailable"


class RetrievalTemplateMissing(ServiceUnavailable):
    code = "retrieval_template_missing"


class UpstreamKind(StrEnum):
    """How a provider failed, and everything that follows from it.

    ``retryable``: the provider tries the same deployment again (with backoff). ``falls_back``:
    the next model in line is worth trying. ``trips_breaker``: the failure counts against the
    deployment's circuit breaker and the next deployment is tried (a content filter is about
    the request, not the deployment). An upstream refusing llmgw's credentials (``auth``) is that
    deployment's configuration, not the client's request: another deployment or model is tried, and
    the breaker keeps the misconfigured one out instead of failing its share of the traffic.
    """

    status: int
    type: str
    code: str
    retryable: bool
    falls_back: bool
    trips_breaker: bool

    def __new__(
        cls, value: str, status: int, type: str, code: str, retryable: bool, falls_back: bool, trips_breaker: bool
    ) -> UpstreamKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status, member.type, member.code = status, type, code
        member.retryable, member.falls_back, member.trips_breaker = retryable, falls_back, trips_breaker
        return member

    # fmt: off
    #                 value             status  type                     code                     retry  falls  breaker
    RATE_LIMITED   = ("rate_limited",   429, "rate_limit_error",      "upstream_rate_limited",    True,  True,  True)
    SERVER_ERROR   = ("server_error",   502, "upstream_error",        "upstream_server_error",    True,  True,  True)
    UNAVAILABLE    = ("unavailable",    503, "upstream_error",        "upstream_unavailable",     True,  True,  True)
    TIMEOUT        = ("timeout",        504, "upstream_error",        "upstream_timeout",         True,  True,  True)
    BAD_REQUEST    = ("bad_request",    400, "invalid_request_error", "upstream_bad_request",     False, False, False)
    NOT_FOUND      = ("not_found",      404, "invalid_request_error", "upstream_model_not_found", False, False, False)
    AUTH           = ("auth",           502, "upstream_error",        "upstream_auth_failed",     False, True,  True)
    CONTENT_FILTER = ("content_filter", 400, "invalid_request_error", "upstream_content_filter",  False, True,  False)
    PROTOCOL       = ("protocol",       502, "upstream_error",        "upstream_protocol_error",  False, False, False)
    # fmt: on


class UpstreamError(GatewayError):
    """A provider failed. ``kind`` (an :class:`UpstreamKind`, or its value) decides the status,
    code and retry policy; an unknown kind is a bug and raises ``ValueError`` here."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        kind: UpstreamKind | str,
        message: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        # a lookup by value; mypy reads the call as the members' constructor (__new__ with six fields)
        kind = UpstreamKind(kind)  # type: ignore[call-arg]
        # RFC 9110: delta-seconds is a non-negative integer; round up so a client never retries early
        headers = (
            {"retry-after": str(math.ceil(retry_after))}
            if retry_after is not None and kind.status in (429, 503)
            else None
        )
        super().__init__(message, status=kind.status, type=kind.type, code=kind.code, headers=headers)
        self.kind = kind
        self.upstream_status = upstream_status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind.retryable


def upstream_failure(error: Any, where: str) -> UpstreamError:
    """An upstream's error object (or its text) as a classified error: the one place that decides
    whether it was a rate limit (retried after a pause, then fallen back from) or a server error,
    for every path that finds one in a body or a stream (``llmgw.providers.openai_compat.error_body``,
    ``llmgw.responses_api.upstream.failure``); they used to recognise different forms."""
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        # OpenAI's ``code`` (Chat Completions error bodies, Responses ``error`` objects), and the
        # ``type`` OpenAI and Anthropic both send
        rate_limited = error.get("code") == "rate_limit_exceeded" or error.get("type") == "rate_limit_error"
    else:
        message, rate_limited = str(error) if error else "the response failed", False
    kind = UpstreamKind.RATE_LIMITED if rate_limited else UpstreamKind.SERVER_ERROR
    return UpstreamError(kind, f"{where}: {message}")


def response_too_large(what: str, limit: int, knob: str) -> UpstreamError:
    """An upstream answer past one of the provider's size caps (``max_response_bytes``, ...): read
    on, it would hold the gateway's memory without bound. A protocol failure (not retried: the same
    request would bring the same answer) with its own code, so that the row and the client say why."""
    message = f"upstream {what} is larger than {limit} bytes (the provider's {knob})"
    error = UpstreamError(UpstreamKind.PROTOCOL, message)
    error.code = "upstream_response_too_large"
    return error
