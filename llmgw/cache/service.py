"""The cache as the pipeline uses it: look up before the provider, store after, one flight per key.

``lookup`` answers with a completion dict (a hit) or None (go upstream); ``store`` keeps a clean
answer; ``release`` ends the request's single flight. Blocking work (the query embedding, index
search and insertion) runs on worker threads, one call per request.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from prometheus_client import Counter

from llmgw.cache import embed, index
from llmgw.cache.keys import CacheKey, build_key, retrieval_scope
from llmgw.cache.match import Rule, match
from llmgw.cache.policy import Decision, Settings, decide, settings_for
from llmgw.cache.redis_store import RedisExactStore
from llmgw.cache.store import Entry, MemoryStore, SemanticTier, SqlitePersister
from llmgw.cache.veto import veto
from llmgw.config import CacheConfig
from llmgw.context import RequestContext
from llmgw.errors import GatewayError
from llmgw.stages.audit import cost_usd
from llmgw.stages.selection import resolve_model

log = logging.getLogger("llmgw.cache")
CANDIDATES = 4  # semantic neighbours examined: a vetoed first one may hide a good second one
REPLAYED_HEADERS = ("x-llmgw-sources",)  # what the skipped stages would have said about the answer


@dataclass(slots=True)
class RequestCache:
    """What the lookup learned, for the store and the release (``ctx.state["cache"]``)."""

    key: CacheKey
    settings: Settings
    decision: Decision
    vector: np.ndarray | None = None
    hit: bool = False
    flight: asyncio.Event | None = None  # set when this request leads a single flight
    flight_key: str = ""
    vetoes: list[dict[str, Any]] = field(default_factory=list)


class ResponseCache:
    def _shared_write(self, entry: Entry, max_entries: int) -> None:
        def done(future: Any) -> None:
            self._writes.discard(future)
            if future.exception() is not None:
                log.warning("cache: writing to the shared semantic tier failed: %s", future.exception())

        future = asyncio.get_running_loop().run_in_executor(None, self.semantic.add, entry, max_entries)
        self._writes.add(future)
        future.add_done_callback(done)

    def _embed_answer_later(self, entry: Entry) -> None:
        """The stored answer's vector, computed on a worker thread after the request (cache.match)."""
        text = answer_text(entry.completion)
        if not text:
            return

        def work() -> None:
            vector = embed.embed_answer(text, self.config.encoder)
            if vector is not None:
                self.memory.attach_answer(entry.key, vector)

        def done(future: Any) -> None:
            self._writes.discard(future)
            if future.exception() is not None:
                log.warning("cache: embedding a stored answer failed: %s", future.exception())

        future = asyncio.get_running_loop().run_in_executor(None, work)
        self._writes.add(future)
        future.add_done_callback(done)

    def __init__(self, config: CacheConfig, gateway: Any, semantic: SemanticTier | None = None) -> None:
        self.config = config
        self.gateway = gateway
        persister = SqlitePersister(config.persist_path, config.persist_interval_s) if config.persist_path else None
        self.memory = MemoryStore(ann_min=config.ann_min_entries, persister=persister)
        #: where semantic neighbours are searched: the in-process store, or a shared one (OpenSearch k-NN)
        self.semantic: SemanticTier = semantic or self.memory
        self._writes: set[Any] = set()
        self.redis = RedisExactStore(config.redis_url, config.redis_prefix) if config.exact_store == "redis" else None
        self.inflight: dict[str, asyncio.Event] = {}
        self.verifier = _import(config.verifier) if config.verifier else None
        registry = gateway.metrics.registry
        self.lookups = Counter("llmgw_cache_lookups", "Cache outcomes", ("route", "result"), registry=registry)
        self.saved_tokens = Counter("llmgw_cache_saved_tokens", "Tokens not spent thanks to hits", ("direction",),
                                    registry=registry)  # fmt: skip
        self.saved_cost = Counter("llmgw_cache_saved_cost_usd", "Cost not spent thanks to hits", registry=registry)
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        routes = self.gateway.config.routes
        limits = {name: settings_for(self.config, r).max_entries for name, r in routes.items()}
        loaded = await anyio.to_thread.run_sync(self.memory.load, limits, self.config.max_entries)
        if loaded:
            log.info("cache: %d entries loaded from %s", loaded, self.config.persist_path)
        if self.memory.persister is not None:
            self.memory.persister.start()
        # the question encoder is loaded with the gateway's other models (llmgw.warmup)
        await anyio.to_thread.run_sync(index._faiss)  # imported now, not under the store's lock later
        self._sweeper = asyncio.create_task(self._sweep())

    def semantic_somewhere(self) -> bool:
        """Whether any route looks answers up by meaning (and so needs the question encoder)."""
        return any(settings_for(self.config, r).semantic for r in self.gateway.config.routes.values())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.memory.persister is not None:
            await anyio.to_thread.run_sync(self.memory.persister.close)
        if self.redis is not None:
            await self.redis.aclose()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await anyio.to_thread.run_sync(self.memory.expire)
            except Exception:
                log.exception("cache: expiry sweep failed")

    async def ready(self) -> bool:
        return await self.redis.ready() if self.redis is not None else True

    # --- lookup ----------------------------------------------------------------------------------

    async def lookup(self, ctx: RequestContext) -> dict[str, Any] | None:
        settings = settings_for(self.config, ctx.route)
        decision = decide(ctx, settings)
        if not decision.lookup and not decision.store:
            return self._bypass(ctx, decision.reason or "off")
        try:
            model_name, model = resolve_model(self.gateway, ctx, ctx.body["model"], "chat")
        except GatewayError:
            return self._bypass(ctx, "model")  # model selection will refuse it with the right error
        key = build_key(ctx, self.gateway, model_name, self.config.share, self.config.encoder)
        if key is None:
            return self._bypass(ctx, "no user message")
        state = RequestCache(key, settings, decision)
        ctx.state["cache"] = state
        if not decision.lookup:
            return self._bypass(ctx, decision.reason or "no-cache")
        if key.version_unknown:  # stored once retrieval has run and told the version
            return self._bypass(ctx, "collection version unknown")
        entry = await self._exact(key.exact)
        if entry is None and decision.store and self.config.single_flight:
            entry = await self._join_flight(ctx, state)
        if entry is not None:
            return self._serve(ctx, state, entry, 1.0, "exact", model_name, model)
        try:
            if settings.semantic and key.question:
                state.vector = await anyio.to_thread.run_sync(embed.embed, key.question, self.config.encoder)
                candidates = await anyio.to_thread.run_sync(self._search, key.scope, state.vector)
                found = match(key.question, state.vector, candidates, self._rule(settings),
                              veto if self.config.veto else None)  # fmt: skip
                state.vetoes.extend(found.refused)
                for candidate, score, basis in found.plausible:
                    if await self._verified(state, candidate, score):
                        return self._serve(ctx, state, candidate, score, "semantic", model_name, model, basis)
        except Exception:  # a broken cache costs a model call, never the request
            log.exception("cache: semantic lookup failed for %s; counting a miss", ctx.request_id)
        except BaseException:
            self.release(ctx)
            raise
        self.lookups.labels(ctx.route_name, "miss").inc()
        ctx.response_headers["x-llmgw-cache"] = "miss"
        ctx.meta["cache"] = {"result": "miss", **({"vetoes": state.vetoes} if state.vetoes else {})}
        return None

    async def _exact(self, key: str) -> Entry | None:
        entry = self.memory.get_now(key)
        if entry is None and self.redis is not None:
            entry = await self.redis.get(key)
        return entry

    async def _join_flight(self, ctx: RequestContext, state: RequestCache) -> Entry | None:
        """Wait for an identical request already on its way upstream, or lead the flight."""
        key = state.key.exact
        leader = self.inflight.get(key)
        if leader is None:
            state.flight = self.inflight[key] = asyncio.Event()
            state.flight_key = key
            task = asyncio.current_task()
            if task is not None:  # a request cancelled before ``done`` must not hold its followers
                task.add_done_callback(lambda _, c=ctx: self.release(c))  # type: ignore[misc]
            return None
        wait = min(self.config.single_flight_wait_s, max(0.0, ctx.deadline - time.monotonic()))
        with anyio.move_on_after(wait):
            await leader.wait()
        ctx.meta["cache_waited"] = True
        return await self._exact(key)

    def _search(self, scope: str, vector: np.ndarray | None) -> list[tuple[Entry, float]]:
        """Neighbours in the scope (the vector is kept even when this fails, so the answer is still stored)."""
        return [] if vector is None else self.semantic.nearest(scope, vector, CANDIDATES)

    def _rule(self, settings: Settings) -> Rule:
        answers = self.config.answer_threshold is not None and settings.answer_threshold is not None
        return Rule(settings.threshold, settings.answer_threshold if answers else None, self.config.answer_drop,
                    self.config.margin)  # fmt: skip

    async def _verified(self, state: RequestCache, candidate: Entry, score: float) -> bool:
        """The optional verifier hook, on a worker thread (the veto and the match already passed)."""
        if self.verifier is None:
            return True
        ok = await anyio.to_thread.run_sync(self.verifier, candidate.question or "", state.key.question or "")
        if not ok:
            state.vetoes.append({"reason": "verifier", "score": round(score, 4), "entry": candidate.source})
        return bool(ok)

    def _serve(self, ctx: RequestContext, state: RequestCache, entry: Entry, score: float, tier: str,
               model_name: str, model: Any, basis: str = "exact") -> dict[str, Any]:  # fmt: skip
        state.hit = True
        self.release(ctx)  # followers of this request look up again and find the same entry
        completion = copy.deepcopy(entry.completion)
        completion.update(id=f"chatcmpl-{ctx.request_id}", created=int(time.time()), model=model_name)
        completion["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        ctx.model_name, ctx.model, ctx.provider_name = model_name, model, model.provider
        ctx.status, ctx.attempts = "cached", 0
        ctx.first_token_at = time.perf_counter()
        ctx.response_headers.update(entry.headers)
        if ctx.stream and isinstance(completion.get("llmgw"), dict):
            ctx.state["sources"] = completion.pop("llmgw")  # the attach-sources stage puts it on the first chunk
        saved = entry.usage
        ctx.meta["cache"] = {"result": "hit", "tier": tier, "score": round(score, 4), "entry": entry.source,
                             "basis": basis, "saved": saved,
                             **({"vetoes": state.vetoes} if state.vetoes else {})}  # fmt: skip
        ctx.meta.setdefault("route_decision", {"rule": "cache"})
        ctx.response_headers["x-llmgw-cache"] = "hit"
        ctx.response_headers["x-llmgw-cache-score"] = f"{score:.4f}"
        self.lookups.labels(ctx.route_name, f"hit_{tier}").inc()
        self.saved_tokens.labels("input").inc(saved.get("prompt_tokens", 0))
        self.saved_tokens.labels("output").inc(saved.get("completion_tokens", 0))
        self.saved_cost.inc(saved.get("cost_usd", 0.0))
        return completion

    def _bypass(self, ctx: RequestContext, reason: str) -> None:
        self.lookups.labels(ctx.route_name, "bypass").inc()
        ctx.response_headers["x-llmgw-cache"] = "bypass"
        ctx.meta["cache"] = {"result": "bypass", "reason": reason}
        return None

    # --- store -----------------------------------------------------------------------------------

    async def store(self, ctx: RequestContext, completion: dict[str, Any]) -> None:
        state: RequestCache | None = ctx.state.get("cache")
        if state is None or state.hit or not state.decision.store or not storable(ctx, completion):
            return
        key, settings = state.key, state.settings
        if key.collection:  # the version may have become known, or changed, while retrieving
            current = retrieval_scope(ctx, self.gateway)
            if current.endswith("@"):
                return  # an answer from an unknown collection version is not kept
            if current != key.collection:
                key = state.key = key.with_collection(current)
            state.vector = await anyio.to_thread.run_sync(embed.embed, key.question, self.config.encoder)
        now = time.time()
        kept = {k: v for k, v in completion.items() if k not in ("id", "created", "usage", "model")}
        entry = Entry(
            key=key.exact, scope=key.scope, route=ctx.route_name,
            question=key.question if state.vector is not None else None,
            completion=mask_answer(kept, ctx), created=now, expires=now + settings.ttl_s,
            template=key.template, collection=key.collection, source=ctx.request_id,
            usage={"prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens,
                   "cost_usd": cost_usd(ctx.model, ctx.prompt_tokens, ctx.completion_tokens, ctx.cached_tokens)},
            headers={k: v for k, v in ctx.response_headers.items() if k in REPLAYED_HEADERS},
            vector=state.vector,
        )  # fmt: skip
        if self.semantic is self.memory:
            await anyio.to_thread.run_sync(self.memory.add, entry, settings.max_entries)
            if entry.vector is not None and self.config.answer_threshold is not None:
                self._embed_answer_later(entry)
        else:  # the shared semantic store keeps the vector; this replica keeps an exact entry
            local = Entry.from_doc(entry.doc())
            await anyio.to_thread.run_sync(self.memory.add, local, settings.max_entries)
            if entry.vector is not None:  # written in the background: never a network write on the request path
                self._shared_write(entry, settings.max_entries)
        if self.redis is not None:
            await self.redis.put(entry, settings.max_entries)
        ctx.meta.setdefault("cache", {})["stored"] = True

    def release(self, ctx: RequestContext) -> None:
        """End this request's single flight (idempotent): its followers look up again."""
        state: RequestCache | None = ctx.state.get("cache")
        if state is not None and state.flight is not None:
            state.flight.set()
            if self.inflight.get(state.flight_key) is state.flight:
                del self.inflight[state.flight_key]
            state.flight = None


def storable(ctx: RequestContext, completion: dict[str, Any]) -> bool:
    """Only clean answers: no error, nothing blocked or filtered, guards not bypassed, retrieval not failed."""
    if ctx.status != "ok" or ctx.error_code or ctx.meta.get("content_filter") or ctx.meta.get("guards_failed_open"):
        return False
    if (ctx.meta.get("retrieval") or {}).get("error"):
        return False  # answered without its passages: fine once, wrong to repeat
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


def mask_answer(completion: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    """Put this request's PII placeholders back into the answer before it is kept.

    The output guards restored the caller's real values; the entry must not carry them (another
    caller with the same masked question would get them). On a hit the output guards restore the
    new caller's own values from the same placeholders.
    """
    masker = ctx.state.get("masker")
    if masker is None or not masker.placeholders:
        return completion
    mask = masker.mask_known  # parts of a value too: an answer may name only "Ada" of "Ada Lovelace"
    out = copy.deepcopy(completion)
    for choice in out.get("choices") or ():
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            message["content"] = mask(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if isinstance(function.get("arguments"), str):
                function["arguments"] = mask(function["arguments"])
    return out


def _import(path: str) -> Callable[[str, str], bool]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
