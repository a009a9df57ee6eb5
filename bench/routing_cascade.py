"""A MiniLM → concat cascade for task routing (route21).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_cascade [--mpnet DIR] [--test]

A measurement only: the gateway keeps MiniLM alone. Every request is classified by the shipped MiniLM
classifier (``tasks.C`` = 2, calibrated, ``routing.task_threshold`` = 0.7). Only when its calibrated top
probability is below a cut ``t_c`` is the request classified again by the ``concat`` classifier of
``bench.routing_encoders`` (MiniLM ⊕ mpnet; its own ``C`` and calibration, chosen exactly as route20
chose them, and its own threshold from ``bench.routing.threshold_by_cv``), whose answer is then used
with concat's threshold (and the ``safest`` default below it).

**Choice (no held-out set read)**: ``t_c`` in ``T_CUTS`` with the best overall CV routed-right (ties to
the smaller cut: fewer mpnet passes). CV uses the five folds of ``bench.routing.threshold_by_cv``
(the same out-of-fold calibrated probabilities as route20, for both classifiers), so a request's
cascade answer is what the two out-of-fold classifiers say about it. Reported per cut: label, task,
routed, served (overall and per task) and the share of requests sent to mpnet.

**Test** (``--test``, only once ``docs/experiments/route21-rule.md`` is committed): the chosen cascade
and the shipped MiniLM (the gateway's own ``TaskClassifier``) on ``tasks_heldout.yaml``,
``tasks_public_test.yaml`` and ``tasks_phrasings_heldout.yaml``; concat trained on all exemplars at its
chosen ``C``, calibrated as the gateway calibrates. Nothing here reads a blind set.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.routing import Router, outcomes, threshold_by_cv
from bench.routing_encoders import (
    COMBINE,
    MPNET,
    Exemplars,
    Fitted,
    choose_c,
    minilm_one,
    mpnet_one,
    query_strings,
    raw,
    routed_clauses,
    test_sets,
    with_cues,
)
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
T_CUTS = (0.7, 0.8, 0.9)
ROUTE20 = ROOT / "bench" / "results" / "route20-encoders.json"


class Answer(dict):  # type: ignore[type-arg]
    """Calibrated probabilities (most probable first) with the threshold of the classifier that gave them."""

    def __init__(self, probs: dict[str, float], threshold: float, cascaded: bool) -> None:
        super().__init__(probs)
        self.threshold = threshold
        self.cascaded = cascaded


class CascadeRouter(Router):
    """``bench.routing.Router`` whose confidence rule uses the threshold of whichever classifier answered."""

    def task_used(self, text: str, probabilities: dict[str, float], threshold: float) -> str:
        assert isinstance(probabilities, Answer)
        return super().task_used(text, probabilities, probabilities.threshold)


def top(p: dict[str, float]) -> float:
    return next(iter(p.values()))


def cascade(
    first: list[dict[str, float]], first_th: float, second: list[dict[str, float]] | Any, second_th: float, cut: float
) -> list[Answer]:
    """``second`` is a list of probabilities, or a callable (index -> probabilities) evaluated only when needed."""
    out = []
    for i, p in enumerate(first):
        if top(p) >= cut:
            out.append(Answer(p, first_th, False))
        else:
            q = second(i) if callable(second) else second[i]
            out.append(Answer(q, second_th, True))
    return out


def shares(cases: list[tuple[str, str]], answers: list[Answer]) -> dict[str, Any]:
    per: dict[str, list[int]] = {}
    for (true, _), a in zip(cases, answers, strict=True):
        per.setdefault(true, []).append(int(a.cascaded))
    n = sum(len(v) for v in per.values())
    return {
        "overall": round(sum(sum(v) for v in per.values()) / n, 4),
        "sent": sum(sum(v) for v in per.values()),
        "n": n,
        "per_task": {t: round(sum(v) / len(v), 4) for t, v in per.items()},
    }


def verdict(cv: dict[str, Any], chosen: str, tests: dict[str, Any] | None) -> dict[str, Any]:
    """docs/experiments/route21-rule.md, applied to the chosen cut against the shipped MiniLM."""
    mine, ref = cv["cascade"][chosen], cv["minilm_shipped"]
    out: dict[str, Any] = {"chosen_cut": float(chosen)}
    changes = (
        None
        if tests is None
        else {
            s: round(tests[s]["cascade"]["overall"]["routed"] - tests[s]["minilm_shipped"]["overall"]["routed"], 4)
            for s in tests
        }
    )
    out.update(routed_clauses(mine, ref, changes))
    out["mpnet_share"] = mine["mpnet_share"]["overall"]
    out["d"] = out["mpnet_share"] <= 0.35
    out["ships"] = all(out.get(k, False) for k in ("a", "b", "c", "d"))
    return out


class Classifiers:
    """The shipped MiniLM and route20's concat: their out-of-fold probabilities on the exemplars (the folds
    of ``bench.routing.threshold_by_cv``) and, for held-out requests, both fitted on every exemplar."""

    def __init__(self, ex: Exemplars) -> None:
        self.ex = ex
        self.data_m = with_cues(ex.minilm, ex.cue_texts)
        _, _, self.probs_m = threshold_by_cv(Router(0.9), ex.cases, self.data_m, ex.labels, taskmod.C, COMBINE)
        self.data_c = with_cues(raw("concat", ex.minilm, ex.mpnet), ex.cue_texts)
        self.c_concat, self.label_cv = choose_c(self.data_c, ex.labels, ex.names)
        self.th_concat, _, self.probs_c = threshold_by_cv(
            Router(0.9), ex.cases, self.data_c, ex.labels, self.c_concat, COMBINE
        )

    def fitted(self, mpnet_path: str) -> tuple[taskmod.TaskClassifier, Fitted, Any]:
        """The gateway's own classifier, concat fitted on all exemplars, and concat's probabilities of one
        request's text (its mpnet pass is paid only when called)."""
        ex = self.ex
        ship = taskmod.TaskClassifier(ex.exemplars)
        concat = Fitted(self.data_c, ex.labels, ex.names, self.c_concat)
        same = Fitted(self.data_m, ex.labels, ex.names, taskmod.C)
        assert np.allclose(same.weights, ship.weights) and same.temperature == ship.temperature

        def concat_probs(text: str) -> dict[str, float]:
            emb, cue = query_strings(text)
            vec = raw("concat", minilm_one(emb)[None, :], mpnet_one(emb, mpnet_path)[None, :])
            return concat.probabilities(with_cues(vec, [cue]))

        return ship, concat, concat_probs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mpnet", default=MPNET, help="all-mpnet-base-v2, a sentence-transformers folder")
    parser.add_argument("--test", action="store_true", help="score the held-out sets (after the rule is committed)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "route21-cascade.json")
    args = parser.parse_args()
    from llmgw.config import RoutingConfig

    shipped_threshold = RoutingConfig().task_threshold
    router = CascadeRouter(0.9)
    ex = Exemplars(args.mpnet)  # route20's mpnet cache
    cases = ex.cases

    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "exemplars": len(cases),
        "mpnet": args.mpnet,
        "cuts": list(T_CUTS),
        "shipped": {"C": taskmod.C, "threshold": shipped_threshold},
    }

    # the shipped MiniLM: out-of-fold calibrated probabilities (bench.routing's folds)
    clf = Classifiers(ex)
    probs_m, probs_c, c_concat, th_concat = clf.probs_m, clf.probs_c, clf.c_concat, clf.th_concat
    plain = [Answer(p, shipped_threshold, False) for p in probs_m]
    cv: dict[str, Any] = {"minilm_shipped": outcomes(router, cases, plain, 0.0)}

    # concat, C and threshold chosen as route20 chose them
    cv["concat"] = {"C": c_concat, "threshold": th_concat, "label_cv_by_C": clf.label_cv,
                    **outcomes(router, cases, [Answer(p, th_concat, True) for p in probs_c], 0.0)}  # fmt: skip
    if ROUTE20.is_file():
        r20 = json.loads(ROUTE20.read_text())["cv"]
        assert (c_concat, th_concat) == (r20["concat"]["C"], r20["concat"]["threshold"]), "not route20's concat"
        assert cv["concat"]["overall"] == r20["concat"]["at_threshold"]["overall"], "not route20's concat CV"
        assert cv["minilm_shipped"]["overall"] == r20["minilm_shipped"]["at_threshold"]["overall"]
    for key in ("minilm_shipped", "concat"):
        print(key, json.dumps(cv[key]["overall"]), flush=True)
        print("   routed", json.dumps({t: r["routed"] for t, r in cv[key]["per_task"].items()}), flush=True)

    cv["cascade"] = {}
    for cut in T_CUTS:
        answers = cascade(probs_m, shipped_threshold, probs_c, th_concat, cut)
        row = outcomes(router, cases, answers, 0.0)
        row["mpnet_share"] = shares(cases, answers)
        cv["cascade"][f"{cut:g}"] = row
        print(f"cascade t_c {cut:g}", json.dumps(row["overall"]), "mpnet share", row["mpnet_share"]["overall"],
              flush=True)  # fmt: skip
        print("   routed", json.dumps({t: r["routed"] for t, r in row["per_task"].items()}), flush=True)
    # best overall CV routed-right; ties to the smaller cut
    chosen = max(cv["cascade"], key=lambda k: (cv["cascade"][k]["overall"]["routed"], -float(k)))
    result["cv"] = cv
    result["chosen_cut"] = float(chosen)
    print("chosen t_c", chosen, flush=True)
    if ROUTE20.is_file():  # encode cost per request implied by the share (route20's timings, not re-timed)
        ms = json.loads(ROUTE20.read_text()).get("cost_ms")
        if ms:
            share = cv["cascade"][chosen]["mpnet_share"]["overall"]
            result["implied_encode_ms"] = {
                "minilm_onnx_p50": ms["minilm_onnx"]["p50"],
                "mpnet_torch_p50": ms["mpnet_torch"]["p50"],
                "mean_per_request": round(ms["minilm_onnx"]["mean"] + share * ms["mpnet_torch"]["mean"], 2),
                "note": "route20 timings; a cascaded request pays MiniLM then mpnet; the median pays MiniLM "
                "only while the share is below 50 %",
            }

    tests = None
    if args.test:
        cut = float(chosen)
        ship, concat, concat_probs = clf.fitted(args.mpnet)
        tests = {}
        for set_name, set_cases in test_sets().items():
            first = [ship.probabilities(text) for _, text in set_cases]

            def second(i: int, set_cases: list[tuple[str, str]] = set_cases) -> dict[str, float]:
                return concat_probs(set_cases[i][1])

            answers = cascade(first, shipped_threshold, second, th_concat, cut)
            tests[set_name] = {
                "minilm_shipped": outcomes(
                    router, set_cases, [Answer(p, shipped_threshold, False) for p in first], 0.0
                ),
                "cascade": {**outcomes(router, set_cases, answers, 0.0), "mpnet_share": shares(set_cases, answers)},
            }
            for key in ("minilm_shipped", "cascade"):
                print(set_name, key, json.dumps(tests[set_name][key]["overall"]), flush=True)
                print("   routed", json.dumps({t: r["routed"] for t, r in tests[set_name][key]["per_task"].items()}))
            print(set_name, "mpnet share", tests[set_name]["cascade"]["mpnet_share"]["overall"], flush=True)
        result["test"] = tests
        result["temperature"] = {"minilm_shipped": ship.temperature, "concat": concat.temperature}
    result["verdict"] = verdict(cv, chosen, tests)
    print("verdict", json.dumps(result["verdict"]), flush=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
