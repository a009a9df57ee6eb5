"""What each API adds on the same gateway and upstream: ``/v1/messages`` against ``/v1/chat/completions``.

    .venv/bin/python -m bench.messages_overhead              # 2000 sequential requests per target and phase
    .venv/bin/python -m bench.messages_overhead --seq-n 500  # quicker

Starts ``bench.upstream`` and one ``llmgw serve`` (the ``bench.run`` configuration: optional
stages off, a static key), then runs ``bench.load``'s sequential phases (non-streamed and
50-chunk streams) against three targets in alternating blocks: the upstream directly, llmgw over
Chat Completions and llmgw over the Messages API, the same question each time. The Messages
request is translated to the chat body and its answer rendered back, so the difference between
the two llmgw targets is the translation's cost. On a shared machine that difference is within
the noise, so the translation is also timed in-process (``--micro`` alone skips the servers): the
request translated in, the answer rendered out, non-streamed and as a 50-chunk stream, against
what the chat path does with the same answer. Prints tables and writes the JSON to
``bench/results/<date>-messages.json`` (``bench.api_overhead`` does the same for ``/v1/responses``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.run import machine

TARGETS = (("direct", "chat"), ("llmgw", "chat"), ("llmgw-messages", "messages"))
QUESTION = "Say something, about fifty tokens long."


def micro(rounds: int = 2000) -> dict[str, float]:
    """Microseconds per request of what only the Messages path does, median of ``rounds``."""
    from llmgw.anthropic.inbound import to_internal
    from llmgw.anthropic.render import StreamRenderer, message
    from llmgw.providers.sse import encode_event
    from llmgw.usage import Usage

    body = {"model": "bench", "max_tokens": 64, "messages": [{"role": "user", "content": QUESTION}]}
    text = [f"tok{i} " for i in range(50)]
    completion = {"id": "x", "object": "chat.completion", "created": 0, "model": "bench",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                               "finish_reason": "stop"}]}  # fmt: skip
    chunks = [{"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "bench",
               "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": "stop" if i == 49 else None}]}
              for i, t in enumerate(text)]  # fmt: skip

    def median_us(work: Any) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2] * 1e6

    def messages_stream() -> None:
        renderer = StreamRenderer("r", "bench")
        b"".join(renderer.chunk(c) for c in chunks) + renderer.end(Usage(12, 50, 0))

    return {
        "request_in_us": median_us(lambda: to_internal(json.loads(json.dumps(body)))),
        "answer_out_us": median_us(lambda: message(completion, "r", "bench", Usage(12, 50, 0))),
        "stream_out_messages_us": median_us(messages_stream),
        "stream_out_chat_us": median_us(lambda: b"".join(encode_event(c) for c in chunks)),
    }


def table(report: dict[str, Any]) -> str:
    results = report["results"]
    lines = ["| phase | target | p50 ms | p90 ms | p99 ms | ok | added p50 vs direct | vs llmgw chat |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for phase, metric in (("seq", "latency_ms"), ("seq_stream", "latency_ms"), ("seq_stream", "ttft_ms")):
        base = results["direct"][phase][metric]["p50"]
        chat = results["llmgw"][phase][metric]["p50"]
        for name, _ in TARGETS:
            summary = results[name][phase]
            s = summary[metric]
            label = f"{phase} {'TTFT' if metric == 'ttft_ms' else 'total'}"
            ok = f"{summary['ok']}/{summary['requests']}"
            added = f"{s['p50'] - base:+.3f} | {s['p50'] - chat:+.3f}"
            lines.append(f"| {label} | {name} | {s['p50']:.3f} | {s['p90']:.3f} | {s['p99']:.3f} | {ok} | {added} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq-n", type=int, default=2000)
    p.add_argument("--seq-block", type=int, default=250)
    p.add_argument("--out", type=Path)
    p.add_argument("--micro", action="store_true", help="only the in-process timing")
    args = p.parse_args(argv)
    timing = micro()
    print("in-process, median µs per request: " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    if args.micro:
        return
    out = args.out or procs.BENCH / "results" / f"{dt.date.today().isoformat()}-messages.json"
    with tempfile.TemporaryDirectory(prefix="llmgw-messages-bench-") as tmp:
        logdir = Path(tmp)
        upstream = procs.start_upstream(logdir)
        gateway = procs.start_gateway(logdir, upstream, logdir / "llmgw.db")
        try:
            load = [sys.executable, "-m", "bench.load", "--phases", "seq,seq_stream", "--seq-n", str(args.seq_n),
                    "--seq-block", str(args.seq_block), "--out", str(logdir / "load.json"),
                    "--pid", f"upstream={upstream.pid}", "--pid", f"llmgw={gateway.pid}"]  # fmt: skip
            for name, api in TARGETS:
                url = upstream.url if name == "direct" else gateway.url
                load += ["--target", f"{name}={url}", "--model", f"{name}={procs.MODEL}", "--api", f"{name}={api}"]
                if name != "direct":
                    load += ["--key", f"{name}={procs.GATEWAY_KEY}"]
            subprocess.run(load, check=True, cwd=procs.ROOT, timeout=3600)
            report = json.loads((logdir / "load.json").read_text())
        finally:
            gateway.stop()
            upstream.stop()
    report["micro_us"] = timing
    report["machine"] = machine()
    report["command"] = " ".join(["python -m bench.messages_overhead", *(argv if argv is not None else sys.argv[1:])])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
