#!/usr/bin/env python
"""Issue 17, round 3: do composed harmful messages (threats, harassment, self-harm encouragement,
violent instructions, split by frame *and* phrase; ``guard_training/moderation_compose.py``) lift
recall without flagging their benign twins?

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/moderation_round3.py --out bench/results/X.json

Both recipes (round 2's data, and round 2's data plus the composed rows) are fitted on the train
split with the shipped head (512 units, L2 1e-3); each one's threshold is set on the calibration split
(all rows of both recipes, so both are read against the same benign sources) for a macro benign FPR
target, and the recipe and target are chosen on calibration. The test split and the hand-written
held-out sentences (``bench/data/moderation_heldout/``, written before this script was run, never
used for a choice) only report. ``--loso-compose`` also fits each recipe without the composed rows'
dataset... (round 2 never saw them; round 3 fitted without them is the same recipe).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import (  # noqa: E402
    KIND_OF_SOURCE,
    fit_categories,
    fit_harmful,
    harm_scores,
    macro_fpr,
    make_model,
    prf,
    stream_flags,
    threshold_for_fpr,
)
from guard_training.moderation_data import ModRow, load_rows  # noqa: E402
from guard_training.moderation_heldout import heldout_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from llmgw.guards.moderation import Moderator  # noqa: E402

TARGETS = (0.05, 0.075)


def evaluate(mod: Moderator, rows: list[ModRow], t: float, stream: bool = False) -> dict:
    scores = harm_scores(mod, rows)
    flags = scores >= t
    y = np.array([bool(r.harmful) for r in rows])
    out: dict = {"n": len(rows), **prf(y, flags), "macro_benign_fpr": round(macro_fpr(rows, scores, t), 4)}
    kinds: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        kinds[KIND_OF_SOURCE.get(r.source, r.source)].append(i)
    out["per_kind"] = {k: round(float(flags[v].mean()), 4) for k, v in sorted(kinds.items())
                       if k in set(KIND_OF_SOURCE.values()) or k.startswith("heldout_")}  # fmt: skip
    if stream:
        sf = np.array(stream_flags(mod, rows, t, (0, 0)))
        out["stream"] = prf(y, sf)
        out["stream_per_kind"] = {k: round(float(sf[v].mean()), 4) for k, v in sorted(kinds.items())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    default_cache = os.environ.get("LLMGW_VECTOR_CACHE", "/tmp/llmgw-moderation-vectors")
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    args = ap.parse_args()
    t0 = time.time()
    rows = load_rows(default_data_dir(), answers=True, compose=True)
    embed = VectorCache(args.cache)
    cal = [r for r in rows if r.split == "cal"]
    test = [r for r in rows if r.split == "test"]
    held = heldout_rows()
    result: dict = {}
    for name, keep in (("round2", lambda r: not r.source.startswith("compose_")), ("round3", lambda r: True)):
        train = [r for r in rows if r.split == "train" and keep(r)]
        harm = fit_harmful(train, embed, 1e-3, 512)
        mod = Moderator(make_model(fit_categories(train, embed), {}), embed, harmful=harm)
        cs = harm_scores(mod, cal)
        yc = np.array([bool(r.harmful) for r in cal])
        res: dict = {"train_rows": len(train)}
        for target in TARGETS:
            t = threshold_for_fpr(cal, cs, target)
            cal_fpr = round(macro_fpr(cal, cs, t), 4)
            res[str(target)] = {
                "threshold": t, "calibration": {**prf(yc, cs >= t), "macro_benign_fpr": cal_fpr},
                "calibration_per_kind": evaluate(mod, cal, t)["per_kind"],
                "test": evaluate(mod, test, t), "heldout": evaluate(mod, held, t, stream=True),
            }  # fmt: skip
            print(name, target, json.dumps(res[str(target)]), flush=True)
        result[name] = res
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="blas"):
        main()
