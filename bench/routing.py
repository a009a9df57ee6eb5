"""Model selection: task-classifier accuracy, routed cost and quality against always-best, overhead.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing [--floor 0.9]

* accuracy: the classifier (trained on ``llmgw/routing/exemplars.yaml`` only) on the held-out
  prompts of ``bench/data/tasks_heldout.yaml``, written separately and never trained or tuned on;
* cost and quality: each held-out prompt is routed with ``auto`` (cheapest model whose quality
  for the *predicted* task reaches the floor) over the catalog below, and scored with the quality
  of the chosen model for the *true* task, so misclassifications cost what they would in
  production. Costs use the prompt's estimated tokens plus 512 output tokens. The per-task
  qualities are this benchmark's own assumptions (a three-tier catalog: small, medium, large),
  not measurements of real models;
* overhead: ``candidates`` + ``rank`` with the task given, and classification + both when inferred.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml

from llmgw.config import ModelConfig, RouteSelectionConfig
from llmgw.routing.select import candidates, rank
from llmgw.routing.tasks import TaskClassifier, load_exemplars

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["chat", "summarize", "translate", "extract", "creative", "code", "math"]
CATALOG = {
    "small": ((0.15, 0.60), [0.90, 0.88, 0.85, 0.86, 0.80, 0.60, 0.50]),
    "medium": ((1.00, 4.00), [0.93, 0.92, 0.91, 0.92, 0.88, 0.85, 0.78]),
    "large": ((5.00, 15.00), [0.96, 0.95, 0.95, 0.95, 0.96, 0.97, 0.96]),
}


def catalog() -> dict[str, ModelConfig]:
    return {
        name: ModelConfig(
            provider="p",
            upstream_id=name,
            context_window=128_000,
            price={"input_per_mtok": price[0], "output_per_mtok": price[1]},
            quality=dict(zip(TASKS, quality, strict=True)),
        )
        for name, (price, quality) in CATALOG.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--floor", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "routing.json")
    args = parser.parse_args()
    held = yaml.safe_load((ROOT / "bench" / "data" / "tasks_heldout.yaml").read_text())
    cases = [(task, text) for task, texts in held.items() for text in texts]
    classifier = TaskClassifier(load_exemplars())
    models = catalog()
    spec = RouteSelectionConfig(quality_floor=args.floor)

    predicted, classify_ms = [], []
    for _, text in cases:
        started = time.perf_counter()
        predicted.append(classifier.classify(text)[0])
        classify_ms.append((time.perf_counter() - started) * 1000)
    accuracy = sum(p == t for p, (t, _) in zip(predicted, cases, strict=True)) / len(cases)

    routed_cost = best_cost = routed_quality = best_quality = 0.0
    choices: dict[str, int] = {}
    select_ms = []
    for (task, text), guess in zip(cases, predicted, strict=True):
        body = {"messages": [{"role": "user", "content": text}]}
        started = time.perf_counter()
        eligible, _ = candidates(models, body, False, guess, spec, lambda _: True)
        ranked, _ = rank(eligible, "auto", spec)
        select_ms.append((time.perf_counter() - started) * 1000)
        chosen = ranked[0]
        choices[chosen.name] = choices.get(chosen.name, 0) + 1
        best = next(c for c in eligible if c.name == "large")
        routed_cost += chosen.est_cost
        best_cost += best.est_cost
        routed_quality += models[chosen.name].quality[task]
        best_quality += models["large"].quality[task]

    def p50(values: list[float]) -> float:
        return round(statistics.median(values), 4)

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load": os.getloadavg()[0],
        "cases": len(cases),
        "task_accuracy": round(accuracy, 4),
        "floor": args.floor,
        "choices": choices,
        "cost_vs_always_best": round(routed_cost / best_cost, 4),
        "cost_saving": round(1 - routed_cost / best_cost, 4),
        "quality_retained": round(routed_quality / best_quality, 4),
        "selection_ms_p50_task_given": p50(select_ms),
        "selection_ms_p50_task_inferred": p50([a + b for a, b in zip(classify_ms, select_ms, strict=True)]),
        "classify_ms_p99": round(sorted(classify_ms)[int(len(classify_ms) * 0.99) - 1], 3),
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
