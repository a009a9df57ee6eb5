"""``POST /v1/embeddings``: the local sentence-transformers model or a provider's own."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from llmgw.api.common import client_of, gateway_of, json_response
from llmgw.errors import GatewayError
from llmgw.schemas import EMBEDDINGS_FIELDS, EmbeddingsRequest, decode_body, validate
from llmgw.stages.audit import AuditLog
from llmgw.stages.auth import authenticate
from llmgw.stages.client_user import settle_embeddings_user
from llmgw.stages.parse import gateway_options, select_route
from llmgw.stages.selection import resolve_model


@post("/v1/embeddings", status_code=200)
async def create_embeddings(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    ctx = gateway.new_context("embeddings", {}, dict(request.headers), client_of(request))
    request.state.request_id = ctx.request_id
    audit = AuditLog(gateway)
    server = gateway.config.server
    ctx.key = await authenticate(gateway, ctx.headers, ctx.client)
    try:
        ctx.body = decode_body(await request.body(), server.max_body_bytes, server.max_json_depth)
        validate(ctx.body, EmbeddingsRequest, EMBEDDINGS_FIELDS, gateway.config.server.unknown_fields)
        ctx.options = gateway_options(ctx.body, ctx.headers, server.max_json_depth)
        ctx.model_requested = ctx.body["model"]
        select_route(gateway, ctx)
        settle_embeddings_user(gateway, ctx)
        ctx.model_name, ctx.model = resolve_model(gateway, ctx, ctx.body["model"], "embedding")
        ctx.provider_name = ctx.model.provider
        result = await gateway.providers[ctx.provider_name].embeddings(ctx.body, ctx.model.upstream_id)
    except GatewayError as exc:
        gateway.pipeline.fail(ctx, exc)
        audit.done(ctx)
        raise
    result["model"] = ctx.model_name
    usage = result.get("usage") or {}
    ctx.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    audit.done(ctx)
    return json_response(result, {"x-llmgw-request-id": ctx.request_id, "x-llmgw-model": ctx.model_name})
