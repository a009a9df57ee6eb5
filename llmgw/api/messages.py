"""``POST /v1/messages``: Anthropic's Messages API, served by the chat pipeline; and
``POST /v1/messages/count_tokens``, its token count.

The body is translated to the internal chat body by the pipeline's translate stage (after
authentication, ``llmgw.anthropic.inbound``); the answer is rendered back as a Messages response
or Anthropic's stream events (``llmgw.anthropic.render``). Errors take Anthropic's shape
(``llmgw.app.error_handler``). ``x-api-key`` authenticates as ``Authorization: Bearer`` does;
``anthropic-version`` and ``anthropic-beta`` are accepted and not needed.

``count_tokens`` (Claude Code calls it before it sends) authenticates and checks the body as a
Messages request without ``max_tokens``, and answers ``{"input_tokens": N}`` counted by the
gateway's own tokenizer (``llmgw.tokens``): an estimate, whichever the provider. The request is
not forwarded, even to an ``anthropic`` provider that could count it exactly: it would reach the
upstream before the input guards had masked it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from llmgw.api.common import json_response, not_reached, open_context, pipeline_of, request_id_headers

#: what a count_tokens body is missing to be a Messages request (nothing is generated)
COUNT_MAX_TOKENS = 1


@post("/v1/messages", status_code=200)
async def create_message(request: Request[Any, Any, Any]) -> Response[Any]:
    """Declared for the OpenAPI document and the 405 of other methods: a POST is answered by
    :mod:`llmgw.api.front` before Litestar routes it."""
    raise not_reached(request)


@post("/v1/messages/count_tokens", status_code=200)
async def count_tokens(request: Request[Any, Any, Any]) -> Response[Any]:
    ctx = await open_context(request, "messages")
    ctx.body.setdefault("max_tokens", COUNT_MAX_TOKENS)
    ctx.body.pop("stream", None)
    count = await pipeline_of(request).count_tokens(ctx)
    headers = {**request_id_headers(ctx.request_id), "x-llmgw-usage-estimated": "true"}
    return json_response({"input_tokens": count}, headers)
