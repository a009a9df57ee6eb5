"""Latency of the first requests after the gateway sat idle, beside the direct upstream, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.idle                    # idle 0.02 s and 0.5 s
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.idle --idle 0.02,0.2,1 --blocks 60

``bench.run`` measures requests back to back. A low-traffic service sees the other case on every
request: the processes slept, and the request wakes them. Per target (``direct``: the bench upstream;
``llmgw``: the bench's gateway config, optional stages off), ``--blocks`` times: sleep ``--idle`` seconds,
then ``--per-block`` sequential non-streamed requests on one keep-alive connection. Reported: p50 of
the first and of the second request of a block, p50 and p99 of the requests from the sixth on (steady
state), in milliseconds. A proxy has two more process wake-ups per request than the direct call
(the request arriving, the upstream's answer arriving), so on a VM whose wake-ups are slow the first
request after idling costs it more than steady-state figures show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs


async def measure(url: str, idle: float, blocks: int, per_block: int, headers: dict[str, str]) -> dict[str, float]:
    body = {"model": procs.MODEL, "messages": [{"role": "user", "content": "hello there"}]}
    by_position: list[list[float]] = [[] for _ in range(per_block)]
    async with aiohttp.ClientSession() as session:
        for _ in range(blocks):
            await asyncio.sleep(idle)
            for i in range(per_block):
                started = time.perf_counter()
                async with session.post(url + "/chat/completions", json=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")
                by_position[i].append((time.perf_counter() - started) * 1000.0)
    steady = sorted(x for position in by_position[5:] for x in position)
    return {
        "first_p50": round(statistics.median(by_position[0]), 3),
        "second_p50": round(statistics.median(by_position[1]), 3),
        "steady_p50": round(statistics.median(steady), 3),
        "steady_p99": round(steady[int(0.99 * len(steady))], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", default="0.02,0.5", help="comma-separated idle times, seconds")
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--per-block", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench/results/idle.json"))
    args = parser.parse_args(argv)
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-idle-"))
    upstream = procs.start_upstream(logdir)
    gateway = procs.start_gateway(logdir, upstream, logdir / "llmgw.db")
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": procs_machine(),
                              "blocks": args.blocks, "per_block": args.per_block, "runs": {}}  # fmt: skip
    try:
        for idle in [float(x) for x in args.idle.split(",")]:
            row: dict[str, Any] = {}
            for name, url, headers in (
                ("direct", upstream.url, {}),
                ("llmgw", gateway.url, {"authorization": f"Bearer {procs.GATEWAY_KEY}"}),
            ):
                row[name] = asyncio.run(measure(url, idle, args.blocks, args.per_block, headers))
            row["added_first_p50"] = round(row["llmgw"]["first_p50"] - row["direct"]["first_p50"], 3)
            row["added_steady_p50"] = round(row["llmgw"]["steady_p50"] - row["direct"]["steady_p50"], 3)
            result["runs"][str(idle)] = row
            print(f"idle {idle:g} s", json.dumps(row), flush=True)
    finally:
        gateway.stop()
        upstream.stop()
    args.out.write_text(json.dumps(result, indent=2))
    return 0


def procs_machine() -> dict[str, Any]:
    from bench.run import machine

    return machine()


if __name__ == "__main__":
    raise SystemExit(main())
