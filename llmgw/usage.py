"""Token accounting helpers: the upstream's usage read safely, estimates for upstreams that report
none, the cost at catalog prices, and stream replay."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from llmgw.config import ModelConfig
from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.messages import text_of, tool_arguments

CHARS_PER_TOKEN = 4.0  # OpenAI's rule of thumb for English; marked as an estimate where used


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


def cost_usd(model: ModelConfig | None, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
    """Catalog prices per million tokens; prompt tokens the provider served from its cache at the
    cached-input price where the catalog has one."""
    if model is None:
        return 0.0
    price = model.price
    cached = min(cached_tokens, prompt_tokens) if price.cached_input_per_mtok is not None else 0
    return (
        (prompt_tokens - cached) * price.input_per_mtok
        + cached * (price.cached_input_per_mtok or 0.0)
        + completion_tokens * price.output_per_mtok
    ) / 1_000_000


class Usage(NamedTuple):
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int  # prompt tokens the provider served from its prompt cache


def _count(value: Any, where: str) -> int:
    """A token count: a whole number >= 0 (``12.0`` too, as some servers send it); absent is 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(f"{where} is a {type(value).__name__}, not a token count")  # never echo the value
    if value < 0 or not (isinstance(value, int) or value.is_integer()):
        raise malformed(f"{where} is {'negative' if value < 0 else 'not a whole number'}, not a token count")
    return int(value)


def malformed(what: str) -> UpstreamError:
    """The upstream's answer breaks OpenAI's shape: its fault, not the client's nor a bug in llmgw."""
    return UpstreamError(UpstreamKind.PROTOCOL, f"the upstream's answer is malformed: {what}")


def read_usage(usage: Any) -> Usage | None:
    """The upstream's ``usage`` object as counts; None when it sent none (null or empty).

    Counts must be non-negative whole numbers: anything else would be billed, charged to limits
    and exported as metrics, so it is refused as an upstream protocol error rather than trusted.
    """
    if usage is None or usage == {}:
        return None
    if not isinstance(usage, dict):
        raise malformed(f"usage is a {type(usage).__name__}, not an object")
    details = usage.get("prompt_tokens_details")
    if details is not None and not isinstance(details, dict):
        raise malformed("usage.prompt_tokens_details is not an object")
    return Usage(
        _count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        _count(usage.get("completion_tokens"), "usage.completion_tokens"),
        _count((details or {}).get("cached_tokens"), "usage.prompt_tokens_details.cached_tokens"),
    )


def prompt_chars(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or ():
        total += len(text_of(message.get("content"))) + 4  # role and separators
        total += sum(len(arguments) for arguments in tool_arguments(message))
    return total


async def replay_as_chunks(completion: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """A stored completion as the chunk sequence a streamed request expects (cache hits)."""
    base = {"id": completion.get("id"), "object": "chat.completion.chunk",
            "created": completion.get("created"), "model": completion.get("model")}  # fmt: skip
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        yield {**base, "choices": [{"index": choice.get("index", 0), "delta": delta, "finish_reason": None}]}
        yield {**base, "choices": [{"index": choice.get("index", 0), "delta": {},
                                    "finish_reason": choice.get("finish_reason")}]}  # fmt: skip
    if completion.get("usage"):
        yield {**base, "choices": [], "usage": completion["usage"]}
