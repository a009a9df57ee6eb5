"""``POST /v1/embeddings``: the local sentence-transformers model or a provider's own.

The stages it runs are the pipeline's (``pipeline.EMBEDDINGS``); the handler only builds the
context and answers.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from llmgw.api.common import client_of, gateway_of, json_response, pipeline_of, request_id_headers
from llmgw.stages.auth import FEEDBACK_TOKEN_HEADER


@post("/v1/embeddings", status_code=200)
async def create_embeddings(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    ctx = gateway.new_context("embeddings", {}, dict(request.headers), client_of(request))
    ctx.api = "embeddings"
    request.state.request_id = ctx.request_id
    result = await pipeline_of(request).embeddings(ctx, request.body)
    headers = {**request_id_headers(ctx.request_id), "x-llmgw-model": ctx.model_name or ""}
    token = ctx.response_headers.get(FEEDBACK_TOKEN_HEADER)  # an anonymous caller's (stages/auth.py)
    if token is not None:
        headers[FEEDBACK_TOKEN_HEADER] = token
    return json_response(result, headers)
