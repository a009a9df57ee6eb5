"""In-process CPU cost of one request's trace: the spans llmgw makes for a plain streamed chat.

    .venv/bin/python -m bench.tracing_cpu --sample-ratio 1.0

Drives ``llmgw.telemetry`` directly as ``Pipeline.chat`` does (root span, four request stages, one
upstream attempt with its ``traceparent``, one ``done`` stage, the two GenAI histograms) with an
exporter that drops spans. Two figures per request: "request path", the CPU time of the thread
that runs the requests (what a request waits for), and "total", the process's CPU time including
the span builder's thread, which makes the SDK spans after each request, up to a flush that
hands them all to the (dropping) exporter.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmgw.config import parse_config
from llmgw.context import RequestContext
from llmgw.options import GatewayOptions
from llmgw.telemetry import Telemetry


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def nothing() -> None:
    return None


def done(_: RequestContext) -> None:
    return None


async def one(telemetry: Telemetry) -> None:
    ctx = RequestContext("r", "chat", {"model": "m", "max_tokens": 5}, GatewayOptions(), {}, None)
    ctx.provider_name, ctx.model_requested, ctx.model_name, ctx.stream = "up", "m", "m", True
    trace = telemetry.begin(ctx)
    for name in ("authenticate", "parse", "plan", "select_model"):
        await trace.stage(name, nothing())
    trace.attempt_started(ctx, "u")
    trace.traceparent()
    trace.attempt_succeeded(ctx)
    ctx.first_token_at = time.perf_counter()
    ctx.upstream_ended, ctx.completion_tokens, ctx.prompt_tokens = ctx.first_token_at + 0.01, 50, 5
    trace.done_stage("audit_log", done, ctx)
    trace.end(ctx)


async def measure(telemetry: Telemetry, n: int) -> tuple[float, float]:
    """µs per request: this thread's CPU time, and the process's including the deferred building."""
    thread, process = time.thread_time(), time.process_time()
    for _ in range(n):
        await one(telemetry)
    path = time.thread_time() - thread
    telemetry.tracer_provider.force_flush()  # builds what is queued and exports it
    return path / n * 1e6, (time.process_time() - process) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample-ratio", type=float, default=1.0)
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    config = parse_config({
        "storage": {"url": "sqlite://"},
        "telemetry": {"enabled": True, "sample_ratio": args.sample_ratio},
        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:1/v1"}},
    })  # fmt: skip
    telemetry = Telemetry(config.telemetry, config.providers, Drop(), InMemoryMetricReader())
    asyncio.run(measure(telemetry, 500))
    path, total = asyncio.run(measure(telemetry, args.n))
    print(f"sample_ratio {args.sample_ratio}: {path:.1f} µs per request on the request path, {total:.1f} µs total")
    telemetry.shutdown()


if __name__ == "__main__":
    main()
