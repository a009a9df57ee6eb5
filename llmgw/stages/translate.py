"""Translate: a body in another API's shape becomes the internal chat body every stage reads.

Runs after authentication (a caller who may not be here gets 401, not a lecture on its body)
and before parsing, so that the chat body it produces is validated like any chat request's and
a malformed body still leaves its row. Chat bodies pass untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmgw.anthropic.inbound import to_internal as messages_to_chat
from llmgw.context import RequestContext
from llmgw.responses_api.request import to_chat as responses_to_chat
from llmgw.stages.base import Stage

#: the client's API (``ctx.api``) -> its body as the internal chat body
TRANSLATORS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "messages": messages_to_chat,
    "responses": responses_to_chat,
}


class TranslateRequest(Stage):
    name = "translate"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        translate = TRANSLATORS.get(ctx.api)
        if translate is not None:
            model = ctx.body.get("model")
            if isinstance(model, str):  # on the row even when the rest of the body is refused
                ctx.model_requested = model
            ctx.body = translate(ctx.body, self.gateway.config.server.unknown_fields)
        return None
