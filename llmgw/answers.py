"""How an answer leaves, per API the client spoke (``RequestContext.api``).

Every stage works on the internal shape: an OpenAI ``chat.completion`` or its chunks. Only the
last step differs by API: the pipeline asks :func:`answer_for` for the request's renderer and
hands it the completion, or each chunk of a stream, its end and a mid-stream failure. So a cache
hit stored from a chat request is rendered as a Messages response when a Messages client asks.
"""

from __future__ import annotations

from typing import Any, Protocol

from llmgw.anthropic import render as anthropic
from llmgw.context import RequestContext
from llmgw.errors import GatewayError
from llmgw.providers.sse import DONE, encode_event


class Answer(Protocol):
    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        """The non-streamed answer's body."""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The SSE bytes for one chunk (``b""``: nothing to send for it)."""

    def end(self) -> bytes:
        """The stream's clean end."""

    def error(self, exc: GatewayError) -> bytes:
        """The event that ends a stream that failed after its first byte."""


class ChatAnswer:
    """OpenAI Chat Completions: the internal shape as it is; usage only when the client asked."""

    __slots__ = ("ctx", "wants_usage")

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.wants_usage = ctx.client_wants_usage

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        return completion

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if not self.wants_usage and "usage" in chunk:
            if not chunk.get("choices"):
                return b""
            del chunk["usage"]
        return encode_event(chunk)

    def end(self) -> bytes:
        return DONE

    def error(self, exc: GatewayError) -> bytes:
        body = exc.body()
        body["error"]["request_id"] = self.ctx.request_id
        return encode_event(body)


class MessagesAnswer:
    """Anthropic's Messages API (``llmgw.anthropic.render``)."""

    __slots__ = ("ctx", "stream")

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.stream = anthropic.StreamRenderer(ctx.request_id, ctx.model_name)

    def tokens(self) -> tuple[int, int, int]:
        return self.ctx.prompt_tokens, self.ctx.completion_tokens, self.ctx.cached_tokens

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        return anthropic.message(completion, self.ctx.request_id, self.ctx.model_name, self.tokens())

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        self.stream.model = self.ctx.model_name  # a fallback may have switched models before the first chunk
        return self.stream.chunk(chunk)

    def end(self) -> bytes:
        return self.stream.end(self.tokens())

    def error(self, exc: GatewayError) -> bytes:
        return self.stream.error(exc)


ANSWERS: dict[str, type[ChatAnswer] | type[MessagesAnswer]] = {"chat": ChatAnswer, "messages": MessagesAnswer}


def answer_for(ctx: RequestContext) -> Answer:
    return ANSWERS[ctx.api](ctx)
