"""What OpenTelemetry tracing adds to a request: llmgw with ``telemetry`` off vs on, in one run.

    .venv/bin/python -m bench.tracing                 # 2000 sequential requests per target and phase
    .venv/bin/python -m bench.tracing --seq-n 500     # quicker

Starts ``bench.upstream``, a local OTLP/HTTP sink (accepts and drops ``/v1/traces`` and
``/v1/metrics``, so the exporter really serialises and sends every span), and two ``llmgw
serve`` processes on the ``bench.run`` config (optional stages off): one with tracing off, one
with ``telemetry.enabled`` and ``sample_ratio: 1`` (every request traced). ``bench.load`` then
runs the sequential phases against direct, off and on, alternating in blocks, in one process.
Reports p50/p99 of each and the added p50 of "on" over "off". Writes
``bench/results/<date>-tracing.json``.

``--baseline DIR`` adds a fourth target, ``llmgw-on-base``: tracing on as well, but running the
``llmgw`` package found in DIR (``PYTHONPATH=DIR``, e.g. ``git worktree add /tmp/base main``),
so a change to the tracing path is measured against the code before it in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from bench import procs
from bench.run import machine

RESULTS = procs.BENCH / "results"


def start_sink() -> int:
    """An OTLP/HTTP endpoint in a thread of this process that answers 200 and drops the payload."""
    port = procs.free_port()
    ready = threading.Event()

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/traces", accept)
        app.router.add_post("/v1/metrics", accept)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True, name="otlp-sink").start()
    ready.wait(10)
    return port


def start_gateway(
    name: str, logdir: Path, upstream: procs.Proc, telemetry: dict[str, Any] | None, tree: Path | None = None
) -> procs.Proc:
    port = procs.free_port()
    config = procs.gateway_config(upstream.url, logdir / f"{name}.db", port)
    if telemetry is not None:
        config["telemetry"] = telemetry
    path = logdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    llmgw = Path(sys.executable).with_name("llmgw")
    argv = [str(llmgw), "serve", "--config", str(path), "--port", str(port), "--log-level", "warning"]
    env = {"PYTHONPATH": str(tree)} if tree is not None else None
    proc = procs.spawn(name, argv, port, logdir, env)
    procs.wait_http(proc, "/readyz", 60)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-n", type=int, default=2000, help="sequential requests per target and phase")
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--seq-block", type=int, default=250, help="requests per target before the next one")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--baseline", type=Path, help="a tree whose llmgw runs as a second traced target")
    args = parser.parse_args(argv)
    started = dt.datetime.now().astimezone()
    out = args.out or RESULTS / f"{started:%Y-%m-%d}-tracing.json"
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-tracing-"))
    running: list[procs.Proc] = []
    try:
        sink = start_sink()
        upstream = procs.start_upstream(logdir, args.chunks)
        running.append(upstream)
        off = start_gateway("llmgw-off", logdir, upstream, None)
        running.append(off)
        telemetry = {"enabled": True, "endpoint": f"http://127.0.0.1:{sink}", "sample_ratio": 1.0}
        on = start_gateway("llmgw-on", logdir, upstream, telemetry)
        running.append(on)
        gateways = [off, on]
        if args.baseline is not None:
            base = start_gateway("llmgw-on-base", logdir, upstream, telemetry, args.baseline.resolve())
            running.append(base)
            gateways.append(base)
        load_out = logdir / "load.json"
        load = [sys.executable, "-m", "bench.load", "--phases", "seq,seq_stream", "--out", str(load_out),
                "--seq-n", str(args.seq_n), "--seq-block", str(args.seq_block), "--warmup", "100",
                "--chunks", str(args.chunks),
                "--target", f"direct={upstream.url}", "--model", f"direct={procs.MODEL}"]  # fmt: skip
        for proc in gateways:
            load += ["--target", f"{proc.name}={proc.url}", "--model", f"{proc.name}={procs.MODEL}"]
            load += ["--key", f"{proc.name}={procs.GATEWAY_KEY}", "--pid", f"{proc.name}={proc.pid}"]
        subprocess.run(load, check=True, cwd=procs.ROOT, timeout=3600)
        results = json.loads(load_out.read_text())["results"]
    finally:
        for proc in reversed(running):
            proc.stop()
    names = ["direct", *(proc.name for proc in gateways)]
    derived: dict[str, Any] = {}
    for phase in ("seq", "seq_stream"):
        p50 = {name: results[name][phase]["latency_ms"]["p50"] for name in names}
        derived[phase] = {
            "added_p50_ms_off": round(p50["llmgw-off"] - p50["direct"], 3),
            "added_p50_ms_on": round(p50["llmgw-on"] - p50["direct"], 3),
            "tracing_p50_ms": round(p50["llmgw-on"] - p50["llmgw-off"], 3),
        }
        for proc in gateways:  # the gateway process's own CPU (its tree) per request, from bench.load
            result = results[proc.name][phase]
            cpu_s = result["cpu_pct"].get(proc.name, 0.0) / 100.0 * result.get("wall_s", 0.0)
            derived[phase][f"cpu_us_per_request_{proc.name}"] = round(cpu_s / result["requests"] * 1e6, 1)
        if "llmgw-on-base" in p50:
            derived[phase]["tracing_p50_ms_base"] = round(p50["llmgw-on-base"] - p50["llmgw-off"], 3)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.tracing", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "seq_n": args.seq_n,
        "baseline": str(args.baseline) if args.baseline is not None else None,
        "results": results,
        "derived": derived,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| phase | target | p50 ms | p99 ms |\n|---|---|---|---|")
    for phase in ("seq", "seq_stream"):
        for name in names:
            lat = results[name][phase]["latency_ms"]
            print(f"| {phase} | {name} | {lat['p50']} | {lat['p99']} |")
    print(json.dumps(derived, indent=2))
    print(f"bench: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
