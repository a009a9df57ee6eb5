#!/usr/bin/env python
"""Output moderation: MiniLM where it is sure, all-mpnet-base-v2 only in a band below its threshold (issue 17).

    cd scripts && OMP_NUM_THREADS=1 ../.venv/bin/python moderation_cascade.py --mpnet MPNET_DIR [--embed-only]

``s`` is the shipped model's score (``guardrails/models/moderation.npz`` read by
:class:`llmgw.guards.moderation.Moderator` over MiniLM vectors, whole text, as the run time and
``moderation_operating_rule.py`` compute it; lexicons included). The cascade flags a text when
``s >= 0.5`` (the shipped verdict); when ``s < b_lo`` it passes; in the band ``b_lo <= s < 0.5`` the
mpnet head decides at its own threshold ``t_m``. The mpnet head is ``moderation_encoders.py``'s: the
same per-source subsample of round 2's rows (seed 13; 400 train / 150 calibration / 150 test per
source), the whole text, a 256-unit MLP (random_state 7).

Chosen on the calibration split only: for each ``b_lo`` in :data:`BANDS`, ``t_m`` is the lowest mpnet
score at which the cascade's mean benign flag rate over the calibration sources is at most the shipped
model's own (at 0.5, same rows) + 1 point; ``b_lo`` is the one with the best cascade calibration F1
(a tie goes to the larger ``b_lo``: fewer mpnet passes). Test split and hand-written held-out figures
(``bench/data/moderation_heldout``) are computed once, after that choice, and only report; the ship
rule is ``docs/experiments/mod17f-rule.md``.

``--embed-only`` fills the vector caches (MiniLM views for the shipped model, mpnet for every sampled
row) and computes no figure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import harm_scores, macro_fpr, prf  # noqa: E402
from guard_training.moderation_data import ModRow, load_rows  # noqa: E402
from guard_training.moderation_heldout import heldout_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from moderation_encoders import sample  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from llmgw.guards.moderation import Moderator  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "guardrails" / "models" / "moderation.npz"
BANDS = (0.05, 0.1, 0.2, 0.3)
SHIPPED_T = 0.5
FPR_SLACK = 0.01


def mpnet_cache(mpnet_dir: Path, cache_dir: Path) -> VectorCache:
    """A :class:`VectorCache` (SHA-1 of the raw text -> vector) whose encoder is mpnet, as
    ``moderation_encoders.py`` calls it (normalised embeddings)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(mpnet_dir), device="cpu")
    cache = VectorCache(cache_dir)
    cache._encoder = lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)
    return cache


def hard(rows: list[ModRow]) -> list[int]:
    """Negated and counter-speech rows, as moderation_encoders.py counts them."""
    return [i for i, r in enumerate(rows) if "negat" in r.source or "counter" in r.source]


def cascade(s: np.ndarray, m: np.ndarray, b_lo: float, t_m: float) -> np.ndarray:
    return (s >= SHIPPED_T) | ((s >= b_lo) & (s < SHIPPED_T) & (m >= t_m))


def mpnet_threshold(rows: list[ModRow], s: np.ndarray, m: np.ndarray, b_lo: float, cap: float) -> float:
    """The lowest mpnet threshold (a calibration mpnet score, or 1.0+ for "never") at which the
    cascade's mean benign flag rate on ``rows`` is at most ``cap``; rates only fall as it rises."""
    best = float(np.nextafter(1.0, 2.0))  # the band never flags
    for t in np.unique(np.round(m, 5))[::-1]:
        if macro_fpr(rows, cascade(s, m, b_lo, float(t)).astype(float), 0.5) > cap:
            break
        best = float(t)
    return best


def figures(rows: list[ModRow], flags: np.ndarray, s: np.ndarray, b_lo: float | None) -> dict:
    y = np.array([bool(r.harmful) for r in rows])
    fpr = round(macro_fpr(rows, flags.astype(float), 0.5), 4)
    out: dict = {"n": len(rows), **prf(y, flags), "mean_benign_fpr": fpr}
    h = hard(rows)
    if h:
        out["negated_and_counter_speech_flagged"] = round(float(flags[h].mean()), 4)
        out["negated_and_counter_speech_n"] = len(h)
    if b_lo is not None:
        band = (s >= b_lo) & (s < SHIPPED_T)
        out["band_share_all"] = round(float(band.mean()), 4)
        out["band_share_benign"] = round(float(band[~y].mean()), 4)
        out["band_share_harmful"] = round(float(band[y].mean()), 4)
    return out


def heldout_extra(rows: list[ModRow], flags: np.ndarray) -> dict:
    y = np.array([bool(r.harmful) for r in rows])
    per = {src: round(float(flags[[i for i, r in enumerate(rows) if r.source == src]].mean()), 4)
           for src in sorted({r.source for r in rows})}  # fmt: skip
    return {"benign_twins_flagged": int((flags & ~y).sum()), "benign_twins_n": int((~y).sum()), "per_kind": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpnet", type=Path, required=True, help="the all-mpnet-base-v2 folder")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/llmgw-moderation-vectors"), help="MiniLM vectors")
    ap.add_argument("--mpnet-cache", type=Path, default=Path("/tmp/mod17f-mpnet-vectors"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "mod17f-cascade.json")
    ap.add_argument("--embed-only", action="store_true")
    args = ap.parse_args()

    rng = random.Random(13)
    rows = load_rows(default_data_dir(), answers=True)
    parts = {"train": sample(rows, "train", 400, rng), "cal": sample(rows, "cal", 150, rng),
             "test": sample(rows, "test", 150, rng), "held": heldout_rows()}  # fmt: skip
    print("rows", {k: len(v) for k, v in parts.items()}, flush=True)
    started = time.time()
    shipped = Moderator(SHIPPED, VectorCache(args.cache))
    s = {k: harm_scores(shipped, parts[k]) for k in ("cal", "test", "held")}
    print(f"shipped scores in {time.time() - started:.0f}s", flush=True)
    started = time.time()
    mp = mpnet_cache(args.mpnet, args.mpnet_cache)
    x = {k: np.asarray(mp([r.text for r in rs])) for k, rs in parts.items()}
    print(f"mpnet vectors in {time.time() - started:.0f}s", flush=True)
    if args.embed_only:
        return

    head = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=80, early_stopping=True, random_state=7)
    head.fit(x["train"], np.array([r.harmful for r in parts["train"]]))
    m = {k: head.predict_proba(x[k])[:, 1] for k in ("cal", "test", "held")}

    # --- calibration only: t_m per b_lo, then b_lo ---
    cal = parts["cal"]
    base_cal = figures(cal, s["cal"] >= SHIPPED_T, s["cal"], None)
    cap = base_cal["mean_benign_fpr"] + FPR_SLACK
    cal_rows = {}
    for b in BANDS:
        t_m = mpnet_threshold(cal, s["cal"], m["cal"], b, cap)
        cal_rows[b] = {"t_m": t_m, **figures(cal, cascade(s["cal"], m["cal"], b, t_m), s["cal"], b)}
        print("cal b_lo", b, json.dumps(cal_rows[b]), flush=True)
    chosen = max(BANDS, key=lambda b: (cal_rows[b]["f1"], b))
    t_m = cal_rows[chosen]["t_m"]
    out: dict = {
        "rows": {k: len(v) for k, v in parts.items()},
        "shipped_model": str(SHIPPED.relative_to(REPO)),
        "calibration": {
            "shipped@0.5": base_cal,
            "benign_cap": round(cap, 4),
            "cascade": {str(b): r for b, r in cal_rows.items()},
        },
        "chosen": {"b_lo": chosen, "t_m": t_m},
    }
    print("chosen", json.dumps(out["chosen"]), flush=True)

    # --- reported once: test split and hand-written held-out ---
    res: dict = {}
    for k in ("test", "held"):
        base, casc = s[k] >= SHIPPED_T, cascade(s[k], m[k], chosen, t_m)
        res[k] = {"shipped@0.5": figures(parts[k], base, s[k], None),
                  "cascade": figures(parts[k], casc, s[k], chosen),
                  "mpnet_alone_at_t_m": figures(parts[k], m[k] >= t_m, s[k], None)}  # fmt: skip
        if k == "held":
            for name, f in (("shipped@0.5", base), ("cascade", casc), ("mpnet_alone_at_t_m", m[k] >= t_m)):
                res[k][name].update(heldout_extra(parts[k], f))
        print(k, json.dumps(res[k]), flush=True)
    out["test"], out["heldout"] = res["test"], res["held"]
    # every b_lo on test too, after the choice (sensitivity, never chosen from)
    out["test_every_b_lo"] = {str(b): figures(parts["test"], cascade(s["test"], m["test"], b, cal_rows[b]["t_m"]),
                                              s["test"], b) for b in BANDS}  # fmt: skip

    st, ct = out["test"]["shipped@0.5"], out["test"]["cascade"]
    sh, ch = out["heldout"]["shipped@0.5"], out["heldout"]["cascade"]
    checks = {
        "a_test_f1": (ct["f1"], st["f1"], ct["f1"] >= st["f1"] + 0.03),
        "b_negated_counter": (ct["negated_and_counter_speech_flagged"], st["negated_and_counter_speech_flagged"],
                              ct["negated_and_counter_speech_flagged"]
                              <= min(st["negated_and_counter_speech_flagged"] + 0.02, 0.15)),
        "c_mean_benign_fpr": (ct["mean_benign_fpr"], st["mean_benign_fpr"],
                              ct["mean_benign_fpr"] <= st["mean_benign_fpr"] + 0.01),
        "d_heldout": ((ch["recall"], ch["benign_twins_flagged"]), (sh["recall"], sh["benign_twins_flagged"]),
                      ch["recall"] >= sh["recall"] + 0.05 and ch["benign_twins_flagged"] <= sh["benign_twins_flagged"]),
        "e_band_share": (ct["band_share_all"], 0.25, ct["band_share_all"] <= 0.25),
    }  # fmt: skip
    out["ship_check"] = {k: {"cascade": v[0], "reference": v[1], "passes": bool(v[2])} for k, v in checks.items()}
    out["ship_check"]["passes"] = all(v[2] for v in checks.values())
    print("ship check", json.dumps(out["ship_check"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="blas"):
        main()
