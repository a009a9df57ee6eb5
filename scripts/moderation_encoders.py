#!/usr/bin/env python
"""Output moderation: is a stronger sentence encoder that installs offline worth its cost? (issue 17)

    cd scripts && OMP_NUM_THREADS=1 ../.venv/bin/python moderation_encoders.py --mpnet MPNET_DIR

The shipped moderation head reads all-MiniLM-L6-v2. all-mpnet-base-v2 is the strongest general encoder
on PyPI here (five zip parts, Apache-2.0; how to fetch it: docs/benchmarks.md, "Semantic cache"). Both
get the same rows and the same head: the round-2 training rows (``load_rows(answers=True)``),
subsampled per source with a fixed seed (at most 400 train, 150 calibration and 150 test rows per
source), the whole text as one view, an MLP with 256 hidden units; the threshold is the shipped rule's
(5 % mean benign flag rate over the calibration sources); figures on the test split and on the
hand-written held-out sentences (``bench/data/moderation_heldout``, not a blind set). Nothing here is
shipped or chosen: it measures how much of the recall gap the encoder explains.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from guard_training.data import default_data_dir
from guard_training.moderation import macro_fpr, prf, threshold_for_fpr
from guard_training.moderation_data import ModRow, load_rows
from guard_training.moderation_heldout import heldout_rows
from guard_training.vector_cache import VectorCache
from sklearn.neural_network import MLPClassifier


def sample(rows: list[ModRow], split: str, cap: int, rng: random.Random) -> list[ModRow]:
    by: dict[str, list[ModRow]] = defaultdict(list)
    for r in rows:
        if r.split == split:
            by[r.source].append(r)
    out: list[ModRow] = []
    for _, rs in sorted(by.items()):
        rs = rs[:]
        rng.shuffle(rs)
        out += rs[:cap]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpnet", type=Path, required=True, help="the all-mpnet-base-v2 folder")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/llmgw-moderation-vectors"), help="MiniLM vectors")
    ap.add_argument("--out", type=Path, default=Path("../bench/results/2026-12-04-moderation-encoders.json"))
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    rng = random.Random(13)
    rows = load_rows(default_data_dir(), answers=True)
    parts = {"train": sample(rows, "train", 400, rng), "cal": sample(rows, "cal", 150, rng),
             "test": sample(rows, "test", 150, rng), "held": heldout_rows()}  # fmt: skip
    mpnet = SentenceTransformer(str(args.mpnet), device="cpu")
    encoders = {
        "all-MiniLM-L6-v2 (shipped)": VectorCache(args.cache),
        "all-mpnet-base-v2": lambda texts: mpnet.encode(texts, batch_size=32, normalize_embeddings=True),
    }
    out: dict = {"rows": {k: len(v) for k, v in parts.items()}}
    for name, encode in encoders.items():
        started = time.time()
        x = {k: np.asarray(encode([r.text for r in rs])) for k, rs in parts.items()}
        y = np.array([r.harmful for r in parts["train"]])
        head = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=80, early_stopping=True, random_state=7)
        head.fit(x["train"], y)
        s = {k: head.predict_proba(x[k])[:, 1] for k in ("cal", "test", "held")}
        t = threshold_for_fpr(parts["cal"], s["cal"], 0.05)
        test, held = parts["test"], parts["held"]
        yh = np.array([r.harmful for r in held])
        hard = [i for i, r in enumerate(test) if "negat" in r.source or "counter" in r.source]
        out[name] = {
            "threshold": round(t, 3),
            "test": prf(np.array([r.harmful for r in test]), s["test"] >= t),
            "test_mean_benign_fpr": round(macro_fpr(test, s["test"], t), 3),
            "test_negated_and_counter_speech_flagged": round(float(np.mean(s["test"][hard] >= t)), 3),
            "heldout": prf(yh, s["held"] >= t),
            "heldout_benign_twins_flagged": int(((s["held"] >= t) & (yh == 0)).sum()),
            "seconds": round(time.time() - started),
        }
        print(name, json.dumps(out[name]), flush=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
