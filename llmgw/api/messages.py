"""``POST /v1/messages``: Anthropic's Messages API, served by the chat pipeline.

The body is translated to the internal chat body by the pipeline's translate stage (after
authentication, ``llmgw.anthropic.inbound``); the answer is rendered back as a Messages response
or Anthropic's stream events (``llmgw.anthropic.render``). Errors take Anthropic's shape
(``llmgw.app.error_handler``). ``x-api-key`` authenticates as ``Authorization: Bearer`` does;
``anthropic-version`` and ``anthropic-beta`` are accepted and not needed.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.response import Stream

from llmgw.anthropic.render import MessagesEvents, message
from llmgw.api.common import client_of, gateway_of, json_response, pipeline_of
from llmgw.schemas import decode_body


@post("/v1/messages", status_code=200)
async def create_message(request: Request[Any, Any, Any]) -> Response[Any]:
    gateway = gateway_of(request)
    server = gateway.config.server
    raw = await request.body()
    ctx = gateway.new_context("messages", {}, dict(request.headers), client_of(request))
    ctx.api = "messages"
    request.state.request_id = ctx.request_id
    request.state.response_headers = ctx.response_headers
    ctx.body = decode_body(raw, server.max_body_bytes, server.max_json_depth)

    result = await pipeline_of(request).chat(ctx, MessagesEvents(ctx.request_id, ctx.usage))
    headers = {"x-llmgw-request-id": ctx.request_id, **ctx.response_headers}
    if isinstance(result, dict):
        return json_response(message(result, ctx.request_id, ctx.model_name, ctx.usage()), headers)
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    return Stream(result, media_type="text/event-stream", headers=headers)
