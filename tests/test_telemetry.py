"""OpenTelemetry: spans per stage and upstream attempt, traceparent both ways, OTLP export, off = not imported.

Through the real server with the openai SDK and the stub upstream. The gateway's OTLP exporters
are swapped for the SDK's in-memory ones (the in-process test hook), except in the OTLP test,
where a local OTLP/HTTP receiver decodes what the gateway's own exporter sends.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

pytest.importorskip("opentelemetry.sdk")

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llmgw.telemetry import Telemetry
from tests.conftest import RunningGateway, free_port
from tests.upstream import FakeUpstream

ROOT_DIR = Path(__file__).resolve().parent.parent
SECRET = "my card is 4111 1111 1111 1111 and my name is Zelda Quux"


class Traced:
    """A gateway whose telemetry exports to memory."""

    def __init__(self, gw: RunningGateway) -> None:
        self.gw = gw
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        old = gw.gateway.telemetry
        assert old is not None
        gw.gateway.telemetry = Telemetry(gw.config.telemetry, gw.config.providers, self.spans, self.metrics)
        old.shutdown()

    def finished(self) -> list[ReadableSpan]:
        telemetry = self.gw.gateway.telemetry
        assert telemetry is not None
        self.gw.flush()  # the done stages ran when the row was queued
        deadline = time.monotonic() + 30  # a bound: returns once the root span is there
        while True:
            telemetry.tracer_provider.force_flush()
            spans = list(self.spans.get_finished_spans())
            roots = [s for s in spans if s.kind == SpanKind.SERVER]
            if roots or time.monotonic() > deadline:
                return spans
            time.sleep(0.02)


@pytest.fixture()
def traced(make_gateway: Any) -> Traced:
    return Traced(make_gateway(telemetry={"enabled": True, "endpoint": "http://127.0.0.1:9"}))


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def test_spans_per_stage_and_upstream_attempt_with_genai_attributes(traced: Traced, upstream: FakeUpstream) -> None:
    client = traced.gw.client()
    reply = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": SECRET}], max_tokens=20, temperature=0.5
    )
    spans = traced.finished()
    names = by_name(spans)
    root = names["chat test-model"]
    assert root.kind == SpanKind.SERVER and root.parent is None
    attempt = names["chat fake-1"]
    assert attempt.kind == SpanKind.CLIENT
    trace_id = root.context.trace_id
    assert all(s.context.trace_id == trace_id for s in spans)
    for stage in ("authenticate", "parse", "plan", "select_model", "audit_log"):
        assert names[stage].parent is not None and names[stage].parent.span_id == root.context.span_id, stage
    assert attempt.parent is not None and attempt.parent.span_id == root.context.span_id
    assert reply.usage is not None
    for span in (root, attempt):
        a = span.attributes or {}
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.response.model"] == "test-model"
        assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
        assert a["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
        assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.system"] == "openai"
        assert a["server.address"] == "127.0.0.1"
        assert a["gen_ai.request.max_tokens"] == 20 and a["gen_ai.request.temperature"] == 0.5
    assert root.attributes["gen_ai.request.model"] == "test-model"  # type: ignore[index]
    assert attempt.attributes["gen_ai.request.model"] == "fake-1"  # type: ignore[index]
    # no prompt or response text anywhere
    for span in spans:
        for value in (span.attributes or {}).values():
            assert "4111" not in str(value) and "Zelda" not in str(value)
            assert reply.choices[0].message.content not in str(value)
    # the upstream got the attempt's span as its parent
    traceparent = upstream.headers[-1]["traceparent"]
    version, tid, sid, flags = traceparent.split("-")
    assert (version, int(tid, 16), int(sid, 16)) == ("00", trace_id, attempt.context.span_id)
    assert int(flags, 16) & 1  # sampled (0x02 is W3C level 2's "random trace id" flag)


def test_incoming_traceparent_continues_the_trace(traced: Traced, upstream: FakeUpstream) -> None:
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client = traced.gw.client(default_headers={"traceparent": f"00-{tid}-{sid}-01"})
    client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    root = by_name(traced.finished())["chat test-model"]
    assert root.context.trace_id == int(tid, 16)
    assert root.parent is not None and root.parent.span_id == int(sid, 16) and root.parent.is_remote
    assert upstream.headers[-1]["traceparent"].split("-")[1] == tid


def test_failed_attempt_then_fallback_are_two_spans(make_gateway: Any) -> None:
    routes = {"default": {"default_model": "test-model", "selection": {"fallbacks": ["test-model"]}}}
    traced = Traced(make_gateway(routes=routes, telemetry={"enabled": True, "endpoint": "http://127.0.0.1:9"}))
    traced.gw.client().chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "hi"}])
    names = by_name(traced.finished())
    failed, ok = names["chat nothing"], names["chat fake-1"]
    assert (failed.attributes or {})["error.type"] == "upstream_unavailable"
    assert "error.type" not in (ok.attributes or {})
    assert names["chat dead-model"].attributes["gen_ai.response.model"] == "test-model"  # type: ignore[index]


def test_stream_metrics_and_refusal(traced: Traced) -> None:
    client = traced.gw.client()
    stream = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "tell me a story"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    spans = by_name(traced.finished())
    attempt = spans["chat fake-1"]
    assert (attempt.attributes or {})["gen_ai.usage.output_tokens"] > 1
    assert attempt.end_time is not None and spans["chat test-model"].end_time is not None
    data = traced.metrics.get_metrics_data()
    assert data is not None
    found = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    for name in ("gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token"):
        point = found[name].data.data_points[0]  # type: ignore[union-attr]
        assert point.count == 1 and point.sum > 0, name
        assert point.attributes["gen_ai.request.model"] == "test-model"

    traced.spans.clear()
    with pytest.raises(openai.AuthenticationError):
        traced.gw.client(api_key="sk-wrong-key-000000000000").chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}]
        )
    root = next(s for s in traced.finished() if s.kind == SpanKind.SERVER)
    assert (root.attributes or {})["error.type"] == "invalid_api_key"
    assert (root.attributes or {})["http.response.status_code"] == 401


class OtlpReceiver:
    """A tiny OTLP/HTTP collector: POST /v1/traces (protobuf), decoded with opentelemetry-proto."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.port = free_port()
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self.serve, daemon=True)

    async def traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        self.requests.append(message)
        self.headers.append(dict(request.headers))
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def metrics(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    def serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/metrics", self.metrics)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def spans(self) -> list[Any]:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest.fixture()
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    server.thread.start()
    server.ready.wait(10)
    yield server
    assert server.loop is not None
    server.loop.call_soon_threadsafe(server.loop.stop)
    server.thread.join(10)


def test_spans_reach_a_local_otlp_receiver(make_gateway: Any, receiver: OtlpReceiver) -> None:
    telemetry = {
        "enabled": True,
        "endpoint": f"http://127.0.0.1:{receiver.port}",
        "service_name": "llmgw-test",
        "headers": {"x-collector-token": "t0ken"},
    }
    gw = make_gateway(telemetry=telemetry)
    gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    gw.flush()
    assert gw.gateway.telemetry is not None
    deadline = time.monotonic() + 10
    while not any(s.name == "chat test-model" for s in receiver.spans()) and time.monotonic() < deadline:
        gw.gateway.telemetry.tracer_provider.force_flush()
        time.sleep(0.05)
    spans = {s.name: s for s in receiver.spans()}
    assert {"chat test-model", "chat fake-1", "authenticate", "audit_log"} <= set(spans)
    root = spans["chat test-model"]
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["gen_ai.request.model"].string_value == "test-model"
    assert attributes["gen_ai.usage.output_tokens"].int_value > 0
    resource = {a.key: a.value.string_value for a in receiver.requests[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "llmgw-test"
    assert receiver.headers[0]["x-collector-token"] == "t0ken"


def test_disabled_imports_no_opentelemetry() -> None:
    """Off: llmgw loads no tracer, exporter or propagator. (redis-py itself imports
    ``opentelemetry.sdk.metrics`` whenever the SDK is installed, for its own optional metrics.)"""
    code = (
        "import sys\n"
        "from llmgw.config import parse_config\n"
        "from llmgw.gateway import Gateway\n"
        "from llmgw.app import create_app\n"
        "config = parse_config({'storage': {'url': 'sqlite://'}})\n"
        "gateway = Gateway(config)\n"
        "create_app(config, gateway)\n"
        "assert gateway.telemetry is None\n"
        "ours = ('llmgw.telemetry', 'opentelemetry.sdk.trace', 'opentelemetry.exporter', 'opentelemetry.proto',\n"
        "        'opentelemetry.trace.propagation.tracecontext')\n"
        "mods = sorted(m for m in sys.modules if m.startswith(ours))\n"
        "print(','.join(mods))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", out.stdout


def test_sample_ratio_zero_records_nothing_but_still_propagates(make_gateway: Any, upstream: FakeUpstream) -> None:
    traced = Traced(make_gateway(telemetry={"enabled": True, "endpoint": "http://127.0.0.1:9", "sample_ratio": 0.0}))
    traced.gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    traced.gw.flush()
    assert traced.gw.gateway.telemetry is not None
    traced.gw.gateway.telemetry.tracer_provider.force_flush()
    assert list(traced.spans.get_finished_spans()) == []
    _, tid, _, flags = upstream.headers[-1]["traceparent"].split("-")
    assert int(tid, 16) != 0 and not int(flags, 16) & 1  # a trace id, not sampled
    # a caller's sampled trace is recorded whatever the ratio (parent-based sampling)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced.gw.client(default_headers={"traceparent": parent}).chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    names = by_name(traced.finished())
    assert {"chat test-model", "chat fake-1", "authenticate"} <= set(names)


# --- spans made after the request, from what it wrote down -------------------------------------


def test_spans_are_built_after_the_response_is_sent(traced: Traced, upstream: FakeUpstream) -> None:
    """While the builder is held no span reaches the exporter, though the client has its whole
    answer and the done stages ran: the request's path made no span. Released, the same trace
    comes out whole, with the ids the upstream was given."""
    telemetry = traced.gw.gateway.telemetry
    assert telemetry is not None
    client = traced.gw.client()
    with telemetry.builder.lock:
        reply = client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
        stream = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "a story"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        traced.gw.flush()
        telemetry.exporting.force_flush()  # the exporter's own flush, past the held builder
        assert list(traced.spans.get_finished_spans()) == []
        assert len(telemetry.builder.pending) == 2 and all(t.ended for t in telemetry.builder.pending)
    assert reply.choices[0].message.content
    spans = traced.finished()
    roots = [s for s in spans if s.kind == SpanKind.SERVER]
    attempts = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(roots) == 2 and len(attempts) == 2
    sent = {tuple(h["traceparent"].split("-")[1:3]) for h in upstream.headers[-2:]}
    assert sent == {(f"{a.context.trace_id:032x}", f"{a.context.span_id:016x}") for a in attempts}


def test_attempt_ids_match_each_traceparent_and_the_tree_nests(make_gateway: Any, upstream: FakeUpstream) -> None:
    """Two deployments on the same upstream, the first answer a 500: two attempt spans, each with
    the span id its request carried; a provider retry inside an attempt carries the same one."""
    flaky = {"type": "openai", "base_url": upstream.base_url, "max_retries": 0, "backoff_base_s": 0.01}
    pair = {
        "provider": "flaky",
        "upstream_id": "fake-a",
        "deployments": [{"provider": "flaky", "upstream_id": "fake-b"}],
    }
    gw = make_gateway(providers={"flaky": flaky}, models={"pair": pair}, telemetry={"enabled": True})
    traced = Traced(gw)
    client = gw.client()
    client.chat.completions.create(model="pair", messages=[{"role": "user", "content": "#fail-times:1 hi"}])
    spans = traced.finished()
    root = next(s for s in spans if s.kind == SpanKind.SERVER)
    attempts = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert len(attempts) == 2
    assert (attempts[0].attributes or {})["error.type"] == "upstream_server_error"
    assert "error.type" not in (attempts[1].attributes or {})
    headers = [h["traceparent"] for h in upstream.headers[-2:]]
    assert headers == [f"00-{a.context.trace_id:032x}-{a.context.span_id:016x}-03" for a in attempts]
    assert root.start_time is not None and root.end_time is not None
    for span in spans:
        assert span.context.trace_id == root.context.trace_id
        assert span.start_time is not None and span.end_time is not None
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time, span.name
        if span is not root:
            assert span.parent is not None and span.parent.span_id == root.context.span_id, span.name
            assert not span.parent.is_remote
    assert len({s.context.span_id for s in spans}) == len(spans)
    assert attempts[0].end_time <= attempts[1].start_time  # type: ignore[operator]

    # a retry inside one attempt (the provider's own) goes out under the same attempt span
    traced.spans.clear()
    client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#fail-times:1 again"}])
    attempt = next(s for s in traced.finished() if s.kind == SpanKind.CLIENT)
    assert (attempt.attributes or {})["llmgw.retries"] == 1
    sent = {h["traceparent"] for h in upstream.headers[-2:]}
    assert sent == {f"00-{attempt.context.trace_id:032x}-{attempt.context.span_id:016x}-03"}


def test_unsampled_streams_still_record_the_genai_metrics(make_gateway: Any, upstream: FakeUpstream) -> None:
    traced = Traced(make_gateway(telemetry={"enabled": True, "sample_ratio": 0.0}))
    stream = traced.gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "a story"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    traced.gw.flush()
    telemetry = traced.gw.gateway.telemetry
    assert telemetry is not None
    telemetry.tracer_provider.force_flush()
    assert list(traced.spans.get_finished_spans()) == []
    data = traced.metrics.get_metrics_data()
    assert data is not None
    found = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    point = found["gen_ai.server.time_to_first_token"].data.data_points[0]  # type: ignore[union-attr]
    assert point.count == 1 and point.attributes["gen_ai.response.model"] == "test-model"


def test_traceparent_parsing_and_sampling_match_the_sdk() -> None:
    """The request path reads ``traceparent`` and samples without the SDK's per-span machinery;
    both must decide exactly as the SDK's propagator and ``ParentBased(TraceIdRatioBased)``."""
    import random

    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from llmgw.config import parse_config
    from llmgw.context import RequestContext
    from llmgw.options import GatewayOptions
    from llmgw.telemetry import parse_traceparent

    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = [
        f"00-{tid}-{sid}-01", f"00-{tid}-{sid}-00", f"00-{tid}-{sid}-03", f" \t00-{tid}-{sid}-01 ",
        f"01-{tid}-{sid}-01-extra", f"00-{tid}-{sid}-01-extra", f"ff-{tid}-{sid}-01", f"00-{'0' * 32}-{sid}-01",
        f"00-{tid}-{'0' * 16}-01", f"00-{tid.upper()}-{sid}-01", f"00-{tid}-{sid}", "garbage", "",
        f"00-{tid}-{sid}-01" + " " * 600,
    ]  # fmt: skip
    propagator = TraceContextTextMapPropagator()
    for header in headers:
        expected = get_current_span(propagator.extract({"traceparent": header})).get_span_context()
        got = parse_traceparent(header)
        if not expected.is_valid:
            assert got is None, header
        else:
            assert got == expected and got.is_remote and got.trace_flags == expected.trace_flags, header

    for ratio in (0.0, 0.3, 1.0):
        config = parse_config({"storage": {"url": "sqlite://"}, "telemetry": {"enabled": True, "sample_ratio": ratio}})
        telemetry = Telemetry(config.telemetry, {}, InMemorySpanExporter(), InMemoryMetricReader())
        sampler = ParentBased(TraceIdRatioBased(ratio))
        try:
            decisions = set()
            for _ in range(300):
                ctx = RequestContext("r", "chat", {}, GatewayOptions(), {}, None)
                trace = telemetry.begin(ctx)
                expected = sampler.should_sample(None, trace.trace_id, "chat").decision.is_sampled()
                assert trace.recording == expected and trace.flags == (0x03 if expected else 0x02)
                decisions.add(expected)
            assert decisions == ({False, True} if ratio == 0.3 else {ratio == 1.0})
            for flags in ("00", "01", "03"):
                header = f"00-{random.getrandbits(128):032x}-{sid}-{flags}"
                trace = telemetry.begin(
                    RequestContext("r", "chat", {}, GatewayOptions(), {"traceparent": header}, None)
                )
                assert trace.recording == (flags != "00") and f"{trace.flags:02x}" == flags
                assert trace.traceparent().split("-")[1] == header.split("-")[1]
        finally:
            telemetry.shutdown()


def test_span_builder_bounds_its_queue_and_builds_what_is_left_at_shutdown() -> None:
    """Past ``max_pending`` a request's trace is dropped and counted, never the event loop blocked;
    shutdown builds and exports what is queued."""
    from llmgw.config import parse_config
    from llmgw.context import RequestContext
    from llmgw.options import GatewayOptions

    config = parse_config({"storage": {"url": "sqlite://"}, "telemetry": {"enabled": True}})
    spans = InMemorySpanExporter()
    telemetry = Telemetry(config.telemetry, {}, spans, InMemoryMetricReader())
    builder = telemetry.builder
    builder.max_pending = 3
    with builder.lock:
        for i in range(5):
            ctx = RequestContext(f"r{i}", "chat", {}, GatewayOptions(), {}, None)
            ctx.model_requested = ctx.model_name = "m"  # a resolved model names the span
            telemetry.begin(ctx).end(ctx)
        assert len(builder.pending) == 3 and builder.dropped == 2
    telemetry.shutdown()
    roots = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert sorted((s.attributes or {})["llmgw.request_id"] for s in roots) == ["r0", "r1", "r2"]
    assert all(s.name == "chat m" for s in roots)
    ctx = RequestContext("late", "chat", {}, GatewayOptions(), {}, None)
    telemetry.begin(ctx).end(ctx)  # after shutdown: dropped, not queued for a thread that is gone
    assert not builder.pending
