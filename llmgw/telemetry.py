"""OpenTelemetry tracing and GenAI metrics for chat requests (``telemetry.enabled``).

One trace per request: a SERVER span ``chat {model}`` for the whole request, a child span per
pipeline stage, and a CLIENT span ``chat {upstream model}`` per upstream attempt (a failover or
fallback is a second attempt span), named and attributed after the OpenTelemetry GenAI semantic
conventions. The attempt's W3C ``traceparent`` goes to the upstream, and a caller's
``traceparent`` is the parent of the request's span. Time to first token and time per output
token are histograms (``gen_ai.server.*``).

This module imports the SDK, so only ``llmgw.gateway`` imports it, and only when telemetry is
enabled: with it off nothing of OpenTelemetry is loaded and the pipeline's whole cost is a
``None`` check per request and stage. Attributes carry model names, counts, codes and hosts,
never a prompt, a completion or anything from a message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from llmgw.errors import GatewayError

if TYPE_CHECKING:
    from llmgw.config import ProviderConfigBase, TelemetryConfig
    from llmgw.context import RequestContext

T = TypeVar("T")

#: ``gen_ai.provider.name`` per provider type: the convention's well-known values where one fits.
PROVIDER_NAMES = {"openai": "openai", "bedrock": "aws.bedrock", "llama_server": "llama.cpp"}
#: Seconds; the GenAI conventions' advised boundaries for the two server histograms.
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]

_propagator = TraceContextTextMapPropagator()


class Telemetry:
    """The tracer and meter of one gateway; ``begin`` starts the trace of one request.

    ``span_exporter`` and ``metric_reader`` replace the OTLP exporters (tests pass the SDK's
    in-memory ones). The providers are set on this gateway's own tracer provider, not the
    process-global one, so an embedding application's own OpenTelemetry set-up is left alone.
    """

    def __init__(
        self,
        config: TelemetryConfig,
        providers: Mapping[str, ProviderConfigBase],
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        self.config = config
        resource = Resource.create({"service.name": config.service_name})
        base = config.endpoint.rstrip("/") if config.endpoint else None
        headers = dict(config.headers) or None
        if span_exporter is None:
            span_exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces" if base else None, headers=headers)
        if metric_reader is None:
            metrics = OTLPMetricExporter(endpoint=f"{base}/v1/metrics" if base else None, headers=headers)
            interval_ms = config.metrics_interval_s * 1000
            metric_reader = PeriodicExportingMetricReader(metrics, export_interval_millis=interval_ms)
        # spans leave in batches from the SDK's own thread: exporting never blocks the event loop
        sampler = ParentBased(TraceIdRatioBased(config.sample_ratio))  # a caller's sampled flag wins
        self.tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])
        self.tracer = self.tracer_provider.get_tracer("llmgw")
        meter = self.meter_provider.get_meter("llmgw")
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", unit="s", description="Time to generate the first token",
            explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
        )  # fmt: skip
        self.tpot = meter.create_histogram(
            "gen_ai.server.time_per_output_token", unit="s", description="Time per output token after the first",
            explicit_bucket_boundaries_advisory=TPOT_BUCKETS,
        )  # fmt: skip
        # per provider, once: who is called and where (server.address is a host, never a URL with a key)
        self.upstreams: dict[str, dict[str, str]] = {}
        for name, provider in providers.items():
            attributes = {"gen_ai.provider.name": PROVIDER_NAMES.get(provider.type, provider.type)}
            attributes["gen_ai.system"] = attributes["gen_ai.provider.name"]
            host = urlsplit(str(getattr(provider, "base_url", "") or "")).hostname
            if host:
                attributes["server.address"] = host
            self.upstreams[name] = attributes

    def begin(self, ctx: RequestContext) -> RequestTrace:
        incoming = ctx.headers.get("traceparent")
        parent = _propagator.extract({"traceparent": incoming}) if incoming else None
        root = self.tracer.start_span(
            "chat", context=parent, kind=SpanKind.SERVER, attributes={"gen_ai.operation.name": "chat"}
        )
        return RequestTrace(self, root)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters' threads (at gateway shutdown)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


class RequestTrace:
    """The spans of one request. Not sampled: only the root exists, and its context still travels."""

    __slots__ = ("attempt", "parent", "recording", "root", "streaming", "telemetry")

    def __init__(self, telemetry: Telemetry, root: Span) -> None:
        self.telemetry = telemetry
        self.root = root
        self.parent: Context = trace.set_span_in_context(root)
        self.recording = root.is_recording()
        self.attempt: Span | None = None  # the upstream attempt in flight (or the stream being read)
        self.streaming = False

    # --- stages ----------------------------------------------------------------------------------

    async def stage(self, name: str, step: Awaitable[T]) -> T:
        """Await one stage's ``request``/``response`` inside its span."""
        if not self.recording:
            return await step
        span = self.telemetry.tracer.start_span(name, context=self.parent)  # the name is the stage
        try:
            return await step
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    def done_stage(self, name: str, step: Callable[[RequestContext], None], ctx: RequestContext) -> None:
        if not self.recording:
            step(ctx)
            return
        span = self.telemetry.tracer.start_span(name, context=self.parent)  # the name is the stage
        try:
            step(ctx)
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    # --- upstream attempts -----------------------------------------------------------------------

    def attempt_started(self, ctx: RequestContext, upstream_model: str) -> None:
        if not self.recording:  # unsampled: the upstream gets the root's context, no span to make
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": upstream_model,
            **self.telemetry.upstreams.get(ctx.provider_name or "", {}),
        }
        if ctx.deployment is not None:
            attributes["llmgw.deployment"] = ctx.deployment.key
        _request_parameters(attributes, ctx.body)
        self.attempt = self.telemetry.tracer.start_span(
            f"chat {upstream_model}", context=self.parent, kind=SpanKind.CLIENT, attributes=attributes
        )
        self.streaming = ctx.stream

    def traceparent(self) -> str:
        """The W3C header for the upstream: the attempt's span as the parent (the root's if none)."""
        span = self.attempt if self.attempt is not None else self.root
        sc = span.get_span_context()
        return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"

    def attempt_failed(self, exc: GatewayError, retries: int) -> None:
        if self.attempt is not None:
            self.attempt.set_attribute("llmgw.retries", retries)
            _failed(self.attempt, exc)
            self.attempt.end()
            self.attempt = None

    def attempt_succeeded(self, ctx: RequestContext) -> None:
        """A completion ends its span now; a stream's span stays open until the stream ends."""
        if self.attempt is not None and not self.streaming:
            self._end_attempt(ctx)

    def _end_attempt(self, ctx: RequestContext) -> None:
        span = self.attempt
        if span is None:
            return
        self.attempt = None
        span.set_attribute("llmgw.retries", max(ctx.attempts - 1, 0))
        _usage(span, ctx)
        if ctx.status == "error" and ctx.error_code:
            _failed(span, None, ctx.error_code)
        span.end()

    # --- the end -----------------------------------------------------------------------------

    def end(self, ctx: RequestContext) -> None:
        """The request is over however it ended: usage, status and the GenAI metrics."""
        self._end_attempt(ctx)
        root = self.root
        model = ctx.model_requested or ctx.model_name
        if self.recording:
            if model:
                root.update_name(f"chat {model}")
                root.set_attribute("gen_ai.request.model", model)
            _request_parameters_root(root, ctx.body)
            _usage(root, ctx)
            root.set_attribute("llmgw.request_id", ctx.request_id)
            root.set_attribute("llmgw.route", ctx.route_name)
            root.set_attribute("llmgw.status", ctx.status)
            root.set_attribute("http.response.status_code", ctx.http_status)
            if ctx.provider_name:
                for key, value in self.telemetry.upstreams.get(ctx.provider_name, {}).items():
                    root.set_attribute(key, value)
            if ctx.error_code and ctx.status != "ok":
                _failed(root, None, ctx.error_code)
        root.end()
        self._record_metrics(ctx, model)

    def _record_metrics(self, ctx: RequestContext, model: str | None) -> None:
        # streamed answers only: for a completion the "first token" is the whole answer
        if not ctx.stream or ctx.first_token_at is None or ctx.status != "ok":
            return
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        if model:
            attributes["gen_ai.request.model"] = model
        if ctx.model_name:
            attributes["gen_ai.response.model"] = ctx.model_name
        attributes.update(self.telemetry.upstreams.get(ctx.provider_name or "", {}))
        self.telemetry.ttft.record(ctx.first_token_at - ctx.started, attributes)
        ended = ctx.upstream_ended if ctx.upstream_ended is not None else time.perf_counter()
        if ctx.completion_tokens > 1:
            self.telemetry.tpot.record((ended - ctx.first_token_at) / (ctx.completion_tokens - 1), attributes)


def _usage(span: Span, ctx: RequestContext) -> None:
    if ctx.model_name:
        span.set_attribute("gen_ai.response.model", ctx.model_name)
    if ctx.prompt_tokens or ctx.completion_tokens:
        span.set_attribute("gen_ai.usage.input_tokens", ctx.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", ctx.completion_tokens)


#: Numeric request parameters worth a span attribute; never the messages.
_PARAMETERS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
}


def _request_parameters(attributes: dict[str, Any], body: Mapping[str, Any]) -> None:
    for key, name in _PARAMETERS.items():
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value


def _request_parameters_root(span: Span, body: Mapping[str, Any]) -> None:
    attributes: dict[str, Any] = {}
    _request_parameters(attributes, body)
    for key, value in attributes.items():
        span.set_attribute(key, value)


def _failed(span: Span, exc: BaseException | None, code: str | None = None) -> None:
    """``error.type``: the gateway's error code (``upstream_timeout``, ...) or the exception's class."""
    if code is None:
        code = exc.code if isinstance(exc, GatewayError) else type(exc).__name__
    span.set_attribute("error.type", code)
    span.set_status(Status(StatusCode.ERROR))
