"""The gateway with its start-up heap frozen (``llmgw serve`` since 2026-12-04) against unfrozen, alternating.

    .venv/bin/python -m bench.gc_freeze [--rounds 3] [--duration 20]

bench.run's gateway (every optional stage off) behind bench.upstream, load from ``wrk`` (bench.wrk): 32
connections for ``--duration`` seconds, then one connection (sequential latency) for ¾ of it. Each round
starts a fresh gateway per mode, the order alternating. The gateway runs as bench.gc_serve, which logs
each generation-2 collection's duration; the first four happen during start-up, before the freeze.
Writes ``bench/results/<date>-gc-freeze.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench import procs, wrk

RESULTS = Path(__file__).with_name("results")


def one(mode: str, upstream: procs.Proc, logdir: Path, n: int, duration: float) -> dict[str, Any]:
    port = procs.free_port()
    config = logdir / f"gw-{mode}-{n}.yaml"
    config.write_text(yaml.safe_dump(procs.gateway_config(upstream.url, logdir / f"gw-{mode}-{n}.db", port)))
    env = dict(os.environ, **({"LLMGW_BENCH_NO_FREEZE": "1"} if mode == "unfrozen" else {}))
    err = logdir / f"gw-{mode}-{n}.err"
    with err.open("w") as stderr:
        argv = [sys.executable, "-m", "bench.gc_serve", "serve", "--config", str(config), "--port", str(port),
                "--log-level", "warning"]  # fmt: skip
        popen = subprocess.Popen(
            argv, stderr=stderr, env=env, cwd=Path(__file__).resolve().parents[1], start_new_session=True
        )  # procs.Proc.stop signals the session
        proc = procs.Proc("llmgw", popen, port, err)
        try:
            procs.wait_http(proc, "/readyz", 300)
            loaded = wrk.tput(proc.url, procs.GATEWAY_KEY, procs.MODEL, {"llmgw": popen.pid}, 32, duration)
            alone = wrk.tput(proc.url, procs.GATEWAY_KEY, procs.MODEL, {"llmgw": popen.pid}, 1, duration * 0.75)
        finally:
            proc.stop(60)
    pauses = [float(line.split()[1]) for line in err.read_text().splitlines() if line.startswith("GC2 ")][4:]
    return {
        "rate_32": round(loaded["rate_per_s"]), "p50_32_ms": loaded["latency_ms"]["p50"],
        "p99_32_ms": loaded["latency_ms"]["p99"], "sequential_p50_ms": alone["latency_ms"]["p50"],
        "sequential_p99_ms": alone["latency_ms"]["p99"], "gen2_after_start": len(pauses),
        "gen2_median_ms": round(statistics.median(pauses), 2) if pauses else None,
        "gen2_total_ms": round(sum(pauses), 1),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    if not wrk.available():
        parser.error("needs wrk on PATH (Debian: apt-get install wrk)")
    started = dt.datetime.now().astimezone()
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-gc-"))
    runs: dict[str, list[dict[str, Any]]] = {"frozen": [], "unfrozen": []}
    upstream = procs.start_upstream(logdir)
    try:
        for n in range(args.rounds):
            for mode in ("frozen", "unfrozen") if n % 2 == 0 else ("unfrozen", "frozen"):
                runs[mode].append(one(mode, upstream, logdir, n, args.duration))
                print(n, mode, runs[mode][-1], flush=True)
    finally:
        upstream.stop()
    keys = ("rate_32", "p99_32_ms", "sequential_p50_ms", "sequential_p99_ms")
    medians = {mode: {k: statistics.median(r[k] for r in rows) for k in keys} for mode, rows in runs.items()}
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m bench.gc_freeze " + " ".join(sys.argv[1:]),
        "loadavg_after": os.getloadavg(),
        "runs": runs,
        "medians": medians,
    }
    out = RESULTS / f"{started:%Y-%m-%d}-gc-freeze.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(medians, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
