"""An upstream speaking Anthropic's Messages API natively: Anthropic itself, or any compatible server.

The pipeline hands every provider the internal chat body; this one sends it as a Messages request
(``llmgw.anthropic.outbound``) to ``{base_url}/v1/messages`` with ``x-api-key`` and
``anthropic-version``, and turns the answer (JSON, or Anthropic's SSE events) back into a
``chat.completion`` or its chunks. A request that came in through ``/v1/messages`` thus reaches it
as it was sent, ``cache_control`` blocks, ``top_k`` and ``thinking`` included, after the guards.

The HTTP side (pooled aiohttp session, timeouts, error classification, retries before the first
byte) is the OpenAI-compatible provider's: Anthropic's error bodies carry ``error.message`` as
OpenAI's do, and its 529 "overloaded" is a server error retried like a 502.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from llmgw.anthropic.outbound import ChunksFromEvents, from_message, to_messages
from llmgw.config import AnthropicProviderConfig
from llmgw.errors import InvalidRequest, UpstreamError, UpstreamKind
from llmgw.providers import shape
from llmgw.providers.base import UpstreamCall
from llmgw.providers.openai_compat import TRANSPORT_ERRORS, OpenAICompatProvider, classify_transport, lowered
from llmgw.providers.sse import SSEParser
from llmgw.providers.stops import StopReader

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode
PATH = "/v1/messages"


class AnthropicProvider(OpenAICompatProvider):
    config: AnthropicProviderConfig  # type: ignore[assignment]

    def __init__(self, name: str, config: AnthropicProviderConfig) -> None:
        self.name = name
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": self.config.anthropic_version,
                   **lowered(self.config.headers)}  # fmt: skip
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        return headers

    def url(self, path: str, upstream_model: str) -> str:
        return self.base_url + path

    def _request(self, call: UpstreamCall) -> tuple[str, bytes]:
        return PATH, _encode(to_messages(call.body, call.upstream_model, self.config.default_max_tokens))

    def _completion_of(self, decoded: Any) -> dict[str, Any]:
        return from_message(decoded)

    def _events(self, response: aiohttp.ClientResponse, stops: StopReader | None) -> AsyncIterator[dict[str, Any]]:
        return _iterate_events(response, self._parser())

    def _stops(self, call: UpstreamCall) -> StopReader | None:
        return None  # a Messages upstream names the stop sequence itself (``outbound``)

    async def embeddings(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        raise InvalidRequest(f"provider {self.name!r} does not serve embeddings", code="unsupported_model")


async def _iterate_events(response: aiohttp.ClientResponse, parser: SSEParser) -> AsyncIterator[dict[str, Any]]:
    """Yield chat chunks until ``message_stop``; a stream that ends without it is an error.

    Leaving early closes the connection rather than pooling it, so the upstream stops generating.
    """
    events = ChunksFromEvents()
    try:
        try:
            async for piece in response.content.iter_any():
                for data in parser.feed(piece):
                    for chunk in events.feed(_decode(data)):
                        yield shape.chunk(chunk)
                    if events.finished:
                        return
        except TRANSPORT_ERRORS as exc:
            raise classify_transport(exc) from exc
        except msgspec.DecodeError as exc:
            raise UpstreamError(UpstreamKind.PROTOCOL, "upstream sent an invalid stream event") from exc
        for data in parser.close():
            for chunk in events.feed(_decode(data)):
                yield shape.chunk(chunk)
        if not events.finished:
            raise UpstreamError(UpstreamKind.PROTOCOL, "upstream stream ended before message_stop")
    finally:
        if events.finished:
            response.release()
        else:
            response.close()
