"""MiniLM first, concat overriding only when confident (route22).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_override [--mpnet DIR] [--test]

A measurement only: the gateway keeps MiniLM alone. Every request is classified by the shipped MiniLM
classifier (``tasks.C`` = 2, calibrated, ``routing.task_threshold`` = 0.7). If its calibrated top is
≥ 0.7, MiniLM's task is used. Otherwise the ``concat`` classifier of ``bench.routing_encoders`` (MiniLM ⊕
mpnet, C and threshold chosen as route20 chose them: C 8, threshold 0.75) is asked; if concat's calibrated
top is ≥ the variant's override cut, concat's task is used; otherwise exactly what the shipped gateway
does: MiniLM's ``safest`` default over MiniLM's plausible set.

Variants (``VARIANTS``): V1 overrides at concat's threshold (0.75), V2 at 0.90.

**Choice (no held-out set read)**: the variant with the best overall CV routed-right (tie → V2, fewer
overrides). CV: the five folds of ``bench.routing.threshold_by_cv`` (route20's and route21's out-of-fold
calibrated probabilities for both classifiers; asserted equal to route20's CV figures).

**Test** (``--test``, only once ``docs/experiments/route22-rule.md`` is committed): the chosen variant and
the shipped MiniLM (the gateway's own ``TaskClassifier``) on ``tasks_heldout.yaml``,
``tasks_public_test.yaml`` and ``tasks_phrasings_heldout.yaml``. Nothing here reads a blind set.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.routing import Router, blind_set, outcomes
from bench.routing_cascade import ROUTE20, Answer, CascadeRouter, Classifiers, top
from bench.routing_encoders import (
    MPNET,
    Exemplars,
    routed_clauses,
    test_sets,
)
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
V2_CUT = 0.90


class Decision(Answer):
    """An :class:`Answer` that also records whether concat was asked (mpnet pass) and whether it overrode."""

    def __init__(self, probs: dict[str, float], threshold: float, asked: bool, overridden: bool) -> None:
        super().__init__(probs, threshold, asked)
        self.overridden = overridden


def override(
    first: list[dict[str, float]],
    first_th: float,
    second: list[dict[str, float]] | Callable[[int], dict[str, float]],
    cut: float,
) -> list[Decision]:
    """MiniLM if sure; else concat if its top ≥ ``cut``; else MiniLM's probabilities below MiniLM's threshold
    (so the router applies the shipped ``safest`` default over MiniLM's plausible set)."""
    out = []
    for i, p in enumerate(first):
        if top(p) >= first_th:
            out.append(Decision(p, first_th, False, False))
            continue
        q = second(i) if callable(second) else second[i]
        if top(q) >= cut:
            out.append(Decision(q, cut, True, True))
        else:
            out.append(Decision(p, first_th, True, False))
    return out


def counts(
    router: Router,
    cases: list[tuple[str, str]],
    decisions: list[Decision],
    first_th: float,
    first: list[dict[str, float]],
) -> dict[str, Any]:
    """mpnet share, overrides, and how many overrides changed the routed model for better or worse vs MiniLM."""
    per: dict[str, dict[str, int]] = {}
    for (true, text), d, p in zip(cases, decisions, first, strict=True):
        row = per.setdefault(true, {"n": 0, "mpnet": 0, "overrides": 0, "fixed": 0, "broke": 0, "changed_model": 0})
        row["n"] += 1
        row["mpnet"] += int(d.cascaded)
        if d.overridden:
            row["overrides"] += 1
            ideal = router.model(text, true).name
            mine = router.model(text, router.task_used(text, d, first_th)).name
            ref = router.model(text, Router.task_used(router, text, p, first_th)).name
            row["changed_model"] += mine != ref
            row["fixed"] += mine == ideal and ref != ideal
            row["broke"] += ref == ideal and mine != ideal
    total = {k: sum(r[k] for r in per.values()) for k in ("n", "mpnet", "overrides", "fixed", "broke", "changed_model")}
    return {"overall": {**total, "mpnet_share": round(total["mpnet"] / total["n"], 4)}, "per_task": per}


def verdict(cv: dict[str, Any], chosen: str, tests: dict[str, Any] | None) -> dict[str, Any]:
    """docs/experiments/route22-rule.md, applied to the chosen variant against the shipped MiniLM."""
    mine, ref = cv["variants"][chosen], cv["minilm_shipped"]
    out: dict[str, Any] = {"chosen": chosen}
    changes = (
        None
        if tests is None
        else {
            s: round(tests[s]["override"]["overall"]["routed"] - tests[s]["minilm_shipped"]["overall"]["routed"], 4)
            for s in tests
        }
    )
    out.update(routed_clauses(mine, ref, changes))
    out["mpnet_share"] = mine["counts"]["overall"]["mpnet_share"]
    out["d"] = out["mpnet_share"] <= 0.35
    out["ships"] = all(out.get(k, False) for k in ("a", "b", "c", "d"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mpnet", default=MPNET, help="all-mpnet-base-v2, a sentence-transformers folder")
    parser.add_argument("--test", action="store_true", help="score the held-out sets (after the rule is committed)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "route22-override.json")
    parser.add_argument(
        "--blind",
        metavar="NAME",
        help="score the chosen variant on bench/data/NAME/cache/tasks.jsonl instead of the held-out sets "
        "(aggregates only; a measurement: the rule's verdict is the held-out sets', not this)",
    )
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
        "shipped": {"C": taskmod.C, "threshold": shipped_threshold},
    }

    clf = Classifiers(ex)
    probs_m, probs_c, c_concat, th_concat = clf.probs_m, clf.probs_c, clf.c_concat, clf.th_concat
    cv: dict[str, Any] = {
        "minilm_shipped": outcomes(router, cases, [Answer(p, shipped_threshold, False) for p in probs_m], 0.0)
    }
    cv["concat"] = {"C": c_concat, "threshold": th_concat,
                    **outcomes(router, cases, [Answer(p, th_concat, True) for p in probs_c], 0.0)}  # fmt: skip
    r20 = json.loads(ROUTE20.read_text())["cv"]
    assert (c_concat, th_concat) == (r20["concat"]["C"], r20["concat"]["threshold"]), "not route20's concat"
    for key in ("minilm_shipped", "concat"):
        assert cv[key]["overall"] == r20[key]["at_threshold"]["overall"], f"not route20's {key} CV"
        assert cv[key]["per_task"] == r20[key]["at_threshold"]["per_task"], f"not route20's {key} per-task CV"
        print(key, json.dumps(cv[key]["overall"]), flush=True)
        print("   routed", json.dumps({t: r["routed"] for t, r in cv[key]["per_task"].items()}), flush=True)

    variants = {"V1": th_concat, "V2": V2_CUT}
    result["variants"] = variants
    cv["variants"] = {}
    for name, cut in variants.items():
        decisions = override(probs_m, shipped_threshold, probs_c, cut)
        row = outcomes(router, cases, decisions, 0.0)
        row["cut"] = cut
        row["counts"] = counts(router, cases, decisions, shipped_threshold, probs_m)
        cv["variants"][name] = row
        print(name, f"cut {cut:g}", json.dumps(row["overall"]), json.dumps(row["counts"]["overall"]), flush=True)
        print("   routed", json.dumps({t: r["routed"] for t, r in row["per_task"].items()}), flush=True)
    # best overall CV routed-right; tie → V2 (fewer overrides)
    chosen = max(cv["variants"], key=lambda k: (cv["variants"][k]["overall"]["routed"], k == "V2"))
    result["cv"] = cv
    result["chosen"] = chosen
    print("chosen", chosen, flush=True)

    tests = None
    if args.test or args.blind:
        cut = variants[chosen]
        ship, _, concat_probs = clf.fitted(args.mpnet)
        tests = {}
        sets = {args.blind: blind_set(args.blind)} if args.blind else test_sets()
        for set_name, set_cases in sets.items():
            first = [ship.probabilities(text) for _, text in set_cases]

            def second(i: int, set_cases: list[tuple[str, str]] = set_cases) -> dict[str, float]:
                return concat_probs(set_cases[i][1])

            decisions = override(first, shipped_threshold, second, cut)
            tests[set_name] = {
                "minilm_shipped": outcomes(
                    router, set_cases, [Answer(p, shipped_threshold, False) for p in first], 0.0
                ),
                "override": {
                    **outcomes(router, set_cases, decisions, 0.0),
                    "counts": counts(router, set_cases, decisions, shipped_threshold, first),
                },
            }
            for key in ("minilm_shipped", "override"):
                print(set_name, key, json.dumps(tests[set_name][key]["overall"]), flush=True)
                print("   routed", json.dumps({t: r["routed"] for t, r in tests[set_name][key]["per_task"].items()}))
                print("   label", json.dumps({t: r["label"] for t, r in tests[set_name][key]["per_task"].items()}))
            print(set_name, "counts", json.dumps(tests[set_name]["override"]["counts"]["overall"]), flush=True)
        result["test"] = tests
    if args.blind:
        result["blind"] = args.blind
        args.out.write_text(json.dumps(result, indent=2))
        return
    result["verdict"] = verdict(cv, chosen, tests)
    print("verdict", json.dumps(result["verdict"]), flush=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
