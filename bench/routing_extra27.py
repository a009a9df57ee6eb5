"""route27: the shipped task router (route26's two encoders) with more exemplars written by hand, decided on blind19.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_extra27 --check   # held-out sets, cross-source; no blind set
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_extra27 --test    # + blind19 (rule and check committed first)

The candidate changes one thing: the regression is fitted on the shipped exemplars **plus**
``bench/results/route27-written27.yaml`` (280 plain requests and ~80 instructions composed with 14 new pasted
texts, written by a helper who opened no evaluation set). Encoders (shared MiniLM and route25's tuned copy),
``C`` (8), the view and the threshold (0.7) stay the shipped ones: nothing is chosen here, so there is no
calibration step. The temperature is refitted by out-of-fold logits, as the gateway does for any exemplar set.

``--check`` writes ``bench/results/route27-check.json``:

* the three held-out sets (``tasks_heldout``, ``tasks_public_test``, ``tasks_phrasings_heldout``; read before,
  reported as a regression check), shipped and candidate in the same run;
* **cross-source**: for each source of the shipped exemplars (the hand-written files and each public corpus,
  and the two halves: hand-written → public, public → hand-written), the head fitted without that source,
  with and without written27, scored on it. Does what written27 adds carry to requests written by others?

``--test`` (rule ``docs/experiments/route27-rule.md``) adds blind19's tasks and writes
``bench/results/route27-test.json`` with the verdict. The tuned encoder was tuned on every shipped source, so
the absolute cross-source figures are optimistic; the comparison (with against without written27) is not.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.routing import Router, blind_set, outcomes
from bench.routing_encoders import test_sets
from bench.routing_setfit24 import HELDOUT, against_shipped, committed
from llmgw.config import RoutingConfig
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WRITTEN = RESULTS / "route27-written27.yaml"  # the candidate's exemplars (llmgw/routing/written27.yaml at the rule)
RULE = "docs/experiments/route27-rule.md"
CHECK = RESULTS / "route27-check.json"
ENCODER = "tuned"
HAND = ("exemplars", "pasted", "broad")


def written() -> list[tuple[str, str, str]]:
    return [("written27", t, x) for t, xs in taskmod.phrasings_exemplars(WRITTEN).items() for x in xs]


class Head:
    """The gateway's regression and temperature (:class:`llmgw.routing.tasks.TaskClassifier`) on given rows."""

    def __init__(self, data: taskmod.Views, labels: np.ndarray, tasks: list[str]) -> None:
        c = taskmod.C_OF[ENCODER]
        self.tasks = tasks
        self.weights, self.bias = taskmod.fit(*taskmod.training_rows(data, labels, taskmod.COMBINE), c)
        smallest = int(np.bincount(labels, minlength=len(tasks)).min())
        logits = taskmod.out_of_fold_logits(data, labels, c, min(taskmod.FOLDS, smallest), taskmod.COMBINE)
        self.temperature = taskmod.best_temperature(logits, labels)

    def probabilities(self, data: taskmod.Views) -> list[dict[str, float]]:
        probs = taskmod.softmax(taskmod.logits_of(self.weights, self.bias, data, taskmod.COMBINE), self.temperature)
        return [{self.tasks[i]: float(row[i]) for i in np.argsort(-row, kind="stable")} for row in probs]


def cross_source(router: Router, threshold: float) -> dict[str, Any]:
    rows = taskmod.sourced_exemplars() + written()
    sources = np.asarray([s for s, _, _ in rows])
    tasks = sorted({t for _, t, _ in rows})
    labels = np.asarray([tasks.index(t) for _, t, _ in rows])
    texts = [x for _, _, x in rows]
    data = taskmod.exemplar_views(texts, encoder=ENCODER)
    hand = np.isin(sources, HAND)
    groups: dict[str, np.ndarray] = {s: sources == s for s in dict.fromkeys(sources) if s != "written27"}
    groups["hand → public"] = ~hand & (sources != "written27")  # test rows; trained on the hand-written ones
    groups["public → hand"] = hand
    out: dict[str, Any] = {}
    for name, test in groups.items():
        if name == "hand → public":
            train = hand
        elif name == "public → hand":
            train = ~hand & (sources != "written27")
        else:
            train = ~test & (sources != "written27")
        cases = [(tasks[labels[i]], texts[i]) for i in np.flatnonzero(test)]
        row: dict[str, Any] = {"n": len(cases)}
        for key, rows_ in (("without", train), ("with_written27", train | (sources == "written27"))):
            idx = np.flatnonzero(rows_)
            present = sorted(set(labels[idx].tolist()))
            if len(present) < len(tasks):  # a source that holds a whole task: the head cannot learn it
                row["skipped"] = "a task has no training rows"
                break
            head = Head(data[idx], labels[idx], tasks)
            probs = head.probabilities(data[np.flatnonzero(test)])
            result = outcomes(router, cases, probs, threshold)
            row[key] = {"label": result["overall"]["label"], "routed": result["overall"]["routed"]}
        out[name] = row
        print(name, json.dumps(row), flush=True)
    single = [r for n, r in out.items() if "→" not in n and "skipped" not in r]
    weights = np.asarray([r["n"] for r in single], dtype=float)
    for key in ("without", "with_written27"):
        out[f"mean_routed_{key}"] = round(float(np.average([r[key]["routed"] for r in single], weights=weights)), 4)
    return out


def classifiers() -> tuple[taskmod.TaskClassifier, taskmod.TaskClassifier]:
    shipped = taskmod.TaskClassifier(taskmod.load_exemplars(), encoder=ENCODER)
    extra: dict[str, list[str]] = {}
    for _, task, text in written():
        extra.setdefault(task, []).append(text)
    return shipped, taskmod.TaskClassifier(taskmod.load_exemplars(extra), encoder=ENCODER)


def check(router: Router, threshold: float) -> None:
    shipped, candidate = classifiers()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "written27": len(written()),
        "temperature": {"shipped": round(shipped.temperature, 3), "candidate": round(candidate.temperature, 3)},
        "threshold": threshold,
    }
    result["heldout"] = against_shipped(
        router, test_sets(), (shipped.probabilities, threshold), (candidate.probabilities, threshold), "route27"
    )
    result["cross_source"] = cross_source(router, threshold)
    CHECK.write_text(json.dumps(result, indent=2))


def test(router: Router, threshold: float, blind: str) -> None:
    if not committed(RULE) or not committed(str(CHECK.relative_to(ROOT))):
        raise SystemExit(f"{RULE} and {CHECK.name} must be committed before the blind set is read")
    shipped, candidate = classifiers()
    sets = {blind: blind_set(blind)}
    tests = against_shipped(router, sets, (shipped.probabilities, threshold), (candidate.probabilities, threshold),
                            "route27")  # fmt: skip
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "test": tests,
              "verdict": verdict(tests[blind], json.loads(CHECK.read_text()), blind)}  # fmt: skip
    print("verdict", json.dumps(result["verdict"]), flush=True)
    (RESULTS / "route27-test.json").write_text(json.dumps(result, indent=2))


def verdict(b: dict[str, Any], checked: dict[str, Any], blind: str) -> dict[str, Any]:
    """docs/experiments/route27-rule.md, applied as written."""
    gain = round(b["route27"]["overall"]["routed"] - b["minilm_shipped"]["overall"]["routed"], 4)
    drops = {t: b["route27"]["counts"][t]["routed"] - r["routed"] for t, r in b["minilm_shipped"]["counts"].items()}
    held = checked["heldout"]
    change = {s: round(held[s]["route27"]["overall"]["routed"] - held[s]["minilm_shipped"]["overall"]["routed"], 4)
              for s in HELDOUT}  # fmt: skip
    n = sum(c["n"] for s in HELDOUT for c in held[s]["route27"]["counts"].values())
    pooled = round(
        sum(held[s]["route27"]["counts"][t]["routed"] - c["routed"]
            for s in HELDOUT for t, c in held[s]["minilm_shipped"]["counts"].items()) / n, 4)  # fmt: skip
    cross = checked["cross_source"]
    halves = {h: round(cross[h]["with_written27"]["routed"] - cross[h]["without"]["routed"], 4)
              for h in ("hand → public", "public → hand")}  # fmt: skip
    mean = round(cross["mean_routed_with_written27"] - cross["mean_routed_without"], 4)
    out = {
        "decided_on": blind, "routed_change": gain, "a": gain >= 0.015 - 1e-9,
        "per_task_routed_count_change": drops, "b": all(d >= -3 for d in drops.values()),
        "heldout_routed_change": change, "heldout_pooled_routed_change": pooled,
        "c": pooled >= -0.01 - 1e-9 and all(d >= -0.03 - 1e-9 for d in change.values()),
        "cross_source_mean_change": mean, "cross_source_halves_change": halves,
        "d": mean >= 0 and all(v >= -0.01 - 1e-9 for v in halves.values()),
    }  # fmt: skip
    out["ships"] = all(out[k] for k in ("a", "b", "c", "d"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="held-out sets and cross-source (no blind set)")
    parser.add_argument("--test", action="store_true", help="blind19 and the verdict")
    parser.add_argument("--blind", default="blind19")
    args = parser.parse_args()
    router, threshold = Router(0.9), RoutingConfig().task_threshold
    if args.check:
        check(router, threshold)
    if args.test:
        test(router, threshold, args.blind)


if __name__ == "__main__":
    main()
