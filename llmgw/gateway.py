"""The gateway's long-lived parts: providers, keys, storage, metrics, guards, cache and retrieval (the
pipeline that runs requests through them is built beside it, by the app).

``start()`` and ``stop()`` bracket the server's life: providers open their pools (or start
their processes), the storage writer starts; on stop the writer drains every queued row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from llmgw.cache.opensearch_tier import semantic_tier
from llmgw.cache.service import ResponseCache
from llmgw.config import Config
from llmgw.context import RequestContext, new_request_id
from llmgw.guards.runtime import GuardRuntime
from llmgw.keys import KeyStore
from llmgw.limits.auth_failures import AuthFailures
from llmgw.limits.counters import Counters, counters_for
from llmgw.metrics import Metrics
from llmgw.options import GatewayOptions
from llmgw.providers import build_provider
from llmgw.providers.base import ProviderBase
from llmgw.retrieval.service import Retrieval
from llmgw.routing.balance import Balancer
from llmgw.storage.db import make_engine
from llmgw.storage.writer import RowWriter
from llmgw.templates.git import GitError
from llmgw.templates.store import PromptStore

if TYPE_CHECKING:
    from llmgw.telemetry import Telemetry

log = logging.getLogger("llmgw")


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = make_engine(config.storage.url)
        self.writer = RowWriter(
            self.engine,
            batch_size=config.storage.batch_size,
            flush_interval_s=config.storage.flush_interval_s,
            max_attempts=config.storage.max_attempts,
            dead_letter_dir=config.storage.dead_letter_dir,
            max_pending_rows=config.storage.max_pending_rows,
        )
        self.keys = KeyStore(self.engine, config.keys, negative_ttl_s=config.auth.key_refresh_s)
        self.auth_failures = AuthFailures(config.auth.max_failed_auth_per_minute)
        self.metrics = Metrics()
        self.telemetry: Telemetry | None = None
        if config.telemetry.enabled:  # the SDK is imported only then: off costs nothing
            try:
                from llmgw.telemetry import Telemetry
            except ImportError as exc:
                raise RuntimeError(f"telemetry.enabled needs the otel extra: pip install 'llmgw[otel]': {exc}") from exc
            self.telemetry = Telemetry(config.telemetry, config.providers)
        self.providers: dict[str, ProviderBase] = {
            name: build_provider(name, cfg) for name, cfg in config.providers.items()
        }
        self.prompts = PromptStore(config.templates)
        self.guards = GuardRuntime(config.guards, catalog=config.models)
        self.cache = (
            ResponseCache(config.cache, config.routes, self.metrics.registry, semantic_tier(config.cache))
            if config.cache.enabled
            else None
        )
        self.retrieval = Retrieval(config.retrieval.collections_dir)
        self.balancer = Balancer(config.routing)
        self.counters: Counters | None = None
        #: the rate limit's settling writes in flight, awaited on shutdown before the store closes
        self.settling: set[asyncio.Task[None]] = set()
        if config.limits.enabled:
            self.counters = counters_for(config.limits)
        self._refresh_task: asyncio.Task[None] | None = None
        self._prompts_task: asyncio.Task[None] | None = None
        self._retrieval_task: asyncio.Task[None] | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        #: the loaders of llmgw.warmup that ran at start-up, and those that failed
        self.loaded: list[str] = []
        self.load_failed: list[str] = []
        self.started = False

    async def start(self, loaders: Iterable[tuple[str, Callable[[], object]]] = ()) -> None:
        """``loaders``: the models to load before taking requests (``llmgw.warmup.loaders``, passed in by
        the app, so the gateway does not import the modules that read it)."""
        self.writer.start()
        await asyncio.to_thread(self.keys.refresh)
        started: list[ProviderBase] = []
        try:
            for provider in self.providers.values():
                await provider.start()
                started.append(provider)
        except BaseException:
            for provider in started:
                with contextlib.suppress(Exception):
                    await provider.aclose()
            self.writer.close()
            raise
        if self.cache is not None:
            await self.cache.start()
        # keys created or revoked by another process (the CLI, another replica)
        self._refresh_task = asyncio.create_task(self._every(self.config.auth.key_refresh_s, self.keys.refresh, "keys"))
        if self.config.templates.enabled:
            try:
                await asyncio.to_thread(self.prompts.refresh)
            except GitError as exc:  # start anyway: templates answer 404 until the repository can be read
                log.warning("templates.repo %s cannot be read: %s", self.config.templates.repo, exc)
            else:
                for problem in await asyncio.to_thread(self.prompts.missing_arms, self.config.experiments):
                    log.warning("experiment arm %s (its share of requests will be refused)", problem)
            # new commits and moved tags: one git process per interval, never per request
            interval = self.config.templates.refresh_s
            self._prompts_task = asyncio.create_task(self._every(interval, self.prompts.refresh, "prompt refs"))
        if self.config.retrieval.enabled:  # preloaded collections are opened with the models below
            # re-ingested collections are picked up in the background, never on a request
            interval = self.config.retrieval.refresh_s
            self._retrieval_task = asyncio.create_task(self._every(interval, self.retrieval.refresh, "collections"))
        if self.metrics.multiprocess_dir:  # --workers N: a scrape on another worker reads this one's queue
            pending = self.metrics.storage_pending
            self._metrics_task = asyncio.create_task(
                self._every(1.0, lambda: pending.set(self.writer.pending()), "metrics")
            )
        await self.load_models(loaders)
        self.started = True

    async def load_models(self, loaders: Iterable[tuple[str, Callable[[], object]]]) -> None:
        """Every model a request would otherwise load on its way (``llmgw.warmup``), before the
        server takes requests. A failure is logged and makes ``/readyz`` say so; requests then
        load (or fail) on first use."""
        for name, load in loaders:
            try:
                await asyncio.to_thread(load)
            except Exception:
                log.exception("loading %s failed", name)
                self.load_failed.append(name)
                if name == "guards":  # requests fail closed (or open) per policy
                    self.guards.healthy = False
            else:
                self.loaded.append(name)

    async def stop(self) -> None:
        for task in (self._refresh_task, self._prompts_task, self._retrieval_task, self._metrics_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing provider %s failed", provider.name)
        self.guards.close()
        if self.cache is not None:
            await self.cache.close()
        await asyncio.to_thread(self.retrieval.close)
        if self.counters is not None:
            if self.settling:  # the last requests' reservations are settled, not lost with the connection
                await asyncio.wait(set(self.settling), timeout=4 * self.config.limits.store_timeout_s + 1)
            await self.counters.close()
        await asyncio.to_thread(self.writer.close)
        self.engine.dispose()
        if self.telemetry is not None:
            # last: flushing spans may wait on an unreachable collector (the exporter's own timeouts),
            # and the rows, settlements and cache come first; a failure here is logged, not raised
            try:
                await asyncio.to_thread(self.telemetry.shutdown)
            except Exception:
                log.exception("telemetry: shutting down the exporters failed")
        self.started = False

    @staticmethod
    async def _every(interval: float, refresh: Callable[[], None], what: str) -> None:
        """Run a blocking refresh off the loop every ``interval`` seconds; a failure keeps the last state."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(refresh)
            except Exception:
                log.warning("refreshing %s failed", what, exc_info=True)

    def new_context(
        self, endpoint: str, body: dict[str, Any], headers: dict[str, str], client: str | None = None
    ) -> RequestContext:
        ctx = RequestContext(new_request_id(), endpoint, body, GatewayOptions(), headers, client)
        ctx.deadline = time.monotonic() + self.config.server.request_timeout_s
        return ctx

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        for name, provider in self.providers.items():
            try:
                checks[name] = await provider.ready()
            except Exception:  # a failing check means "not ready", never a 500
                log.warning("readiness check of %s failed", name, exc_info=True)
                checks[name] = False
        # the writer runs and is not far behind (rows waiting beyond storage.max_pending_rows)
        checks["storage_writer"] = self.writer.running and not self.writer.behind()
        checks["models"] = self.started and not self.load_failed
        if self.counters is not None and self.config.limits.store == "redis":
            checks["limits_redis"] = await self.counters.ready()
        if self.config.guards.enabled:
            checks["guards"] = self.guards.healthy
        if self.cache is not None and self.cache.redis is not None:
            checks["cache_redis"] = await self.cache.ready()
        return checks
