"""What ``/v1/responses`` adds over ``/v1/chat/completions`` on the same gateway and upstream.

    .venv/bin/python -m bench.api_overhead                 # 2000 sequential requests per API
    .venv/bin/python -m bench.api_overhead --seq-n 400     # shorter

Starts ``bench.upstream`` and ``llmgw serve`` exactly as ``bench.run`` does (one ``openai``
provider, optional stages off, a static key), then runs ``bench.load`` with two targets on that
one gateway: ``chat`` (chat bodies to ``/chat/completions``) and ``responses`` (the same question
as a Responses body to ``/responses``), alternating in blocks so that both see the same machine.
Phases ``seq`` (non-streamed) and ``seq_stream`` (50-chunk streams). Prints p50/p99 of each and
the difference, and writes the JSON to ``bench/results/<date>-responses.json``.

``--micro`` also times, in this process, the work the Responses API adds to one request (the
body's translation and the answer's rendering, or the 50-chunk stream's events against chat's
own encoding): the best of several rounds, so it holds on a busy machine where end-to-end
percentiles do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import procs
from bench.run import machine, newest_source

RESULTS = procs.BENCH / "results"


def added(results: dict[str, Any], phase: str, metric: str, q: str) -> float | None:
    try:
        return round(results["responses"][phase][metric][q] - results["chat"][phase][metric][q], 3)
    except KeyError:
        return None


def table(results: dict[str, Any]) -> str:
    rows = [
        "| phase | metric | chat p50 / p99 | responses p50 / p99 | added p50 | added p99 |",
        "|---|---|---|---|---|---|",
    ]
    for phase, metrics in (("seq", ("latency_ms",)), ("seq_stream", ("ttft_ms", "latency_ms"))):
        for metric in metrics:
            chat, resp = results["chat"][phase].get(metric, {}), results["responses"][phase].get(metric, {})
            if not chat or not resp:
                continue
            p50, p99 = added(results, phase, metric, "p50"), added(results, phase, metric, "p99")
            rows.append(
                f"| {phase} | {metric} | {chat['p50']:.3f} / {chat['p99']:.3f} ms"
                f" | {resp['p50']:.3f} / {resp['p99']:.3f} ms | {p50:+.3f} ms | {p99:+.3f} ms |"
            )
    rows += ["", "| phase | llmgw CPU per request, chat | responses | added |", "|---|---|---|---|"]
    for phase in ("seq", "seq_stream"):
        chat, resp = cpu_per_request(results["chat"][phase]), cpu_per_request(results["responses"][phase])
        rows.append(f"| {phase} | {chat:.3f} ms | {resp:.3f} ms | {resp - chat:+.3f} ms |")
    return "\n".join(rows)


def cpu_per_request(summary: dict[str, Any]) -> float:
    """llmgw's CPU milliseconds per request (its share of wall time × mean latency, sequential
    phases): what the gateway spends, which stays readable when other work on the machine
    inflates the latencies."""
    return float(summary["cpu_pct"]["llmgw"]) / 100.0 * float(summary["latency_ms"]["mean"])


def micro(chunks: int, rounds: int = 9, n: int = 300) -> dict[str, float]:
    """Microseconds per request of the Responses-only work (best of ``rounds``)."""
    import time

    from llmgw.pipeline import ChatEvents
    from llmgw.responses_api.request import to_chat
    from llmgw.responses_api.response import to_response
    from llmgw.responses_api.stream import ResponsesEvents

    body = {"model": "bench", "input": "Say something, about fifty tokens long.", "max_output_tokens": 64}
    text = "".join(f"tok{i} " for i in range(chunks))
    completion = {"id": "c", "object": "chat.completion", "created": 1, "model": "bench",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}}  # fmt: skip

    def stream_chunks() -> list[dict[str, Any]]:
        base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench"}
        out = [{**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
               for i in range(chunks)]  # fmt: skip
        out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        out.append({**base, "choices": [], "usage": completion["usage"]})
        return out

    def best(work: Any) -> float:
        times = []
        for _ in range(rounds):
            t0 = time.process_time()  # this process's CPU: other work on the machine does not count
            for _ in range(n):
                work()
            times.append((time.process_time() - t0) / n * 1e6)
        return round(min(times), 2)

    def chat_stream() -> None:
        events = ChatEvents(False)
        for chunk in stream_chunks():
            events.chunk(chunk)
        events.end()

    def responses_stream() -> None:
        events = ResponsesEvents(body, "r")
        for chunk in stream_chunks():
            events.chunk(chunk)
        events.end()

    non_streamed = best(lambda: to_response(completion, body, "r") and to_chat(body, "pass"))
    chat_s, resp_s, chunk_build = best(chat_stream), best(responses_stream), best(stream_chunks)
    return {"non_streamed_translation_us": non_streamed, "chat_stream_encoding_us": round(chat_s - chunk_build, 2),
            "responses_stream_encoding_us": round(resp_s - chunk_build, 2),
            "added_stream_us": round(resp_s - chat_s, 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-n", type=int, default=2000, help="sequential requests per API and phase")
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--micro", action="store_true", help="also time the added work in-process")
    args = parser.parse_args(argv)
    started = dt.datetime.now().astimezone()
    out = args.out or RESULTS / f"{started:%Y-%m-%d}-responses.json"
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-api-"))
    running: list[procs.Proc] = []
    try:
        upstream = procs.start_upstream(logdir, args.chunks)
        running.append(upstream)
        gateway = procs.start_gateway(logdir, upstream, logdir / "llmgw.db")
        running.append(gateway)
        load_out = logdir / "load.json"
        load = [sys.executable, "-m", "bench.load", "--phases", "seq,seq_stream", "--out", str(load_out),
                "--seq-n", str(args.seq_n), "--seq-block", "250", "--warmup", "100", "--chunks", str(args.chunks),
                "--api", "responses=responses",
                "--pid", f"llmgw={gateway.pid}", "--pid", f"upstream={upstream.pid}"]  # fmt: skip
        for name in ("chat", "responses"):
            load += ["--target", f"{name}={gateway.url}", "--model", f"{name}={procs.MODEL}",
                     "--key", f"{name}={procs.GATEWAY_KEY}"]  # fmt: skip
        subprocess.run(load, check=True, cwd=procs.ROOT, timeout=args.seq_n * 2 + 600)
        results = json.loads(load_out.read_text())["results"]
    finally:
        for proc in reversed(running):
            proc.stop()
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.api_overhead", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "llmgw_newest_source": newest_source(),
        "params": {"seq_n": args.seq_n, "chunks": args.chunks, "seq_block": 250},
        "results": results,
        "llmgw_cpu_ms_per_request": {
            api: {phase: round(cpu_per_request(results[api][phase]), 3) for phase in ("seq", "seq_stream")}
            for api in ("chat", "responses")
        },
        "added_p50_ms": {
            "seq": added(results, "seq", "latency_ms", "p50"),
            "seq_stream_ttft": added(results, "seq_stream", "ttft_ms", "p50"),
            "seq_stream_whole": added(results, "seq_stream", "latency_ms", "p50"),
        },
    }
    if args.micro:
        report["micro_us"] = micro(args.chunks)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    if args.micro:
        print(json.dumps(report["micro_us"]))
    print(f"bench: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
