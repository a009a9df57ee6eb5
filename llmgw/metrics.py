"""Prometheus metrics, one registry per gateway (so several can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llmgw.context import RequestContext

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
        self.storage_pending = Gauge("llmgw_storage_pending_rows", "Rows queued for the database",
                                     registry=self.registry)  # fmt: skip
        self.storage_dead_letter = Gauge("llmgw_storage_dead_letter_rows",
                                         "Rows kept in the dead-letter files until `llmgw storage replay`",
                                         ("table",), registry=self.registry)  # fmt: skip

    def observe(self, ctx: RequestContext) -> None:
        model = ctx.model_name or ""
        self.requests.labels(ctx.endpoint, ctx.route_name, model, ctx.status).inc()
        self.duration.labels(ctx.endpoint, model).observe(ctx.elapsed_ms() / 1000.0)
        if ctx.stream and ctx.first_token_at is not None:
            self.ttft.labels(model).observe(ctx.first_token_at - ctx.started)
        if ctx.prompt_tokens:
            self.tokens.labels(model, "input").inc(ctx.prompt_tokens)
        if ctx.completion_tokens:
            self.tokens.labels(model, "output").inc(ctx.completion_tokens)
        # parts of the two above, for the prompt cache's hit rate and the share spent reasoning
        if ctx.cached_tokens:
            self.tokens.labels(model, "input_cache_read").inc(ctx.cached_tokens)
        if ctx.cache_write_tokens:
            self.tokens.labels(model, "input_cache_write").inc(ctx.cache_write_tokens)
        if ctx.reasoning_tokens:
            self.tokens.labels(model, "output_reasoning").inc(ctx.reasoning_tokens)
        if ctx.cost_usd:
            self.cost.labels(model).inc(ctx.cost_usd)
        if ctx.error_code:
            self.errors.labels(ctx.error_code).inc()

    def render(self, pending_rows: int, dead_letter_rows: dict[str, int] | None = None) -> bytes:
        self.storage_pending.set(pending_rows)
        for table, rows in (dead_letter_rows or {}).items():
            self.storage_dead_letter.labels(table).set(rows)
        return generate_latest(self.registry)
