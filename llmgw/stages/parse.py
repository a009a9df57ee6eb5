"""Parse: decode and validate the body, read gateway options, choose the route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest, PermissionDenied, clip
from llmgw.schemas import (
    CHAT_FIELDS,
    EMBEDDINGS_FIELDS,
    ChatRequest,
    EmbeddingsRequest,
    NestedTooDeep,
    decode_json,
    validate,
)
from llmgw.stages.base import Stage
from llmgw.stages.client_user import settle_embeddings_user

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

HEADER_PREFIX = "x-llmgw-"


def gateway_options(body: dict[str, Any], headers: dict[str, str], max_depth: int) -> dict[str, Any]:
    """Options from ``x-llmgw-*`` headers, overridden by the body's ``llmgw`` object.

    Header names map to option names with dashes as underscores; a header value that is a JSON
    object or array is decoded, anything else is taken as a string (so a route named ``123`` or
    ``true`` stays a string). A header that is not valid JSON stays a string too, but one nested
    deeper than ``max_depth`` is refused like such a body.
    """
    options: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith(HEADER_PREFIX):
            key = name[len(HEADER_PREFIX) :].replace("-", "_")
            options[key] = value
            if value[:1] in "{[":
                try:
                    options[key] = decode_json(value, max_depth, what=f"header {name}", param=str(name))
                except NestedTooDeep:
                    raise
                except InvalidRequest:
                    pass  # not JSON after all: the string stands
    from_body = body.pop("llmgw", None)
    if from_body is not None:
        if not isinstance(from_body, dict):
            raise InvalidRequest("'llmgw' must be an object", param="llmgw")
        options.update(from_body)
    return options


class ParseRequest(Stage):
    name = "parse"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        config = self.gateway.config
        validate(ctx.body, ChatRequest, CHAT_FIELDS, config.server.unknown_fields)
        ctx.options = gateway_options(ctx.body, ctx.headers, config.server.max_json_depth)
        ctx.model_requested = ctx.body["model"]
        ctx.stream = bool(ctx.body.get("stream"))
        options = ctx.body.get("stream_options") or {}
        ctx.client_wants_usage = bool(options.get("include_usage"))
        select_route(self.gateway, ctx)
        return None


class ParseEmbeddingsRequest(Stage):
    """``/v1/embeddings``: validate the body, read gateway options, choose the route, and settle
    the ``user`` field now (no input guards run on embeddings to do it later)."""

    name = "parse_embeddings"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        config = self.gateway.config
        validate(ctx.body, EmbeddingsRequest, EMBEDDINGS_FIELDS, config.server.unknown_fields)
        ctx.options = gateway_options(ctx.body, ctx.headers, config.server.max_json_depth)
        ctx.model_requested = ctx.body["model"]
        select_route(self.gateway, ctx)
        settle_embeddings_user(self.gateway, ctx)
        return None


def select_route(gateway: Gateway, ctx: RequestContext) -> None:
    name = str(ctx.options.get("route") or "default")
    route = gateway.config.routes.get(name)
    if route is None:
        raise InvalidRequest(f"unknown route {clip(name)}", param="llmgw.route", code="unknown_route")
    if ctx.key is not None and not ctx.key.allows_route(name):
        raise PermissionDenied(f"this key may not use route {clip(name)}", code="route_not_allowed")
    ctx.route_name, ctx.route = name, route
