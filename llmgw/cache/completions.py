"""Completions as the cache keeps and serves them: which are kept, their text, PII placeholders, a hit's copy."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from llmgw.cache.store import Entry
from llmgw.messages import rewrite_texts


def storable(completion: dict[str, Any]) -> bool:
    """Only finished answers: every choice ended normally and holds content or tool calls."""
    choices = completion.get("choices") or []
    if not choices:
        return False
    for choice in choices:
        message = choice.get("message") or {}
        if choice.get("finish_reason") not in ("stop", "tool_calls", "length", "function_call"):
            return False
        if message.get("content") is None and not message.get("tool_calls"):
            return False
    return True


def answer_text(completion: dict[str, Any]) -> str:
    """The text a hit on this entry would serve (the first choice's content; "" for tool calls)."""
    choices = completion.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


def mask_answer(completion: dict[str, Any], mask: Callable[[str], str] | None) -> dict[str, Any]:
    """Put the request's PII placeholders back into the answer before it is kept.

    The output guards restored the caller's real values; the entry must not carry them. ``mask``
    replaces each value masked in the request with its placeholder (``Masker.mask_values``: whole
    values only, so that a hit reads exactly as the answer served). On a hit the output guards
    restore the new caller's own values from the same placeholders (the scope holds the masked
    values' fingerprint, so they are the same).
    """
    if mask is None:
        return completion
    out = copy.deepcopy(completion)
    for choice in out.get("choices") or ():
        message = choice.get("message") or {}
        rewrite_texts(message, mask)  # every text the output guards restored (content, reasoning...)
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if isinstance(function.get("arguments"), str):
                function["arguments"] = mask(function["arguments"])
    return out


def hit_completion(entry: Entry, request_id: str, model_name: str) -> dict[str, Any]:
    """The stored completion under the new request's id, time and model; usage zero (no tokens used)."""
    completion = copy.deepcopy(entry.completion)
    completion.update(id=f"chatcmpl-{request_id}", created=int(time.time()), model=model_name)
    completion["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return completion
