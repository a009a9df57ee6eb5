"""``POST /v1/responses``: OpenAI's Responses API, served by the chat pipeline.

The body is translated to the internal chat body by the pipeline's translate stage (after
authentication); the answer is rendered back as a ``response`` object, or as Responses stream
events. Errors keep OpenAI's shape, as on every ``/v1`` route.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.response import Stream

from llmgw.api.common import client_of, gateway_of, json_response, pipeline_of
from llmgw.responses_api.response import to_response
from llmgw.responses_api.stream import ResponsesEvents
from llmgw.schemas import decode_body


@post("/v1/responses", status_code=200)
async def create_response(request: Request[Any, Any, Any]) -> Response[Any]:
    gateway = gateway_of(request)
    server = gateway.config.server
    raw = await request.body()
    ctx = gateway.new_context("responses", {}, dict(request.headers), client_of(request))
    ctx.api = "responses"
    request.state.request_id = ctx.request_id
    request.state.response_headers = ctx.response_headers
    body = decode_body(raw, server.max_body_bytes, server.max_json_depth)
    ctx.body = dict(body)  # the translate stage replaces it; ``body`` stays what the client sent
    result = await pipeline_of(request).chat(ctx, ResponsesEvents(body, ctx.request_id))
    headers = {"x-llmgw-request-id": ctx.request_id, **ctx.response_headers}
    if isinstance(result, dict):
        return json_response(to_response(result, body, ctx.request_id), headers)
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    return Stream(result, media_type="text/event-stream", headers=headers)
