"""route26: the SetFit-tuned MiniLM beside the shipped one (concatenated), decided on blind15.

route24 and route25 (``bench/routing_setfit24.py``) replaced the shipped MiniLM vectors by those of a
MiniLM tuned SetFit-style on the exemplars. On two fresh sets each routed more requests right overall
(+4.6 and +4.9 points) but lost chat requests the shipped router got right (route25 on blind14: chat
−4 of 50, its rule allowing 3). The tuned vectors are far from the base ones (cosine ~0.4): the tuning
keeps what separates the exemplars' tasks and forgets the rest. route26 keeps both: the head reads the
shipped vector (which the gateway computes anyway for the guards and the cache, memoised) beside the
tuned one, plus the cues, so the regression can weigh where each helps. The extra cost per ``auto``
request is the tuned pass alone, as for route25.

Nothing is tuned anew: the encoders are route24's (tuned on a seeded 80 % of the exemplars, for the
calibration) and route25's (tuned on all of them, for the test), both rebuilt from their committed
adapters. The head is the shipped one (logistic regression, ``C`` by ``choose_c``, temperature on
out-of-fold logits); the threshold is chosen on route24's 20 % calibration split by the rule of
``bench.routing.threshold_by_cv``. The rule: ``docs/experiments/route26-rule.md``.

Commands (``OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1``)::

    python -m bench.routing_concat26 --calibrate     # route24's encoder, 80/20 split: C, threshold
    python -m bench.routing_concat26 --test          # once, after the rule is committed
    python -m bench.routing_concat26 --cross-source  # encoder and head fitted on one source half, scored on the other
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.routing import Router, blind_set, outcomes
from bench.routing_encoders import Exemplars, Fitted, choose_c, minilm_one, query_strings, test_sets, with_cues
from bench.routing_setfit import pick_threshold
from bench.routing_setfit24 import HELDOUT, against_shipped, committed, rebuilt_encoder, show, split
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RULE = "docs/experiments/route26-rule.md"
CONFIG = "lora_qv"
CALIBRATION = RESULTS / "route26-calibration.json"


def concat(base: np.ndarray, tuned: np.ndarray) -> np.ndarray:
    """The two encoders' vectors side by side (each unit length; the regression weighs them)."""
    return np.hstack([base, tuned]).astype(np.float32)


def tuned_vectors(encoder: Any, texts: list[str]) -> np.ndarray:
    return np.stack([encoder.encode(t) for t in texts])


def calibrate(ex: Exemplars, router: Router) -> None:
    train, cal = split(ex.labels)
    encoder, check = rebuilt_encoder(CONFIG, ex, "route24")
    tuned = tuned_vectors(encoder, ex.embedded)
    cal_cases = [ex.cases[i] for i in cal]
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "encoder": "route24 (80 %)",
                              "onnx": check, "split": {"train": len(train), "calibration": len(cal)}}  # fmt: skip
    for variant, vectors in (("tuned", tuned), ("concat", concat(ex.minilm, tuned))):
        data = with_cues(vectors, ex.cue_texts)
        c, _ = choose_c(data[train], ex.labels[train], ex.names)
        fitted = Fitted(data[train], ex.labels[train], ex.names, c)
        probs = [fitted.probabilities(data[[i]]) for i in cal]
        th, _ = pick_threshold(router, cal_cases, probs)
        row = outcomes(router, cal_cases, probs, th)
        result[variant] = {"C": c, "temperature": round(fitted.temperature, 3), "threshold": th, **row}
        show(f"calibration {variant} C{c} th{th}", row)
    CALIBRATION.write_text(json.dumps(result, indent=2))


def test(ex: Exemplars, router: Router, shipped_th: float, blinds: list[str]) -> None:
    if not committed(RULE) or not committed(str(CALIBRATION.relative_to(ROOT))):
        raise SystemExit(f"{RULE} and the calibration file must be committed before any held-out or blind figure")
    threshold = json.loads(CALIBRATION.read_text())["concat"]["threshold"]
    encoder, check = rebuilt_encoder(CONFIG, ex, "route25")
    print("onnx", json.dumps(check), flush=True)
    data = with_cues(concat(ex.minilm, tuned_vectors(encoder, ex.embedded)), ex.cue_texts)
    c, _ = choose_c(data, ex.labels, ex.names)
    mine = Fitted(data, ex.labels, ex.names, c)
    ship = taskmod.TaskClassifier(ex.exemplars)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "encoder": "route25 (all exemplars)", "onnx": check,
        "concat": {"C": c, "threshold": threshold, "temperature": round(mine.temperature, 3)},
        "shipped": {"C": taskmod.C, "threshold": shipped_th},
    }  # fmt: skip

    def both(text: str) -> dict[str, float]:
        emb, cue = query_strings(text)
        return mine.probabilities(with_cues(concat(minilm_one(emb)[None, :], encoder.encode(emb)[None, :]), [cue]))

    sets = {**test_sets(), **{name: blind_set(name) for name in blinds}}
    tests = against_shipped(router, sets, (ship.probabilities, shipped_th), (both, threshold), "concat")
    result["test"] = tests
    result["verdict"] = verdict(tests, blinds[0], check)
    print("verdict", json.dumps(result["verdict"]), flush=True)
    (RESULTS / "route26-test.json").write_text(json.dumps(result, indent=2))


def verdict(tests: dict[str, Any], blind: str, onnx: dict[str, Any]) -> dict[str, Any]:
    """docs/experiments/route26-rule.md, applied as written (route25's clauses)."""
    b = tests[blind]
    gain = round(b["concat"]["overall"]["routed"] - b["minilm_shipped"]["overall"]["routed"], 4)
    drops = {t: b["concat"]["counts"][t]["routed"] - r["routed"] for t, r in b["minilm_shipped"]["counts"].items()}
    held = {s: round(tests[s]["concat"]["overall"]["routed"] - tests[s]["minilm_shipped"]["overall"]["routed"], 4)
            for s in HELDOUT}  # fmt: skip
    routed = {k: sum(c["routed"] for s in HELDOUT for c in tests[s][k]["counts"].values())
              for k in ("concat", "minilm_shipped")}  # fmt: skip
    n = sum(c["n"] for s in HELDOUT for c in tests[s]["concat"]["counts"].values())
    pooled = round((routed["concat"] - routed["minilm_shipped"]) / n, 4)
    out = {
        "decided_on": blind, "routed_change": gain, "a": gain >= 0.015 - 1e-9,
        "per_task_routed_count_change": drops, "b": all(d >= -3 for d in drops.values()),
        "heldout_routed_change": held, "heldout_pooled_routed_change": pooled,
        "c": pooled >= -0.01 - 1e-9 and all(d >= -0.03 - 1e-9 for d in held.values()),
        "onnx_max_abs": onnx["max_abs_torch_merged_one_text_vs_onnx"],
        "d": onnx["max_abs_torch_merged_one_text_vs_onnx"] <= 1e-5 and not onnx["same_export_as_base"],
    }  # fmt: skip
    out["ships"] = all(out[k] for k in ("a", "b", "c", "d"))
    return out


HAND = ("exemplars", "pasted", "broad")


def sources_of(ex: Exemplars) -> list[str]:
    """Each case's exemplar source, in ``ex.cases`` order (tasks sorted, each task's texts as loaded)."""
    per_task: dict[str, list[str]] = {}
    for source, task, _ in taskmod.sourced_exemplars():
        per_task.setdefault(task, []).append(source)
    out, seen = [], dict.fromkeys(ex.names, 0)
    for task, _ in ex.cases:
        out.append(per_task[task][seen[task]])
        seen[task] += 1
    return out


def cross_source(ex: Exemplars, router: Router, shipped_th: float) -> None:
    """Fit without a source, test on it: the encoder tuned (route25's recipe) and the head fitted on the
    hand-written sources only, scored on the public corpora's prompts, and the reverse; against the shared
    head fitted on the same half (``tasks.C``, the shipped threshold), in the same run. route26's threshold."""
    from bench.routing_setfit import vectors
    from bench.routing_setfit24 import PAIRS, SEED, fine_tune

    threshold = json.loads(CALIBRATION.read_text())["concat"]["threshold"]
    sources = np.array(sources_of(ex))
    hand = np.isin(sources, HAND)
    names, counts = np.unique(sources, return_counts=True)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "threshold": threshold,
                              "sources": {str(k): int(v) for k, v in zip(names, counts, strict=True)}}  # fmt: skip
    for name, train in (("hand_to_public", hand), ("public_to_hand", ~hand)):
        tr, te = np.flatnonzero(train), np.flatnonzero(~train)
        texts = [ex.embedded[i] for i in tr]
        model, secs, losses, _ = fine_tune(texts, ex.labels[tr], CONFIG, PAIRS, SEED + 7, 1)
        tuned = vectors(model, ex.embedded)
        cases = [ex.cases[i] for i in te]
        row: dict[str, Any] = {"train": len(tr), "test": len(te), "train_seconds": round(secs), "steps": len(losses)}
        for variant, vecs, th, c_fixed in (
            ("shared", ex.minilm, shipped_th, taskmod.C),
            ("concat", concat(ex.minilm, tuned), threshold, None),
        ):
            data = with_cues(vecs, ex.cue_texts)
            c = c_fixed if c_fixed is not None else choose_c(data[tr], ex.labels[tr], ex.names)[0]
            fitted = Fitted(data[tr], ex.labels[tr], ex.names, c)
            probs = [fitted.probabilities(data[[i]]) for i in te]
            row[variant] = {"C": c, **outcomes(router, cases, probs, th)}
            show(f"{name} {variant} C{c}", row[variant])
        result[name] = row
        (RESULTS / "route26-cross-source.json").write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--test", action="store_true")
    parser.add_argument("--cross-source", action="store_true", help="fit without a source half, test on it")
    parser.add_argument("--blind", default="blind15,blind14", help="--test: blind sets; the first decides")
    args = parser.parse_args()
    import torch

    from llmgw.config import RoutingConfig

    torch.set_num_threads(1)
    router, ex = Router(0.9), Exemplars()
    if args.calibrate:
        calibrate(ex, router)
    elif args.test:
        test(ex, router, RoutingConfig().task_threshold, args.blind.split(","))
    elif args.cross_source:
        cross_source(ex, router, RoutingConfig().task_threshold)


if __name__ == "__main__":
    main()
