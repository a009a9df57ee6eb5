"""Model selection: task classification and routing after the confidence rule, cost against always-best, overhead.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing [--floor 0.9] [--sets heldout,blind2,...]

Sets, each reported per task and overall:

* **cross-validation on the exemplars** (``llmgw/routing/exemplars.yaml`` and the composed
  ``pasted.yaml``, five stratified folds): what is chosen. Over a grid of view combinations
  (``full``, ``instruction``, ``concat``, ``mean``, ``max``), instruction-view windows (``WORDS``,
  ``SENTENCES``) and ``C``: the configuration with the best out-of-fold label accuracy, ties (within
  half a point) broken by the label accuracy on ``tasks_heldout.yaml`` (trained on all exemplars),
  then by fewer embeddings (``full`` first), then the smaller window and ``C``. The threshold, on
  the out-of-fold calibrated probabilities of that configuration, is the one with the most requests
  *served well* among those within one point of the most *routed right* (each fold's temperature
  fitted on its training part only, as the gateway fits it on all exemplars). The script prints the
  choice; the shipped constants (``tasks.C``, ``tasks.COMBINE``, ``views.WORDS``,
  ``views.SENTENCES``, ``routing.task_threshold``) are set from it by hand;
* ``bench/data/tasks_heldout.yaml`` (``--sets heldout``, the default): written separately, never
  trained on, used only as the tie-break above;
* blind sets (``--sets blind,blind2,blind4``: ``bench/data/<name>/cache/tasks.jsonl``), written by
  helpers who saw no code, exemplar or rule. Loaded only when named, for aggregate figures: no row
  is printed, nothing is tuned on them. Name them only once every choice is frozen.

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
from llmgw.routing import views
from llmgw.routing.select import candidates, rank, safest_task
from llmgw.routing.tasks import TaskClassifier, load_exemplars, plausible

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
TASKS = ["chat", "summarize", "translate", "extract", "creative", "code", "math"]
CATALOG = {
    "small": ((0.15, 0.60), [0.90, 0.88, 0.85, 0.86, 0.80, 0.60, 0.50]),
    "medium": ((1.00, 4.00), [0.93, 0.92, 0.91, 0.92, 0.88, 0.85, 0.78]),
    "large": ((5.00, 15.00), [0.96, 0.95, 0.95, 0.95, 0.96, 0.97, 0.96]),
}
C_GRID = (2.0, 8.0, 32.0)
COMBINE_GRID = ("instruction", "concat", "mean", "max")  # and "full", which has no window
WINDOW_GRID = tuple((w, s) for w in (8, 12, 16, 24, 32) for s in (True, False))
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


Config = tuple[str, int, bool, float]  # combine, words, sentences, C


def grid() -> list[Config]:
    out: list[Config] = [("full", views.WORDS, views.SENTENCES, c) for c in C_GRID]
    return out + [(m, w, s, c) for m in COMBINE_GRID for w, s in WINDOW_GRID for c in C_GRID]


def threshold_by_cv(
    router: Router, cases: list[tuple[str, str]], data: taskmod.Views, labels: np.ndarray, c: float, combine: str
) -> tuple[float, dict[float, dict[str, float]], list[dict[str, float]]]:
    """``task_threshold`` from out-of-fold probabilities, each fold calibrated on its own training part
    (as the gateway does): the threshold whose routed-right is within 1 point of the best and whose
    served-well is highest (then routed-right, then the lower threshold); every threshold's figures;
    the out-of-fold probabilities.
    The rule may send at most 1 % of requests to a dearer model than their task needs, to keep the most
    requests off a model below the floor for their task."""
    from sklearn.model_selection import StratifiedKFold

    names = sorted({t for t, _ in cases})
    probs: list[dict[str, float]] = [{} for _ in cases]
    folds = StratifiedKFold(n_splits=taskmod.FOLDS, shuffle=True, random_state=1).split(data.full, labels)
    for train, test in folds:
        weights, bias = taskmod.fit(*taskmod.training_rows(data[train], labels[train], combine), c)
        inner = taskmod.out_of_fold_logits(data[train], labels[train], c, combine=combine)
        temperature = taskmod.best_temperature(inner, labels[train])
        logits = taskmod.logits_of(weights, bias, data[test], combine)
        for i, p in zip(test, calibrated(logits, temperature, names), strict=True):
            probs[i] = p
    sweep = {th: outcomes(router, cases, probs, th)["overall"] for th in THRESHOLDS}
    best_routed = max(r["routed"] for r in sweep.values())
    near = [th for th in THRESHOLDS if sweep[th]["routed"] >= best_routed - 0.01]
    return max(near, key=lambda th: (sweep[th]["served"], sweep[th]["routed"], -th)), sweep, probs


def cross_validation(router: Router, exemplars: dict[str, list[str]], heldout: list[tuple[str, str]]) -> dict[str, Any]:
    """The view combination, window, C and threshold, chosen on five stratified folds of the exemplars."""

    names = sorted(exemplars)
    cases = [(t, x) for t in names for x in exemplars[t]]
    labels = np.asarray([names.index(t) for t, _ in cases])
    held_labels = np.asarray([names.index(t) for t, _ in heldout])
    pasted = {x for xs in taskmod.pasted_exemplars().values() for x in xs}
    is_pasted = np.asarray([x in pasted for _, x in cases])
    data: dict[tuple[int, bool], taskmod.Views] = {}
    held: dict[tuple[int, bool], taskmod.Views] = {}
    table: dict[Config, dict[str, float]] = {}
    for combine, words, sentences, c in grid():
        key = (words, sentences)
        if key not in data:
            data[key] = taskmod.exemplar_views([x for _, x in cases], words, sentences)
            held[key] = taskmod.exemplar_views([x for _, x in heldout], words, sentences)
        right = taskmod.out_of_fold_logits(data[key], labels, c, combine=combine).argmax(1) == labels
        weights, bias = taskmod.fit(*taskmod.training_rows(data[key], labels, combine), c)
        held_right = taskmod.logits_of(weights, bias, held[key], combine).argmax(1) == held_labels
        table[(combine, words, sentences, c)] = {
            "cv": round(float(right.mean()), 4),
            "cv_pasted": round(float(right[is_pasted].mean()), 4),
            "cv_plain": round(float(right[~is_pasted].mean()), 4),
            "heldout": round(float(held_right.mean()), 4),
        }
    top = max(r["cv"] for r in table.values())
    near = [cfg for cfg, r in table.items() if r["cv"] >= top - 0.005]
    combine, words, sentences, c = max(near, key=lambda k: (table[k]["heldout"], k[0] == "full", -k[1], -k[3], k[2]))
    chosen = data[(words, sentences)]
    best_threshold, sweep, probs = threshold_by_cv(router, cases, chosen, labels, c, combine)
    return {
        "exemplars": len(cases),
        "pasted_exemplars": int(is_pasted.sum()),
        "grid": {f"{m} w{w} {'sent' if s else 'win'} C{c:g}": r for (m, w, s, c), r in table.items()},
        "chosen": {
            "combine": combine,
            "words": words,
            "sentences": sentences,
            "C": c,
            **table[(combine, words, sentences, c)],
        },
        "threshold": best_threshold,
        "sweep": {str(th): {k: v for k, v in r.items() if k != "n"} for th, r in sweep.items()},
        "at_threshold": outcomes(router, cases, probs, best_threshold),
        "reliability": _reliability(cases, probs),
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


def cost(exemplars: dict[str, list[str]], classifier: TaskClassifier) -> dict[str, dict[str, float]]:
    """Classification time p50 (ms) of the shipped classifier and of one whole-turn embedding
    (``full``), on the short exemplars and on the composed pasted ones (long turns)."""
    whole = TaskClassifier(exemplars, combine="full")
    pasted = [x for xs in taskmod.pasted_exemplars().values() for x in xs]
    plain = [x for xs in exemplars.values() for x in xs if x not in set(pasted)]
    out: dict[str, dict[str, float]] = {}
    for label, model in (("shipped", classifier), ("full", whole)):
        out[label] = {}
        for kind, texts in (("short", plain[:100]), ("pasted", pasted)):
            times = []
            for text in texts:
                started = time.perf_counter()
                model.probabilities(text)
                times.append((time.perf_counter() - started) * 1000)
            out[label][kind] = round(statistics.median(times), 3)
    return out


def blind_set(name: str) -> list[tuple[str, str]]:
    """A blind set's (task, text) pairs, for aggregates only (never printed; on a field it lacks,
    the error names the fields it has, not their values)."""
    with (DATA / name / "cache" / "tasks.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    out = []
    for row in rows:
        task = next((row[k] for k in ("task", "label") if k in row), None)
        text = next((row[k] for k in ("text", "request", "prompt") if k in row), None)
        if not isinstance(task, str) or not isinstance(text, str):
            raise SystemExit(f"{name}: a row without task/text fields (it has: {sorted(row)})")
        out.append((task, text))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--floor", type=float, default=0.9)
    parser.add_argument("--threshold", type=float, help="routing.task_threshold (default: the shipped one)")
    parser.add_argument(
        "--sets", default="heldout", help="comma-separated: heldout and/or blind set names (blind, blind2, ...)"
    )
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation grid (evaluation only)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "routing.json")
    parser.add_argument(
        "--encoder",
        choices=taskmod.ENCODERS,
        help="routing.task_encoder (default: the shipped one); the cross-validation grid always reads `shared`: "
        "the tuned encoder was tuned on every exemplar, so its cross-validation would be optimistic",
    )
    args = parser.parse_args()
    from llmgw.config import RoutingConfig

    threshold = RoutingConfig().task_threshold if args.threshold is None else args.threshold
    router = Router(args.floor)
    exemplars = load_exemplars()
    held = yaml.safe_load((DATA / "tasks_heldout.yaml").read_text())
    heldout = [(task, text) for task, texts in held.items() for text in texts]
    cv = None if args.no_cv else cross_validation(router, exemplars, heldout)
    encoder = args.encoder or RoutingConfig().task_encoder
    classifier = TaskClassifier(exemplars, encoder=encoder)

    sets: dict[str, list[tuple[str, str]]] = {}
    for name in [n.strip() for n in args.sets.split(",") if n.strip()]:
        sets[name] = heldout if name == "heldout" else blind_set(name)

    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load": os.getloadavg()[0],
        "floor": args.floor,
        "encoder": encoder,
        "C": taskmod.C_OF[encoder],
        "combine": taskmod.COMBINE,
        "words": views.WORDS,
        "sentences": views.SENTENCES,
        "exemplars": sum(len(v) for v in exemplars.values()),
        "temperature": round(classifier.temperature, 3),
        "threshold": threshold,
    }
    if cv is not None:
        result["cross_validation"] = cv
    classify_ms: list[float] = []
    for name, cases in sets.items():
        probs = []
        for _, text in cases:
            started = time.perf_counter()
            probs.append(classifier.probabilities(text))
            classify_ms.append((time.perf_counter() - started) * 1000)
        result[name] = outcomes(router, cases, probs, threshold)
        result[name]["instruction_view_differs"] = round(
            sum(views.instruction_view(t, classifier.words, classifier.sentences) is not None for _, t in cases)
            / len(cases),
            4,
        )
        result[name]["reliability"] = _reliability(cases, probs)
        thresholds = sorted({0.0, threshold, 0.45} | ({cv["threshold"]} if cv else set()))
        result[name]["by_threshold"] = {str(th): outcomes(router, cases, probs, th)["overall"] for th in thresholds}

    result["cost_ms_p50"] = cost(exemplars, classifier)
    select_ms = []
    for _, text in heldout:
        started = time.perf_counter()
        router.model(text, "code")
        select_ms.append((time.perf_counter() - started) * 1000)
    result["selection_ms_p50_task_given"] = round(statistics.median(select_ms), 4)
    if classify_ms:
        result["classify_ms_p50"] = round(statistics.median(classify_ms), 3)
        result["classify_ms_p99"] = round(sorted(classify_ms)[max(int(len(classify_ms) * 0.99) - 1, 0)], 3)
    print(json.dumps({k: v for k, v in result.items() if k != "cross_validation"}, indent=2))
    if cv is not None:
        print(json.dumps({k: v for k, v in cv.items() if k not in ("sweep", "grid")}, indent=2))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
