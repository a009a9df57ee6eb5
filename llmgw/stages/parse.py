"""Parse: decode and validate the body, decode the gateway options once (``llmgw.options``), choose the route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest, PermissionDenied, clip
from llmgw.options import read_options
from llmgw.schemas import CHAT_FIELDS, EMBEDDINGS_FIELDS, ChatRequest, EmbeddingsRequest, validate
from llmgw.stages.base import Stage
from llmgw.stages.client_user import settle_embeddings_user

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


class ParseRequest(Stage):
    name = "parse"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        config = self.gateway.config
        validate(ctx.body, ChatRequest, CHAT_FIELDS, config.server.unknown_fields)
        ctx.options = read_options(ctx.body, ctx.headers, config.server.max_json_depth)
        ctx.model_requested = ctx.body["model"]
        ctx.stream = bool(ctx.body.get("stream"))
        options = ctx.body.get("stream_options") or {}
        ctx.client_wants_usage = bool(options.get("include_usage"))
        select_route(self.gateway, ctx)
        if ctx.options.prompt is not None and not renders_templates(self.gateway, ctx):
            # answering without it would send the model another prompt than the client asked for
            raise InvalidRequest(
                f"template {clip(ctx.options.prompt.id)} asked for, but templates are off "
                + (
                    "on this gateway (templates.enabled)"
                    if not config.templates.enabled
                    else f"on route {ctx.route_name}"
                ),
                param="llmgw.prompt",
                code="templates_disabled",
            )
        return None


def renders_templates(gateway: Gateway, ctx: RequestContext) -> bool:
    """Whether the request's route renders templates: the gateway's switch and the route's own."""
    return gateway.config.templates.enabled and (ctx.route is None or ctx.route.stages.template)


class ParseEmbeddingsRequest(Stage):
    """``/v1/embeddings``: validate the body, read gateway options, choose the route, and settle
    the ``user`` field now (no input guards run on embeddings to do it later)."""

    name = "parse_embeddings"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        config = self.gateway.config
        validate(ctx.body, EmbeddingsRequest, EMBEDDINGS_FIELDS, config.server.unknown_fields)
        ctx.options = read_options(ctx.body, ctx.headers, config.server.max_json_depth)
        ctx.model_requested = ctx.body["model"]
        select_route(self.gateway, ctx)
        settle_embeddings_user(self.gateway, ctx)
        return None


def select_route(gateway: Gateway, ctx: RequestContext) -> None:
    name = ctx.options.route
    route = gateway.config.routes.get(name)
    if route is None:
        raise InvalidRequest(f"unknown route {clip(name)}", param="llmgw.route", code="unknown_route")
    if ctx.key is not None and not ctx.key.allows_route(name):
        raise PermissionDenied(f"this key may not use route {clip(name)}", code="route_not_allowed")
    ctx.route_name, ctx.route = name, route
