"""Translate: a request in another API's shape becomes the internal chat body, before parsing.

Runs right after authentication, so a malformed request from a known caller leaves a row like a
malformed chat request does. The translation itself is the API's own module
(``llmgw.anthropic.inbound``); every stage after this one sees a Chat Completions body.
"""

from __future__ import annotations

from typing import Any

from llmgw.anthropic.inbound import to_internal
from llmgw.context import RequestContext
from llmgw.stages.base import Stage


class FromMessages(Stage):
    """``POST /v1/messages``: Anthropic's Messages request → the chat body."""

    name = "from_messages"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        model = ctx.body.get("model")
        if isinstance(model, str):  # on the row even when the rest of the body is refused
            ctx.model_requested = model
        ctx.body = to_internal(ctx.body)
        return None
