"""Cache: answer from the exact or semantic cache before the provider, store after it.

``CacheLookup`` runs after the input guards (the messages are templated and masked) and before
retrieval and model selection; a hit returns the stored completion, which the pipeline replays as
a stream when asked. ``CacheStore`` runs after the output guards, so it sees the answer the
client got and whether it was filtered; a streamed answer is assembled as it passes (constant
work per chunk) and stored when the stream ended cleanly. The logic is in ``llmgw.cache``.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from llmgw.cache.service import ResponseCache
from llmgw.context import RequestContext
from llmgw.stages.base import Chunks, Stage


class CacheLookup(Stage):
    name = "cache_lookup"
    toggle = "cache"

    def enabled(self) -> bool:
        return self.gateway.config.cache.enabled

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        cache: ResponseCache = self.gateway.cache
        return await cache.lookup(ctx)


class CacheStore(Stage):
    name = "cache_store"
    toggle = "cache"

    def enabled(self) -> bool:
        return self.gateway.config.cache.enabled

    async def response(self, ctx: RequestContext, completion: dict[str, Any]) -> dict[str, Any]:
        await self.gateway.cache.store(ctx, completion)
        return completion

    def stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        if "cache" not in ctx.state or ctx.state["cache"].hit:
            return chunks
        return self._assemble(ctx, chunks)

    async def _assemble(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        assembler = Assembler()
        async with aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                assembler.feed(chunk)
                yield chunk
        await self.gateway.cache.store(ctx, assembler.completion())

    def done(self, ctx: RequestContext) -> None:
        self.gateway.cache.release(ctx)


class Assembler:
    """A streamed answer put back together as the completion a non-streamed request gets."""

    def __init__(self) -> None:
        self.texts: dict[int, list[str]] = {}
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.finish: dict[int, str | None] = {}
        self.extra: dict[str, Any] = {}  # e.g. the ``llmgw`` sources object of the first chunk

    def feed(self, chunk: dict[str, Any]) -> None:
        if "llmgw" in chunk:
            self.extra["llmgw"] = chunk["llmgw"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            self.finish.setdefault(index, None)
            if delta.get("content"):
                self.texts.setdefault(index, []).append(delta["content"])
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
            if choice.get("finish_reason"):
                self.finish[index] = choice["finish_reason"]

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self.finish):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(self.texts.get(index, [])) or None}
            calls = self.calls.get(index)
            if calls:
                message["tool_calls"] = [
                    {"id": c.get("id"), "type": c.get("type", "function"),
                     "function": {"name": c.get("name"), "arguments": "".join(c["arguments"])}}
                    for _, c in sorted(calls.items())
                ]  # fmt: skip
            elif message["content"] is None:
                message["content"] = ""
            choices.append({"index": index, "message": message, "finish_reason": self.finish[index]})
        return {"object": "chat.completion", "choices": choices, **self.extra}
