"""Cache: answer from the exact or semantic cache before the provider, store after it.

``CacheLookup`` runs after the input guards (the messages are templated and masked) and the plan
(the model that answers and the collection read are decided), before retrieval and model
selection; a hit returns the stored completion, which the pipeline replays as a stream when
asked. ``CacheStore`` runs after the output guards, so it sees the answer the client got and
whether it was filtered; a streamed answer is assembled as it passes (constant work per chunk)
and stored when the stream ended cleanly.

This module adapts the request to the cache: it gathers the key's parts (:func:`key_source`) and
what is kept with an answer, and applies the lookup's outcome to the response. The decisions are
in ``llmgw.cache`` (which never reads the request context).
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import msgspec

from llmgw.cache.keys import KeySource, build_key, tenant_of
from llmgw.cache.policy import decide
from llmgw.cache.service import Answer, Outcome, RequestCache, hit_completion, mask_answer
from llmgw.cache.service import storable as finished
from llmgw.context import RequestContext
from llmgw.messages import THINKING
from llmgw.stages.base import Chunks, Stage
from llmgw.usage import cost_usd

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

REPLAYED_HEADERS = ("x-llmgw-sources",)  # what the skipped stages would have said about the answer


def collection_of(ctx: RequestContext, gateway: Gateway) -> str:
    """The planned collection with the version retrieval last saw ("name@" before its first use)."""
    plan = ctx.plan.retrieval if ctx.plan is not None else None
    if plan is None:
        return ""
    return f"{plan.collection}@{gateway.retrieval.collection_version(plan.collection)}"


def key_source(ctx: RequestContext, gateway: Gateway) -> KeySource:
    """The parts of the request's cache key, read off the request and its plan."""
    assert ctx.plan is not None, "the plan stage runs before the cache lookup"
    prompt = ctx.meta.get("prompt") or {}
    masker = ctx.guards.masker
    assert gateway.cache is not None, "the cache stages run only with the cache enabled"
    return KeySource(
        body=ctx.body,
        tenant=tenant_of(
            ctx.key, ctx.body.get("user") or ctx.body.get("safety_identifier"), gateway.cache.config.share
        ),
        route=ctx.route_name,
        model=ctx.plan.model_name,
        template=f"{prompt.get('id')}@{prompt.get('commit')}" if prompt else None,
        collection=collection_of(ctx, gateway),
        retrieval_options=msgspec.to_builtins(ctx.options.retrieval) if ctx.plan.retrieval is not None else None,
        canary=ctx.guards.canary,
        masked_values=masker.fingerprint() if masker is not None else None,
    )


def storable(ctx: RequestContext, completion: dict[str, Any]) -> bool:
    """Only clean answers: no error, nothing blocked or filtered, guards not bypassed, retrieval not failed,
    no new PII or secret flagged in the answer (the entry would keep that raw value on disk), and given by
    the model the key names: a fallback model's answer would be served, for the whole TTL, as the planned
    model's (the hit is labelled with the planned model), after that model has recovered too."""
    meta = ctx.meta
    if (
        ctx.status != "ok"
        or ctx.error_code
        or any(meta.get(k) for k in ("content_filter", "guards_failed_open", "output_flagged", "fallbacks"))
    ):
        return False
    if (ctx.meta.get("retrieval") or {}).get("error"):
        return False  # answered without its passages: fine once, wrong to repeat
    return finished(completion)


class CacheLookup(Stage):
    name = "cache_lookup"
    toggle = "cache"

    def enabled(self) -> bool:
        return self.gateway.config.cache.enabled

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        cache = self.gateway.cache
        assert cache is not None, "the cache stages run only with the cache enabled"
        settings = cache.settings(ctx.route)
        decision = decide(ctx.options.cache, ctx.headers.get("cache-control", ""), ctx.body.get("temperature"),
                          settings)  # fmt: skip
        if not decision.lookup and not decision.store and not decision.refresh:  # refresh + no-store still drops
            return self.answer(ctx, cache.bypass(ctx.route_name, decision.reason or "off"), None)
        key = build_key(key_source(ctx, self.gateway), cache.config.encoder)
        if key is None:
            return self.answer(ctx, cache.bypass(ctx.route_name, "no user message"), None)
        owner = ctx.key.id if ctx.key is not None else None
        state = RequestCache(key, settings, decision, ctx.route_name, ctx.request_id, ctx.deadline, owner)
        ctx.cache = state
        return self.answer(ctx, await cache.lookup(state), state)

    def answer(self, ctx: RequestContext, outcome: Outcome, state: RequestCache | None) -> dict[str, Any] | None:
        """Say what the lookup found (header, request row); on a hit, the completion to serve."""
        vetoes = state.vetoes if state is not None else []
        ctx.response_headers["x-llmgw-cache"] = outcome.result
        ctx.meta["cache"] = outcome.record(vetoes)
        if state is not None and state.waited:
            ctx.meta["cache_waited"] = True
        if outcome.entry is None:
            return None
        plan = ctx.plan
        assert plan is not None
        entry = outcome.entry
        completion = hit_completion(entry, ctx.request_id, plan.model_name)
        ctx.model_name, ctx.model, ctx.provider_name = plan.model_name, plan.model, plan.model.provider
        ctx.status, ctx.attempts = "cached", 0
        ctx.first_token_at = time.perf_counter()
        ctx.response_headers.update(entry.headers)
        if ctx.stream and isinstance(completion.get("llmgw"), dict):
            ctx.sources = completion.pop("llmgw")  # the attach-sources stage puts it on the first chunk
        ctx.meta.setdefault("route_decision", {"rule": "cache"})
        ctx.response_headers["x-llmgw-cache-score"] = f"{outcome.score:.4f}"
        return completion


class CacheStore(Stage):
    name = "cache_store"
    toggle = "cache"

    def enabled(self) -> bool:
        return self.gateway.config.cache.enabled

    async def response(self, ctx: RequestContext, completion: dict[str, Any]) -> dict[str, Any]:
        await self.keep(ctx, completion)
        return completion

    def stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        if ctx.cache is None or ctx.cache.hit:
            return chunks
        return self._assemble(ctx, chunks)

    async def _assemble(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        assembler = Assembler()
        # the chunks are an async generator (aclose); the Chunks alias only says AsyncIterator
        async with aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                assembler.feed(chunk)
                yield chunk
        if not assembler.lossy:  # a part it cannot put back (logprobs, audio): a hit would serve less
            await self.keep(ctx, assembler.completion())

    async def keep(self, ctx: RequestContext, completion: dict[str, Any]) -> None:
        """Hand a clean answer to the cache, with the caller's PII values masked again."""
        state = ctx.cache
        if state is None or state.hit or not state.decision.store or not storable(ctx, completion):
            return
        masker = ctx.guards.masker
        mask = masker.mask_values if masker is not None and masker.placeholders else None
        cost = cost_usd(ctx.model, ctx.usage())
        usage = {"prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens, "cost_usd": cost}
        headers = {k: v for k, v in ctx.response_headers.items() if k in REPLAYED_HEADERS}
        answer = Answer(mask_answer(completion, mask), usage, headers, collection_of(ctx, self.gateway))
        assert self.gateway.cache is not None
        if await self.gateway.cache.store(state, answer):
            ctx.meta.setdefault("cache", {})["stored"] = True

    def done(self, ctx: RequestContext) -> None:
        state = ctx.cache
        if state is not None and self.gateway.cache is not None:
            self.gateway.cache.release(state)


class Assembler:
    """A streamed answer put back together as the completion a non-streamed request gets.

    Text fields of a delta (``content``, ``refusal``, ``reasoning_content``...) are joined per
    choice, tool calls and the legacy ``function_call`` by their parts; a part it cannot put back
    (logprobs, audio, any other non-text field) sets ``lossy``, and such an answer is not stored:
    a hit on it would serve less than the stream did (before 2026-12-06 a streamed legacy
    ``function_call`` was stored as an empty text answer and served as one).
    """

    #: delta fields that are not text to join: handled on their own
    STRUCTURED = frozenset({"role", "tool_calls", "function_call", THINKING})

    def __init__(self) -> None:
        self.texts: dict[int, dict[str, list[str]]] = {}
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.functions: dict[int, dict[str, list[str]]] = {}  # legacy ``function_call``: name and arguments
        self.finish: dict[int, str | None] = {}
        self.stop_sequences: dict[int, str] = {}  # the matched stop sequence, where the upstream named it
        self.extra: dict[str, Any] = {}  # e.g. the ``llmgw`` sources object of the first chunk
        self.lossy = False
        #: an Anthropic upstream's thinking blocks, by choice and block index: a hit without them
        #: could not continue an extended-thinking tool loop (``llmgw.messages.THINKING``)
        self.thoughts: dict[int, dict[int, dict[str, Any]]] = {}

    def feed(self, chunk: dict[str, Any]) -> None:
        if "llmgw" in chunk:
            self.extra["llmgw"] = chunk["llmgw"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            self.finish.setdefault(index, None)
            if _holds(choice.get("logprobs")):
                self.lossy = True
            for name, value in delta.items():
                if name in self.STRUCTURED:
                    continue
                if isinstance(value, str):
                    if value:
                        self.texts.setdefault(index, {}).setdefault(name, []).append(value)
                elif _holds(value):  # ``"annotations": []``, ``"audio": null``: nothing lost
                    self.lossy = True
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(index, {}).setdefault(call.get("index", 0), {"arguments": []})
                for name in ("id", "type"):
                    if call.get(name):
                        slot[name] = call[name]
                function = call.get("function") or {}
                if function.get("name"):
                    slot["name"] = function["name"]
                if function.get("arguments"):
                    slot["arguments"].append(function["arguments"])
            legacy = delta.get("function_call")
            if isinstance(legacy, dict):
                parts = self.functions.setdefault(index, {"name": [], "arguments": []})
                for name in ("name", "arguments"):
                    if isinstance(legacy.get(name), str):
                        parts[name].append(legacy[name])
            for piece in delta.get(THINKING) or ():
                if isinstance(piece, dict):
                    self._thought(index, piece)
            if choice.get("finish_reason"):
                self.finish[index] = choice["finish_reason"]
                if isinstance(choice.get("stop_sequence"), str):
                    self.stop_sequences[index] = choice["stop_sequence"]

    def _thought(self, index: int, piece: dict[str, Any]) -> None:
        """A piece of a thinking block: its start (the block) or more of its text or signature."""
        block = self.thoughts.setdefault(index, {}).setdefault(piece.get("index", 0), {})
        for key, value in piece.items():
            if key in ("thinking", "signature") and isinstance(block.get(key), str) and isinstance(value, str):
                block[key] += value
            elif key != "index":
                block[key] = value

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self.finish):
            texts = {name: "".join(parts) for name, parts in self.texts.get(index, {}).items()}
            message: dict[str, Any] = {"role": "assistant", "content": texts.pop("content", None), **texts}
            calls = self.calls.get(index)
            legacy = self.functions.get(index)
            if calls:
                message["tool_calls"] = [
                    {"id": c.get("id"), "type": c.get("type", "function"),
                     "function": {"name": c.get("name"), "arguments": "".join(c["arguments"])}}
                    for _, c in sorted(calls.items())
                ]  # fmt: skip
            elif legacy:
                message["function_call"] = {"name": "".join(legacy["name"]), "arguments": "".join(legacy["arguments"])}
            elif message["content"] is None and not texts:
                message["content"] = ""
            if self.thoughts.get(index):
                message[THINKING] = [block for _, block in sorted(self.thoughts[index].items())]
            choice: dict[str, Any] = {"index": index, "message": message, "finish_reason": self.finish[index]}
            if index in self.stop_sequences:
                choice["stop_sequence"] = self.stop_sequences[index]
            choices.append(choice)
        return {"object": "chat.completion", "choices": choices, **self.extra}


def _holds(value: Any) -> bool:
    """Whether a non-text part of a chunk carries anything (``null``, ``[]``, ``{"content": null}`` do not)."""
    if isinstance(value, dict):
        return any(_holds(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v) for v in value)
    return value is not None and value is not False
