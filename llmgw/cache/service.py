"""The cache as the pipeline uses it: look up before the provider, store after, one flight per key.

``lookup`` tells a hit (the entry to serve), a miss (go upstream) or a bypass; ``store`` keeps a
clean answer; ``release`` ends the request's single flight. Blocking work (the query embedding,
index search and insertion) runs on worker threads, one call per request.

Nothing here reads the request context (as in ``retrieval/``, ``routing/`` and ``limits/``): the
cache stage (``stages/cache.py``) builds the key from the request and the plan, hands this module
a :class:`RequestCache`, and applies the :class:`Outcome` to the response.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from prometheus_client import CollectorRegistry, Counter

from llmgw.cache import align, embed, index, roles
from llmgw.cache.align import verify
from llmgw.cache.completions import answer_text, hit_completion, mask_answer, storable
from llmgw.cache.keys import CacheKey
from llmgw.cache.match import Rule, match
from llmgw.cache.policy import Decision, Settings, settings_for
from llmgw.cache.redis_store import RedisExactStore
from llmgw.cache.store import Entry, MemoryStore, SemanticTier, SqlitePersister
from llmgw.config import CacheConfig, RouteConfig

__all__ = ["Answer", "Outcome", "RequestCache", "ResponseCache", "hit_completion", "mask_answer", "storable"]
log = logging.getLogger("llmgw.cache")
CANDIDATES = 4  # semantic neighbours examined: a vetoed first one may hide a good second one
#: completion fields that belong to the request that produced it, not to the answer
NOT_KEPT = ("id", "created", "usage", "model")
SERVED_KEPT = 10_000  # recent hits that feedback can still mark wrong (per replica)
#: feedback labels that mark a cached answer wrong (as does a score of 0 or below)
WRONG_LABELS = frozenset({"wrong", "down", "bad", "incorrect"})
TIERS = ("exact", "semantic")
#: a semantic hit marked wrong at cosine s raises its entry's own threshold to s + this (vCache-style)
FEEDBACK_STEP = 0.01


def marks_wrong(score: float | None, label: str | None) -> bool:
    """Whether a feedback says the answer was wrong: a score ≤ 0, or a label in ``WRONG_LABELS``."""
    return (score is not None and score <= 0) or (label is not None and label.strip().lower() in WRONG_LABELS)


@dataclass(frozen=True, slots=True)
class Served:
    """A hit, remembered so that feedback on its request can mark it wrong."""

    key: str  # the entry's exact key
    tier: str
    route: str
    owner: str | None  # the key id that made the request: only it (or the admin) may mark it
    score: float = 1.0  # the hit's cosine: a wrong semantic hit raises its entry's threshold above it
    source: str = ""  # the request that produced the served answer: another answer under the key is not it


@dataclass(slots=True)
class RequestCache:
    """One request's cache state, from the lookup to the store and the release."""

    key: CacheKey
    settings: Settings
    decision: Decision
    route: str
    request_id: str
    deadline: float  # time.monotonic() by which a follower stops waiting for its leader
    owner: str | None = None  # the caller's key id (feedback on a hit must come from it)
    vector: np.ndarray | None = None
    hit: bool = False
    flight: asyncio.Event | None = None  # set when this request leads a single flight
    flight_key: str = ""
    waited: bool = False  # followed another request's single flight
    vetoes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the lookup found: ``hit`` (serve ``entry``), ``miss`` or ``bypass`` (with a reason)."""

    result: str
    reason: str | None = None
    entry: Entry | None = None
    tier: str = ""  # exact | semantic
    score: float = 0.0
    basis: str = "exact"  # what a semantic hit matched on: question | answer

    def record(self, vetoes: list[dict[str, Any]]) -> dict[str, Any]:
        """``meta.cache`` on the request row."""
        if self.result == "bypass":
            return {"result": "bypass", "reason": self.reason}
        out: dict[str, Any] = {"result": self.result}
        if self.entry is not None:
            out.update(tier=self.tier, score=round(self.score, 4), entry=self.entry.source, basis=self.basis,
                       saved=self.entry.usage)  # fmt: skip
        return {**out, **({"vetoes": vetoes} if vetoes else {})}


@dataclass(frozen=True, slots=True)
class Answer:
    """A clean answer to keep, as the cache stage saw it after the output guards."""

    completion: dict[str, Any]  # with this request's PII placeholders, never the caller's values
    usage: dict[str, Any]  # prompt and completion tokens and cost: what a hit on it saves
    headers: dict[str, str]  # response headers a hit repeats (the sources)
    collection: str = ""  # the collection version retrieval actually read ("name@" if still unknown)


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

    def __init__(self, config: CacheConfig, routes: dict[str, RouteConfig], registry: CollectorRegistry,
                 semantic: SemanticTier | None = None) -> None:  # fmt: skip
        self.config = config
        self.routes = routes
        persister = SqlitePersister(config.persist_path, config.persist_interval_s) if config.persist_path else None
        self.memory = MemoryStore(ann_min=config.ann_min_entries, persister=persister)
        #: where semantic neighbours are searched: the in-process store, or a shared one (OpenSearch k-NN)
        self.semantic: SemanticTier = semantic or self.memory
        self._writes: set[Any] = set()
        self.redis = RedisExactStore(config.redis_url, config.redis_prefix) if config.exact_store == "redis" else None
        self.inflight: dict[str, asyncio.Event] = {}
        self.verifier = _import(config.verifier) if config.verifier else None
        self.lookups = Counter("llmgw_cache_lookups", "Cache outcomes", ("route", "result"), registry=registry)
        self.saved_tokens = Counter("llmgw_cache_saved_tokens", "Tokens not spent thanks to hits", ("direction",),
                                    registry=registry)  # fmt: skip
        self.saved_cost = Counter("llmgw_cache_saved_cost_usd", "Cost not spent thanks to hits", registry=registry)
        self.wrong_hits = Counter("llmgw_cache_wrong_hits", "Hits marked wrong (feedback) or refused (refresh)",
                                  ("route", "tier", "via"), registry=registry)  # fmt: skip
        #: per tier, hits served and hits marked wrong since start: the error estimate (``error_estimate``)
        self.hits = dict.fromkeys(TIERS, 0)
        self.wrong = dict.fromkeys(TIERS, 0)
        self.refreshed = dict.fromkeys(TIERS, 0)  # entries a ``cache: refresh`` request dropped
        self.served: OrderedDict[str, Served] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        routes = self.routes
        limits = {name: settings_for(self.config, r).max_entries for name, r in routes.items()}
        loaded = await anyio.to_thread.run_sync(self.memory.load, limits, self.config.max_entries)
        if loaded:
            log.info("cache: %d entries loaded from %s", loaded, self.config.persist_path)
        if self.memory.persister is not None:
            self.memory.persister.start()
        # the question encoder is loaded with the gateway's other models (llmgw.warmup)
        await anyio.to_thread.run_sync(index._faiss)  # imported now, not under the store's lock later
        asked = {n: self.config.semantic if r.cache.semantic is None else r.cache.semantic for n, r in routes.items()}
        idle = [n for n, r in routes.items() if asked[n] and not settings_for(self.config, r).semantic]
        if idle:
            log.info("cache: no semantic hit can pass the threshold on %s (max_wrong_rate %g gives 1.0, "
                     "docs/cache.md); exact hits only there: set cache.threshold to answer reworded questions",
                     ", ".join(sorted(idle)), self.config.max_wrong_rate)  # fmt: skip
        if self.config.veto and self.semantic_somewhere():
            await anyio.to_thread.run_sync(align.warm)  # the verifier's WordNet and units, once per process
        self._sweeper = asyncio.create_task(self._sweep())

    def semantic_somewhere(self) -> bool:
        """Whether any route looks answers up by meaning (and so needs the question encoder)."""
        return any(settings_for(self.config, r).semantic for r in self.routes.values())

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

    def settings(self, route: RouteConfig | None) -> Settings:
        return settings_for(self.config, route)

    def bypass(self, route: str, reason: str) -> Outcome:
        """A request the cache does not look up for (counted, so the hit rate is honest)."""
        self.lookups.labels(route, "bypass").inc()
        return Outcome("bypass", reason)

    async def lookup(self, state: RequestCache) -> Outcome:
        """A hit to serve, or a miss; joins (or leads) the single flight of the exact key."""
        key = state.key
        if not state.decision.lookup:
            if state.decision.refresh and not key.version_unknown:
                await self._refresh(state)
            return self.bypass(state.route, state.decision.reason or "no-cache")
        if key.version_unknown:  # stored once retrieval has run and told the version
            return self.bypass(state.route, "collection version unknown")
        entry = await self._exact(key.exact)
        if entry is None and state.decision.store and self.config.single_flight:
            entry = await self._join_flight(state)
        if entry is not None:
            return self._hit(state, entry, 1.0, "exact")
        try:
            found = await self._semantic(state)
            if found is not None:
                return self._hit(state, *found)
        except BaseException:
            self.release(state)
            raise
        self.lookups.labels(state.route, "miss").inc()
        return Outcome("miss")

    async def _semantic(self, state: RequestCache) -> tuple[Entry, float, str, str] | None:
        """The semantic tier's answer (entry, score, tier, basis), if any; the query vector is kept for the store."""
        key, settings = state.key, state.settings
        if not settings.semantic or not key.question:
            return None
        try:
            state.vector = vector = await anyio.to_thread.run_sync(embed.embed, key.question, self.config.encoder)
            if vector is None:  # no vector, no neighbours
                return None
            candidates = await anyio.to_thread.run_sync(self._search, key.scope, vector)
            found = match(key.question, vector, candidates, self._rule(settings), self._veto())
            state.vetoes.extend(found.refused)
            for candidate, score, basis in found.plausible:
                if await self._shared_alive(candidate) and await self._verified(state, candidate, score):
                    return candidate, score, "semantic", basis
        except Exception:  # a broken cache costs a model call, never the request
            log.exception("cache: semantic lookup failed for %s; counting a miss", state.request_id)
        return None

    def _veto(self) -> Callable[[str, str, str | None], str | None] | None:
        """The word verifier, with the role alignment unless ``cache.roles`` is off."""
        if not self.config.veto:
            return None
        return functools.partial(verify, by_role=self.config.roles)

    async def _refresh(self, state: RequestCache) -> None:
        """``cache: refresh``: the entry that would have answered is dropped as a wrong hit would be."""
        entry = await self._exact(state.key.exact)
        tier = "exact"
        if entry is None:
            found = await self._semantic(state)
            if found is None:
                return
            entry, tier, score = found[0], found[2], found[1]
        else:
            score = 1.0
        self.refreshed[tier] += 1
        await self._drop(Served(entry.key, tier, state.route, state.owner, score, entry.source), "refresh")

    async def _exact(self, key: str) -> Entry | None:
        """The entry under an exact key. With Redis, Redis decides: an entry another replica evicted
        there (a hit marked wrong, an admin delete) or that Redis expired is dropped from this
        replica's copy too, which otherwise kept serving it; the copy answers alone only while Redis
        cannot be reached."""
        if self.redis is not None:
            reached, shared = await self.redis.find(key)
            if reached:
                if shared is None:
                    self._forget(key)
                    return None
                return self.memory.get_now(key) or shared
        return self.memory.get_now(key)

    def _forget(self, key: str) -> None:
        """Drop this replica's copy of an entry Redis no longer holds (and from its semantic tier)."""
        if key in self.memory.entries:
            self.memory.remove(key)

    async def _shared_alive(self, entry: Entry) -> bool:
        """Whether a semantic candidate from this replica's store is still in Redis (True without Redis,
        or when Redis cannot be reached); one gone is forgotten here."""
        if self.redis is None or await self.redis.exists(entry.key) is not False:
            return True
        self._forget(entry.key)
        return False

    async def _join_flight(self, state: RequestCache) -> Entry | None:
        """Wait for an identical request already on its way upstream, or lead the flight."""
        key = state.key.exact
        leader = self.inflight.get(key)
        if leader is None:
            state.flight = self.inflight[key] = asyncio.Event()
            state.flight_key = key
            task = asyncio.current_task()
            if task is not None:  # a request cancelled before ``done`` must not hold its followers
                task.add_done_callback(lambda _: self.release(state))
            return None
        wait = min(self.config.single_flight_wait_s, max(0.0, state.deadline - time.monotonic()))
        with anyio.move_on_after(wait):
            await leader.wait()
        state.waited = True
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

    def _hit(self, state: RequestCache, entry: Entry, score: float, tier: str, basis: str = "exact") -> Outcome:
        state.hit = True
        self.release(state)  # followers of this request look up again and find the same entry
        saved = entry.usage
        self.lookups.labels(state.route, f"hit_{tier}").inc()
        self.hits[tier] += 1
        self.served[state.request_id] = Served(entry.key, tier, state.route, state.owner, score, entry.source)
        while len(self.served) > SERVED_KEPT:
            self.served.popitem(last=False)
        self.saved_tokens.labels("input").inc(saved.get("prompt_tokens", 0))
        self.saved_tokens.labels("output").inc(saved.get("completion_tokens", 0))
        self.saved_cost.inc(saved.get("cost_usd", 0.0))
        return Outcome("hit", entry=entry, tier=tier, score=score, basis=basis)

    # --- store -----------------------------------------------------------------------------------

    async def store(self, state: RequestCache, answer: Answer) -> bool:
        """Keep a clean answer under the request's key; False when it is not kept."""
        if state.hit or not state.decision.store:
            return False
        key, settings = state.key, state.settings
        if key.collection:  # the version may have become known, or changed, while retrieving
            if answer.collection.endswith("@"):
                return False  # an answer from an unknown collection version is not kept
            if answer.collection != key.collection:
                key = state.key = key.with_collection(answer.collection)
            state.vector = await anyio.to_thread.run_sync(embed.embed, key.question, self.config.encoder)
        now = time.time()
        entry = Entry(
            key=key.exact, scope=key.scope, route=state.route,
            question=key.question if state.vector is not None else None,
            completion={k: v for k, v in answer.completion.items() if k not in NOT_KEPT},
            created=now, expires=now + settings.ttl_s, template=key.template, collection=key.collection,
            source=state.request_id, usage=answer.usage, headers=answer.headers, vector=state.vector,
        )  # fmt: skip
        if entry.question is not None and self.config.veto and self.config.roles:  # parsed once, here
            entry.roles = await anyio.to_thread.run_sync(_roles_of, entry.question)
        if self.redis is not None:  # first: a lookup in between finds Redis holding what this replica holds
            await self.redis.put(entry, settings.max_entries)
        if self.semantic is self.memory:
            await anyio.to_thread.run_sync(self.memory.add, entry, settings.max_entries)
            if entry.vector is not None and self.config.answer_threshold is not None:
                self._embed_answer_later(entry)
        else:  # the shared semantic store keeps the vector; this replica keeps an exact entry
            local = Entry.from_doc(entry.doc())
            await anyio.to_thread.run_sync(self.memory.add, local, settings.max_entries)
            if entry.vector is not None:  # written in the background: never a network write on the request path
                self._shared_write(entry, settings.max_entries)
        return True

    # --- feedback --------------------------------------------------------------------------------

    async def mark_wrong(self, request_id: str, caller: str | None, admin: bool = False) -> str | None:
        """A hit this replica served was wrong: drop what served it, and count it; what was done, or None.

        A wrong exact hit means the answer itself is wrong: the entry is evicted everywhere (memory,
        its SQLite row, Redis, the shared semantic tier). A wrong semantic hit means the answer did
        not fit the other question: the entry's own threshold is raised above that hit's score
        (``_drop``), and it keeps answering its own question exactly. Only the key that made the
        request (or the admin key) may do this; each hit counts once.
        """
        served = self.served.get(request_id)
        if served is None or (not admin and served.owner != caller):
            return None
        del self.served[request_id]
        self.wrong[served.tier] += 1
        return await self._drop(served, "feedback")

    async def _drop(self, served: Served, via: str) -> str:
        """Tighten (semantic) or evict (exact) the entry behind a wrong hit, and count it.

        A wrong semantic hit at cosine s raises that entry's own threshold to s + ``FEEDBACK_STEP``
        (vCache's per-entry thresholds): questions that far from it go upstream, closer rewordings
        still hit. The shared OpenSearch tier keeps no per-entry threshold: there it is demoted.
        """
        self.wrong_hits.labels(served.route, served.tier, via).inc()
        if await self._replaced(served):
            return "replaced"
        if served.tier == "semantic" and self.semantic is self.memory:
            floor = served.score + FEEDBACK_STEP
            await anyio.to_thread.run_sync(self.memory.tighten, served.key, floor)
            return "tightened" if floor <= 1.0 else "demoted"
        if served.tier == "semantic":
            await anyio.to_thread.run_sync(self.memory.demote, served.key)
            if self.semantic is not self.memory:
                await anyio.to_thread.run_sync(self.semantic.remove, served.key)
            return "demoted"
        await anyio.to_thread.run_sync(self.memory.remove, served.key)
        if self.semantic is not self.memory:
            await anyio.to_thread.run_sync(self.semantic.remove, served.key)
        if self.redis is not None:
            await self.redis.delete(served.key)
        return "evicted"

    async def _replaced(self, served: Served) -> bool:
        """Whether the answer behind a hit has gone and another one holds its key since (it expired, or a
        ``refresh`` replaced it): that one was never judged, and feedback on the old hit leaves it alone."""
        current = self.memory.entries.get(served.key)
        if current is None and self.redis is not None:
            current = await self.redis.get(served.key)
        return current is not None and bool(served.source) and current.source != served.source

    def error_estimate(self) -> dict[str, dict[str, float]]:
        """Per tier: hits served, hits marked wrong, their ratio (a lower bound: not every wrong hit is reported)."""
        return {tier: {"hits": self.hits[tier], "wrong": self.wrong[tier],
                       "wrong_rate": round(self.wrong[tier] / self.hits[tier], 6) if self.hits[tier] else 0.0,
                       "refreshed": self.refreshed[tier]}
                for tier in TIERS}  # fmt: skip

    def release(self, state: RequestCache) -> None:
        """End this request's single flight (idempotent): its followers look up again."""
        if state.flight is not None:
            state.flight.set()
            if self.inflight.get(state.flight_key) is state.flight:
                del self.inflight[state.flight_key]
            state.flight = None


def _roles_of(question: str) -> str:
    return roles.signature(question).dumps()


def _import(path: str) -> Callable[[str, str], bool]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
