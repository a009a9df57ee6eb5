"""Throughput of ``llmgw serve --workers 1`` against ``--workers 2``, non-streamed, in one run.

The same upstream (bench.upstream), the same gateway config as bench.run (every optional stage
off), the same load generator (bench.load's ``tput`` phase, 32 keep-alive connections opened at
once). Configurations alternate over ``--rounds`` (1, 2, 1, 2, ...) so both see the same machine;
the ratio is of the medians. ``--shared`` adds a third configuration to each round: two workers on
one shared listening socket (``server.reuse_port: false``, the fallback and the mechanism before
SO_REUSEPORT), so the two ways of spreading connections are compared in the same run. The load
average before and after, the CPU of the llmgw process tree, of each of its processes (``workers``:
how evenly the connections were spread) and of every other process during each phase (``other``)
are reported beside it: on a shared machine they say how much the numbers mean.

``--loadgen wrk`` drives the load with ``wrk`` (bench.wrk: C, one thread, the same request and
connections) instead of bench.load, whose Python takes part of a core that a second worker would
otherwise use; ``--loadgen both`` runs both on each gateway, one after the other, and reports a ratio
per load generator.

    .venv/bin/python -m bench.workers [--rounds 3] [--duration 15] [--shared] [--loadgen aiohttp|wrk|both] [--out FILE]
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

from bench import procs, procstat, wrk

RESULTS = Path(__file__).with_name("results")
#: label → (workers, server.reuse_port)
CONFIGS = {"1": (1, True), "2": (2, True), "2-shared": (2, False)}


def start_gateway(logdir: Path, upstream: procs.Proc, label: str, n: int) -> procs.Proc:
    workers, reuse_port = CONFIGS[label]
    port = procs.free_port()
    config = logdir / f"llmgw-{label}-{n}.yaml"
    settings = procs.gateway_config(upstream.url, logdir / f"llmgw-{label}-{n}.db", port)
    settings["server"]["reuse_port"] = reuse_port
    config.write_text(yaml.safe_dump(settings))
    llmgw = Path(sys.executable).with_name("llmgw")
    argv = [str(llmgw), "serve", "--config", str(config), "--port", str(port), "--log-level", "warning",
            "--workers", str(workers)]  # fmt: skip
    proc = procs.spawn("llmgw", argv, port, logdir)
    procs.wait_http(proc, "/readyz", 300)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # every worker accepting connections, not just the first
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
    parser.add_argument("--shared", action="store_true", help="also two workers on one shared socket")
    parser.add_argument("--loadgen", choices=["aiohttp", "wrk", "both"], default="aiohttp")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    loadgens = ["aiohttp", "wrk"] if args.loadgen == "both" else [args.loadgen]
    if "wrk" in loadgens and not wrk.available():
        parser.error("--loadgen wrk needs wrk on PATH (Debian: apt-get install wrk)")
    started = dt.datetime.now().astimezone()
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-workers-"))
    load_args = ["--duration", str(args.duration), "--concurrency", str(args.concurrency), "--warmup", "100"]
    labels = ["1", "2", "2-shared"] if args.shared else ["1", "2"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {g: {label: [] for label in labels} for g in loadgens}
    load_before = os.getloadavg()
    upstream = procs.start_upstream(logdir)
    try:
        for n in range(args.rounds):
            for label in labels:
                gateway = start_gateway(logdir, upstream, label, n)
                try:
                    pids = {"llmgw": gateway.pid, "upstream": upstream.pid}
                    for loadgen in loadgens:
                        tput = phase(loadgen, gateway, pids, load_args, logdir / f"load-{label}-{n}.json", args)
                        runs[loadgen][label].append(tput)
                        print(f"round {n} {label} ({loadgen}): {tput['rate_per_s']:.0f} req/s, cpu {tput['cpu_pct']}, "
                              f"per process cpu-s {tput['workers_cpu_s']}", flush=True)  # fmt: skip
                finally:
                    gateway.stop(120)
    finally:
        upstream.stop()
    median = {
        g: {label: statistics.median(r["rate_per_s"] for r in runs[g][label]) for label in labels} for g in loadgens
    }
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m bench.workers " + " ".join(sys.argv[1:] if argv is None else argv),
        "cores": len(os.sched_getaffinity(0)),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "configs": {label: {"workers": CONFIGS[label][0], "reuse_port": CONFIGS[label][1]} for label in labels},
        "runs": runs,
        "median_rps": median,
        "ratio": {g: median[g]["2"] / median[g]["1"] if median[g]["1"] else None for g in loadgens},
        "ratio_shared": {g: median[g]["2-shared"] / median[g]["1"] if median[g]["1"] else None for g in loadgens}
        if args.shared
        else None,
    }
    out = args.out or RESULTS / f"{started:%Y-%m-%d}-workers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    shared = f", shared socket 2/1 {report['ratio_shared']}" if args.shared else ""
    print(f"median req/s: {median}; ratio 2/1 {report['ratio']}{shared}")
    print(f"bench: wrote {out}", file=sys.stderr)
    return 0


def phase(loadgen: str, gateway: procs.Proc, pids: dict[str, int], load_args: list[str], out: Path,
          args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """One throughput phase on a running gateway, with the CPU seconds of each of its processes."""
    tree = procstat.descendants(gateway.pid)
    cpu_before = {pid: procstat.cpu_seconds(pid) for pid in tree}
    if loadgen == "wrk":
        result = wrk.tput(gateway.url, procs.GATEWAY_KEY, procs.MODEL, pids, args.concurrency, args.duration)
    else:
        loaded = procs.run_load([gateway], pids, "tput", load_args, out, 4 * args.duration + 300)
        result = loaded["results"]["llmgw"]["tput"]
    # CPU seconds of each process of the tree over the whole phase (warm-up included)
    spent = {str(pid): round(procstat.cpu_seconds(pid) - cpu_before[pid], 2) for pid in tree}
    return {**result, "workers_cpu_s": spent}


if __name__ == "__main__":
    raise SystemExit(main())
