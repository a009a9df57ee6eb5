"""Throughput of ``llmgw serve --workers 1`` against ``--workers 2``, non-streamed, in one run.

The same upstream (bench.upstream), the same gateway config as bench.run (every optional stage
off), the same load generator (bench.load's ``tput`` phase, 32 connections). Configurations
alternate over ``--rounds`` (1, 2, 1, 2, ...) so both see the same machine; the ratio is of the
medians. The load average before and after, and the CPU of every other process during each phase
(``other``), are reported beside it: on a shared machine they say how much the numbers mean.

    .venv/bin/python -m bench.workers [--rounds 3] [--duration 15] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench import procs

RESULTS = Path(__file__).with_name("results")


def start_gateway(logdir: Path, upstream: procs.Proc, workers: int, n: int) -> procs.Proc:
    port = procs.free_port()
    config = logdir / f"llmgw-{workers}-{n}.yaml"
    config.write_text(yaml.safe_dump(procs.gateway_config(upstream.url, logdir / f"llmgw-{workers}-{n}.db", port)))
    llmgw = Path(sys.executable).with_name("llmgw")
    argv = [str(llmgw), "serve", "--config", str(config), "--port", str(port), "--log-level", "warning",
            "--workers", str(workers)]  # fmt: skip
    proc = procs.spawn("llmgw", argv, port, logdir)
    procs.wait_http(proc, "/readyz", 300)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # every worker up, not just the first
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            if len(re.findall(r"^llmgw_worker_up\{.*\} 1\.0$", response.read().decode(), re.M)) >= workers:
                break
        time.sleep(0.5)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per throughput phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = dt.datetime.now().astimezone()
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-workers-"))
    load_args = ["--duration", str(args.duration), "--concurrency", str(args.concurrency), "--warmup", "100"]
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    load_before = os.getloadavg()
    upstream = procs.start_upstream(logdir)
    try:
        for n in range(args.rounds):
            for workers in (1, 2):
                gateway = start_gateway(logdir, upstream, workers, n)
                try:
                    pids = {"llmgw": gateway.pid, "upstream": upstream.pid}
                    out = logdir / f"load-{workers}-{n}.json"
                    result = procs.run_load([gateway], pids, "tput", load_args, out, 4 * args.duration + 300)
                finally:
                    gateway.stop(120)
                tput = result["results"]["llmgw"]["tput"]
                runs[workers].append(tput)
                print(f"round {n} workers {workers}: {tput['rate_per_s']:.0f} req/s, cpu {tput['cpu_pct']}", flush=True)
    finally:
        upstream.stop()
    median = {w: statistics.median(r["rate_per_s"] for r in runs[w]) for w in runs}
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m bench.workers " + " ".join(sys.argv[1:] if argv is None else argv),
        "cores": len(os.sched_getaffinity(0)),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "runs": {str(w): r for w, r in runs.items()},
        "median_rps": {str(w): m for w, m in median.items()},
        "ratio": median[2] / median[1] if median[1] else None,
    }
    out = args.out or RESULTS / f"{started:%Y-%m-%d}-workers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"median req/s: 1 worker {median[1]:.0f}, 2 workers {median[2]:.0f}, ratio {report['ratio']:.2f}")
    print(f"bench: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
