"""``POST /v1/responses``: OpenAI's Responses API, served by the chat pipeline.

The body is translated to the internal chat body by the pipeline's translate stage (after
authentication); the answer is rendered back as a ``response`` object, or as Responses stream
events. Errors keep OpenAI's shape, as on every ``/v1`` route.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from llmgw.api.common import not_reached


@post("/v1/responses", status_code=200)
async def create_response(request: Request[Any, Any, Any]) -> Response[Any]:
    """Declared for the OpenAPI document and the 405 of other methods: a POST is answered by
    :mod:`llmgw.api.front` before Litestar routes it."""
    raise not_reached(request)
