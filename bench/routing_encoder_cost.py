"""What ``routing.task_encoder: tuned`` costs per request against ``shared`` (route26), in one run.

Both classifiers classify the same texts, interleaved, each with every encoder's memo emptied first,
so each call pays its passes: ``shared`` one MiniLM pass (in the gateway the guards or the cache have
usually made it already, memoised), ``tuned`` that pass and one of the tuned encoder. Also reported:
``tuned`` with the shared vector already memoised, which is what a request with guards or the semantic
cache on pays for routing. Texts: the short exemplars and the composed pasted ones (the instruction view
is what is embedded). One ONNX thread each, as in the gateway.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python -m bench.routing_encoder_cost \\
        --out bench/results/routing-encoder-cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from llmgw import encoders
from llmgw.routing import encoder as tuned_encoder
from llmgw.routing import tasks as taskmod


def percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=150, help="texts of each kind")
    parser.add_argument("--out", type=Path, default=Path("bench/results/routing-encoder-cost.json"))
    args = parser.parse_args()
    exemplars = taskmod.load_exemplars()
    shared_c = taskmod.classifier_for({}, False, "default", "shared")
    tuned_c = taskmod.classifier_for({}, False, "default", "tuned")
    shared_e, tuned_e = encoders._query_encoder(None), tuned_encoder.tuned()
    assert shared_e is not None
    pasted = [x for xs in taskmod.pasted_exemplars().values() for x in xs]
    plain = [x for xs in exemplars.values() for x in xs if x not in set(pasted)]
    result: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_1min": os.getloadavg()[0]}
    for kind, texts in (("short", plain[: args.n]), ("pasted", pasted[: args.n])):
        times: dict[str, list[float]] = {"shared": [], "tuned": [], "tuned_shared_memoised": []}
        for text in texts:
            for label, classifier, warm in (
                ("shared", shared_c, False),
                ("tuned", tuned_c, False),
                ("tuned_shared_memoised", tuned_c, True),
            ):
                shared_e.forget()
                tuned_e.forget()
                if warm:
                    classifier.probabilities(text)  # both vectors made...
                    tuned_e.forget()  # ...and the tuned one dropped: the guards made only the shared one
                started = time.perf_counter()
                classifier.probabilities(text)
                times[label].append((time.perf_counter() - started) * 1000)
        result[kind] = {k: {"p50": round(statistics.median(v), 3), "p95": percentile(v, 0.95), "n": len(v)}
                        for k, v in times.items()}  # fmt: skip
    result["load_1min_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
