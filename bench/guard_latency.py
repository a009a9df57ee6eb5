"""Latency the guards add, measured on the code paths the gateway runs (one thread per guard pool).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.guard_latency [--data DIR] [--repeat 3]

* **input guards**: ``llmgw.guards.scan.scan`` with the default policy on 300-character user
  messages (held-out Presidio sentences with PII, cut or repeated to 300 characters; each message
  is new to the caches): PII analysis beside the injection embedding, as in the gateway;
* its parts alone: PII ``analyze``, injection ``score``, one embedding (float ONNX and float torch);
  and how many MiniLM passes the injection guard makes per message (at most one since 2026-12-03);
* **output moderation**: ``llmgw.guards.output.check_output`` on one stream window (8 words plus 4
  of context, the default policy): the work per window, and per chunk when a model streams one
  word per chunk (window / 8); and a suspect window's confirmation on its context view (only on a hit).

The process runs with the GIL switch interval of ``llmgw serve`` (``llmgw.cli.SWITCH_INTERVAL_S``, 1 ms;
Python's default of 5 ms adds ~2 ms to the input guards' p50: a guard thread whose model run has ended
waits that long for the GIL held by the other guard thread). The encoder's memo of recent vectors is
dropped before each timed embedding and output check, so every row pays for its model passes.
Machines here are shared: the report includes the CPU the rest of the machine used meanwhile.
Writes ``bench/results/guard_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.pii_quality import data_dir, presidio_set

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> tuple[float, float]:
    """(busy seconds of the whole machine, CPU seconds of this process)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    tick = os.sysconf("SC_CLK_TCK")
    t = os.times()
    return (sum(fields) - idle) / tick, t.user + t.system


def timed(fns: dict[str, Any], inputs: list[Any], repeat: int) -> dict[str, dict[str, float]]:
    """Wall-clock p50 / p90 / p95, the p50 of this thread's CPU time, and the p50 of the whole
    process's CPU time (every thread: the input guards' side thread too; what a call costs when the
    rest of the machine leaves the cores alone) for each function, interleaved input by input so that
    all of them see the same load on a shared machine."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    proc: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for x in inputs:
            for name, fn in fns.items():
                p0, c0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
                fn(x)
                times[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.thread_time() - c0) * 1000)
                proc[name].append((time.process_time() - p0) * 1000)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = {"p50_ms": round(statistics.median(ts), 2), "p90_ms": round(ts[int(0.9 * (len(ts) - 1))], 2),
                     "p95_ms": round(ts[int(0.95 * (len(ts) - 1))], 2),
                     "thread_cpu_p50_ms": round(statistics.median(cpu[name]), 2),
                     "process_cpu_p50_ms": round(statistics.median(proc[name]), 2), "n": len(ts)}  # fmt: skip
    return out


def messages(data: Path, n: int = 60) -> list[str]:
    out = []
    for text, _ in presidio_set(data, "test"):
        if len(text) >= 120:
            while len(text) < 300:
                text = f"{text} {text}"
            out.append(text[:300])
        if len(out) == n:
            break
    return out


def retrieved_passages(runtime: Any, data: Path, k: int = 4, rounds: int = 25) -> dict[str, Any]:
    """The retrieval guard's work for ``k`` new 1,000-character COVID-QA passages (two windows each):
    on one guard thread, split across the two guard threads, and read from verdicts stored at ingest."""

    with (data / "rag" / "covid_qa" / "passages.jsonl").open(encoding="utf-8") as fh:
        passages = [t[:1000] for t in (json.loads(line).get("text", "") for line in fh) if len(t) >= 1000]
    sources = ["retrieved"] * k
    batches = [passages[i * k : (i + 1) * k] for i in range(3 * rounds)]

    def split(batch: list[str]) -> None:
        runtime._injection_cache.clear()
        runtime.score_injection(batch, sources, runtime.side)

    def one_thread(batch: list[str]) -> None:
        runtime._injection_cache.clear()
        runtime.score_injection(batch, sources)

    out = {}
    for name, fn, part in (
        (f"{k} new passages, one guard thread", one_thread, 1),
        (f"{k} new passages, split across the two guard threads", split, 2),
    ):
        out[name] = timed({name: fn}, batches[part * rounds : (part + 1) * rounds], 1)[name]
    # the same passages screened by `llmgw ingest`: the guard reads the stored verdicts
    from llmgw.guards.runtime import injection_detector
    from llmgw.retrieval.screening import screen
    from llmgw.retrieval.store import Hit, StoredChunk
    from llmgw.stages.retrieval_guard import _verdicts

    def hits(batch: list[str]) -> list[Hit]:
        chunks = [StoredChunk(f"c{i}", "d", "h", i, "", "", t, {}) for i, t in enumerate(batch)]
        screen(chunks, injection_detector(), 0.6)
        return [Hit(c, 1.0) for c in chunks]

    screened = [hits(b) for b in batches[:rounds]]
    name = f"{k} passages screened at ingest (stored verdicts)"

    def stored_verdicts(batch: list[Hit]) -> None:
        runtime._injection_cache.clear()
        _verdicts(runtime, batch)

    out[name] = timed({name: stored_verdicts}, screened, 1)[name]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torch

    from llmgw.cli import SWITCH_INTERVAL_S

    torch.set_num_threads(1)
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as in `llmgw serve`: the guard threads share the GIL as there
    from llmgw.config import GuardsConfig
    from llmgw.embedder import encode
    from llmgw.encoders import encoder
    from llmgw.guards.output import check_output, confirm_output
    from llmgw.guards.runtime import GuardRuntime, injection_detector
    from llmgw.guards.scan import Item, scan
    from llmgw.guards.stream import windows_of

    runtime = GuardRuntime(GuardsConfig(enabled=True, policy_dir=str(REPO / "guardrails")))
    policy = runtime.policies["default"]
    runtime.warm()
    texts = messages(data_dir(args.data))
    detector, analyzer, embed = injection_detector(), runtime.analyzer(policy), encoder("float")

    def fresh(text: str, run: list[int] = [0]) -> str:  # noqa: B006 - a counter: every message new to the caches
        run[0] += 1
        return f"{run[0]:05d} {text[6:]}"

    def cold(fn: Any) -> Any:
        """``fn`` with the encoder's kept vectors dropped first: repeated texts cost a pass, as new ones do."""

        def run(x: Any) -> Any:
            embed.forget()
            return fn(x)

        return run

    def input_guards_once(text: str) -> None:
        runtime._injection_cache.clear()
        scan(runtime, policy, [Item("messages[0].content", "user", fresh(text), lambda v: None)])

    # MiniLM passes per message for the injection guard (issue 17: at most one)
    passes: list[int] = []
    real_embed = detector._embed
    detector._embed = lambda batch: (passes.append(len(batch)), real_embed(batch))[1]  # type: ignore[misc]
    for text in texts:
        detector.score(fresh(text))
    detector._embed = real_embed

    windows = [w for t in texts for w in windows_of(t, policy.moderation.window_words)][:120]
    for text in texts[:10]:  # warm up both guard threads and every model
        input_guards_once(text)
        check_output(policy, windows[:1], None, "")
    busy0, own0 = _cpu()
    t0 = time.perf_counter()
    result: dict[str, Any] = timed(
        {
            "input guards (scan: PII beside injection)": input_guards_once,
            "PII analyze alone": lambda t: analyzer.analyze(fresh(t)),
            "injection score alone": lambda t: detector.score(fresh(t)),
            "embedding, float ONNX (guards)": cold(lambda t: embed([t])),
            "embedding, float torch (llmgw.embedder)": lambda t: encode([t]),
        },
        texts,
        args.repeat,
    )
    result.update(timed({"output check per window (8+4 words)": cold(lambda w: check_output(policy, [w], None, ""))},
                        windows, 2))  # fmt: skip
    # a suspect window's confirmation: its context view (sentence with neighbours), only on a hit
    views = context_views(texts, policy)
    result.update(timed({"output confirmation per suspect (context view)": cold(lambda v: confirm_output(policy, [v]))},
                        views, 2))  # fmt: skip
    result.update(retrieved_passages(runtime, data_dir(args.data)))
    wall = time.perf_counter() - t0
    busy1, own1 = _cpu()
    window = result["output check per window (8+4 words)"]
    result["output moderation per chunk, one word per chunk"] = {
        "wall_ms": round(window["p50_ms"] / policy.moderation.window_words, 3),
        "thread_cpu_ms": round(window["thread_cpu_p50_ms"] / policy.moderation.window_words, 3),
    }
    result["injection MiniLM passes per message"] = {"mean": round(sum(passes) / len(passes), 3), "max": max(passes)}
    result["context"] = {
        "cpus": os.cpu_count(),
        "wall_s": round(wall, 1),
        "this_process_cpu_pct": round(100 * (own1 - own0) / wall),
        "other_cpu_pct": round(100 * max(0.0, (busy1 - busy0) - (own1 - own0)) / wall),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    runtime.close()
    print(json.dumps(result, indent=1))
    out = REPO / "bench" / "results" / "guard_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def context_views(texts: list[str], policy: Any) -> list[str]:
    """The context view of each message's third window, as a suspect there would be confirmed on."""
    from llmgw.guards.output import context_view, overlap_words
    from llmgw.guards.stream import finished_windows

    rules, out = policy.moderation, []
    for text in texts:
        w = finished_windows(text, rules.window_words, overlap_words(rules))
        n = len(w.take(final=True))
        out.append(context_view(w, min(2, n - 1), rules) or text)
    return out[:60]


if __name__ == "__main__":
    main()
