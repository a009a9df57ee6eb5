"""Model selection: task classification and routing after the confidence rule, cost against always-best, overhead.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing [--floor 0.9]

Three sets, each reported per task and overall:

* **cross-validation on the exemplars** (``llmgw/routing/exemplars.yaml``, five stratified folds):
  what the regression's ``C`` and ``routing.task_threshold`` are chosen on. ``C`` is the value with
  the best out-of-fold accuracy; the threshold, on the out-of-fold calibrated probabilities, the one
  with the most requests *served well* among those within one point of the most *routed right*
  (each fold's temperature fitted on its training part only, as the gateway fits it on all exemplars);
* ``bench/data/tasks_heldout.yaml``: written separately, never trained or tuned on;
* ``bench/data/blind/cache/tasks.jsonl``: 280 requests written blind by a helper who saw no code,
  exemplar or rule. Loaded only here, for aggregate figures: no row is printed, nothing is tuned on it.

Per request, with the classifier trained on all shipped exemplars:

* *label right*: the most probable task is the true one;
* after the confidence rule (``routing.task_threshold``, ``selection.default_task: safest``): below the
  threshold the task is the safest of the plausible ones for the catalog below
  (``llmgw.routing.select.safest_task``). *Task right*: the task used is the true one. *Routed right*:
  ``auto`` picks the model the true task would have picked (not a worse one, not a dearer one).
  *Served well*: the picked model reaches the quality floor for the true task (dearer counts as well).

Cost and quality: each request is routed with ``auto`` (cheapest model whose quality for the task
used reaches the floor) and scored with the *true* task's quality, so misclassifications cost what
they would in production. Costs use the prompt's estimated tokens plus 512 output tokens. The
per-task qualities are this benchmark's own assumptions (a three-tier catalog: small, medium,
large), not measurements of real models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import yaml

from llmgw.config import ModelConfig, RouteSelectionConfig
from llmgw.routing import tasks as taskmod
from llmgw.routing.select import candidates, rank, safest_task
from llmgw.routing.tasks import TaskClassifier, load_exemplars, plausible

ROOT = Path(__file__).resolve().parents[1]
BLIND = ROOT / "bench" / "data" / "blind" / "cache" / "tasks.jsonl"
TASKS = ["chat", "summarize", "translate", "extract", "creative", "code", "math"]
CATALOG = {
    "small": ((0.15, 0.60), [0.90, 0.88, 0.85, 0.86, 0.80, 0.60, 0.50]),
    "medium": ((1.00, 4.00), [0.93, 0.92, 0.91, 0.92, 0.88, 0.85, 0.78]),
    "large": ((5.00, 15.00), [0.96, 0.95, 0.95, 0.95, 0.96, 0.97, 0.96]),
}
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
THRESHOLDS = [round(0.05 * i, 2) for i in range(0, 19)]


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


class Router:
    """``auto`` over the catalog for a text and a task, as the selection stage does it."""

    def __init__(self, floor: float) -> None:
        self.models = catalog()
        self.spec = RouteSelectionConfig(quality_floor=floor)

    def body(self, text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text}]}

    def model(self, text: str, task: str) -> Any:
        eligible, _ = candidates(self.models, self.body(text), False, task, self.spec, lambda _: True)
        return rank(eligible, "auto", self.spec)[0][0]

    def task_used(self, text: str, probabilities: dict[str, float], threshold: float) -> str:
        task, confidence = next(iter(probabilities.items()))
        if confidence >= threshold:
            return task
        return safest_task(
            plausible(probabilities), self.models, self.body(text), False, "auto", self.spec, lambda _: True
        )


def outcomes(
    router: Router, cases: list[tuple[str, str]], probs: list[dict[str, float]], threshold: float
) -> dict[str, Any]:
    """Per task and overall: label right, task right, routed right, served well; cost and quality vs always-large."""
    per: dict[str, dict[str, int]] = {}
    cost = best_cost = quality = best_quality = 0.0
    for (true, text), p in zip(cases, probs, strict=True):
        used = router.task_used(text, p, threshold)
        chosen, ideal = router.model(text, used), router.model(text, true)
        row = per.setdefault(true, {"n": 0, "label": 0, "task": 0, "routed": 0, "served": 0})
        row["n"] += 1
        row["label"] += next(iter(p)) == true
        row["task"] += used == true
        row["routed"] += chosen.name == ideal.name
        row["served"] += chosen.model.quality[true] >= router.spec.quality_floor
        large = router.models["large"]
        cost += chosen.est_cost
        best_cost += _cost(router, text, large)
        quality += chosen.model.quality[true]
        best_quality += large.quality[true]
    total = {k: sum(r[k] for r in per.values()) for k in ("n", "label", "task", "routed", "served")}

    def rates(r: dict[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": r["n"]}
        out.update({k: round(r[k] / r["n"], 4) for k in ("label", "task", "routed", "served")})
        return out

    return {
        "overall": rates(total),
        "per_task": {t: rates(per[t]) for t in TASKS if t in per},
        "cost_vs_always_large": round(cost / best_cost, 4),
        "quality_retained": round(quality / best_quality, 4),
    }


def _cost(router: Router, text: str, model: ModelConfig) -> float:
    eligible, _ = candidates({"large": model}, router.body(text), False, "chat", router.spec, lambda _: True)
    return eligible[0].est_cost


def calibrated(logits: np.ndarray, temperature: float, tasks: list[str]) -> list[dict[str, float]]:
    out = []
    for row in taskmod.softmax(logits, temperature):
        order = np.argsort(-row, kind="stable")
        out.append({tasks[i]: float(row[i]) for i in order})
    return out


def cross_validation(router: Router, exemplars: dict[str, list[str]]) -> dict[str, Any]:
    """C and the threshold, chosen on five stratified folds of the exemplars."""
    from sklearn.model_selection import StratifiedKFold

    names = sorted(exemplars)
    cases = [(t, x) for t in names for x in exemplars[t]]
    labels = np.asarray([names.index(t) for t, _ in cases])
    vectors = taskmod.exemplar_vectors([x for _, x in cases])
    accuracy = {}
    for c in C_GRID:
        logits = taskmod.out_of_fold_logits(vectors, labels, c)
        accuracy[c] = round(float((logits.argmax(1) == labels).mean()), 4)
    best_c = max(C_GRID, key=lambda c: (accuracy[c], -c))
    # out-of-fold probabilities, each fold calibrated on its own training part (as the gateway does)
    probs: list[dict[str, float]] = [{} for _ in cases]
    folds = StratifiedKFold(n_splits=taskmod.FOLDS, shuffle=True, random_state=1).split(vectors, labels)
    for train, held in folds:
        weights, bias = taskmod.fit(vectors[train], labels[train], best_c)
        inner = taskmod.out_of_fold_logits(vectors[train], labels[train], best_c)
        temperature = taskmod.best_temperature(inner, labels[train])
        for i, p in zip(held, calibrated(vectors[held] @ weights.T + bias, temperature, names), strict=True):
            probs[i] = p
    sweep = {th: outcomes(router, cases, probs, th)["overall"] for th in THRESHOLDS}
    best_routed = max(r["routed"] for r in sweep.values())
    # the rule may send at most 1 % of requests to a dearer model than their task needs, to keep the
    # most requests off a model below the floor for their task
    near = [th for th in THRESHOLDS if sweep[th]["routed"] >= best_routed - 0.01]
    best_threshold = max(near, key=lambda th: (sweep[th]["served"], sweep[th]["routed"], -th))
    reliability = _reliability(cases, probs)
    return {
        "exemplars": len(cases),
        "cv_accuracy_by_C": accuracy,
        "C": best_c,
        "threshold": best_threshold,
        "sweep": {str(th): {k: v for k, v in r.items() if k != "n"} for th, r in sweep.items()},
        "at_threshold": outcomes(router, cases, probs, best_threshold),
        "reliability": reliability,
    }


def _reliability(cases: list[tuple[str, str]], probs: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Calibration: in each confidence band, how often the most probable task is the true one."""
    bands = [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 1.01)]
    out = []
    for low, high in bands:
        inside = [(t, p) for (t, _), p in zip(cases, probs, strict=True) if low <= next(iter(p.values())) < high]
        if inside:
            right = sum(next(iter(p)) == t for t, p in inside)
            mean_conf = sum(next(iter(p.values())) for _, p in inside) / len(inside)
            out.append(
                {"band": f"{low:.1f}-{min(high, 1):.1f}", "n": len(inside), "confidence": round(mean_conf, 3),
                 "right": round(right / len(inside), 3)}
            )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--floor", type=float, default=0.9)
    parser.add_argument("--threshold", type=float, help="routing.task_threshold (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "routing.json")
    args = parser.parse_args()
    from llmgw.config import RoutingConfig

    threshold = RoutingConfig().task_threshold if args.threshold is None else args.threshold
    router = Router(args.floor)
    exemplars = load_exemplars()
    cv = cross_validation(router, exemplars)
    classifier = TaskClassifier(exemplars)

    held = yaml.safe_load((ROOT / "bench" / "data" / "tasks_heldout.yaml").read_text())
    sets = {"heldout": [(task, text) for task, texts in held.items() for text in texts]}
    if BLIND.is_file():
        with BLIND.open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        sets["blind"] = [(row["task"], row["text"]) for row in rows]

    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load": os.getloadavg()[0],
        "floor": args.floor,
        "C": taskmod.C,
        "temperature": round(classifier.temperature, 3),
        "threshold": threshold,
        "cross_validation": cv,
    }
    classify_ms: list[float] = []
    for name, cases in sets.items():
        probs = []
        for _, text in cases:
            started = time.perf_counter()
            probs.append(classifier.probabilities(text))
            classify_ms.append((time.perf_counter() - started) * 1000)
        result[name] = outcomes(router, cases, probs, threshold)
        result[name]["reliability"] = _reliability(cases, probs)
        thresholds = sorted({0.0, threshold, cv["threshold"], 0.45})
        result[name]["by_threshold"] = {str(th): outcomes(router, cases, probs, th)["overall"] for th in thresholds}

    select_ms = []
    for _, text in sets["heldout"]:
        started = time.perf_counter()
        router.model(text, "code")
        select_ms.append((time.perf_counter() - started) * 1000)
    result["selection_ms_p50_task_given"] = round(statistics.median(select_ms), 4)
    result["classify_ms_p50"] = round(statistics.median(classify_ms), 3)
    result["classify_ms_p99"] = round(sorted(classify_ms)[int(len(classify_ms) * 0.99) - 1], 3)
    print(json.dumps({k: v for k, v in result.items() if k != "cross_validation"}, indent=2))
    print(json.dumps({k: v for k, v in cv.items() if k != "sweep"}, indent=2))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
