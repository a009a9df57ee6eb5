"""Any upstream that speaks OpenAI's chat API: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp.

One pooled ``aiohttp`` client session per provider. (httpx was the first choice; measured here at
concurrency 32 it cost 1.0–1.3 ms of CPU per request, against 85 µs for aiohttp, because its pool
checks every idle connection's socket on each request: see docs/benchmarks.md.) Errors are
classified into :class:`llmgw.errors.UpstreamKind` kinds; retryable ones are retried with
jittered backoff, but only before the first byte of an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import msgspec

from llmgw.config import OpenAIProviderConfig
from llmgw.errors import UpstreamError, UpstreamKind, response_too_large, upstream_failure
from llmgw.messages import with_tool_errors_as_text, without_thinking
from llmgw.providers import shape
from llmgw.providers.base import ProviderBase, UpstreamCall
from llmgw.providers.retry import retry_advice, with_retries
from llmgw.providers.sse import SSEParser
from llmgw.providers.stops import StopReader
from llmgw.responses_api import upstream as responses

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def classify_status(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """Turn an upstream HTTP error into a classified :class:`UpstreamError`."""
    message = body[:500].decode("utf-8", "replace")
    upstream_code = upstream_type = None
    try:
        err = _decode(body).get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            upstream_code = err.get("code")
            upstream_type = err.get("type")
        elif isinstance(err, str):
            message = err
    except (msgspec.DecodeError, AttributeError):
        pass
    retry_after = retry_advice(headers, rate_limited=status == 429)
    if upstream_code == "content_filter":
        kind = UpstreamKind.CONTENT_FILTER
    elif status == 429:
        kind = UpstreamKind.RATE_LIMITED
    elif status in (502, 500, 529):
        kind = UpstreamKind.SERVER_ERROR
    elif status == 503:
        kind = UpstreamKind.UNAVAILABLE
    elif status == 504 or status == 408:
        kind = UpstreamKind.TIMEOUT
    elif status in (401, 403):
        kind = UpstreamKind.AUTH
    elif status == 404:
        kind = UpstreamKind.NOT_FOUND
    elif 400 <= status < 500:
        kind = UpstreamKind.BAD_REQUEST
    else:
        kind = UpstreamKind.SERVER_ERROR
    error = UpstreamError(
        kind, f"upstream returned {status}: {message}", upstream_status=status, retry_after=retry_after
    )
    too_long = upstream_code == "context_length_exceeded" or upstream_type == "exceed_context_size_error"
    if kind is UpstreamKind.BAD_REQUEST and too_long:
        # OpenAI's code for a prompt too long for the model: clients and frameworks act on it (trim,
        # summarise), and the gateway's own check for ``auto`` answers with it too. llama-server
        # (the embedded models) says ``type: "exceed_context_size_error"`` with ``code: 400``
        error.code = "context_length_exceeded"
        error.param = "messages"
    return error


def error_body(decoded: Any, where: str = "upstream error") -> UpstreamError | None:
    """The failure an answer or stream chunk reports instead of itself: OpenAI's ``{"error": ...}``,
    Anthropic's ``{"type": "error", "error": ...}``, vLLM's ``{"object": "error", "message": ...}``
    (some servers and proxies send these with a 200): the upstream's error, retried and fallen back
    from, rather than a malformed answer that hides its message or a chunk passed on as if it were
    one. A Responses body always has an ``error`` field, null unless it failed, beside ``output``."""
    # chained tests, not any() over a generator: this runs on every chunk of every stream
    if not isinstance(decoded, dict) or "choices" in decoded or "content" in decoded or "output" in decoded:
        return None
    if decoded.get("error"):
        err = decoded["error"]
    elif decoded.get("object") == "error":
        err = decoded
    else:
        return None
    return upstream_failure(err, where)


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

#: how much of an error status's body is read: classification needs its JSON ``error`` object,
#: whose message is cut to 500 characters anyway
MAX_ERROR_BODY_BYTES = 2**20


async def read_body(response: aiohttp.ClientResponse, limit: int, knob: str = "max_response_bytes") -> bytes:
    """The whole body, refused (:func:`llmgw.errors.response_too_large`) past ``limit`` bytes: by its
    ``Content-Length`` before a byte is read, else by counting as it arrives (decompressed, so a
    small gzip bomb is caught too), never after buffering it all. The caller closes the connection
    (``release`` with the body unread does)."""
    length = response.content_length
    if length is not None and length > limit and not response.headers.get("content-encoding"):
        raise response_too_large("answer", limit, knob)
    pieces: list[bytes] = []
    size = 0
    async for piece in response.content.iter_any():
        size += len(piece)
        if size > limit:
            raise response_too_large("answer", limit, knob)
        pieces.append(piece)
    return b"".join(pieces)


async def read_error_body(response: aiohttp.ClientResponse) -> bytes:
    """An error status's body, its first :data:`MAX_ERROR_BODY_BYTES` only: what classifies it."""
    pieces: list[bytes] = []
    size = 0
    async for piece in response.content.iter_any():
        pieces.append(piece)
        size += len(piece)
        if size >= MAX_ERROR_BODY_BYTES:
            break
    return b"".join(pieces)[:MAX_ERROR_BODY_BYTES]


def classify_transport(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's connect and read timeouts subclass it
        return UpstreamError(UpstreamKind.TIMEOUT, f"upstream timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return UpstreamError(UpstreamKind.UNAVAILABLE, f"cannot connect to upstream: {exc}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        # aiohttp's own text ("<TransferEncodingError: 400, ...>") reads as if the upstream had said 400
        return UpstreamError(
            UpstreamKind.PROTOCOL, "upstream connection failed: the upstream closed it before the answer was complete"
        )
    return UpstreamError(UpstreamKind.PROTOCOL, f"upstream connection failed: {type(exc).__name__}: {exc}")


def lowered(headers: dict[str, str]) -> dict[str, str]:
    """Configured extra headers with lower-case names, so that the provider's own (its key) replace
    a configured one of any spelling instead of being sent beside it."""
    return {name.lower(): value for name, value in headers.items()}


class OpenAICompatProvider(ProviderBase):
    def __init__(self, name: str, config: OpenAIProviderConfig) -> None:
        self.name = name
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        # names lower-cased: header names are case-insensitive, and a configured ``Authorization`` must
        # meet the key's ``authorization`` below (replaced by it), not travel beside it
        headers = {"content-type": "application/json", **lowered(self.config.headers)}
        if self.config.api_key:
            if self.config.azure:
                headers["api-key"] = self.config.api_key
            else:
                headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.config.max_connections, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, headers=self._headers(), auto_decompress=True, raise_for_status=False
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"provider {self.name} used before start()")
        return self._session

    async def ready(self) -> bool:
        return self._session is not None

    def url(self, path: str, upstream_model: str) -> str:
        if self.config.azure:
            deployment = f"{self.base_url}/openai/deployments/{upstream_model}"
            return f"{deployment}{path}?api-version={self.config.api_version}"
        return self.base_url + path

    def _timeout(self, call: UpstreamCall) -> aiohttp.ClientTimeout:
        remaining = max(0.001, call.remaining())
        return aiohttp.ClientTimeout(
            total=None,
            connect=min(self.config.connect_timeout_s, remaining),
            sock_read=min(self.config.read_timeout_s, remaining),
        )

    async def _post(self, call: UpstreamCall, path: str, content: bytes) -> aiohttp.ClientResponse:
        """Send; raise a classified error for a failed connection or an HTTP error status."""
        try:
            async with asyncio.timeout(max(0.001, call.remaining())):
                response = await self.session.post(
                    self.url(path, call.upstream_model),
                    data=content,
                    timeout=self._timeout(call),
                    headers=call.extra_headers or None,
                )
                if response.status >= 400:
                    try:
                        body = await read_error_body(response)
                    finally:
                        # pooled again only when read to its end
                        response.release() if response.content.at_eof() else response.close()
                    raise classify_status(response.status, body, response.headers)
        except TRANSPORT_ERRORS as exc:
            raise classify_transport(exc) from exc
        return response

    async def _retrying(self, call: UpstreamCall, attempt: Any) -> Any:
        def count(tries: int, _: UpstreamError) -> None:
            call.attempts = tries

        return await with_retries(
            attempt,
            max_retries=self.config.max_retries,
            base=self.config.backoff_base_s,
            cap=self.config.backoff_max_s,
            deadline=call.deadline,
            on_retry=count,
        )

    # --- chat --------------------------------------------------------------------------------

    @property
    def native_responses(self) -> bool:
        """Whether the upstream is called on its Responses API (``responses: native``)."""
        return self.config.responses == "native"

    # --- what a subclass speaking another wire format replaces (the anthropic provider) ---------

    def _request(self, call: UpstreamCall) -> tuple[str, bytes]:
        """The path and body of the upstream request for this chat call. A tool result marked
        ``is_error`` says so in its text: neither Chat Completions nor Responses has the flag; an
        assistant's Anthropic thinking blocks are left out (``llmgw.messages.THINKING``)."""
        body = without_thinking(with_tool_errors_as_text(call.body))
        if self.native_responses:
            return "/responses", _encode(responses.responses_body(body))
        return "/chat/completions", _encode(body)

    def _completion_of(self, decoded: Any) -> dict[str, Any]:
        """The upstream's decoded answer as a chat completion."""
        return responses.completion_of(decoded) if self.native_responses else decoded

    def _events(self, response: aiohttp.ClientResponse, stops: StopReader | None) -> AsyncIterator[dict[str, Any]]:
        """The upstream's event stream as chat chunks."""
        if self.native_responses:
            return _iterate_responses_stream(response, self._parser(), self.config.max_response_bytes)
        return _iterate_stream(response, stops, self._parser())

    def _parser(self) -> SSEParser:
        """An SSE parser bounded by the provider's caps (``max_event_bytes``, ``max_stream_bytes``)."""
        return SSEParser(self.config.max_event_bytes, self.config.max_stream_bytes)

    def _stops(self, call: UpstreamCall) -> StopReader | None:
        """What reads which stop sequence ended the answer (``llmgw.providers.stops``); None when
        the request has none, or the upstream cannot say (a Responses upstream takes no ``stop``)."""
        return None if self.native_responses else StopReader.of(call.body)

    async def complete(self, call: UpstreamCall) -> dict[str, Any]:
        path, content = self._request(call)
        stops = self._stops(call)

        async def attempt() -> dict[str, Any]:
            response = await self._post(call, path, content)
            read = False
            try:
                async with asyncio.timeout(max(0.001, call.remaining())):
                    body = await read_body(response, self.config.max_response_bytes)
                read = True
            except TRANSPORT_ERRORS as exc:
                raise classify_transport(exc) from exc
            finally:
                if read:
                    response.release()
                else:  # not pooled with an answer half read
                    response.close()
            try:
                decoded = _decode(body)
            except msgspec.DecodeError as exc:
                raise UpstreamError(UpstreamKind.PROTOCOL, "upstream returned invalid JSON") from exc
            failure = error_body(decoded)
            if failure is not None:
                raise failure
            completion = shape.completion(self._completion_of(decoded))
            return completion if stops is None else stops.completion(completion)

        return await self._retrying(call, attempt)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        path, content = self._request(call)

        async def attempt() -> aiohttp.ClientResponse:
            return await self._post(call, path, content)

        response = await self._retrying(call, attempt)
        return self._events(response, self._stops(call))

    # --- embeddings --------------------------------------------------------------------------

    async def embeddings(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.config.read_timeout_s
        call = UpstreamCall({**body, "model": upstream_model}, upstream_model, deadline)
        response = await self._post(call, "/embeddings", _encode(call.body))
        read = False
        try:
            payload = await read_body(response, self.config.max_response_bytes)
            read = True
        except TRANSPORT_ERRORS as exc:
            raise classify_transport(exc) from exc
        finally:
            if read:
                response.release()
            else:
                response.close()
        return _decode(payload)


async def _iterate_stream(
    response: aiohttp.ClientResponse, stops: StopReader | None = None, parser: SSEParser | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Yield chunk dicts until ``[DONE]``; a stream that ends without it is an error. ``stops``
    marks the stop sequence the answer ended on, where the upstream says which.

    Leaving early (the client went away) closes the connection rather than returning it to the
    pool, so the upstream sees the disconnect and stops generating.
    """
    parser = parser or SSEParser()
    finished = False
    try:
        try:
            async for piece in response.content.iter_any():
                for data in parser.feed(piece):
                    if data == b"[DONE]":
                        finished = True
                        return
                    chunk = _decode(data)
                    failure = error_body(chunk, "upstream stream error")
                    if failure is not None:
                        raise failure
                    yield shape.chunk(chunk) if stops is None else stops.chunk(shape.chunk(chunk))
        except TRANSPORT_ERRORS as exc:
            raise classify_transport(exc) from exc
        except msgspec.DecodeError as exc:
            raise UpstreamError(UpstreamKind.PROTOCOL, "upstream sent an invalid stream chunk") from exc
        for data in parser.close():
            if data == b"[DONE]":
                finished = True
                return
        raise UpstreamError(UpstreamKind.PROTOCOL, "upstream stream ended before [DONE]")
    finally:
        if finished:
            response.release()
        else:
            response.close()


async def _iterate_responses_stream(
    response: aiohttp.ClientResponse, parser: SSEParser, max_body: int
) -> AsyncIterator[dict[str, Any]]:
    """A Responses upstream's events as chat chunks (:func:`llmgw.responses_api.upstream.chunks_of`)."""

    async def events() -> AsyncIterator[dict[str, Any]]:
        if response.content_type == "application/json":  # a whole answer or an error, not an event stream
            decoded = _decode(await read_body(response, max_body))
            failure = error_body(decoded, "upstream stream error")
            if failure is not None:
                raise failure
            yield {"type": "response.completed", "response": decoded}
            return
        async for piece in response.content.iter_any():
            for data in parser.feed(piece):
                event = _decode(data)
                if not isinstance(event, dict):
                    raise UpstreamError(UpstreamKind.PROTOCOL, "upstream sent an event that is not an object")
                yield event
        for data in parser.close():
            event = _decode(data)
            if isinstance(event, dict):
                yield event

    finished = False
    try:
        try:
            async for chunk in responses.chunks_of(events()):
                yield shape.chunk(chunk)
            finished = True
        except TRANSPORT_ERRORS as exc:
            raise classify_transport(exc) from exc
        except msgspec.DecodeError as exc:
            raise UpstreamError(UpstreamKind.PROTOCOL, "upstream sent an invalid stream event") from exc
    finally:
        if finished:
            response.release()
        else:
            response.close()
