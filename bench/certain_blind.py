"""The deterministic output checks (``llmgw.guards.output.check_arguments``: secrets, the canary) on
texts written blind: aggregates only (share stopped per file and category), no row printed.

    python -m bench.certain_blind --dir bench/data/blind21 [--out FILE]                    # tool-call arguments
    python -m bench.certain_blind --kind reasoning --dir bench/data/blind22 [--out FILE]   # reasoning traces

``--kind tool_args`` reads ``tool_args_benign.jsonl`` (must not be stopped) and ``tool_args_secret.jsonl``
(should be), each line ``{"arguments": "<JSON text>", "category": "..."}``, checked as the gateway
checks a call's arguments (``argument_views``). ``--kind reasoning`` reads ``reasoning_benign.jsonl``
and ``reasoning_secret.jsonl``, each line ``{"text": "...", "category": "..."}``, checked whole as a
non-streamed answer's reasoning is. The shipped default policy's moderation rules, no canary (a
canary is a string the gateway makes; it needs no corpus).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--kind", choices=("tool_args", "reasoning"), default="tool_args")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from llmgw.config import GuardsConfig
    from llmgw.guards.output import argument_views, check_arguments
    from llmgw.guards.runtime import GuardRuntime

    policy = GuardRuntime(GuardsConfig(enabled=True, policy_dir=str(ROOT / "guardrails"))).policies["default"]
    out = {}
    field, views = ("arguments", argument_views) if args.kind == "tool_args" else ("text", lambda text: [text])
    for name in (f"{args.kind}_benign", f"{args.kind}_secret"):
        stopped, total = Counter(), Counter()
        for line in (args.dir / f"{name}.jsonl").read_text().splitlines():
            row = json.loads(line)
            total[row["category"]] += 1
            if check_arguments(policy, views(row[field]), None).violation:
                stopped[row["category"]] += 1
        out[name] = {"stopped": sum(stopped.values()), "rows": sum(total.values()),
                     "by_category": {c: f"{stopped[c]}/{total[c]}" for c in sorted(total)}}  # fmt: skip
        print(name, json.dumps(out[name]))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
