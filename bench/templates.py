"""Rendering a cached template: the cost the template stage adds per request.

    .venv/bin/python -m bench.templates [--n 20000]

Renders ``prompts/support/answer.yaml`` (a macro import, an include, three variables) at HEAD of
this repository, after one warm-up load, and prints p50/p99 per render and per full lookup
(address → commit → cached template → render), in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from llmgw.config import TemplatesConfig
from llmgw.templates.store import Address, PromptStore

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(n: int) -> dict[str, float]:
    store = PromptStore(TemplatesConfig(enabled=True, repo=str(ROOT)))
    store.refresh()
    address = Address.parse("support/answer")
    variables = {"product": "Acme Router X2", "tone": "formal"}
    template = await store.get(address)
    template.render(variables)
    render, lookup = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        template.render(variables)
        t1 = time.perf_counter_ns()
        (await store.get(address)).render(variables)
        t2 = time.perf_counter_ns()
        render.append((t1 - t0) / 1000)
        lookup.append((t2 - t1) / 1000)
    return {
        "render_p50_us": statistics.median(render),
        "render_p99_us": percentile(render, 0.99),
        "lookup_and_render_p50_us": statistics.median(lookup),
        "lookup_and_render_p99_us": percentile(lookup, 0.99),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    print(json.dumps(asyncio.run(measure(parser.parse_args().n)), indent=2))


if __name__ == "__main__":
    main()
