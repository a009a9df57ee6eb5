"""Task classification per exemplar source: per-task cross-validation, tasks_heldout, leave-one-source-out.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_sources [--c 2,8] [--cues 0,1] [--without broad,public]

``bench.routing`` chooses the view, window, ``C`` and threshold on five-fold CV of all shipped
exemplars. CV over exemplars written by one hand says how well the classifier learns *that hand*;
this script asks how it carries to requests written by others, which is what a blind set measures:

* **per-task CV**: five stratified folds over every exemplar (as ``bench.routing``), per task;
* **tasks_heldout.yaml**: trained on all exemplars, per task (a tie-break, never trained on);
* **leave one source out**: for each source (the hand-written ``exemplars.yaml``, the composed
  ``pasted.yaml``, the broadened ``broad.yaml``, and each public corpus of ``public.yaml``), fit
  on every other source and score that one; and the two halves: fit on all hand-written sources,
  score the public ones, and the reverse.

``--cues`` compares the regression with and without the lexical task cues
(:mod:`llmgw.routing.cues`) at the weights given; ``--without`` drops sources from training
entirely (``broad``, ``public``), to report the exemplar set as it was before they existed.
Nothing here reads a blind set.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import yaml

from llmgw.routing import cues, views
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "bench" / "data" / "tasks_heldout.yaml"
HAND = ("exemplars", "pasted", "broad", "phrasings")
PUBLIC_TEST = ROOT / "bench" / "data" / "tasks_public_test.yaml"


def public_test(before_c: float = 2.0, before_threshold: float = 0.5) -> dict[str, Any]:
    """``tasks_public_test.yaml`` (real public prompts never used for a choice), routed after the
    confidence rule, by the classifier of before (exemplars.yaml and pasted.yaml, C 2, no cues,
    threshold 0.5) and by the shipped one (every source, ``tasks.C``, cues, ``routing.task_threshold``)."""
    from bench.routing import Router, outcomes
    from llmgw.config import RoutingConfig

    rows = yaml.safe_load(PUBLIC_TEST.read_text(encoding="utf-8"))
    cases = [(task, text) for task, pairs in rows.items() for _, text in pairs]
    old: dict[str, list[str]] = {}
    for source, task, text in taskmod.sourced_exemplars():
        if source in ("exemplars", "pasted"):
            old.setdefault(task, []).append(text)
    router = Router(0.9)
    out: dict[str, Any] = {}
    for name, classifier, threshold in (
        ("before", taskmod.TaskClassifier(old, c=before_c, cue_weight=0.0), before_threshold),
        ("shipped", taskmod.TaskClassifier(taskmod.load_exemplars()), RoutingConfig().task_threshold),
    ):
        probs = [classifier.probabilities(text) for _, text in cases]
        out[name] = outcomes(router, cases, probs, threshold)
    return out


def sourced() -> list[tuple[str, str, str]]:
    """Every shipped exemplar as (source, task, text); public rows keep their corpus as source."""
    return [(source, task, text) for source, task, text in taskmod.sourced_exemplars()]


def scores(train: taskmod.Views, train_y: np.ndarray, test: taskmod.Views, c: float) -> np.ndarray:
    weights, bias = taskmod.fit(*taskmod.training_rows(train, train_y, taskmod.COMBINE), c)
    return taskmod.logits_of(weights, bias, test, taskmod.COMBINE)


def per_task(right: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"all": round(float(right.mean()), 4), "n": len(right)}
    for i, name in enumerate(names):
        mask = labels == i
        if mask.any():
            out[name] = round(float(right[mask].mean()), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c", default=str(taskmod.C), help="comma-separated C values")
    parser.add_argument("--cues", default=str(taskmod.CUE_WEIGHT), help="comma-separated cue weights (0: none)")
    parser.add_argument("--without", default="", help="comma-separated sources left out of everything")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "routing_sources.json")
    parser.add_argument("--test", action="store_true", help="also score tasks_public_test.yaml, before and shipped")
    args = parser.parse_args()
    dropped = {s for s in args.without.split(",") if s}
    rows = [r for r in sourced() if r[0] not in dropped and not (r[0] not in HAND and "public" in dropped)]
    names = sorted({t for _, t, _ in rows})
    texts = [x for _, _, x in rows]
    labels = np.asarray([names.index(t) for _, t, _ in rows])
    sources = np.asarray([s for s, _, _ in rows])
    held = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    held_cases = [(t, x) for t, xs in held.items() for x in xs]
    held_y = np.asarray([names.index(t) for t, _ in held_cases])
    shown = [views.instruction_view(x) or x for x in texts]
    cued = np.asarray([cues.cue_vector(x).any() for x in shown])
    result: dict[str, Any] = {"exemplars": {s: int((sources == s).sum()) for s in sorted(set(sources))}}
    for weight in [float(w) for w in args.cues.split(",")]:
        data = taskmod.exemplar_views(texts, cue_weight=weight)
        held_data = taskmod.exemplar_views([x for _, x in held_cases], cue_weight=weight)
        for c in [float(v) for v in args.c.split(",")]:
            key = f"cues{weight:g} C{c:g}"
            oof = taskmod.out_of_fold_logits(data, labels, c, combine=taskmod.COMBINE)
            entry: dict[str, Any] = {"cv": per_task(oof.argmax(1) == labels, labels, names)}
            hand = np.isin(sources, HAND)
            # requests whose instruction view holds no task word of the lists: does a missing cue push them away?
            entry["cv_without_cue"] = per_task((oof.argmax(1) == labels)[~cued], labels[~cued], names)
            entry["cv_hand"] = per_task((oof.argmax(1) == labels)[hand], labels[hand], names)
            if (~hand).any():
                entry["cv_public"] = per_task((oof.argmax(1) == labels)[~hand], labels[~hand], names)
            entry["heldout"] = per_task(scores(data, labels, held_data, c).argmax(1) == held_y, held_y, names)
            loso: dict[str, Any] = {}
            groups = {s: sources == s for s in sorted(set(sources))}
            if (~hand).any() and hand.any():
                groups["all hand-written"] = hand
                groups["all public"] = ~hand
            for group, mask in groups.items():
                if mask.all() or len(set(labels[~mask])) < len(names):
                    continue
                right = scores(data[~mask], labels[~mask], data[mask], c).argmax(1) == labels[mask]
                loso[group] = per_task(right, labels[mask], names)
            entry["loso"] = loso
            # what the exemplars of before (exemplars.yaml and pasted.yaml alone) give on the new sources
            old = np.isin(sources, ("exemplars", "pasted"))
            transfer: dict[str, Any] = {}
            for group, mask in (("broad", sources == "broad"), ("public", ~hand)):
                if mask.any():
                    right = scores(data[old], labels[old], data[mask], c).argmax(1) == labels[mask]
                    transfer[group] = per_task(right, labels[mask], names)
            entry["old_exemplars_on"] = transfer
            result[key] = entry
            print(key, json.dumps({k: v for k, v in entry.items() if k not in ("loso", "old_exemplars_on")}))
            for group, r in loso.items():
                print("   loso", group, json.dumps(r))
            for group, r in transfer.items():
                print("   old exemplars only ->", group, json.dumps(r))
    if args.test:
        result["public_test"] = public_test()
        for name, r in result["public_test"].items():
            print("public test,", name, json.dumps(r["overall"]), json.dumps(r["per_task"]))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
