#!/usr/bin/env python
"""Issue 17, round 3 follow-up: an operating point that caps the *worst* benign source, not the mean.

Round 3's head, read at round 2's rule (5 % *mean* benign FPR over the calibration sources), doubled
the GermEval benign flags and raised the negated flags on the test split: a mean lets one source pay
for the others. This script reads two model files (round 2's and round 3's) on the same rows and, on
the **calibration split only**, picks each model's threshold by rules of the form

* ``mean<=m``: the lowest threshold whose mean benign FPR over the calibration sources is at most m
  (round 2's rule, m = 0.05);
* ``worst<=c``: the lowest threshold at which *every* benign calibration source is flagged at most c;
* ``mean<=m & worst<=c``: the higher of the two thresholds.

The test split and the hand-written held-out sentences (``bench/data/moderation_heldout/``) only
report: F1, recall per harmful kind and per category, flag rate per benign source, and the
counter-speech and negated kinds' flag rates. Scores are cached under ``--work`` so the rules can be
re-read without re-scoring.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/moderation_operating_rule.py \
        --model round2=/tmp/r2.npz --model round3=guardrails/models/moderation.npz --out bench/results/X.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import (  # noqa: E402
    KIND_OF_SOURCE,
    harm_scores,
    macro_fpr,
    prf,
    threshold_for,
    worst_fpr,
)
from guard_training.moderation_data import ModRow, load_rows  # noqa: E402
from guard_training.moderation_heldout import heldout_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from llmgw.guards.moderation import CATEGORIES, Moderator  # noqa: E402

#: (name, mean cap or None, worst-source cap or None, fewest calibration rows a source needs to count
#: for the worst-source cap). The brief's rules (mean 5 %, worst 0.08 / 0.10, both) and worst 0.12 were
#: fixed before any figure was read; the rest is a sensitivity sweep added after, reported, never
#: chosen from. ``shipped(0.5)`` is the model file's own operating point (5 % mean on its own calibration).
RULES: tuple[tuple[str, float | None, float | None, int], ...] = (
    ("shipped(0.5)", None, None, 0),
    ("mean<=0.05", 0.05, None, 0),
    ("worst<=0.08", None, 0.08, 0),
    ("worst<=0.10", None, 0.10, 0),
    ("mean<=0.05&worst<=0.08", 0.05, 0.08, 0),
    ("mean<=0.05&worst<=0.10", 0.05, 0.10, 0),
    *((f"worst<={c:.2f}", None, c, 0) for c in (0.12, 0.14, 0.16, 0.18, 0.20)),
    *((f"worst(n>=50)<={c:.2f}", None, c, 50) for c in (0.08, 0.10, 0.12, 0.15)),
)


def figures(rows: list[ModRow], scores: np.ndarray, t: float) -> dict:
    """Whole-text figures at ``t``: P/R/F1, mean and worst benign FPR, flag rate per kind, recall per
    harm category (rows labelled with it), flag rate per benign source (with n)."""
    flags = scores >= t
    y = np.array([bool(r.harmful) for r in rows])
    worst, src = worst_fpr(rows, scores, t)
    out: dict = {**prf(y, flags), "mean_benign_fpr": round(macro_fpr(rows, scores, t), 4),
                 "worst_benign_fpr": round(worst, 4), "worst_source": src}  # fmt: skip
    kinds: dict[str, list[int]] = defaultdict(list)
    cats: dict[str, list[int]] = defaultdict(list)
    benign: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.source in KIND_OF_SOURCE:
            kinds[KIND_OF_SOURCE[r.source]].append(i)
        for c in r.cats if r.harmful else ():
            cats[c].append(i)
        if not r.harmful:
            benign[r.source].append(i)
    out["per_kind"] = {k: round(float(flags[v].mean()), 4) for k, v in sorted(kinds.items())}
    out["recall_per_category"] = {c: round(float(flags[cats[c]].mean()), 4) for c in CATEGORIES if cats[c]}
    out["benign_per_source"] = {s: {"n": len(v), "flagged": round(float(flags[v].mean()), 4)}
                                for s, v in sorted(benign.items())}  # fmt: skip
    return out


def ship_check(base: dict, new: dict, heldout_base: float) -> dict:
    """The project's over-defence rule on the test split: no benign source's flag rate more than
    doubles against the shipped model (``base``, test figures), negated and counter-speech flag
    rates at most 0.15; and the hand-written held-out recall above the shipped model's."""
    doubled = {s: (b["flagged"], new["test"]["benign_per_source"][s]["flagged"])
               for s, b in base["benign_per_source"].items()
               if new["test"]["benign_per_source"][s]["flagged"] > 2 * b["flagged"]}  # fmt: skip
    neg, counter = new["test"]["per_kind"]["negated"], new["test"]["per_kind"]["counter_speech"]
    held = new["heldout"]["recall"]
    return {"doubled_sources": doubled, "negated": neg, "counter_speech": counter, "heldout_recall": held,
            "passes": not doubled and neg <= 0.15 and counter <= 0.15 and held > heldout_base}  # fmt: skip


def heldout_figures(rows: list[ModRow], scores: np.ndarray, t: float) -> dict:
    flags = scores >= t
    y = np.array([bool(r.harmful) for r in rows])
    per = {s: round(float(flags[[i for i, r in enumerate(rows) if r.source == s]].mean()), 4)
           for s in sorted({r.source for r in rows})}  # fmt: skip
    return {**prf(y, flags), "per_kind": per}


def score(name: str, path: Path, rows: list[ModRow], embed: VectorCache, work: Path) -> np.ndarray:
    cached = work / f"scores-{name}.npy"
    if cached.exists():
        out = np.load(cached)
        if len(out) == len(rows):
            return out
    mod = Moderator(path, embed)
    out = harm_scores(mod, rows)
    np.save(cached, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True, help="name=path to a moderation .npz")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "moderation-rule")
    default_cache = os.environ.get("LLMGW_VECTOR_CACHE", "/tmp/llmgw-moderation-vectors")
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = load_rows(default_data_dir(), answers=True, compose=True)
    cal = [r for r in rows if r.split == "cal"]
    test = [r for r in rows if r.split == "test"]
    held = heldout_rows()
    everything = cal + test + held
    embed = VectorCache(args.cache)
    result: dict = {}
    for spec in args.model:
        name, path = spec.split("=", 1)
        s = score(name, Path(path), everything, embed, args.work)
        cs, ts, hs = s[: len(cal)], s[len(cal) : len(cal) + len(test)], s[len(cal) + len(test) :]
        res: dict = {}
        for rule, mean_cap, worst_cap, min_n in RULES:
            t = 0.5 if rule.startswith("shipped") else threshold_for(cal, cs, mean_cap, worst_cap, min_n)  # calibration
            res[rule] = {"threshold": t, "calibration": figures(cal, cs, t), "test": figures(test, ts, t),
                         "heldout": heldout_figures(held, hs, t)}  # fmt: skip
            brief = {
                k: res[rule]["calibration"][k] for k in ("f1", "mean_benign_fpr", "worst_benign_fpr", "worst_source")
            }
            tb = {
                k: res[rule]["test"][k] for k in ("f1", "recall", "mean_benign_fpr", "worst_benign_fpr", "worst_source")
            }
            print(name, rule, f"t={t:.4f}", "cal", json.dumps(brief), "test", json.dumps(tb),
                  "negated", res[rule]["test"]["per_kind"].get("negated"),
                  "counter", res[rule]["test"]["per_kind"].get("counter_speech"),
                  "germeval", res[rule]["test"]["benign_per_source"].get("germeval_other"),
                  "heldout_recall", res[rule]["heldout"]["recall"], flush=True)  # fmt: skip
        result[name] = res
        if "round2" in result:  # against round 2 as shipped
            base = result["round2"]["shipped(0.5)"]
            for rule, r in res.items():
                r["ship_check"] = ship_check(base["test"], r, base["heldout"]["recall"])
                print("  ship check", name, rule, json.dumps(r["ship_check"]), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="blas"):
        main()
