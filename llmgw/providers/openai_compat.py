"""Any upstream that speaks OpenAI's chat API: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp.

One pooled ``httpx.AsyncClient`` per provider. Errors are classified into
:func:`llmgw.errors.upstream_error` kinds; retryable ones are retried with jittered backoff, but
only before the first byte of an answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from llmgw.config import OpenAIProviderConfig
from llmgw.errors import UpstreamError, upstream_error
from llmgw.providers.base import ProviderBase, UpstreamCall
from llmgw.providers.retry import with_retries
from llmgw.providers.sse import SSEParser

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def classify_status(status: int, body: bytes, headers: httpx.Headers) -> UpstreamError:
    """Turn an upstream HTTP error into a classified :class:`UpstreamError`."""
    message = body[:500].decode("utf-8", "replace")
    upstream_code = None
    try:
        err = _decode(body).get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            upstream_code = err.get("code")
        elif isinstance(err, str):
            message = err
    except (msgspec.DecodeError, AttributeError):
        pass
    retry_after = None
    if "retry-after" in headers:
        try:
            retry_after = float(headers["retry-after"])
        except ValueError:
            retry_after = None
    if upstream_code == "content_filter":
        kind = "content_filter"
    elif status == 429:
        kind = "rate_limited"
    elif status in (502, 500, 529):
        kind = "server_error"
    elif status == 503:
        kind = "unavailable"
    elif status == 504 or status == 408:
        kind = "timeout"
    elif status in (401, 403):
        kind = "auth"
    elif status == 404:
        kind = "not_found"
    elif 400 <= status < 500:
        kind = "bad_request"
    else:
        kind = "server_error"
    return upstream_error(
        kind, f"upstream returned {status}: {message}", upstream_status=status, retry_after=retry_after
    )


def classify_transport(exc: Exception) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return upstream_error("timeout", f"upstream timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return upstream_error("unavailable", f"cannot connect to upstream: {exc}")
    return upstream_error("protocol", f"upstream connection failed: {type(exc).__name__}: {exc}")


class OpenAICompatProvider(ProviderBase):
    def __init__(self, name: str, config: OpenAIProviderConfig) -> None:
        self.name = name
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.config.headers}
        if self.config.api_key:
            if self.config.azure:
                headers["api-key"] = self.config.api_key
            else:
                headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    async def start(self) -> None:
        limits = httpx.Limits(
            max_connections=self.config.max_connections,
            max_keepalive_connections=self.config.max_connections,
        )
        timeout = httpx.Timeout(self.config.read_timeout_s, connect=self.config.connect_timeout_s)
        self._client = httpx.AsyncClient(headers=self._headers(), limits=limits, timeout=timeout)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"provider {self.name} used before start()")
        return self._client

    async def ready(self) -> bool:
        return self._client is not None

    def url(self, path: str, upstream_model: str) -> str:
        if self.config.azure:
            deployment = f"{self.base_url}/openai/deployments/{upstream_model}"
            return f"{deployment}{path}?api-version={self.config.api_version}"
        return self.base_url + path

    def _timeout(self, call: UpstreamCall) -> httpx.Timeout:
        remaining = max(0.001, call.remaining())
        return httpx.Timeout(
            min(self.config.read_timeout_s, remaining), connect=min(self.config.connect_timeout_s, remaining)
        )

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

    async def complete(self, call: UpstreamCall) -> dict[str, Any]:
        content = _encode(call.body)
        url = self.url("/chat/completions", call.upstream_model)

        async def attempt() -> dict[str, Any]:
            try:
                response = await self.client.post(
                    url, content=content, timeout=self._timeout(call), headers=call.extra_headers or None
                )
            except httpx.HTTPError as exc:
                raise classify_transport(exc) from exc
            if response.status_code >= 400:
                raise classify_status(response.status_code, response.content, response.headers)
            try:
                return _decode(response.content)
            except msgspec.DecodeError as exc:
                raise upstream_error("protocol", "upstream returned invalid JSON") from exc

        return await self._retrying(call, attempt)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        content = _encode(call.body)
        url = self.url("/chat/completions", call.upstream_model)

        async def attempt() -> httpx.Response:
            request = self.client.build_request(
                "POST", url, content=content, timeout=self._timeout(call), headers=call.extra_headers or None
            )
            try:
                response = await self.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise classify_transport(exc) from exc
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                except httpx.HTTPError:
                    body = b""
                finally:
                    await response.aclose()
                raise classify_status(response.status_code, body, response.headers)
            return response

        response = await self._retrying(call, attempt)
        return _iterate_stream(response)

    # --- embeddings --------------------------------------------------------------------------

    async def embeddings(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        try:
            response = await self.client.post(
                self.url("/embeddings", upstream_model), content=_encode({**body, "model": upstream_model})
            )
        except httpx.HTTPError as exc:
            raise classify_transport(exc) from exc
        if response.status_code >= 400:
            raise classify_status(response.status_code, response.content, response.headers)
        return _decode(response.content)


async def _iterate_stream(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Yield chunk dicts until ``[DONE]``; a stream that ends without it is an error."""
    parser = SSEParser()
    try:
        try:
            async for piece in response.aiter_raw():
                for data in parser.feed(piece):
                    if data == b"[DONE]":
                        return
                    chunk = _decode(data)
                    if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                        err = chunk["error"]
                        message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
                        raise upstream_error("server_error", f"upstream stream error: {message}")
                    yield chunk
        except httpx.HTTPError as exc:
            raise classify_transport(exc) from exc
        except msgspec.DecodeError as exc:
            raise upstream_error("protocol", "upstream sent an invalid stream chunk") from exc
        for data in parser.close():
            if data == b"[DONE]":
                return
        raise upstream_error("protocol", "upstream stream ended before [DONE]")
    finally:
        await response.aclose()
