"""What guarding tools costs, and what reading tool arguments as JSON buys (synthetic documents).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.tools_overhead [--docs 200]

* **PII in tool arguments**: ``--docs`` generated argument documents (seeded; e-mail addresses,
  phone numbers, names with and without accents, free text holding an address, a list), sent as
  most clients send them (``json.dumps``, so ``é`` is ``\\u00e9``). Masked two ways with the shipped
  default policy: the whole JSON text at once (how llmgw did it before), and value by value
  (``llmgw.guards.scan.collect``, what it does now). Reported: milliseconds per document
  (each document new to the analyzer's cache), the PII values planted that are still in the text
  sent upstream (by kind; a name is only as findable as spaCy's NER makes it, and an accented
  one arrives escaped in the whole text), and whether that text is still valid JSON. Synthetic data: a check of the
  mechanism, not a quality figure for real traffic.
* **the tool-call check on streams**: ``llmgw.stages.tools.ToolCalls`` wrapped around 50,000
  content chunks and around 50,000 tool-call argument deltas, against the bare iterator:
  microseconds added per chunk.

Writes ``bench/results/tools_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FIRST = ["Dana", "José", "Zoë", "Marta", "Li", "Renée", "Björn", "Amelia", "Omar", "François"]
LAST = ["Reyes", "Núñez", "Okafor", "Müller", "Chen", "Dubois", "Larsen", "Smith", "Haddad", "Kowalski"]
TEXT = ["please confirm the booking", "see the attached invoice", "the meeting moved to Friday",
        "call me back when you can", "thanks for the quick reply"]  # fmt: skip


def documents(n: int, seed: int = 20) -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
    """Argument documents and the PII values planted in each."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()[:3]}.{last.lower()[:4]}{i}@example-{i % 7}.com".encode("ascii", "ignore").decode()
        phone = f"({rng.randint(201, 989)}) 555-{rng.randint(1000, 9999)}"
        other = f"ops{i}@corp-{i % 5}.example"
        doc = {"to": email, "phone": phone, "recipient": f"{first} {last}",
               "subject": rng.choice(TEXT), "body": f"{rng.choice(TEXT)}, cc {other} if needed",
               "labels": ["urgent" if i % 2 else "normal", "crm"], "retries": i % 3}  # fmt: skip
        out.append((doc, {"email": [email, other], "phone": [phone], "name": [f"{first} {last}"]}))
    return out


def pii_bench(n: int) -> dict[str, Any]:
    from llmgw.guards.pii import Masker, PiiAnalyzer
    from llmgw.guards.policy import load_policy
    from llmgw.guards.scan import collect

    policy = load_policy(REPO / "guardrails" / "default.yaml")
    analyzer = PiiAnalyzer(policy.pii)
    analyzer.analyze("warm up: Jane Doe, jane@example.com, (212) 555-0147")
    docs = documents(n)
    results: dict[str, Any] = {}
    for mode in ("whole_text", "value_by_value"):
        analyzer._cache.clear()
        planted: dict[str, int] = {}
        leaked: dict[str, int] = {}
        valid = 0
        started = time.perf_counter()
        for doc, values in docs:
            arguments = json.dumps(doc)
            function = {"name": "send_email", "arguments": arguments}
            masker = Masker(policy.pii, salt=b"bench")
            if mode == "whole_text":
                masked, _ = masker.apply(arguments, analyzer.analyze(arguments), "arguments")
                function["arguments"] = masked
            else:
                call = {"id": "c", "type": "function", "function": function}
                body = {"messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]}
                for item in collect(body):
                    found = analyzer.analyze(item.text) if item.pii else []
                    if found:
                        item.set(masker.apply(item.text, found, item.where)[0])
                body_function = body["messages"][0]["tool_calls"][0]["function"]
                function["arguments"] = body_function["arguments"]
            sent = function["arguments"]
            try:
                decoded = json.loads(sent)
                valid += 1
                text = json.dumps(decoded, ensure_ascii=False)
            except ValueError:
                text = sent
            for kind, found_values in values.items():
                planted[kind] = planted.get(kind, 0) + len(found_values)
                leaked[kind] = leaked.get(kind, 0) + sum(1 for v in found_values if v in text)
        elapsed = time.perf_counter() - started
        results[mode] = {"ms_per_document": round(elapsed / n * 1000, 2), "pii_values_planted": planted,
                         "pii_values_sent_raw": leaked, "valid_json": f"{valid}/{n}"}  # fmt: skip
        accented = [d for d, v in docs if any(ord(c) > 127 for c in v["name"][0])]
        results[mode]["documents_with_accented_names"] = len(accented)
    return results


async def stream_bench(chunks: int) -> dict[str, float]:
    from llmgw.context import RequestContext
    from llmgw.stages.tools import ToolCalls

    config = SimpleNamespace(guards=SimpleNamespace(enabled=True), routes={})
    gateway = SimpleNamespace(config=config, writer=SimpleNamespace(put=lambda *a: None))
    body = {"tools": [{"type": "function", "function": {"name": "get_weather"}}]}
    content = {"choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]}
    call = {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "ab"}}]},
                         "finish_reason": None}]}  # fmt: skip
    first = {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}, "finish_reason": None}]}  # fmt: skip

    async def source(kind: str) -> Any:
        if kind == "call":
            yield first
        for _ in range(chunks):
            yield content if kind == "content" else call

    async def drain(iterator: Any) -> float:
        started = time.perf_counter()
        async for _ in iterator:
            pass
        return time.perf_counter() - started

    out: dict[str, float] = {}
    stage = ToolCalls(gateway)  # type: ignore[arg-type]
    for kind in ("content", "call"):
        bare = min([await drain(source(kind)) for _ in range(5)])
        wrapped = []
        for _ in range(5):
            ctx = RequestContext(request_id="b", endpoint="chat", body=body, options={}, headers={})
            wrapped.append(await drain(stage.stream(ctx, source(kind))))
        out[f"{kind}_us_added_per_chunk"] = round((min(wrapped) - bare) / chunks * 1e6, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=50_000)
    args = parser.parse_args()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores (shared)",
        "pii_in_tool_arguments": pii_bench(args.docs),
        "tool_call_check": asyncio.run(stream_bench(args.chunks)),
    }
    out = REPO / "bench" / "results" / "tools_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
