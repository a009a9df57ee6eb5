"""The route19 phrasings (issue 18 item 6): choose on cross-validation, then score the held-out sets.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_phrasings [--c 2,8] [--ends 0,1] [--test]

``llmgw/routing/phrasings.yaml`` adds requests phrased the way a writer who never saw the exemplars
phrases them (the pasted text first, long pastes, instructions in ten languages, task words that
point to another task); ``bench/data/tasks_phrasings_heldout.yaml`` holds five whole topic groups
of them out. This script compares *today's* classifier (every source but ``phrasings``, the cues of
the whole instruction view, ``C`` 2, threshold 0.7) with candidates that add the phrasings and,
optionally, the cues of the view's two ends apart (``tasks.CUE_ENDS``):

* **choice** (no held-out set read): per-task five-fold CV over all exemplars of each candidate, as
  ``bench.routing_sources`` computes it, and leave-one-source-out; the candidate with the best CV
  overall wins, ties (within 0.5 point) going to the fewer changes. Its ``task_threshold`` is chosen
  on fold-calibrated out-of-fold probabilities exactly as ``bench.routing`` chooses it.
* **test** (``--test``, only once the choice and the ship rule are committed): routed-right after
  the confidence rule on the held-out phrasings, ``tasks_heldout.yaml`` and
  ``tasks_public_test.yaml``, for today's classifier and the chosen one, and the classify time
  (p50, both classifiers timed in turn on the same requests).
Nothing here reads a blind set.
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

from bench.routing import Router, outcomes, threshold_by_cv
from bench.routing_sources import per_task
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
HELD_PHRASINGS = DATA / "tasks_phrasings_heldout.yaml"
TODAY = {"phrasings": False, "ends": False, "C": 2.0, "threshold": 0.7}


def forget_vectors() -> None:
    """Empty the query encoder's memo of recent texts, so each classifier is timed on a pass of the model
    (the second of two classifiers reading the same text would otherwise get its vector for free)."""
    from llmgw import encoders

    encoder = encoders._query_encoder(None)
    memo = getattr(encoder, "_memo", None)
    if memo is not None:
        with encoder._memo_lock:
            memo.clear()


def cases_of(exemplars: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(t, x) for t in sorted(exemplars) for x in exemplars[t]]


def test_sets() -> dict[str, list[tuple[str, str]]]:
    heldout = yaml.safe_load((DATA / "tasks_heldout.yaml").read_text(encoding="utf-8"))
    public = yaml.safe_load((DATA / "tasks_public_test.yaml").read_text(encoding="utf-8"))
    return {
        "phrasings_heldout": cases_of(taskmod.phrasings_exemplars(HELD_PHRASINGS)),
        "tasks_heldout": [(t, x) for t, xs in heldout.items() for x in xs],
        "public_test": [(t, x) for t, pairs in public.items() for _, x in pairs],
    }


def threshold_on_calibration(
    router: Router, cases: list[tuple[str, str]], data: taskmod.Views, labels: np.ndarray, c: float
) -> tuple[float, dict[str, Any]]:
    """``task_threshold`` as ``bench.routing.cross_validation`` chooses it: out-of-fold probabilities,
    each fold calibrated on its own training part; the threshold whose routed-right is within 1 point
    of the best and whose served-well is highest (then routed-right, then the lower threshold)."""
    best, sweep, _ = threshold_by_cv(router, cases, data, labels, c, taskmod.COMBINE)
    return best, {"at_threshold": sweep[best], "at_0.7": sweep[0.7]}


def fold_seed_spread(rows: list[tuple[str, str, str]], c: float, ends: bool, seeds: int) -> dict[str, Any]:
    """Per-task five-fold CV over ``seeds`` fold assignments (a sensitivity check of the CV item of the
    ship rule: how much a task's CV moves with the folds alone): min, max and mean per task."""
    from sklearn.model_selection import StratifiedKFold

    names = sorted({t for _, t, _ in rows})
    labels = np.asarray([names.index(t) for _, t, _ in rows])
    data = taskmod.exemplar_views([x for _, _, x in rows], cue_ends=ends)
    per: list[dict[str, float]] = []
    for seed in range(seeds):
        pred = np.zeros(len(labels), dtype=int)
        for train, test in StratifiedKFold(taskmod.FOLDS, shuffle=True, random_state=seed).split(data.full, labels):
            weights, bias = taskmod.fit(*taskmod.training_rows(data[train], labels[train], taskmod.COMBINE), c)
            pred[test] = taskmod.logits_of(weights, bias, data[test], taskmod.COMBINE).argmax(1)
        per.append({n: float((pred[labels == i] == i).mean()) for i, n in enumerate(names)})
    return {
        n: {k: round(f([p[n] for p in per]), 3) for k, f in (("min", min), ("max", max), ("mean", np.mean))}
        for n in names
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c", default="2", help="comma-separated C values")
    parser.add_argument("--ends", default="0,1", help="comma-separated: 0 cues of the whole view, 1 of its two ends")
    parser.add_argument("--seeds", type=int, default=0, help="also per-task CV over this many fold seeds")
    parser.add_argument("--test", action="store_true", help="score the held-out sets (after the choice is committed)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "routing_phrasings.json")
    args = parser.parse_args()
    router = Router(0.9)
    rows = taskmod.sourced_exemplars(with_phrasings=True)
    result: dict[str, Any] = {"exemplars": {s: sum(r[0] == s for r in rows) for s in sorted({r[0] for r in rows})}}

    candidates: list[dict[str, Any]] = [dict(TODAY)]
    for ends in [bool(int(e)) for e in args.ends.split(",")]:
        for c in [float(v) for v in args.c.split(",")]:
            candidates.append({"phrasings": True, "ends": ends, "C": c})
    table: dict[str, Any] = {}
    for cand in candidates:
        kept = [r for r in rows if cand["phrasings"] or r[0] != "phrasings"]
        names = sorted({t for _, t, _ in kept})
        texts = [x for _, _, x in kept]
        labels = np.asarray([names.index(t) for _, t, _ in kept])
        sources = np.asarray([s for s, _, _ in kept])
        data = taskmod.exemplar_views(texts, cue_ends=cand["ends"])
        oof = taskmod.out_of_fold_logits(data, labels, cand["C"], combine=taskmod.COMBINE)
        right = oof.argmax(1) == labels
        entry: dict[str, Any] = {"cv": per_task(right, labels, names)}
        old = sources != "phrasings"
        entry["cv_on_today_s_exemplars"] = per_task(right[old], labels[old], names)
        if (~old).any():
            entry["cv_on_phrasings"] = per_task(right[~old], labels[~old], names)
        loso: dict[str, Any] = {}
        for source in sorted(set(sources)):
            mask = sources == source
            if len(set(labels[~mask])) < len(names):
                continue
            weights, bias = taskmod.fit(*taskmod.training_rows(data[~mask], labels[~mask], taskmod.COMBINE), cand["C"])
            got = taskmod.logits_of(weights, bias, data[mask], taskmod.COMBINE).argmax(1) == labels[mask]
            loso[source] = per_task(got, labels[mask], names)
        entry["loso"] = loso
        entry["loso_mean"] = round(float(np.mean([r["all"] for r in loso.values()])), 4)
        cases = [(t, x) for _, t, x in kept]
        chosen_th, entry["calibration"] = threshold_on_calibration(router, cases, data, labels, cand["C"])
        entry["calibration"]["threshold"] = chosen_th
        if cand is not candidates[0]:  # today's classifier keeps the shipped threshold
            cand["threshold"] = chosen_th
        key = f"phrasings={int(cand['phrasings'])} ends={int(cand['ends'])} C{cand['C']:g}"
        table[key] = {"config": cand, **entry}
        print(key, "cv", json.dumps(entry["cv"]), "loso_mean", entry["loso_mean"], "threshold", cand.get("threshold"),
              "calibration", json.dumps(entry["calibration"]))  # fmt: skip
        for source, r in loso.items():
            print("   loso", source, json.dumps(r))
    result["candidates"] = table
    new = [k for k in table if table[k]["config"]["phrasings"]]
    top = max(table[k]["cv"]["all"] for k in new)
    near = [k for k in new if table[k]["cv"]["all"] >= top - 0.005]
    chosen = min(near, key=lambda k: (table[k]["config"]["ends"], table[k]["config"]["C"] != 2.0))
    result["chosen"] = chosen
    print("chosen on CV:", chosen, "threshold", table[chosen]["config"]["threshold"])
    if args.seeds:
        cfg = table[chosen]["config"]
        today_rows = [r for r in rows if r[0] != "phrasings"]
        result["fold_seeds"] = {
            "today": fold_seed_spread(today_rows, TODAY["C"], False, args.seeds),
            "chosen": fold_seed_spread(rows, cfg["C"], cfg["ends"], args.seeds),
        }
        for name, spread in result["fold_seeds"].items():
            print("fold seeds", name, json.dumps(spread))

    if args.test:
        cfg = table[chosen]["config"]
        today_ex: dict[str, list[str]] = {}
        new_ex: dict[str, list[str]] = {}
        for source, task, text in rows:
            new_ex.setdefault(task, []).append(text)
            if source != "phrasings":
                today_ex.setdefault(task, []).append(text)
        classifiers = {
            "today": (taskmod.TaskClassifier(today_ex, c=TODAY["C"], cue_ends=False), TODAY["threshold"]),
            "chosen": (taskmod.TaskClassifier(new_ex, c=cfg["C"], cue_ends=cfg["ends"]), cfg["threshold"]),
        }
        tests: dict[str, Any] = {}
        times: dict[str, list[float]] = {name: [] for name in classifiers}
        for set_name, cases in test_sets().items():
            probs: dict[str, list[dict[str, float]]] = {name: [] for name in classifiers}
            for _, text in cases:
                for name, (clf, _) in classifiers.items():
                    forget_vectors()
                    started = time.perf_counter()
                    probs[name].append(clf.probabilities(text))
                    times[name].append((time.perf_counter() - started) * 1000)
            tests[set_name] = {name: outcomes(router, cases, probs[name], th) for name, (_, th) in classifiers.items()}
            for name in classifiers:
                print(set_name, name, json.dumps(tests[set_name][name]["overall"]))
                print("   ", json.dumps({t: r["routed"] for t, r in tests[set_name][name]["per_task"].items()}))
        result["test"] = tests
        result["classify_ms_p50"] = {name: round(statistics.median(ts), 3) for name, ts in times.items()}
        result["temperature"] = {name: round(clf.temperature, 3) for name, (clf, _) in classifiers.items()}
        print("classify_ms_p50", result["classify_ms_p50"], "temperature", result["temperature"])
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
