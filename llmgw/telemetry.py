"""OpenTelemetry tracing and GenAI metrics for chat requests (``telemetry.enabled``).

One trace per request: a SERVER span ``chat {model}`` for the whole request, a child span per
pipeline stage, and a CLIENT span ``chat {upstream model}`` per upstream attempt (a failover or
fallback is a second attempt span), named and attributed after the OpenTelemetry GenAI semantic
conventions. The attempt's W3C ``traceparent`` goes to the upstream, and a caller's
``traceparent`` is the parent of the request's span. Time to first token and time per output
token are histograms (``gen_ai.server.*``), and each upstream attempt's duration and tokens are
the client histograms (``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``).

The spans are not made on the request's path. Live SDK spans cost about 30 µs each (sampler,
locks, attribute validation) and a request has seven or more, which was twice the latency budget
of tracing (issue 21). So a request only writes down what happened: the trace and span ids it
needs for ``traceparent`` (made up front, the SDK's way: random bits, the same sampler rule),
``time_ns`` stamps per stage and per attempt, and the attribute values. When the request is over
its ``RequestTrace`` goes on a queue, and ``SpanBuilder``, a span processor with its own thread,
turns it into finished SDK spans (``ReadableSpan`` with those ids and times) and hands them to
the ``BatchSpanProcessor`` that exports them: the exporters, the OTLP wire format and
``force_flush``/``shutdown`` are the SDK's. The GenAI histograms are recorded there too.

This module imports the SDK, so only ``llmgw.gateway`` imports it, and only when telemetry is
enabled: with it off nothing of OpenTelemetry is loaded and the pipeline's whole cost is a
``None`` check per request and stage. Attributes carry model names, counts, codes and hosts,
never a prompt, a completion or anything from a message.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from llmgw.errors import GatewayError

if TYPE_CHECKING:
    from llmgw.config import ProviderConfigBase, TelemetryConfig
    from llmgw.context import RequestContext

T = TypeVar("T")
log = logging.getLogger(__name__)

#: ``gen_ai.provider.name`` per provider type: the convention's well-known values where one fits.
PROVIDER_NAMES = {"openai": "openai", "bedrock": "aws.bedrock", "llama_server": "llama.cpp"}
#: Seconds; the GenAI conventions' advised boundaries for the two server histograms.
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
#: The advised boundaries of the two client histograms, per upstream attempt.
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [4**i for i in range(14)]  # 1, 4, 16, ... 67108864

#: A requested model that resolved to nothing (404) is the client's own text: kept this long in
#: ``gen_ai.request.model`` and left out of the span's name, which must stay low-cardinality.
MODEL_MAX = 128
SAMPLED = int(TraceFlags.SAMPLED)
RANDOM_TRACE_ID = int(TraceFlags.RANDOM_TRACE_ID)  # W3C level 2: our trace ids are random
#: The SDK propagator's pattern and limit for ``traceparent`` (``TraceContextTextMapPropagator``).
TRACEPARENT = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$")
TRACEPARENT_MAX = 512
_ERROR = Status(StatusCode.ERROR)
_UNSET = Status(StatusCode.UNSET)
_getrandbits = random.getrandbits  # the SDK's RandomIdGenerator: random bits, never zero


def new_span_id() -> int:
    span_id = _getrandbits(64)
    while not span_id:
        span_id = _getrandbits(64)
    return span_id


def new_trace_id() -> int:
    trace_id = _getrandbits(128)
    while not trace_id:
        trace_id = _getrandbits(128)
    return trace_id


def parse_traceparent(header: str | None) -> SpanContext | None:
    """A caller's ``traceparent`` read as the SDK's propagator reads it, or None when absent or invalid."""
    if not header or len(header) > TRACEPARENT_MAX:
        return None
    match = TRACEPARENT.match(header)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16 or version == "ff" or (version == "00" and rest):
        return None
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))


class Telemetry:
    """The exporters and meters of one gateway; ``begin`` starts the trace of one request.

    ``span_exporter`` and ``metric_reader`` replace the OTLP exporters (tests pass the SDK's
    in-memory ones). The processors hang on this gateway's own tracer provider, not the
    process-global one, so an embedding application's own OpenTelemetry set-up is left alone;
    ``tracer_provider.force_flush()`` builds what is queued, then exports it.
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
        # new traces: the SDK's trace-id ratio rule; a caller's sampled flag wins (parent-based)
        self.ratio = TraceIdRatioBased(config.sample_ratio)
        self.tracer_provider = TracerProvider(resource=resource, sampler=ParentBased(self.ratio))
        # spans leave in batches from the SDK's own thread: exporting never blocks the event loop
        self.exporting = BatchSpanProcessor(span_exporter)
        self.builder = SpanBuilder(self.exporting, resource, InstrumentationScope("llmgw"))
        self.tracer_provider.add_span_processor(self.builder)  # first: a flush builds, then exports
        self.tracer_provider.add_span_processor(self.exporting)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])
        meter = self.meter_provider.get_meter("llmgw")
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", unit="s", description="Time to generate the first token",
            explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
        )  # fmt: skip
        self.tpot = meter.create_histogram(
            "gen_ai.server.time_per_output_token", unit="s", description="Time per output token after the first",
            explicit_bucket_boundaries_advisory=TPOT_BUCKETS,
        )  # fmt: skip
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )  # fmt: skip
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )  # fmt: skip
        # per provider, once: who is called and where (server.address is a host, never a URL with a key)
        self.upstreams: dict[str, dict[str, Any]] = {}
        for name, provider in providers.items():
            attributes: dict[str, Any] = {"gen_ai.provider.name": PROVIDER_NAMES.get(provider.type, provider.type)}
            attributes["gen_ai.system"] = attributes["gen_ai.provider.name"]
            attributes.update(_server(str(getattr(provider, "base_url", "") or "")))
            self.upstreams[name] = attributes

    def begin(self, ctx: RequestContext) -> RequestTrace:
        """The request's ids and sampling decision, as ``ParentBased(TraceIdRatioBased)`` decides."""
        parent = parse_traceparent(ctx.headers.get("traceparent"))
        if parent is None:
            trace_id = new_trace_id()
            sampled = trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self.ratio.bound
            flags = (RANDOM_TRACE_ID | SAMPLED) if sampled else RANDOM_TRACE_ID
        else:
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
            flags = (SAMPLED if sampled else 0) | (parent.trace_flags & RANDOM_TRACE_ID)
        trace = RequestTrace(self, trace_id, flags, parent, sampled)
        if parent is not None:  # W3C: a participant passes the caller's tracestate on with its traceparent
            state = ctx.headers.get("tracestate")
            if state:
                trace.tracestate = TraceState.from_header([state]).to_header() or None  # invalid: dropped
        return trace

    def shutdown(self) -> None:
        """Build and export what is queued and stop the threads (at gateway shutdown)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


class Attempt:
    """One upstream attempt, written down while it runs; its span is made later."""

    __slots__ = (
        "completion_tokens", "deployment", "end", "error", "finish_reasons", "model", "parameters", "prompt_tokens",
        "provider", "response_id", "response_model", "retries", "span_id", "start",
    )  # fmt: skip

    def __init__(self, model: str, provider: str | None, deployment: str | None, parameters: tuple[Any, ...]) -> None:
        self.model = model
        self.provider = provider
        self.deployment = deployment
        self.parameters = parameters
        self.span_id = new_span_id()  # needed now: it is the upstream's traceparent
        self.start = time.time_ns()
        self.end = 0
        self.retries = 0
        self.error: str | None = None
        self.response_model: str | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.response_id: str | None = None  # the upstream's own id for its answer
        self.finish_reasons: dict[int, str] = {}  # choice index → the upstream's finish reason


class RequestTrace:
    """What one request's trace needs, as plain values; ``spans`` makes the SDK spans afterwards.

    Not sampled: no stage is timed and no span made, but the ids still travel in ``traceparent``
    and the upstream attempts are noted for the client metrics, which count every request.
    """

    __slots__ = (
        "api", "attempt", "attempts", "completion_tokens", "ended", "error", "finish_reasons", "flags", "http_status",
        "model", "named", "operation", "parameters", "parent", "prompt_tokens", "provider", "recording", "request_id",
        "response_model", "route", "span_id", "stages", "started", "status", "streaming", "telemetry", "tpot",
        "trace_id", "tracestate", "ttft",
    )  # fmt: skip

    def __init__(
        self, telemetry: Telemetry, trace_id: int, flags: int, parent: SpanContext | None, sampled: bool
    ) -> None:
        self.telemetry = telemetry
        self.trace_id = trace_id
        self.span_id = new_span_id()
        self.flags = flags
        self.parent = parent
        self.recording = sampled
        self.started = time.time_ns()
        self.ended = 0
        self.stages: list[tuple[str, int, int, str | None]] = []  # name, start, end, error.type
        self.attempts: list[Attempt] = []
        self.attempt: Attempt | None = None  # the upstream attempt in flight (or the stream being read)
        self.streaming = False
        # the outcome, copied from the context by end()
        self.model: str | None = None
        self.response_model: str | None = None
        self.provider: str | None = None
        self.parameters: tuple[Any, ...] = _NO_PARAMETERS
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.request_id = ""
        self.route: str | None = None
        self.status = ""
        self.http_status = 0
        self.error: str | None = None
        self.ttft: float | None = None
        self.tpot: float | None = None
        self.api = "chat"
        self.operation = "chat"  # gen_ai.operation.name: "embeddings" for /v1/embeddings
        self.tracestate: str | None = None  # the caller's, checked, for the upstream
        self.named = True  # the model is one the gateway resolved (else the span is not named after it)
        self.finish_reasons: dict[int, str] = {}  # choice index → finish reason, as the client was answered

    # --- stages ----------------------------------------------------------------------------------

    async def stage(self, name: str, step: Awaitable[T]) -> T:
        """Await one stage's ``request``/``response`` and note its times (the span's name is the stage's)."""
        if not self.recording:
            return await step
        start = time.time_ns()
        try:
            result = await step
        except BaseException as exc:
            self.stages.append((name, start, time.time_ns(), _error_type(exc)))
            raise
        self.stages.append((name, start, time.time_ns(), None))
        return result

    def done_stage(self, name: str, step: Callable[[RequestContext], None], ctx: RequestContext) -> None:
        if not self.recording:
            step(ctx)
            return
        start = time.time_ns()
        try:
            step(ctx)
        except BaseException as exc:
            self.stages.append((name, start, time.time_ns(), _error_type(exc)))
            raise
        self.stages.append((name, start, time.time_ns(), None))

    # --- upstream attempts -----------------------------------------------------------------------

    def attempt_started(self, ctx: RequestContext, upstream_model: str) -> None:
        """Noted sampled or not: the client metrics (``gen_ai.client.*``) count every attempt; an
        unsampled one makes no span, its id only travels in ``traceparent``."""
        deployment = ctx.deployment.key if ctx.deployment is not None else None
        self.attempt = Attempt(upstream_model, ctx.provider_name, deployment, _parameter_values(ctx.body))
        self.attempts.append(self.attempt)
        self.streaming = ctx.stream

    def traceparent(self) -> str:
        """The W3C header for the upstream: the attempt's span as the parent (the root's if none)."""
        span_id = self.attempt.span_id if self.attempt is not None else self.span_id
        return f"00-{self.trace_id:032x}-{span_id:016x}-{self.flags:02x}"

    def upstream_answered(self, answer: Mapping[str, Any]) -> None:
        """The upstream's completion or one of its chunks, before the gateway renames it: its id and
        finish reasons go on the attempt's span (``gen_ai.response.id``/``finish_reasons``)."""
        attempt = self.attempt
        if attempt is None:
            return
        if attempt.response_id is None:
            upstream_id = answer.get("id")
            if isinstance(upstream_id, str) and upstream_id:
                attempt.response_id = upstream_id
        _note_finish(attempt.finish_reasons, answer)

    def answered(self, answer: Mapping[str, Any]) -> None:
        """The answer (or a chunk of it) as it goes to the client, after the response stages: a
        guard's ``content_filter`` or a cached answer's reasons are the request span's."""
        _note_finish(self.finish_reasons, answer)

    def attempt_failed(self, exc: GatewayError, retries: int) -> None:
        attempt = self.attempt
        if attempt is not None:
            attempt.end = time.time_ns()
            attempt.retries = retries
            attempt.error = _error_type(exc)
            self.attempt = None

    def attempt_succeeded(self, ctx: RequestContext) -> None:
        """A completion's attempt ends now; a stream's stays open until the stream ends."""
        if self.attempt is not None and not self.streaming:
            self._end_attempt(ctx, time.time_ns())

    def _end_attempt(self, ctx: RequestContext, now: int) -> None:
        attempt = self.attempt
        if attempt is None:
            return
        self.attempt = None
        attempt.end = now
        attempt.retries = max(ctx.attempts - 1, 0)
        attempt.response_model = ctx.model_name
        attempt.prompt_tokens, attempt.completion_tokens = ctx.prompt_tokens, ctx.completion_tokens
        if ctx.status in _CUT and ctx.error_code:  # failed mid-stream, or closed as the client left
            attempt.error = ctx.error_code

    # --- the end -----------------------------------------------------------------------------

    def end(self, ctx: RequestContext) -> None:
        """The request is over however it ended: copy its outcome and queue the trace for building."""
        if self.ended:
            return
        self.ended = now = time.time_ns()
        self._end_attempt(ctx, now)
        requested = ctx.model_requested
        if ctx.model_name is None and requested:  # never resolved: the client's text, not a catalog name
            self.model, self.named = requested[:MODEL_MAX], False
        else:
            self.model, self.named = requested or ctx.model_name, True
        self.response_model = ctx.model_name
        self.api = ctx.api
        self.operation = "embeddings" if ctx.api == "embeddings" else "chat"
        self.provider = ctx.provider_name
        # streamed answers only: for a completion the "first token" is the whole answer
        first = ctx.first_token_at
        if ctx.stream and first is not None and ctx.status == "ok":
            self.ttft = first - ctx.started
            if ctx.completion_tokens > 1:
                ended = ctx.upstream_ended if ctx.upstream_ended is not None else time.perf_counter()
                self.tpot = (ended - first) / (ctx.completion_tokens - 1)
        elif not self.recording and not self.attempts:
            return  # no span, no metric (a cache hit or a refusal, unsampled): nothing to queue
        if self.recording:
            self.parameters = _parameter_values(ctx.body)
            self.prompt_tokens, self.completion_tokens = ctx.prompt_tokens, ctx.completion_tokens
            self.request_id, self.route, self.status = ctx.request_id, ctx.route_name, ctx.status
            self.http_status = ctx.http_status
            if ctx.error_code and ctx.status != "ok":
                self.error = ctx.error_code
        self.telemetry.builder.submit(self)

    # --- afterwards, on the builder's thread -------------------------------------------------------

    def record_metrics(self) -> None:
        """The server histograms (a streamed answer's time to first token and per output token)
        and, per upstream attempt, the client ones the GenAI conventions require of a caller of a
        model: ``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``."""
        telemetry = self.telemetry
        upstreams = telemetry.upstreams
        if self.ttft is not None:
            attributes: dict[str, Any] = {"gen_ai.operation.name": self.operation}
            if self.model:
                attributes["gen_ai.request.model"] = self.model
            if self.response_model:
                attributes["gen_ai.response.model"] = self.response_model
            attributes.update(upstreams.get(self.provider or "", {}))
            telemetry.ttft.record(self.ttft, attributes)
            if self.tpot is not None:
                telemetry.tpot.record(self.tpot, attributes)
        for attempt in self.attempts:
            attributes = {"gen_ai.operation.name": self.operation, "gen_ai.request.model": attempt.model}
            attributes.update(upstreams.get(attempt.provider or "", {}))
            if attempt.response_model:
                attributes["gen_ai.response.model"] = attempt.response_model
            if attempt.error:
                attributes["error.type"] = attempt.error
            end = attempt.end or self.ended
            telemetry.duration.record(max(end - attempt.start, 0) / 1e9, attributes)
            if not attempt.error and (attempt.prompt_tokens or attempt.completion_tokens):
                telemetry.tokens.record(attempt.prompt_tokens, {**attributes, "gen_ai.token.type": "input"})
                telemetry.tokens.record(attempt.completion_tokens, {**attributes, "gen_ai.token.type": "output"})

    def spans(self, resource: Resource, scope: InstrumentationScope) -> list[ReadableSpan]:
        """The finished SDK spans of this request: each stage, each attempt, then the request's own."""
        flags = TraceFlags(self.flags)
        trace_id = self.trace_id
        root = SpanContext(trace_id, self.span_id, is_remote=False, trace_flags=flags)
        upstreams = self.telemetry.upstreams
        spans = []
        for name, start, end, error in self.stages:
            spans.append(ReadableSpan(
                name, SpanContext(trace_id, new_span_id(), is_remote=False, trace_flags=flags), root, resource,
                {"error.type": error} if error else {}, status=_ERROR if error else _UNSET,
                start_time=start, end_time=end, instrumentation_scope=scope,
            ))  # fmt: skip
        for attempt in self.attempts:
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": self.operation,
                "gen_ai.request.model": attempt.model,
            }
            attributes.update(upstreams.get(attempt.provider or "", {}))
            if attempt.deployment is not None:
                attributes["llmgw.deployment"] = attempt.deployment
            _parameters(attributes, attempt.parameters)
            attributes["llmgw.retries"] = attempt.retries
            _usage(attributes, attempt.response_model, attempt.prompt_tokens, attempt.completion_tokens)
            _response(attributes, attempt.response_id, attempt.finish_reasons)
            if attempt.error:
                attributes["error.type"] = attempt.error
            spans.append(ReadableSpan(
                f"{self.operation} {attempt.model}",
                SpanContext(trace_id, attempt.span_id, is_remote=False, trace_flags=flags), root, resource,
                attributes, kind=SpanKind.CLIENT, status=_ERROR if attempt.error else _UNSET,
                start_time=attempt.start, end_time=attempt.end or self.ended, instrumentation_scope=scope,
            ))  # fmt: skip
        attributes = {"gen_ai.operation.name": self.operation}
        if self.model:
            attributes["gen_ai.request.model"] = self.model
        _parameters(attributes, self.parameters)
        _usage(attributes, self.response_model, self.prompt_tokens, self.completion_tokens)
        prefix = _RESPONSE_IDS.get(self.api)
        if prefix is not None and (self.status in ("ok", "cached") or self.finish_reasons):  # the id it was given
            _response(attributes, prefix + self.request_id, self.finish_reasons)
        attributes["llmgw.request_id"] = self.request_id
        if self.route is not None:
            attributes["llmgw.route"] = self.route
        attributes["llmgw.status"] = self.status
        attributes["http.response.status_code"] = self.http_status
        if self.provider:
            attributes.update(upstreams.get(self.provider, {}))
        if self.error:
            attributes["error.type"] = self.error
        spans.append(ReadableSpan(
            f"{self.operation} {self.model}" if self.model and self.named else self.operation,
            root, self.parent, resource, attributes,
            kind=SpanKind.SERVER, status=_ERROR if self.error else _UNSET,
            start_time=self.started, end_time=self.ended, instrumentation_scope=scope,
        ))  # fmt: skip
        return spans


class SpanBuilder(SpanProcessor):
    """Turns finished requests into SDK spans on its own thread and hands them to ``downstream``.

    ``submit`` (on the event loop) is a deque append; the thread wakes every ``interval_s``, or
    sooner once ``wake_at`` requests wait, builds each request's spans and GenAI metrics and
    passes the spans to ``downstream.on_end`` (the batch exporter), as ended live spans would be.
    Past ``max_pending`` waiting requests new ones are dropped and counted, as the SDK's batch
    processor drops spans when its queue is full. ``wake_at`` keeps each hand-over (about seven
    spans a request) under the batch processor's export size of 512 and far from its queue limit
    of 2048, so a burst of requests does not overflow it. As the tracer provider's first processor, its
    ``force_flush`` and ``shutdown`` build everything queued before the exporter flushes.
    """

    def __init__(
        self,
        downstream: SpanProcessor,
        resource: Resource,
        scope: InstrumentationScope,
        interval_s: float = 0.2,
        wake_at: int = 64,
        max_pending: int = 8192,
    ) -> None:
        self.downstream = downstream
        self.resource = resource
        self.scope = scope
        self.interval_s = interval_s
        self.wake_at = wake_at
        self.max_pending = max_pending
        self.pending: deque[RequestTrace] = deque()
        self.dropped = 0
        self._stopped = False
        self.lock = threading.Lock()  # one builder at a time: a flush returns once all is handed on
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmgw-span-builder", daemon=True)
        self._thread.start()

    def submit(self, trace: RequestTrace) -> None:
        pending = self.pending
        if len(pending) >= self.max_pending or self._stopped:
            self.dropped += 1
            return
        pending.append(trace)
        if len(pending) == self.wake_at:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.build()

    def build(self) -> None:
        """Build and hand on everything queued so far."""
        with self.lock:
            pending = self.pending
            while pending:
                trace = pending.popleft()
                try:
                    trace.record_metrics()
                    if trace.recording:
                        for span in trace.spans(self.resource, self.scope):
                            self.downstream.on_end(span)
                except Exception:
                    log.exception("telemetry: the trace of request %s could not be built", trace.request_id)
            if self.dropped:
                log.warning("telemetry: %d traces dropped, the span builder fell behind", self.dropped)
                self.dropped = 0

    # --- SpanProcessor: no live spans pass here; a flush or shutdown builds what is queued ---------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.build()
        return True

    def shutdown(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(10)
        self.build()


def _error_type(exc: BaseException) -> str:
    """``error.type``: the gateway's error code (``upstream_timeout``, ...) or the exception's class."""
    code = exc.code if isinstance(exc, GatewayError) else None
    return code or type(exc).__name__


#: A request's status that ends the attempt still in flight without its answer (``error.type``).
_CUT = frozenset({"error", "client_disconnected"})
#: The id prefix of an answer in each client API (``chatcmpl-`` + request id for chat, ...).
_RESPONSE_IDS = {"chat": "chatcmpl-", "messages": "msg_", "responses": "resp_"}


def _server(base_url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` (required with the address) of an upstream's URL: a
    host and a number, never the URL itself, which may carry a key in its query or user info."""
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    if not host:
        return {}
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return {"server.address": host, "server.port": port} if port is not None else {"server.address": host}


def _note_finish(into: dict[int, str], answer: Mapping[str, Any]) -> None:
    for choice in answer.get("choices") or ():
        if isinstance(choice, dict):
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                index = choice.get("index")
                into[index if isinstance(index, int) else 0] = reason


def _response(attributes: dict[str, Any], response_id: str | None, finish_reasons: dict[int, str]) -> None:
    if response_id:
        attributes["gen_ai.response.id"] = response_id
    if finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = [finish_reasons[i] for i in sorted(finish_reasons)]


def _usage(attributes: dict[str, Any], response_model: str | None, prompt: int, completion: int) -> None:
    if response_model:
        attributes["gen_ai.response.model"] = response_model
    if prompt or completion:
        attributes["gen_ai.usage.input_tokens"] = prompt
        attributes["gen_ai.usage.output_tokens"] = completion


#: Numeric request parameters worth a span attribute; never the messages.
_PARAMETERS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
)
_NO_PARAMETERS = (None,) * len(_PARAMETERS)


def _parameter_values(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """The raw values on the request's path; ``_parameters`` checks and names them afterwards."""
    get = body.get
    return (get("max_tokens"), get("max_completion_tokens"), get("temperature"), get("top_p"))


def _parameters(attributes: dict[str, Any], values: tuple[Any, ...]) -> None:
    for (_, name), value in zip(_PARAMETERS, values, strict=True):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[name] = value
