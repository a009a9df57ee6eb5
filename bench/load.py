"""An aiohttp load generator for OpenAI-compatible chat endpoints; prints one JSON document.

Phases (``--phases``, comma-separated, run in this order for every target):

* ``seq``: ``--seq-n`` non-streamed requests one at a time per target, targets alternating in
  blocks of ``--seq-block`` so that they see the same machine; latency p50/p90/p99/mean.
* ``seq_stream``: the same with streamed answers; time to first token (first SSE ``data:``
  event) and whole-stream time.
* ``tput``: ``--concurrency`` workers sending non-streamed requests for ``--duration`` seconds
  (or ``--max-requests``), one target at a time; requests/s and latency.
* ``tput_stream``: the same with streams; streams/s, TTFT and whole-stream time.
* ``mixed``: like ``tput``, half the workers streaming (used by the SIGTERM test).

``--api NAME=responses`` sends that target OpenAI Responses bodies to ``/responses`` (the same
question and output cap) instead of chat bodies to ``/chat/completions``: two targets on the same
gateway, one per API, measure what the Responses translation adds (``bench.api_overhead``).
``--api NAME=messages`` does the same with Anthropic Messages bodies to ``/messages``, sent with
``x-api-key`` (``bench.messages_overhead``).

Every phase also reports CPU use (% of one core) of each ``--pid NAME=PID`` process tree and of
the load generator itself, read from /proc. Example::

    python -m bench.load --target direct=http://127.0.0.1:8301/v1 --model direct=bench \\
        --target llmgw=http://127.0.0.1:8302/v1 --key llmgw=sk-... --model llmgw=bench \\
        --pid upstream=1234 --pid llmgw=1235 --phases seq,tput --seq-n 1000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.procstat import cpu_seconds, machine_busy_seconds, tree_cpu_seconds

PHASES = ("seq", "seq_stream", "tput", "tput_stream", "mixed")


@dataclass
class Target:
    """An OpenAI-compatible base URL (ending in ``/v1``) with the model and key to send."""

    name: str
    url: str
    model: str = "bench"
    key: str | None = None
    api: str = "chat"  # or "responses", "messages"

    @property
    def path(self) -> str:
        return {"responses": "/responses", "messages": "/messages"}.get(self.api, "/chat/completions")

    def body(self, stream: bool) -> bytes:
        question = "Say something, about fifty tokens long."
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": 64,
        }
        if self.api == "responses":
            body = {"model": self.model, "input": question, "max_output_tokens": 64}
        # "messages": the chat body is already a valid Messages body (max_tokens is required there)
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.key and self.api == "messages":  # as the Anthropic SDKs send it
            headers.update({"x-api-key": self.key, "anthropic-version": "2023-06-01"})
        elif self.key:
            headers["authorization"] = f"Bearer {self.key}"
        return headers


@dataclass
class Sample:
    """One request: status (HTTP code or exception name), total and first-event seconds."""

    status: str
    total: float
    ttft: float | None = None
    events: int = 0


@dataclass
class Recorder:
    """The samples of one phase against one target, and their summary."""

    samples: list[Sample] = field(default_factory=list)

    def summary(self, elapsed: float | None = None, min_events: int = 0) -> dict[str, Any]:
        ok = [s for s in self.samples if s.status == "200" and s.events >= min_events]
        out: dict[str, Any] = {
            "requests": len(self.samples),
            "ok": len(ok),
            "statuses": dict(Counter(s.status for s in self.samples)),
            "latency_ms": stats([s.total for s in ok]),
        }
        if min_events:
            out["short_streams"] = sum(1 for s in self.samples if s.status == "200" and s.events < min_events)
        ttfts = [s.ttft for s in ok if s.ttft is not None]
        if ttfts:
            out["ttft_ms"] = stats(ttfts)
        if elapsed is not None:
            out["elapsed_s"] = round(elapsed, 3)
            out["rate_per_s"] = round(len(ok) / elapsed, 1) if elapsed > 0 else 0.0
        return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def stats(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max in milliseconds."""
    if not seconds:
        return {}
    values = sorted(seconds)
    ms = 1000.0
    return {
        "p50": round(percentile(values, 50) * ms, 3),
        "p90": round(percentile(values, 90) * ms, 3),
        "p99": round(percentile(values, 99) * ms, 3),
        "mean": round(sum(values) / len(values) * ms, 3),
        "max": round(values[-1] * ms, 3),
    }


async def one_request(session: aiohttp.ClientSession, target: Target, body: bytes, stream: bool) -> Sample:
    """Send one request and read the whole answer; never raises.

    The status is the HTTP code, ``bad_body`` or ``no_done`` for a malformed 200, the exception's
    name when no answer came, or ``CODE+Exception`` when the connection broke after the headers.
    """
    start = time.perf_counter()
    code = ""
    try:
        async with session.post(target.url + target.path, data=body, headers=target.headers()) as r:
            code = str(r.status)
            if not stream or r.status != 200:
                payload = await r.read()
                good = {"responses": b'"output"', "messages": b'"content"'}.get(target.api, b'"choices"')
                bad = r.status == 200 and good not in payload
                return Sample("bad_body" if bad else code, time.perf_counter() - start)
            ttft: float | None = None
            events, tail, ended = 0, b"", False
            end_mark = {"responses": b"event: response.completed", "messages": b"event: message_stop"}.get(
                target.api, b"[DONE]"
            )
            async for piece in r.content.iter_any():
                if ttft is None and b"data:" in piece:
                    ttft = time.perf_counter() - start
                events += (tail + piece).count(b"data: ")
                ended = ended or end_mark in tail + piece
                tail = (tail + piece)[-32:]
            total = time.perf_counter() - start
            return Sample("200" if ended else "no_done", total, ttft, events)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        status = f"{code}+{type(exc).__name__}" if code else type(exc).__name__
        return Sample(status, time.perf_counter() - start)


class CpuWatch:
    """CPU seconds of named process trees (and this process) between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}
        self.t0 = 0.0

    def _read(self) -> dict[str, float]:
        values = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        values["loadgen"] = cpu_seconds(os.getpid())
        values["machine"] = machine_busy_seconds()
        return values

    def start(self) -> None:
        self.before = self._read()
        self.t0 = time.perf_counter()

    def stop_seconds(self) -> tuple[float, dict[str, float]]:
        """Wall seconds of the window and CPU seconds per process; ``other``: the rest of the machine."""
        elapsed = time.perf_counter() - self.t0
        after = self._read()
        used = {n: after[n] - self.before.get(n, 0.0) for n in after}
        machine = used.pop("machine")
        used["other"] = max(0.0, machine - sum(used.values()))
        return elapsed, used

    def stop(self) -> dict[str, float]:
        """CPU use per process as % of one core over the window."""
        elapsed, used = self.stop_seconds()
        return {n: round(100.0 * v / elapsed, 1) for n, v in used.items()}


def session_for(concurrency: int, timeout_s: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s))


async def sequential(targets: list[Target], n: int, block: int, warmup: int, stream: bool, cpu: CpuWatch,
                     timeout_s: float, chunks: int) -> dict[str, Any]:  # fmt: skip
    """``n`` requests per target, one at a time, in alternating blocks of ``block`` per target.

    Blocks (not request-by-request interleaving): a gateway keeps working after it answers
    (audit row, storage), and that work would otherwise land on the next target's request.
    """
    sessions = {t.name: session_for(1, timeout_s) for t in targets}
    bodies = {t.name: t.body(stream) for t in targets}
    recorders = {t.name: Recorder() for t in targets}
    cpu_time: dict[str, dict[str, float]] = {t.name: {} for t in targets}
    wall = dict.fromkeys(bodies, 0.0)
    try:
        for t in targets:
            for _ in range(warmup):
                await one_request(sessions[t.name], t, bodies[t.name], stream)
        done = 0
        while done < n:
            size = min(block, n - done)
            for t in targets:
                cpu.start()
                for _ in range(size):
                    recorders[t.name].samples.append(await one_request(sessions[t.name], t, bodies[t.name], stream))
                elapsed, used = cpu.stop_seconds()
                wall[t.name] += elapsed
                for proc, seconds in used.items():
                    cpu_time[t.name][proc] = cpu_time[t.name].get(proc, 0.0) + seconds
            done += size
    finally:
        for s in sessions.values():
            await s.close()
    min_events = chunks + 1 if stream else 0
    out = {name: rec.summary(min_events=min_events) for name, rec in recorders.items()}
    for name, summary in out.items():
        summary["cpu_pct"] = {p: round(100.0 * v / wall[name], 1) for p, v in cpu_time[name].items()}
        summary["wall_s"] = round(wall[name], 3)
    return out


async def concurrent(
    target: Target,
    concurrency: int,
    duration: float,
    max_requests: int,
    mode: str,
    cpu: CpuWatch,
    timeout_s: float,
    chunks: int,
    warmup: int,
) -> dict[str, Any]:
    """``concurrency`` workers hammering one target until the duration or the count runs out."""
    recorder = Recorder()
    session = session_for(concurrency, timeout_s)
    bodies = {False: target.body(False), True: target.body(True)}

    def streams(worker: int) -> bool:
        return mode == "tput_stream" or (mode == "mixed" and worker % 2 == 1)

    try:
        warm = [one_request(session, target, bodies[streams(i)], streams(i)) for i in range(warmup)]
        await asyncio.gather(*warm)
        sent = 0
        end = time.perf_counter() + duration

        async def worker(i: int) -> None:
            nonlocal sent
            stream = streams(i)
            while sent < max_requests and time.perf_counter() < end:
                sent += 1
                sample = await one_request(session, target, bodies[stream], stream)
                recorder.samples.append(sample)
                if not sample.status[:1].isdigit():
                    await asyncio.sleep(0.01)  # connection refused: do not spin

        cpu.start()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - t0
        usage = cpu.stop()
    finally:
        await session.close()
    summary = recorder.summary(elapsed, min_events=chunks + 1 if mode == "tput_stream" else 0)
    summary["concurrency"] = concurrency
    summary["cpu_pct"] = usage
    return summary


def parse_pairs(values: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"{what} must look like NAME=VALUE, got {value!r}")
        pairs[name] = rest
    return pairs


async def run(args: argparse.Namespace) -> dict[str, Any]:
    urls = parse_pairs(args.target, "--target")
    models, keys = parse_pairs(args.model, "--model"), parse_pairs(args.key, "--key")
    apis = parse_pairs(args.api, "--api")
    targets = [Target(n, u.rstrip("/"), models.get(n, args.default_model), keys.get(n), apis.get(n, "chat"))
               for n, u in urls.items()]  # fmt: skip
    pids = {name: int(pid) for name, pid in parse_pairs(args.pid, "--pid").items()}
    cpu = CpuWatch(pids)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {sorted(unknown)}")
    results: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    for phase in phases:
        if phase in ("seq", "seq_stream"):
            stream = phase == "seq_stream"
            out = await sequential(
                targets, args.seq_n, args.seq_block, args.warmup, stream, cpu, args.timeout, args.chunks
            )
            for name, summary in out.items():
                results[name][phase] = summary
        else:
            for t in targets:
                results[t.name][phase] = await concurrent(
                    t, args.concurrency, args.duration, args.max_requests, phase, cpu, args.timeout,
                    args.chunks, args.warmup,
                )  # fmt: skip
        print(f"load: phase {phase} done", file=sys.stderr, flush=True)
    params = {k: v for k, v in vars(args).items() if k not in ("key",)}
    return {"params": params, "results": results}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", action="append", default=[], help="NAME=BASE_URL (ending in /v1)")
    p.add_argument("--model", action="append", default=[], help="NAME=MODEL for that target")
    p.add_argument("--key", action="append", default=[], help="NAME=API_KEY for that target")
    p.add_argument("--pid", action="append", default=[], help="NAME=PID: report CPU of this process tree")
    p.add_argument("--api", action="append", default=[], help="NAME=responses|messages: the API that target speaks")
    p.add_argument("--default-model", default="bench")
    p.add_argument("--phases", default="seq,seq_stream,tput,tput_stream")
    p.add_argument("--seq-n", type=int, default=1000, help="sequential requests per target")
    p.add_argument("--seq-block", type=int, default=250, help="sequential requests per target per block")
    p.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each phase")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per throughput phase")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="cap per throughput phase")
    p.add_argument("--chunks", type=int, default=50, help="content chunks the upstream streams")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--out", help="write the JSON here instead of stdout")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not args.target:
        raise SystemExit("give at least one --target NAME=URL")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
