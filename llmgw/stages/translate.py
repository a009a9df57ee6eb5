"""Translate: a body in another API's shape becomes the internal chat body every stage reads.

Runs after authentication (a caller who may not be here gets 401, not a lecture on its body)
and before parsing, so that the chat body it produces is validated like any chat request's and
a malformed body still leaves its row. Chat bodies pass untouched.

A later stage's error names a field of the internal body; :func:`name_for_client` renames it to
the field the client wrote (``CLIENT_PATHS``), so that its ``param`` and message point into the
client's own request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmgw.anthropic.inbound import client_path as messages_path
from llmgw.anthropic.inbound import to_internal as messages_to_chat
from llmgw.context import RequestContext
from llmgw.errors import GatewayError
from llmgw.responses_api.request import to_chat as responses_to_chat
from llmgw.stages.base import Stage

#: the client's API (``ctx.api``) -> its body as the internal chat body
TRANSLATORS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "messages": messages_to_chat,
    "responses": responses_to_chat,
}
#: the client's API -> the client's field for a field of the internal body (client body, internal path).
#: The Responses API is not here: its errors name the internal request, as docs/api.md says.
CLIENT_PATHS: dict[str, Callable[[dict[str, Any], str], str]] = {"messages": messages_path}


def name_for_client(ctx: RequestContext, error: GatewayError) -> None:
    """``error``'s ``param`` (and its mention in the message) as the client's field, for a body
    that was translated: without it a Messages client with a ``system`` prompt is told its
    ``messages[1]`` is at fault when its ``messages[0]`` is."""
    rename = CLIENT_PATHS.get(ctx.api)
    if rename is None or ctx.client_body is None or not error.param:
        return
    param = rename(ctx.client_body, error.param)
    if param != error.param:
        error.message = error.message.replace(error.param, param)
        error.param = param


class TranslateRequest(Stage):
    name = "translate"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        translate = TRANSLATORS.get(ctx.api)
        if translate is not None:
            model = ctx.body.get("model")
            if isinstance(model, str):  # on the row even when the rest of the body is refused
                ctx.model_requested = model
            body = ctx.body
            ctx.body = translate(body, self.gateway.config.server.unknown_fields)
            ctx.client_body = body
        return None
