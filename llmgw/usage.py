"""Token accounting helpers: estimates for upstreams that report no usage, and stream replay."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

CHARS_PER_TOKEN = 4.0  # OpenAI's rule of thumb for English; marked as an estimate where used


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return 0


def prompt_chars(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or ():
        total += _content_chars(message.get("content")) + 4  # role and separators
        for call in message.get("tool_calls") or ():
            total += len(str((call.get("function") or {}).get("arguments") or ""))
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
