#!/usr/bin/env python
"""Issue 17, round 2: does harmful-*answer* data or a bigger head lift output-moderation recall on
threats, self-harm encouragement and violent instructions without flagging counter-speech?

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/moderation_experiment.py select-hh
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/moderation_experiment.py compare
    git show ab5915f:guardrails/models/moderation.npz > /tmp/old.npz
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/moderation_experiment.py before-after \
        --old /tmp/old.npz --out bench/results/moderation_before_after.json

``select-hh`` writes the HH-RLHF rejected replies kept as harmful (``guard_training/moderation_hh.py``
says how; the shipped model scores the requests, so run it before a new model is shipped).
``compare`` scores the shipped model and every recipe (training data x head) on one set of rows:
each recipe is fitted on the train split, its threshold set for 5 % macro benign FPR on the
calibration split, and the recipe is *chosen* on calibration F1; the test split only reports.
``before-after`` reports the shipped and the new model file on the same rows, as the data card does.
Results go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import (  # noqa: E402
    DEFAULT_FPR,
    fit_categories,
    fit_harmful,
    harm_scores,
    macro_fpr,
    make_model,
    prf,
    threshold_for_fpr,
)
from guard_training.moderation_data import ModRow, load_rows  # noqa: E402
from guard_training.moderation_frames import KIND_OF_SOURCE as KIND  # noqa: E402
from guard_training.moderation_hh import IDS_FILE, first_turns, load_ids, select  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from llmgw.guards.moderation import Moderator  # noqa: E402


def evaluate(mod: Moderator, rows: list[ModRow], threshold: float) -> dict:
    """Whole-text figures on ``rows``: precision / recall / F1 / benign FPR, macro benign FPR, and the
    share flagged per source and per kind."""
    scores = harm_scores(mod, rows)
    flags = scores >= threshold
    y = np.array([bool(r.harmful) for r in rows])
    out = prf(y, flags)
    out["macro_benign_fpr"] = round(macro_fpr(rows, scores, threshold), 4)
    per: dict[str, list[bool]] = {}
    kinds: dict[str, list[bool]] = {}
    for r, f in zip(rows, flags, strict=True):
        per.setdefault(r.source, []).append(bool(f))
        if r.source in KIND:
            kinds.setdefault(KIND[r.source], []).append(bool(f))
    out["per_source"] = {s: round(float(np.mean(v)), 4) for s, v in sorted(per.items())}
    out["per_kind"] = {k: round(float(np.mean(v)), 4) for k, v in sorted(kinds.items())}
    return out


def recipe_rows(rows: list[ModRow], data: str) -> list[ModRow]:
    """The training rows of a data recipe: ``old`` (the shipped sources), ``+answers``, ``+hh``, ``+both``."""
    keep = [r for r in rows if r.split == "train"]
    if data in ("old", "+hh"):
        keep = [r for r in keep if not r.source.startswith("answers_")]
    if data in ("old", "+answers"):
        keep = [r for r in keep if r.source != "hh_rejected"]
    return keep


def select_hh(data: Path, embed: VectorCache) -> None:
    mod = Moderator(embed=embed)
    scores = [r.score for r in mod.score_many(first_turns(data))]
    ids = select(data, scores)
    IDS_FILE.write_text(json.dumps({"how": "guard_training/moderation_hh.py, model of commit ab5915f",
                                    "ids": ids}) + "\n", encoding="utf-8")  # fmt: skip
    print(f"hh rejected kept: {len(ids)} of {len(scores)} (requests flagged: {sum(s >= 0.5 for s in scores)})")


def compare(data: Path, embed: VectorCache, out: Path, recipes: list[str], heads: list[str]) -> None:
    rows = load_rows(data, answers=True, hh_rejected=load_ids())
    cal, test = [r for r in rows if r.split == "cal"], [r for r in rows if r.split == "test"]
    results: dict = {}
    shipped = Moderator(embed=embed)
    t_cal = threshold_for_fpr(cal, harm_scores(shipped, cal), DEFAULT_FPR)
    results["shipped"] = {"threshold": 0.5, "cal": evaluate(shipped, cal, 0.5), "test": evaluate(shipped, test, 0.5),
                          "threshold_recal": t_cal, "test_recal": evaluate(shipped, test, t_cal)}  # fmt: skip
    brief = {k: {kk: vv for kk, vv in v.items() if kk != "per_source"}
             for k, v in results["shipped"].items() if isinstance(v, dict)}  # fmt: skip
    print("shipped", json.dumps(brief), flush=True)
    for data_recipe in recipes:
        train = recipe_rows(rows, data_recipe)
        cats = fit_categories(train, embed)
        for head in heads:
            hidden, alpha = head.split("/")
            t0 = time.time()
            harm = fit_harmful(train, embed, float(alpha), int(hidden))
            mod = Moderator(make_model(cats, {}), embed, harmful=harm)
            t = threshold_for_fpr(cal, harm_scores(mod, cal), DEFAULT_FPR)
            res = {"threshold": t, "cal": evaluate(mod, cal, t), "test": evaluate(mod, test, t),
                   "fit_s": round(time.time() - t0)}  # fmt: skip
            results[f"{data_recipe} {head}"] = res
            print(data_recipe, head, json.dumps({"cal": {k: res["cal"][k] for k in ("f1", "macro_benign_fpr")},
                                                 "test": {k: v for k, v in res["test"].items() if k != "per_source"}}),
                  flush=True)  # fmt: skip
            out.write_text(json.dumps(results, indent=1), encoding="utf-8")


def before_after(data: Path, embed: VectorCache, old: Path, new: Path, out: Path) -> None:
    """Two model files on the same rows (the shipped data with the templated and composed answers), and
    on the hand-written held-out sentences, each at its own
    0.5 (5 % benign FPR on its own calibration split): calibration whole text, and the test split as
    the data card reports it (whole text, stream path, per source and per kind); plus the cost of
    scoring one 8-word window (encoder pass and units) with the run-time encoder."""
    from guard_training.moderation import report, stream_flags
    from guard_training.moderation_heldout import heldout_rows

    from llmgw.encoders import encoder

    rows = load_rows(data, answers=True, compose=True)
    held = heldout_rows()
    results: dict = {}
    for name, path in (("before", old), ("after", new)):
        mod = Moderator(path, embed)
        sentences = tuple(mod.metadata.get("confirm_sentences") or (0, 0))
        results[name] = {"cal": report(mod, rows, "cal", 0.5, stream=False),
                         "test": report(mod, rows, "test", 0.5, sentences=sentences)}  # type: ignore[arg-type]  # fmt: skip
        # the hand-written held-out sentences: per kind, whole text and as a stream
        whole = harm_scores(mod, held) >= 0.5
        stream = np.array(stream_flags(mod, held, 0.5, sentences))  # type: ignore[arg-type]
        results[name]["heldout"] = {
            s: {"n": len(idx), "whole_text": round(float(whole[idx].mean()), 4),
                "stream": round(float(stream[idx].mean()), 4)}
            for s in sorted({r.source for r in held}) for idx in [[i for i, r in enumerate(held) if r.source == s]]
        }  # fmt: skip
        y = np.array([bool(r.harmful) for r in held])
        results[name]["heldout_all"] = {"whole_text": prf(y, whole), "stream": prf(y, stream)}
        live = Moderator(path, encoder("float"))
        window = "and then I will find you and hurt you badly"
        live.score(window)
        t0 = time.perf_counter()
        for i in range(200):
            live.score(f"{window} {i}")
        vec = embed([window])
        t1 = time.perf_counter()
        for _ in range(2000):
            live.probabilities(vec)
        results[name]["ms_per_window"] = round((t1 - t0) / 200 * 1000, 3)
        results[name]["ms_units_per_window"] = round((time.perf_counter() - t1) / 2000 * 1000, 4)
        brief = {**{k: results[name]["test"][k] for k in ("whole_text", "stream", "per_kind")},
                 "heldout": results[name]["heldout"]}  # fmt: skip
        print(name, json.dumps(brief), results[name]["ms_per_window"], results[name]["ms_units_per_window"], flush=True)
        out.write_text(json.dumps(results, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=("select-hh", "compare", "before-after"))
    ap.add_argument("--old", type=Path, help="before-after: the model file shipped before")
    ap.add_argument("--new", type=Path, default=REPO / "guardrails" / "models" / "moderation.npz")
    ap.add_argument("--data", type=Path, default=None)
    default_cache = os.environ.get("LLMGW_VECTOR_CACHE") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "llmgw-moderation-vectors"
    )
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "moderation_experiment.json")
    ap.add_argument("--recipes", default="old,+answers,+hh,+both")
    ap.add_argument("--heads", default="256/0.001,256/0.01")
    args = ap.parse_args(argv)
    data = args.data or default_data_dir()
    embed = VectorCache(args.cache)
    with threadpool_limits(limits=1, user_api="blas"):
        if args.stage == "select-hh":
            select_hh(data, embed)
        elif args.stage == "before-after":
            before_after(data, embed, args.old, args.new, args.out)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            compare(data, embed, args.out, args.recipes.split(","), args.heads.split(","))


if __name__ == "__main__":
    main()
