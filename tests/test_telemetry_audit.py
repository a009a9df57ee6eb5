"""Audit of tracing: the GenAI response attributes, the three client APIs, trace context both ways,
client disconnects, secrets, a collector that never answers, and the telemetry keys' validation.

Through a real gateway with the openai and anthropic SDKs and the stub upstream; spans go to the
SDK's in-memory exporter (``Traced``), except where a local OTLP/HTTP receiver is the point.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anthropic
import httpx
import openai
import pytest

pytest.importorskip("opentelemetry.sdk")

from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from llmgw.config import ConfigError, parse_config
from tests.conftest import ADMIN_KEY, free_port
from tests.test_telemetry import Traced
from tests.upstream import FakeUpstream

ON = {"enabled": True, "endpoint": "http://127.0.0.1:9"}


def root_of(spans: list[ReadableSpan]) -> ReadableSpan:
    return next(s for s in spans if s.kind == SpanKind.SERVER)


def attempts_of(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)


def test_response_id_finish_reasons_and_server_port(make_gateway: Any, upstream: FakeUpstream) -> None:
    """``gen_ai.response.id`` / ``finish_reasons`` (recommended) on both spans, streamed and not;
    ``server.port`` is required with ``server.address``."""
    traced = Traced(make_gateway(telemetry=ON))
    client = traced.gw.client()
    reply = client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    spans = traced.finished()
    root, attempt = root_of(spans), attempts_of(spans)[0]
    port = httpx.URL(upstream.base_url).port
    assert (root.attributes or {})["gen_ai.response.id"] == reply.id
    assert tuple((root.attributes or {})["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert (attempt.attributes or {})["gen_ai.response.id"] == "up-1"  # the upstream's own id
    assert tuple((attempt.attributes or {})["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    for span in (root, attempt):
        assert (span.attributes or {})["server.port"] == port, span.name

    traced.spans.clear()
    stream = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "a story"}], stream=True, max_tokens=3, n=2
    )
    ids = {c.id for c in stream}
    spans = traced.finished()
    root, attempt = root_of(spans), attempts_of(spans)[0]
    assert {(root.attributes or {})["gen_ai.response.id"]} == ids
    assert (attempt.attributes or {})["gen_ai.response.id"] == "up-s"
    reasons = tuple((attempt.attributes or {})["gen_ai.response.finish_reasons"])  # type: ignore[arg-type]
    assert len(reasons) == 2 and reasons == tuple((root.attributes or {})["gen_ai.response.finish_reasons"])  # type: ignore[arg-type]


def test_messages_and_responses_apis_are_traced_with_their_own_ids(make_gateway: Any, upstream: FakeUpstream) -> None:
    traced = Traced(make_gateway(telemetry=ON))
    claude = anthropic.Anthropic(base_url=traced.gw.url, api_key=ADMIN_KEY, max_retries=0)
    message = claude.messages.create(model="test-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    root = root_of(traced.finished())
    assert root.name == "chat test-model"
    assert (root.attributes or {})["gen_ai.response.id"] == message.id and message.id.startswith("msg_")
    assert (root.attributes or {})["gen_ai.usage.output_tokens"] == message.usage.output_tokens

    traced.spans.clear()
    with claude.messages.stream(
        model="test-model", max_tokens=50, messages=[{"role": "user", "content": "a story"}]
    ) as stream:
        final = stream.get_final_message()
    spans = traced.finished()
    assert (root_of(spans).attributes or {})["gen_ai.response.id"] == final.id
    assert len(attempts_of(spans)) == 1 and upstream.headers[-1]["traceparent"]

    traced.spans.clear()
    response = traced.gw.client().responses.create(model="test-model", input="hi")
    root = root_of(traced.finished())
    assert (root.attributes or {})["gen_ai.response.id"] == response.id and response.id.startswith("resp_")

    traced.spans.clear()
    events = list(traced.gw.client().responses.create(model="test-model", input="a story", stream=True))
    done = next(e for e in events if e.type == "response.completed")
    spans = traced.finished()
    assert (root_of(spans).attributes or {})["gen_ai.response.id"] == done.response.id
    assert (root_of(spans).attributes or {})["gen_ai.usage.output_tokens"] > 0


@pytest.mark.parametrize(
    "header",
    ["garbage", "00-xyz", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" + "x" * 600],
)  # fmt: skip
def test_a_malformed_traceparent_starts_a_new_trace(make_gateway: Any, upstream: FakeUpstream, header: str) -> None:
    traced = Traced(make_gateway(telemetry=ON))
    client = traced.gw.client(default_headers={"traceparent": header})
    assert client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    root = root_of(traced.finished())
    assert root.parent is None
    assert root.context.trace_id not in (0, 0x4BF92F3577B34DA6A3CE929D0E0E4736)
    assert upstream.headers[-1]["traceparent"].split("-")[1] == f"{root.context.trace_id:032x}"


def test_client_leaving_mid_stream_ends_both_spans(make_gateway: Any, upstream: FakeUpstream) -> None:
    traced = Traced(make_gateway(telemetry=ON))
    with httpx.Client(base_url=traced.gw.url, timeout=30) as http:
        body = {"model": "test-model", "stream": True,
                "messages": [{"role": "user", "content": "#chunks:200 #slow:0.05 a long story"}]}  # fmt: skip
        auth = {"authorization": f"Bearer {ADMIN_KEY}"}
        with http.stream("POST", "/v1/chat/completions", json=body, headers=auth) as r:
            lines = r.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
    spans = traced.finished()
    root, attempt = root_of(spans), attempts_of(spans)[0]
    assert (root.attributes or {})["llmgw.status"] == "client_disconnected"
    assert (root.attributes or {})["error.type"] == "client_disconnected"
    assert root.status.status_code == StatusCode.ERROR
    assert root.end_time is not None and attempt.end_time is not None and attempt.end_time <= root.end_time
    assert (attempt.attributes or {})["error.type"] == "client_disconnected"  # the upstream stream was closed
    telemetry = traced.gw.gateway.telemetry
    assert telemetry is not None and not telemetry.builder.pending


SECRET_KEY = "sk-live-TOPSECRET-0123456789abcdef"


def test_no_key_prompt_or_header_in_any_span_or_resource(make_gateway: Any, upstream: FakeUpstream) -> None:
    providers = {"up": {"type": "openai", "base_url": upstream.base_url,
                        "api_key": SECRET_KEY, "max_retries": 0}}  # fmt: skip
    exports = {**ON, "headers": {"authorization": "Bearer OTLPSECRET"}}
    traced = Traced(make_gateway(providers=providers, telemetry=exports))
    client = traced.gw.client(default_headers={"x-api-key": SECRET_KEY})
    client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "my ssn 078-05-1120"}])
    spans = traced.finished()
    for span in spans:
        text = repr(dict(span.attributes or {})) + repr(span.events) + repr(dict(span.resource.attributes))
        for secret in (SECRET_KEY, ADMIN_KEY, "OTLPSECRET", "078-05-1120", "Bearer"):
            assert secret not in text, (span.name, secret)
    assert (root_of(spans).attributes or {})["server.address"] == "127.0.0.1"


class Silent:
    """An OTLP endpoint that accepts connections and never answers until released."""

    def __init__(self) -> None:
        self.port = free_port()
        self.release = threading.Event()
        self.hits = 0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    async def hang(self, request: web.Request) -> web.Response:
        self.hits += 1
        await request.read()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return web.Response(status=200)

    def serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/traces", self.hang)
        app.router.add_post("/v1/metrics", self.hang)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()


def test_a_collector_that_never_answers_does_not_hold_requests(make_gateway: Any, upstream: FakeUpstream) -> None:
    """While the collector holds an export open, requests keep being answered, streamed and not:
    exporting is on the SDK's thread, never on the request's path."""
    silent = Silent()
    silent.thread.start()
    silent.ready.wait(10)
    try:
        gw = make_gateway(telemetry={"enabled": True, "endpoint": f"http://127.0.0.1:{silent.port}"})
        telemetry = gw.gateway.telemetry
        assert telemetry is not None
        client = gw.client(timeout=20)
        client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
        gw.flush()
        flushing = threading.Thread(target=telemetry.tracer_provider.force_flush, daemon=True)
        flushing.start()  # the export now hangs on the silent collector
        while not silent.hits:
            flushing.join(0.05)
        for i in range(5):
            assert client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": f"q{i}"}])
            stream = client.chat.completions.create(
                model="test-model", messages=[{"role": "user", "content": f"s{i}"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert flushing.is_alive()  # still held by the collector, and the requests were answered
    finally:
        silent.release.set()


@pytest.mark.parametrize(
    ("telemetry", "message"),
    [
        ({"sample_ratio": 1.5}, "telemetry.sample_ratio"),
        ({"sample_ratio": -0.1}, "telemetry.sample_ratio"),
        ({"metrics_interval_s": float("inf")}, "finite"),
        ({"metrics_interval_s": 0}, "telemetry.metrics_interval_s"),
        ({"endpoint": "localhost:4318"}, "http(s) URL"),
        ({"endpoint": "otel-collector"}, "http(s) URL"),
        ({"endpoint": "grpc://otel:4317"}, "http(s) URL"),
        ({"headers": {"bad name": "x"}}, "header name"),
        ({"headers": {"authorization": "Bearer abc\r\nx-injected: 1"}}, "line break"),
    ],
)
def test_bad_telemetry_keys_fail_at_start(telemetry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"storage": {"url": "sqlite://"}, "telemetry": {"enabled": True, **telemetry}})
    assert message in str(info.value)
    assert "abc" not in str(info.value)  # a header's value (a credential) is not echoed


def test_good_telemetry_keys_pass() -> None:
    config = parse_config({"storage": {"url": "sqlite://"}, "telemetry": {
        "enabled": True, "endpoint": "https://collector.example:4318/", "headers": {"x-honeycomb-team": "k"},
        "sample_ratio": 0.0, "metrics_interval_s": 5}})  # fmt: skip
    assert config.telemetry.endpoint == "https://collector.example:4318/"


def test_a_cache_hit_is_a_trace_without_an_upstream_span(
    make_gateway: Any, upstream: FakeUpstream, tmp_path: Any
) -> None:
    cache = {"enabled": True, "persist_path": str(tmp_path / "cache.sqlite"), "persist_interval_s": 0.05}
    traced = Traced(make_gateway(telemetry=ON, cache=cache))
    client = traced.gw.client()
    question = [{"role": "user", "content": "What is the capital of France?"}]
    first = client.chat.completions.with_raw_response.create(model="test-model", messages=question, temperature=0)
    assert first.headers.get("x-llmgw-cache") != "hit"
    traced.gw.flush()
    traced.finished()
    traced.spans.clear()
    sent = len(upstream.requests)
    hit = client.chat.completions.with_raw_response.create(model="test-model", messages=question, temperature=0)
    assert hit.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == sent
    spans = traced.finished()
    root = root_of(spans)
    assert attempts_of(spans) == [] and "cache_lookup" in {s.name for s in spans}
    assert (root.attributes or {})["gen_ai.response.id"] == hit.parse().id
    assert tuple((root.attributes or {})["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert (root.attributes or {})["llmgw.status"] == "cached" and "error.type" not in (root.attributes or {})


def metric_points(traced: Traced, name: str) -> list[Any]:
    data = traced.metrics.get_metrics_data()
    assert data is not None
    found = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    return list(found[name].data.data_points) if name in found else []  # type: ignore[union-attr]


@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_client_metrics_per_upstream_attempt_sampled_or_not(
    make_gateway: Any, upstream: FakeUpstream, ratio: float
) -> None:
    """``gen_ai.client.operation.duration`` (required of a GenAI client) and ``token.usage``: one
    duration per attempt, the failed one with ``error.type``; metrics count unsampled requests too."""
    routes = {"default": {"default_model": "test-model", "selection": {"fallbacks": ["test-model"]}}}
    traced = Traced(make_gateway(routes=routes, telemetry={**ON, "sample_ratio": ratio}))
    reply = traced.gw.client().chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "hi"}])
    traced.gw.flush()
    telemetry = traced.gw.gateway.telemetry
    assert telemetry is not None
    telemetry.tracer_provider.force_flush()
    durations = {
        p.attributes["gen_ai.request.model"]: p for p in metric_points(traced, "gen_ai.client.operation.duration")
    }
    assert set(durations) == {"nothing", "fake-1"}
    assert durations["nothing"].attributes["error.type"] == "upstream_unavailable"
    assert "error.type" not in durations["fake-1"].attributes
    assert all(p.count == 1 and p.attributes["gen_ai.operation.name"] == "chat" for p in durations.values())
    assert durations["fake-1"].attributes["gen_ai.provider.name"] == "openai"
    assert durations["fake-1"].attributes["server.port"] == httpx.URL(upstream.base_url).port
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metric_points(traced, "gen_ai.client.token.usage")}
    assert reply.usage is not None
    assert tokens["input"].sum == reply.usage.prompt_tokens and tokens["output"].sum == reply.usage.completion_tokens
    assert all(p.attributes["gen_ai.request.model"] == "fake-1" for p in tokens.values())


def test_embeddings_requests_are_traced(make_gateway: Any, upstream: FakeUpstream) -> None:
    """A trace per request: ``/v1/embeddings`` too, as ``embeddings {model}`` with its upstream attempt."""
    traced = Traced(make_gateway(telemetry=ON))
    result = traced.gw.client().embeddings.create(model="up-embed", input=["hello", "world"])
    spans = traced.finished()
    root, attempts = root_of(spans), attempts_of(spans)
    assert root.name == "embeddings up-embed" and [a.name for a in attempts] == ["embeddings fake-embed"]
    for span in (root, attempts[0]):
        assert (span.attributes or {})["gen_ai.operation.name"] == "embeddings"
        assert (span.attributes or {})["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
        assert "gen_ai.response.id" not in (span.attributes or {})
    assert {"authenticate", "audit_log"} <= {s.name for s in spans}
    durations = metric_points(traced, "gen_ai.client.operation.duration")
    assert [p.attributes["gen_ai.operation.name"] for p in durations] == ["embeddings"]

    traced.spans.clear()
    with pytest.raises(openai.AuthenticationError):
        traced.gw.client(api_key="sk-wrong-0000000000000000").embeddings.create(model="up-embed", input="x")
    root = root_of(traced.finished())
    assert (root.attributes or {})["error.type"] == "invalid_api_key" and root.status.status_code == StatusCode.ERROR


def test_anthropic_provider_gets_the_attempts_traceparent(make_gateway: Any, anthropic_upstream: Any) -> None:
    anthropic_upstream.headers.clear()
    provider = {"type": "anthropic", "base_url": anthropic_upstream.base_url, "api_key": "sk-ant-up", "max_retries": 0}
    models = {"claude": {"provider": "claude", "upstream_id": "claude-up-1", "capabilities": ["chat", "streaming"]}}
    traced = Traced(make_gateway(providers={"claude": provider}, models=models, telemetry=ON,
                                 routes={"default": {"default_model": "claude"}}))  # fmt: skip
    client = traced.gw.client()
    client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
    stream = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    traced.gw.flush()
    telemetry = traced.gw.gateway.telemetry
    assert telemetry is not None
    telemetry.tracer_provider.force_flush()
    attempts = attempts_of(list(traced.spans.get_finished_spans()))
    assert len(attempts) == 2
    sent = [h["traceparent"] for h in anthropic_upstream.headers[-2:]]
    assert sent == [f"00-{a.context.trace_id:032x}-{a.context.span_id:016x}-03" for a in attempts]
    for attempt in attempts:
        a = attempt.attributes or {}
        assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.request.model"] == "claude-up-1"
        assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
        assert "sk-ant-up" not in repr(dict(a))


def test_an_upstream_failing_mid_stream_marks_both_spans(make_gateway: Any, upstream: FakeUpstream) -> None:
    traced = Traced(make_gateway(telemetry=ON))
    stream = traced.gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "#stream-error:2 a story"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    spans = traced.finished()
    root, attempt = root_of(spans), attempts_of(spans)[0]
    for span in (root, attempt):
        assert (span.attributes or {}).get("error.type"), span.name
        assert span.status.status_code == StatusCode.ERROR, span.name
    assert (root.attributes or {})["http.response.status_code"] == 200  # the stream had begun


def test_guard_refusals_in_the_spans(make_gateway: Any, upstream: FakeUpstream, tmp_path: Any) -> None:
    """An input guard's refusal: the request span fails with the guard's code and no upstream was
    called; an output guard's stop: the request span says ``content_filter`` (finish reason and
    error), the upstream's attempt succeeded, and the secret it stopped is in no span."""
    from tests.test_guards_e2e import ATTACK, POLICY, WITH_SECRET

    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY.format(injection="action: block", threshold=0.5))
    guards = {"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"}
    traced = Traced(make_gateway(guards=guards, telemetry=ON))
    client = traced.gw.client(timeout=120)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": ATTACK}])
    spans = traced.finished()
    root = root_of(spans)
    assert (root.attributes or {})["error.type"] == "prompt_injection" and root.status.status_code == StatusCode.ERROR
    assert (root.attributes or {})["http.response.status_code"] == 400 and attempts_of(spans) == []
    assert next(s for s in spans if s.name == "input_guards").status.status_code == StatusCode.ERROR

    traced.spans.clear()
    upstream.scripts["key"] = WITH_SECRET
    stream = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "tell me a story #say:key"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    spans = traced.finished()
    root, attempt = root_of(spans), attempts_of(spans)[0]
    assert (root.attributes or {})["error.type"] == "content_filter"
    assert tuple((root.attributes or {})["gen_ai.response.finish_reasons"]) == ("content_filter",)  # type: ignore[arg-type]
    assert "error.type" not in (attempt.attributes or {})
    for span in spans:
        assert "sk-proj" not in repr(dict(span.attributes or {})) + repr(span.events), span.name


def test_client_leaving_before_the_answer_ends_the_attempt_as_cut(make_gateway: Any, upstream: FakeUpstream) -> None:
    """The client gives up while the upstream is still thinking: the request and its attempt
    spans both end, and the attempt says it was cut (it did not answer), not that it succeeded."""
    traced = Traced(make_gateway(telemetry=ON))
    # the upstream would answer after 30 s: the client leaving at 0.5 s is noticed long before (3 s was close)
    body = {"model": "test-model", "messages": [{"role": "user", "content": "#sleep:30 slow question"}]}
    with httpx.Client(base_url=traced.gw.url, timeout=0.5) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    spans = traced.finished()
    root, attempt = root_of(spans), attempts_of(spans)[0]
    assert (root.attributes or {})["error.type"] == "client_disconnected"
    assert (attempt.attributes or {})["error.type"] == "client_disconnected"
    assert attempt.status.status_code == StatusCode.ERROR and attempt.end_time is not None
    assert "gen_ai.response.finish_reasons" not in (attempt.attributes or {})


def test_an_unknown_model_name_is_not_a_span_name(make_gateway: Any, upstream: FakeUpstream) -> None:
    """The requested model of a 404 is whatever the client typed: it does not name the span (span
    names stay low-cardinality) and is cut in ``gen_ai.request.model``."""
    traced = Traced(make_gateway(telemetry=ON))
    typed = "call me at 555-0100 " + "x" * 5000
    with pytest.raises(openai.NotFoundError):
        traced.gw.client().chat.completions.create(model=typed, messages=[{"role": "user", "content": "hi"}])
    root = root_of(traced.finished())
    assert root.name == "chat" and (root.attributes or {})["error.type"] == "model_not_found"
    assert len(str((root.attributes or {})["gen_ai.request.model"])) <= 128


def test_the_callers_tracestate_goes_upstream_with_the_trace(make_gateway: Any, upstream: FakeUpstream) -> None:
    """W3C trace context: the caller's ``tracestate`` travels on with ``traceparent``; an invalid
    one, or one without a valid ``traceparent``, is dropped."""
    traced = Traced(make_gateway(telemetry=ON))
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    cases = [
        ({"traceparent": parent, "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
         "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ({"traceparent": parent, "tracestate": "not a@valid=list=="}, None),
        ({"traceparent": "garbage", "tracestate": "congo=t61rcWkgMzE"}, None),
        ({"tracestate": "congo=t61rcWkgMzE"}, None),
    ]  # fmt: skip
    for headers, expected in cases:
        client = traced.gw.client(default_headers=headers)
        client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
        assert upstream.headers[-1].get("tracestate") == expected, headers
        assert upstream.headers[-1]["traceparent"]


def test_rows_are_written_at_shutdown_even_if_telemetry_fails_to_stop(
    make_gateway: Any, upstream: FakeUpstream, tmp_path: Any
) -> None:
    """The exporters are stopped last, after the rows are written: a collector that cannot be
    flushed (here, a shutdown that fails) costs spans, never the audit log."""
    import sqlite3

    db = tmp_path / "rows.db"
    gw = make_gateway(db_url=f"sqlite:///{db}", storage={"url": f"sqlite:///{db}", "flush_interval_s": 3600},
                      telemetry=ON)  # fmt: skip
    telemetry = gw.gateway.telemetry
    assert telemetry is not None

    def broken() -> None:
        raise RuntimeError("collector gone")

    telemetry.shutdown = broken  # type: ignore[method-assign]
    reply = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    gw.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select id from requests").fetchall()
    assert (reply.headers["x-llmgw-request-id"],) in rows
