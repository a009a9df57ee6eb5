"""Input guards on long pasted documents: wall time and the process's peak memory per length.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python -m bench.guard_long [--sizes 20000 50000 100000 200000]

Runs the shipped default policy's input scan (PII and injection, as ``llmgw.stages.input_guards``
does) on one user turn of numbered report paragraphs (no two 700-character windows alike, so the
encoder's kept vectors do not shorten it), longest last, and prints seconds per 1,000 characters:
the figure behind the policy's ``timeout_per_1k_chars_s`` default (docs/guardrails.md, "Long inputs").
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAGRAPH = (
    "The quarterly report describes revenue growth across the three regions, with the northern office "
    "leading on new contracts while the southern team focused on retention. Margins improved slightly. "
)


def document(chars: int) -> str:
    parts, n = ["Summarize this report:\n"], 0
    while sum(map(len, parts)) < chars:
        n += 1
        parts.append(f"Section {n}, item {n * 7 % 1000}: {PARAGRAPH}")
    return "".join(parts)[:chars]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000, 200_000])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from llmgw.config import GuardsConfig
    from llmgw.guards.runtime import GuardRuntime
    from llmgw.guards.scan import Item, scan

    runtime = GuardRuntime(GuardsConfig(enabled=True, policy_dir=str(ROOT / "guardrails")))
    policy = runtime.policies["default"]
    runtime.warm()
    rows = []
    for n in sorted(args.sizes):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        start = time.perf_counter()
        scan(runtime, policy, [Item("messages[0].content", "user", document(n), lambda v: None)])
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        rows.append({"chars": n, "seconds": round(seconds, 2), "s_per_1k": round(seconds / n * 1000, 4),
                     "peak_rss_mb": peak, "peak_rise_mb": peak - before})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}))
    runtime.close()


if __name__ == "__main__":
    main()
