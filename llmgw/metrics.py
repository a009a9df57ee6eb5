"""Prometheus metrics, one registry per gateway (so several can live in one test process).

Under ``llmgw serve --workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR``: prometheus_client
then keeps every worker's values in files there, and a scrape of ``/metrics`` on any worker reads
them all (:class:`~prometheus_client.multiprocess.MultiProcessCollector`): counters and histograms
are summed over workers (a dead worker's counts stay in), the rows waiting for the database are
summed over live workers, and ``llmgw_worker_up`` has one series per live worker (``pid`` label), 1 once it accepts
connections.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from llmgw.context import RequestContext

#: a bound on :meth:`Metrics._child`'s cache (it is emptied when full; prometheus keeps the series)
_MAX_CACHED_CHILDREN = 4096
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("endpoint", "route", "model", "status")
        self.requests = Counter("llmgw_requests", "Requests by outcome", labels, registry=self.registry)
        self.duration = Histogram(
            "llmgw_request_duration_seconds", "Whole request", ("endpoint", "model"),
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            "llmgw_time_to_first_token_seconds", "Streamed requests: time to first chunk", ("model",),
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter("llmgw_tokens", "Tokens", ("model", "direction"), registry=self.registry)
        self.cost = Counter("llmgw_cost_usd", "Cost from catalog prices", ("model",), registry=self.registry)
        self.errors = Counter("llmgw_errors", "Errors by code", ("code",), registry=self.registry)
        self.guard_verdicts = Counter("llmgw_guard_provider_verdicts", "Guard provider verdicts (allow, flag, error)",
                                      ("check", "provider", "verdict"), registry=self.registry)  # fmt: skip
        self.storage_pending = Gauge("llmgw_storage_pending_rows", "Rows queued for the database",
                                     registry=self.registry, multiprocess_mode="livesum")  # fmt: skip
        # the dead-letter files are shared by the workers: the newest count any of them read
        self.storage_dead_letter = Gauge("llmgw_storage_dead_letter_rows",
                                         "Rows kept in the dead-letter files until `llmgw storage replay`",
                                         ("table",), registry=self.registry,
                                         multiprocess_mode="livemostrecent")  # fmt: skip
        self.worker = Gauge("llmgw_worker_up", "1 per worker process accepting connections (its index), "
                            "0 while it starts", ("worker",), registry=self.registry,
                            multiprocess_mode="liveall")  # fmt: skip
        # a worker of --workers N says 1 once its socket listens (listening()): with a SO_REUSEPORT
        # socket per worker, one that is up but not yet listening would receive no connection
        self._worker_index = os.environ.get("LLMGW_WORKER")
        self.worker.labels(self._worker_index or "0").set(0 if self._worker_index else 1)
        self.gc_frozen = Gauge("llmgw_gc_frozen_objects", "objects of the start-up heap moved out of the garbage "
                               "collector's scans (gc.freeze), per worker", ("worker",), registry=self.registry,
                               multiprocess_mode="liveall")  # fmt: skip
        # per model deployment: 1 while its circuit breaker keeps it out (llmgw.routing.balance); with
        # --workers N each worker has its own breakers, and the series says whether any has it open
        self.circuit_open = Gauge("llmgw_deployment_circuit_open", "1 while a deployment's circuit breaker is "
                                  "open (it is skipped), else 0", ("model", "deployment"), registry=self.registry,
                                  multiprocess_mode="livemax")  # fmt: skip
        self._children: dict[tuple[Any, ...], Any] = {}  # (metric, *labels) → its labelled child
        #: the directory of ``--workers N`` (one scrape reports every worker), else None
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

    def listening(self, frozen: int = 0) -> None:
        """The server accepts connections (``llmgw serve`` calls this once its sockets listen), with
        ``frozen`` objects of its start-up heap out of the collector's reach."""
        self.gc_frozen.labels(self._worker_index or "0").set(frozen)
        self.worker.labels(self._worker_index or "0").set(1)

    def observe(self, ctx: RequestContext) -> None:
        model = ctx.model_name or ""
        self._child(self.requests, ctx.endpoint, ctx.route_name, model, ctx.status).inc()
        self._child(self.duration, ctx.endpoint, model).observe(ctx.elapsed_ms() / 1000.0)
        if ctx.stream and ctx.first_token_at is not None:
            self._child(self.ttft, model).observe(ctx.first_token_at - ctx.started)
        if ctx.prompt_tokens:
            self._child(self.tokens, model, "input").inc(ctx.prompt_tokens)
        if ctx.completion_tokens:
            self._child(self.tokens, model, "output").inc(ctx.completion_tokens)
        # parts of the two above, for the prompt cache's hit rate and the share spent reasoning
        if ctx.cached_tokens:
            self._child(self.tokens, model, "input_cache_read").inc(ctx.cached_tokens)
        if ctx.cache_write_tokens:
            self._child(self.tokens, model, "input_cache_write").inc(ctx.cache_write_tokens)
        if ctx.reasoning_tokens:
            self._child(self.tokens, model, "output_reasoning").inc(ctx.reasoning_tokens)
        if ctx.cost_usd:
            self._child(self.cost, model).inc(ctx.cost_usd)
        if ctx.error_code:
            self._child(self.errors, ctx.error_code).inc()

    def guard_provider(self, check: str, provider: str, verdict: str) -> None:
        """One guard provider verdict (``llmgw.guards.consult``): an operator alerts on ``error``,
        which for a provider failing open means traffic its check did not read."""
        self._child(self.guard_verdicts, check, provider, verdict).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set: prometheus_client's ``labels``
        checks and converts the values and takes a lock on every call (five calls per request).
        The children are never removed, so a cached one stays the registry's own."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= _MAX_CACHED_CHILDREN:  # label values from clients (error codes, models)
                self._children.clear()
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(
        self,
        pending_rows: int,
        dead_letter_rows: dict[str, int] | None = None,
        circuits: dict[tuple[str, str], bool] | None = None,
    ) -> bytes:
        """The scrape; ``circuits`` maps (model, deployment) to whether its circuit is open (only the
        deployments called so far are known)."""
        self.storage_pending.set(pending_rows)
        for (model, deployment), is_open in (circuits or {}).items():
            self.circuit_open.labels(model, deployment).set(1 if is_open else 0)
        for table, rows in (dead_letter_rows or {}).items():
            self.storage_dead_letter.labels(table).set(rows)
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker, self.multiprocess_dir)
        return generate_latest(every_worker)
