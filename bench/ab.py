"""A/B of two llmgw source trees on one upstream, in one run: CPU per request and added latency.

    .venv/bin/python -m bench.ab --base /work/main                 # base tree vs this tree
    .venv/bin/python -m bench.ab --base /work/main --rounds 3 --seq-n 1000

On a shared machine, two separate benchmark runs see different loads; here both gateways (the
``--base`` tree's code and this tree's, each imported through ``PYTHONPATH``) serve the same
``bench.upstream`` with the bench's config (``procs.gateway_config``: optional stages off, SQLite,
a static key), and ``bench.load`` sends the same sequential requests to ``direct`` (the upstream),
``base`` and ``new`` in alternating blocks, so that all three see the same machine. Each round
is one ``bench.load`` run (phases ``seq`` and ``seq_stream``); the table shows every round and
the median over rounds of: llmgw CPU per request (the gateway process's CPU time over its own
blocks divided by their requests, which holds when other work inflates latencies) and the
p50/p99 latency added over ``direct``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench import procs

PHASES = ("seq", "seq_stream")
TPUT = ("tput", "tput_stream")


def start(name: str, tree: Path, logdir: Path, upstream: procs.Proc) -> procs.Proc:
    port = procs.free_port()
    config = logdir / f"{name}.yaml"
    config.write_text(yaml.safe_dump(procs.gateway_config(upstream.url, logdir / f"{name}.db", port)))
    # the console script, not ``python -m llmgw``: ``-m`` puts the working directory (this tree)
    # first on ``sys.path``, ahead of ``PYTHONPATH``, and both gateways would run this tree's code
    llmgw = Path(sys.executable).with_name("llmgw")
    argv = [str(llmgw), "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"]
    proc = procs.spawn(name, argv, port, logdir, {"PYTHONPATH": str(tree)})
    procs.wait_http(proc, "/readyz", 90)
    return proc


def cpu_ms(summary: dict[str, Any], name: str) -> float:
    """CPU milliseconds of process ``name`` per request of this (sequential) phase."""
    return float(summary["cpu_pct"][name]) / 100.0 * float(summary["latency_ms"]["mean"])


def figures(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for phase in TPUT:  # with --tput: the rate at concurrency 32, and as a share of direct's
        if phase in results["direct"]:
            for name in ("base", "new"):
                rate, direct = float(results[name][phase]["rate_per_s"]), float(results["direct"][phase]["rate_per_s"])
                cpu = float(results[name][phase]["cpu_pct"][name]) / 100.0 / rate * 1000.0 if rate else 0.0
                out[f"{phase}/{name}"] = {"rate_per_s": round(rate, 1), "cpu_ms": round(cpu, 3),
                                          "share_of_direct": round(rate / direct, 4)}  # fmt: skip
    for phase in PHASES:
        metric = "latency_ms" if phase == "seq" else "ttft_ms"
        for name in ("base", "new"):
            got, direct = results[name][phase], results["direct"][phase]
            out[f"{phase}/{name}"] = {
                "cpu_ms": round(cpu_ms(got, name), 3),
                "added_p50_ms": round(got[metric]["p50"] - direct[metric]["p50"], 3),
                "added_p99_ms": round(got[metric]["p99"] - direct[metric]["p99"], 3),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the other source tree (e.g. /work/main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq-n", type=int, default=1000, help="sequential requests per target, phase and round")
    parser.add_argument("--seq-block", type=int, default=100)
    parser.add_argument("--tput", action="store_true", help="also the throughput phases (concurrency 32)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput phase and target")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    phases = PHASES + (TPUT if args.tput else ())
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-ab-"))
    running: list[procs.Proc] = []
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        upstream = procs.start_upstream(logdir)
        running.append(upstream)
        base = start("base", args.base.resolve(), logdir, upstream)
        running.append(base)
        new = start("new", procs.ROOT, logdir, upstream)
        running.append(new)
        for i in range(args.rounds):
            out = logdir / f"round{i}.json"
            load = [sys.executable, "-m", "bench.load", "--phases", ",".join(phases), "--out", str(out),
                    "--duration", str(args.duration),
                    "--seq-n", str(args.seq_n), "--seq-block", str(args.seq_block), "--warmup", "100",
                    "--target", f"direct={upstream.url}", "--model", "direct=bench",
                    "--pid", f"base={base.pid}", "--pid", f"new={new.pid}",
                    "--pid", f"upstream={upstream.pid}"]  # fmt: skip
            # the order of the targets alternates between rounds: neither gateway always follows the other
            order = (("base", base), ("new", new)) if i % 2 == 0 else (("new", new), ("base", base))
            for name, proc in order:
                load += ["--target", f"{name}={proc.url}", "--model", f"{name}={procs.MODEL}",
                         "--key", f"{name}={procs.GATEWAY_KEY}"]  # fmt: skip
            subprocess.run(load, check=True, cwd=procs.ROOT, timeout=args.seq_n * 3 + 600, env=os.environ)
            rounds.append(figures(json.loads(out.read_text())["results"]))
    finally:
        for proc in reversed(running):
            proc.stop()
    medians: dict[str, dict[str, float]] = {}
    for row in rounds[0]:
        medians[row] = {k: round(statistics.median(r[row][k] for r in rounds), 4) for k in rounds[0][row]}
    print("| phase / tree | figure: rounds → median |\n|---|---|")
    for row in rounds[0]:
        cells = [f"{k} {' / '.join(f'{r[row][k]:g}' for r in rounds)} → **{medians[row][k]:g}**"
                 for k in rounds[0][row]]  # fmt: skip
        print(f"| {row} | {'; '.join(cells)} |")
    if args.out:
        args.out.write_text(json.dumps({"rounds": rounds, "median": medians}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
