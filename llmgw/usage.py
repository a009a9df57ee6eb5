"""Token accounting helpers: the upstream's usage read safely, estimates for upstreams that report
none, the cost at catalog prices, and stream replay.

The internal usage shape is OpenAI Chat Completions' ``usage``, with every provider translated
onto it (Bedrock here in ``bedrock_translate``, Anthropic with :func:`from_anthropic`):

* ``prompt_tokens``: every input token, those read from or written to the provider's prompt
  cache included (OpenAI counts them so; Anthropic's ``input_tokens`` does not, hence the
  translation);
* ``prompt_tokens_details.cached_tokens``: input tokens read from the prompt cache (OpenAI's
  field; Anthropic's ``cache_read_input_tokens``);
* ``prompt_tokens_details.cache_write_tokens``: input tokens written to the prompt cache
  (Anthropic's ``cache_creation_input_tokens``, Bedrock's ``cacheWriteInputTokens``);
* ``completion_tokens``: every output token, reasoning included;
* ``completion_tokens_details.reasoning_tokens``: the part of them spent reasoning.

An OpenAI-shaped usage that carries Anthropic's names at its top level (as some proxies send) is
read too. Both cache counts are parts of ``prompt_tokens``, priced by the catalog's
``cached_input_per_mtok`` and ``cache_write_per_mtok``; reasoning is priced as output.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from llmgw.config import ModelConfig
from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.messages import THINKING, text_of, tool_arguments

CHARS_PER_TOKEN = 4.0  # OpenAI's rule of thumb for English; marked as an estimate where used


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


class Usage(NamedTuple):
    prompt_tokens: int  # every input token, cache reads and writes included
    completion_tokens: int  # every output token, reasoning included
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache
    cache_write_tokens: int = 0  # prompt tokens the provider wrote to its prompt cache
    reasoning_tokens: int = 0  # completion tokens spent reasoning (priced as output)


def cost_usd(model: ModelConfig | None, usage: Usage) -> float:
    """Catalog prices per million tokens. Prompt tokens read from the provider's prompt cache are
    priced at ``cached_input_per_mtok``, those written to it at ``cache_write_per_mtok`` (each the
    input price when the catalog has none); reasoning tokens are completion tokens, priced as output."""
    if model is None:
        return 0.0
    price = model.price
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    read_price = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    write_price = price.input_per_mtok if price.cache_write_per_mtok is None else price.cache_write_per_mtok
    return (
        (usage.prompt_tokens - cached - written) * price.input_per_mtok
        + cached * read_price
        + written * write_price
        + usage.completion_tokens * price.output_per_mtok
    ) / 1_000_000


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
    """The upstream's ``usage`` object as counts; None when it sent none (null, empty, or every
    count null: the tokens are then estimated, as for a missing usage, rather than billed as 0).

    Counts must be non-negative whole numbers: anything else would be billed, charged to limits
    and exported as metrics, so it is refused as an upstream protocol error rather than trusted.
    """
    if usage is None or usage == {} or (isinstance(usage, dict) and all(v is None for v in usage.values())):
        return None
    if not isinstance(usage, dict):
        raise malformed(f"usage is a {type(usage).__name__}, not an object")
    details = _details(usage, "prompt_tokens_details")
    out_details = _details(usage, "completion_tokens_details")
    prompt = _count(usage.get("prompt_tokens"), "usage.prompt_tokens")
    completion = _count(usage.get("completion_tokens"), "usage.completion_tokens")
    cached = _count(details.get("cached_tokens"), "usage.prompt_tokens_details.cached_tokens") or _count(
        usage.get("cache_read_input_tokens"), "usage.cache_read_input_tokens"
    )
    written = _count(details.get("cache_write_tokens"), "usage.prompt_tokens_details.cache_write_tokens") or _count(
        usage.get("cache_creation_input_tokens"), "usage.cache_creation_input_tokens"
    )
    reasoning = _count(out_details.get("reasoning_tokens"), "usage.completion_tokens_details.reasoning_tokens")
    total = usage.get("total_tokens")
    if isinstance(total, int) and total > prompt + completion:
        # some servers count reasoning beside the completion, or the cache's tokens beside the
        # prompt, not in them: their own total says so, and they are billed all the same
        if reasoning and total == prompt + completion + reasoning:
            completion += reasoning
        elif cached + written and total == prompt + completion + cached + written:
            prompt += cached + written
    # parts never outnumber their whole: a count that would is cut to it (the tokens it cuts are
    # billed at the full input price, never at a cheaper one)
    cached = min(cached, prompt)
    written = min(written, prompt - cached)
    reasoning = min(reasoning, completion)
    return Usage(prompt, completion, cached, written, reasoning)


def _details(usage: dict[str, Any], name: str) -> dict[str, Any]:
    details = usage.get(name)
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise malformed(f"usage.{name} is not an object")
    return details


def from_anthropic(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's ``usage`` (Messages API, and Bedrock's Anthropic models) in the internal shape.

    Anthropic's ``input_tokens`` leaves out the tokens read from and written to the prompt cache;
    the internal ``prompt_tokens`` counts every input token, so they are added back and named in
    ``prompt_tokens_details``. A count that is not a whole number >= 0 is refused as a protocol
    error, as in :func:`read_usage`.
    """
    read = _count(usage.get("cache_read_input_tokens"), "usage.cache_read_input_tokens")
    written = _count(usage.get("cache_creation_input_tokens"), "usage.cache_creation_input_tokens")
    prompt = _count(usage.get("input_tokens"), "usage.input_tokens") + read + written
    completion = _count(usage.get("output_tokens"), "usage.output_tokens")
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if read or written:
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_write_tokens": written}
    return out


def to_anthropic(usage: Usage) -> dict[str, int]:
    """The internal counts as Anthropic reports them (``input_tokens`` without the cache's share)."""
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def prompt_chars(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or ():
        total += len(text_of(message.get("content"))) + 4  # role and separators
        total += sum(len(arguments) for arguments in tool_arguments(message))
    return total


#: request fields a provider bills as prompt tokens besides the messages
BILLED_DEFINITIONS = ("tools", "functions", "response_format")


def billed_prompt_chars(body: dict[str, Any]) -> int:
    """The messages' characters plus the tool definitions and response schema sent with them: what the
    rate limit estimates and a budget reserves. Providers bill the definitions as prompt tokens, and
    a request carrying large ones reserved a fraction of its cost, letting concurrent requests
    overspend a budget several times over."""
    total = prompt_chars(body)
    for field in BILLED_DEFINITIONS:
        value = body.get(field)
        if value:
            total += len(json.dumps(value, separators=(",", ":"), default=str))
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
        if message.get(THINKING):  # each block whole, as one piece (``llmgw.messages.THINKING``)
            delta[THINKING] = [{**block, "index": i} for i, block in enumerate(message[THINKING])]
        yield {**base, "choices": [{"index": choice.get("index", 0), "delta": delta, "finish_reason": None}]}
        end: dict[str, Any] = {"index": choice.get("index", 0), "delta": {},
                               "finish_reason": choice.get("finish_reason")}  # fmt: skip
        if "stop_sequence" in choice:  # the matched stop sequence (``llmgw.providers.stops``)
            end["stop_sequence"] = choice["stop_sequence"]
        yield {**base, "choices": [end]}
    if completion.get("usage"):
        yield {**base, "choices": [], "usage": completion["usage"]}
