#!/usr/bin/env python
"""Issue 17, round 4: round 3's data with the lexicon decision apart from the threshold, and more
negated and counter-speech frames in the calibration split (``moderation_compose.CAL_FRAMES``).

Round 3 failed the ship check for two reasons (docs/guardrails.md, "Round 3 operating rule"): the
lexicon hits scored 0.9 and so shared the classifier's threshold (every worst-source cap under ~0.11 put
the threshold above 0.9 and switched the lexicons off), and calibration held 9 composed negated rows, so
no cap could protect the negated test sentences. Round 4's model file (``train_moderation.py`` with
``COMPOSE = True``, ``WORST_CAP = 0.10``) is read here at its own 0.5, which is the rule

* threshold: the lowest at which the classifier alone flags at most 10 % of every benign calibration
  source with at least 10 calibration rows;
* lexicon floor: a category lexicon's hit counts (lifts its category to 1.0) only where the classifier's
  own score for that text reaches the floor, the lowest floor at which every such source still stays
  at most 10 %.

The caps were written into a commit message before any round-4 figure was read. Sensitivity rows (the
same rule at 0.08 and 0.12, at 0.10 counting every source, and at 0.10 with the lexicon hits counting
whatever the classifier says, as rounds 2 and 3 did) are chosen on calibration the same way, reported,
never chosen from. The ship check (``moderation_operating_rule.ship_check``) is against round 2 as
shipped, on the test split and the hand-written held-out sentences.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/moderation_round4.py \
        --round2 R2.npz --round4 R4.npz --out bench/results/2026-12-04-moderation-round4.json
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

from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import (  # noqa: E402
    harm_scores,
    logit,
    model_scores,
    operating_rule,
    prf,
    stream_flags,
    threshold_for,
    with_lexicon,
)
from guard_training.moderation_data import load_rows  # noqa: E402
from guard_training.moderation_heldout import heldout_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from moderation_operating_rule import figures, heldout_figures, ship_check  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from llmgw.guards.moderation import Moderator  # noqa: E402

#: (name, worst-source cap, fewest calibration rows a source needs, lexicon floor chosen (True) or
#: lexicon hits counting whatever the classifier says (False)). The first is the round-4 rule (the file's 0.5).
RULES: tuple[tuple[str, float, int, bool], ...] = (
    ("worst(n>=10)<=0.10+floor", 0.10, 10, True),
    ("worst(n>=10)<=0.08+floor", 0.08, 10, True),
    ("worst(n>=10)<=0.12+floor", 0.12, 10, True),
    ("worst<=0.10+floor", 0.10, 0, True),
    ("worst(n>=10)<=0.10,lexicon always", 0.10, 10, False),
)


_RUNS = [0]


def ms_per_window(path: Path) -> float:
    """Median ms to score one 8-word window with the run-time encoder (one thread); every call scores
    new texts (the encoder keeps recent vectors, so a repeated text would measure its cache)."""
    from llmgw.encoders import encoder

    live = Moderator(path, encoder("float"))
    _RUNS[0] += 1
    words = ["and", "then", "I", "will", "find", "you", "and", "hurt"]
    live.score(" ".join(words))
    times = []
    for i in range(200):
        text = " ".join([*words[: 8 - 2], f"r{_RUNS[0]}", f"n{i}"])
        t0 = time.perf_counter()
        live.score(text)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--round2", type=Path, required=True, help="round 2's file (shipped)")
    ap.add_argument("--round4", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--timing", action="store_true", help="also the ms per 8-word window of both files")
    default_cache = os.environ.get("LLMGW_VECTOR_CACHE", "/tmp/llmgw-moderation-vectors")
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    ap.add_argument("--only-timing", action="store_true", help="only the timing, added to an existing --out")
    args = ap.parse_args()
    if args.only_timing:
        result = json.loads(args.out.read_text(encoding="utf-8"))
        runs = {f"{name} {k}": ms_per_window(path) for k in range(3)
                for name, path in (("round2", args.round2), ("round4", args.round4))}  # fmt: skip
        result["ms_per_8_word_window"] = runs
        print("ms per window", json.dumps(runs), flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    rows = load_rows(default_data_dir(), answers=True, compose=True)
    cal = [r for r in rows if r.split == "cal"]
    test = [r for r in rows if r.split == "test"]
    held = heldout_rows()
    embed = VectorCache(args.cache)
    result: dict = {"rows": {"cal": len(cal), "test": len(test), "heldout": len(held)}}

    # round 2 as shipped: its 0.5, lexicon hits at 0.9 whatever the classifier says
    r2 = Moderator(args.round2, embed)
    s2 = harm_scores(r2, cal + test + held)
    base = {"threshold": 0.5, "calibration": figures(cal, s2[: len(cal)], 0.5),
            "test": figures(test, s2[len(cal) : len(cal) + len(test)], 0.5),
            "heldout": heldout_figures(held, s2[len(cal) + len(test) :], 0.5)}  # fmt: skip
    result["round2 shipped(0.5)"] = base
    print("round2 shipped", json.dumps({k: base["calibration"][k] for k in ("f1", "mean_benign_fpr")}), flush=True)

    r4 = Moderator(args.round4, embed)
    meta = r4.metadata
    own, lex = model_scores(r4, cal + test + held)
    oc, ot, oh = own[: len(cal)], own[len(cal) : len(cal) + len(test)], own[len(cal) + len(test) :]
    lc, lt, lh = lex[: len(cal)], lex[len(cal) : len(cal) + len(test)], lex[len(cal) + len(test) :]
    result["round4 file"] = {k: meta.get(k) for k in ("operating_rule", "lexicon_floor", "lexicon_score", "head_grid",
                                                       "harmful_unit", "train_hash")}  # fmt: skip
    benign = ~np.array([bool(r.harmful) for r in cal])
    for name, cap, min_n, floor_chosen in RULES:
        t, floor = operating_rule(cal, oc, lc, cap, min_n=min_n)  # calibration only
        score_of = lambda o, x, f=floor: with_lexicon(o, x, f)  # noqa: E731
        if not floor_chosen:  # rounds 2 and 3: every lexicon hit scores 0.9, so it shares the threshold
            score_of = lambda o, x: np.where(x, np.maximum(o, 0.9), o)  # noqa: E731
            t, floor = threshold_for(cal, score_of(oc, lc), None, cap, min_n), float("nan")
        res = {"threshold": t, "lexicon_floor": floor,
               "calibration": figures(cal, score_of(oc, lc), t),
               "test": figures(test, score_of(ot, lt), t),
               "heldout": heldout_figures(held, score_of(oh, lh), t),
               "lexicon_hits": {"cal_benign": int((lc & benign).sum()),
                                "cal_benign_flagged": int((lc & benign & (score_of(oc, lc) >= t)).sum())}}  # fmt: skip
        res["ship_check"] = ship_check(base["test"], res, base["heldout"]["recall"])
        result[f"round4 {name}"] = res
        tb = {k: res["test"][k] for k in ("f1", "recall", "mean_benign_fpr", "worst_benign_fpr", "worst_source")}
        print(name, f"t={t:.4f} floor={floor:.4f}", "cal", json.dumps({k: res["calibration"][k] for k in (
            "f1", "mean_benign_fpr", "worst_benign_fpr", "worst_source")}), flush=True)  # fmt: skip
        print("   test", json.dumps(tb), "per_kind", json.dumps(res["test"]["per_kind"]),
              "heldout", res["heldout"]["recall"], flush=True)  # fmt: skip
        print("   ship check", json.dumps(res["ship_check"]), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    # the stream path through the real guard code, round 4 at its own 0.5 (the rule) and round 2 at its 0.5
    own_point = "round4 worst(n>=10)<=0.10+floor" if meta.get("operating_rule") else "file's own 0.5 (no rule in it)"
    result.setdefault(own_point, {})
    for name, mod in (("round2 shipped(0.5)", r2), (own_point, r4)):
        sentences = tuple(mod.metadata.get("confirm_sentences") or (0, 0))
        for split_name, part in (("test", test), ("heldout", held)):
            y = np.array([bool(r.harmful) for r in part])
            sf = np.array(stream_flags(mod, part, 0.5, sentences))  # type: ignore[arg-type]
            result[name][f"stream_{split_name}"] = prf(y, sf)
            print(name, "stream", split_name, json.dumps(result[name][f"stream_{split_name}"]), flush=True)
    # the file's own 0.5 must be the rule's threshold (the shift), else the table above is not what ships
    t_rule = result["round4 worst(n>=10)<=0.10+floor"]["threshold"]
    result["round4 file"]["rule_threshold_in_file_scale"] = t_rule
    result["round4 file"]["rule_threshold_logit"] = round(logit(t_rule), 4)
    if args.timing:
        pairs = (("round2", args.round2), ("round4", args.round4))
        result["ms_per_8_word_window"] = {f"{name} {k}": ms_per_window(path) for k in range(3) for name, path in pairs}
        print("ms per window", json.dumps(result["ms_per_8_word_window"]), flush=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="blas"):
        main()
