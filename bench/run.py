"""The gateway-overhead benchmark: direct upstream vs llmgw vs LiteLLM proxy, in one run.

    .venv/bin/python -m bench.run            # full run (~5 min with LiteLLM)
    .venv/bin/python -m bench.run --quick    # smoke run (~1 min)

Starts ``bench.upstream`` (precomputed answers, 50-chunk streams), ``llmgw serve`` on a generated
config (one ``openai`` provider, one model, a static key, every optional stage off, SQLite in a
temp dir) and LiteLLM proxy (one worker, its own venv ``bench/.litellm-venv``, created on first
use). ``bench.load`` then measures, each in its own process:

1. direct and llmgw (sequential phases alternate the two in blocks): every phase;
2. direct and LiteLLM, alternating in blocks: the sequential phases;
3. LiteLLM alone: the throughput phases.

Prints markdown tables and writes the JSON to ``bench/results/<date>[-quick].json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import guard, procs
from bench.report import derive, markdown

RESULTS = procs.BENCH / "results"
SEQ_BLOCK = 250


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    return {
        # not `nproc`: GNU nproc honours OMP_NUM_THREADS, which the benchmarks set to 1
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu_model": cpu,
        "memory": mem[1].split()[1] if len(mem) > 1 else "?",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def newest_source() -> str:
    """Modification time of the newest llmgw/*.py: which state of a changing tree was measured."""
    files = list((procs.ROOT / "llmgw").rglob("*.py"))
    newest = max(files, key=lambda p: p.stat().st_mtime)
    when = dt.datetime.fromtimestamp(newest.stat().st_mtime).astimezone()
    return f"{when.isoformat(timespec='seconds')} {newest.relative_to(procs.ROOT)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few requests, short phases")
    parser.add_argument("--seq-n", type=int, help="sequential requests per target (full 2000, quick 200)")
    parser.add_argument("--duration", type=float, help="seconds per throughput phase (full 15, quick 3)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--chunks", type=int, default=50, help="content chunks per streamed answer")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM baseline")
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/<date>.json)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when llmgw's share of the direct rate is below the baseline's floor",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=guard.DEFAULT_TOLERANCE,
        help="relative drop below the baseline share that --check accepts (default 0.25)",
    )
    parser.add_argument("--baseline", type=Path, default=guard.BASELINE, help="baseline JSON (bench/baseline.json)")
    args = parser.parse_args(argv)
    seq_n = args.seq_n or (200 if args.quick else 2000)
    duration = args.duration or (3.0 if args.quick else 15.0)
    started = dt.datetime.now().astimezone()
    out = args.out or RESULTS / f"{started:%Y-%m-%d}{'-quick' if args.quick else ''}.json"
    load_args = ["--seq-n", str(seq_n), "--duration", str(duration), "--concurrency", str(args.concurrency),
                 "--chunks", str(args.chunks), "--warmup", "20" if args.quick else "100",
                 "--seq-block", str(SEQ_BLOCK)]  # fmt: skip
    budget = 3 * seq_n * 0.2 + 4 * duration + 600  # a generous cap on each load process

    logdir = Path(tempfile.mkdtemp(prefix="llmgw-bench-"))
    print(f"bench: logs and databases in {logdir}", file=sys.stderr, flush=True)
    running: list[procs.Proc] = []
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "bench.run", *sys.argv[1:]]),
        "machine": machine(),
        "params": {
            "seq_n": seq_n,
            "duration_s": duration,
            "concurrency": args.concurrency,
            "chunks": args.chunks,
            "seq_block": SEQ_BLOCK,
        },
        "llmgw_newest_source": newest_source(),
    }
    try:
        upstream = procs.start_upstream(logdir, args.chunks)
        running.append(upstream)
        gateway = procs.start_gateway(logdir, upstream, logdir / "llmgw.db")
        running.append(gateway)
        litellm = None if args.no_litellm else procs.start_litellm(logdir, upstream)
        if litellm is not None:
            running.append(litellm)
            report["litellm_version"] = litellm.extra["version"]
        pids = {p.name: p.pid for p in running}
        direct = ("direct", upstream.url)
        phases_all = "seq,seq_stream,tput,tput_stream"
        first = procs.run_load([direct, gateway], pids, phases_all, load_args, logdir / "load-llmgw.json", budget)
        results = dict(first["results"])
        if litellm is not None:
            second = procs.run_load(
                [direct, litellm], pids, "seq,seq_stream", load_args, logdir / "load-litellm-seq.json", budget
            )
            third = procs.run_load([litellm], pids, "tput,tput_stream", load_args, logdir / "load-litellm.json", budget)
            results["direct_litellm_run"] = second["results"]["direct"]
            results["litellm"] = {**second["results"]["litellm"], **third["results"]["litellm"]}
        report["results"] = results
    finally:
        for proc in reversed(running):
            proc.stop()
    report["derived"] = derive(report["results"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"bench: wrote {out}", file=sys.stderr)
    if not args.baseline.exists():
        print(f"throughput guard: no baseline at {args.baseline}", file=sys.stderr)
        return 1 if args.check else 0
    baseline = guard.load_baseline(args.baseline)
    verdict = guard.compare(guard.share(report["results"]), float(baseline["share"]), args.tolerance)
    report["guard"] = {**verdict.__dict__, "baseline_date": baseline.get("date")}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(verdict.line())
    return 0 if verdict.ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
