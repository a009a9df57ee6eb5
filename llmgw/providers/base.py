"""What every provider offers the pipeline.

Providers speak OpenAI's wire format on both sides of this interface: they take an OpenAI chat
request body (with the upstream model id already substituted) and give back an OpenAI
``chat.completion`` dict, or an async iterator of ``chat.completion.chunk`` dicts. Translation
to anything else (Bedrock Converse) happens inside the provider.

Two fields extend OpenAI's shape, for what the Messages API says and Chat Completions cannot: a
``tool`` message may carry ``is_error: true`` (a failed tool call; each provider passes it on in
its upstream's terms, :func:`llmgw.messages.with_tool_errors_as_text` where there are none), and a
choice may carry ``stop_sequence``, the request's stop string the answer ended on, where the
upstream said which (``llmgw.providers.stops``).

Failures are raised as :class:`llmgw.errors.UpstreamError`, classified by ``kind``; a failure
after the first chunk is raised from the iterator and becomes an error event on the client's
stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class UpstreamCall:
    """One call to a provider: the body to send and the time it must finish by."""

    body: dict[str, Any]
    upstream_model: str
    deadline: float  # time.monotonic() value
    request_id: str = ""
    attempts: int = 0  # how many tries were made, filled in by the retry loop
    extra_headers: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@runtime_checkable
class Provider(Protocol):
    name: str

    async def start(self) -> None:
        """Open pools, start processes. Called once at gateway start-up."""

    async def aclose(self) -> None:
        """Release everything :meth:`start` acquired."""

    async def ready(self) -> bool:
        """Whether the provider can take traffic now (for ``/readyz``)."""

    async def complete(self, call: UpstreamCall) -> dict[str, Any]:
        """A non-streamed chat completion in OpenAI's shape."""

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        """Open a streamed completion.

        Awaiting this returns only once the upstream has accepted the request (so errors
        before the first byte raise here, with a proper HTTP status for the client); the
        iterator it returns yields OpenAI chunk dicts.
        """

    async def embeddings(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        """An OpenAI ``/v1/embeddings`` response."""


class ProviderBase:
    """Defaults for providers that do not offer every capability."""

    name: str = "provider"

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ready(self) -> bool:
        return True

    async def complete(self, call: UpstreamCall) -> dict[str, Any]:
        from llmgw.errors import InvalidRequest

        raise InvalidRequest(f"provider {self.name!r} does not serve chat completions", code="unsupported_model")

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        from llmgw.errors import InvalidRequest

        raise InvalidRequest(f"provider {self.name!r} does not serve chat completions", code="unsupported_model")

    async def embeddings(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        from llmgw.errors import InvalidRequest

        raise InvalidRequest(f"provider {self.name!r} does not serve embeddings", code="unsupported_model")
