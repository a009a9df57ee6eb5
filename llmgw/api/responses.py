"""``POST /v1/responses``: OpenAI's Responses API, served by the chat pipeline.

The body is translated to the internal chat body by the pipeline's translate stage (after
authentication); the answer is rendered back as a ``response`` object, or as Responses stream
events. Errors keep OpenAI's shape, as on every ``/v1`` route.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from llmgw.api.common import answer, open_context, pipeline_of, unless_client_leaves
from llmgw.responses_api.response import to_response
from llmgw.responses_api.stream import ResponsesEvents


@post("/v1/responses", status_code=200)
async def create_response(request: Request[Any, Any, Any]) -> Response[Any]:
    ctx = await open_context(request, "responses")
    body = ctx.body
    ctx.body = dict(body)  # the translate stage replaces it; ``body`` stays what the client sent
    result = await unless_client_leaves(request, pipeline_of(request).chat(ctx, ResponsesEvents(body, ctx.request_id)))
    return answer(ctx, result, lambda completion: to_response(completion, body, ctx.request_id))
