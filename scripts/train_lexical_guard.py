"""Train the character n-gram stage of the injection guard (``llmgw/guards/lexical.py``).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/train_lexical_guard.py

Reads the user prompts of ``scripts/train_guards.py`` (attacks and benign prompts, every language
they come in); the test rows listed in ``guardrails/models/splits.json`` are dropped first, so they
are never trained or tuned on. A hash of each row puts three quarters in a *fit* part and one
quarter in a *calibration* part:

* fit: logistic regression (C = 1, balanced classes) on the hashed character 3-5-gram vectors;
* calibration: the model reads only text that is not mostly English at run time (see
  ``llmgw/guards/lexical.py``), so the bias is shifted so that 0.5 is the score above which 1% of
  the calibration part's benign prompts *of that kind* lie (German COVID questions, deepset's
  benign German prompts, tweets in other languages).

Writes ``guardrails/models/injection_ngrams.npz`` and its card ``injection_ngrams.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_guards as tg

from llmgw.guards.classifier import MODELS_DIR
from llmgw.guards.lexical import BUCKETS, LexicalModel, mostly_english, ngram_vector
from llmgw.guards.normalize import normalize

C = 1.0


def records(data: Path) -> tuple[list, dict]:
    """The training script's records, each marked ``test`` (held out in splits.json) or ``train``."""
    test = {src: set(keys) for src, keys in json.loads((MODELS_DIR / "splits.json").read_text())["test"].items()}
    recs, bipia = tg.load_records(data)
    for r in recs:
        r.split = "test" if r.key in test.get(r.source, ()) else "train"
    return recs, bipia


def part(key: str) -> str:
    return "calibrate" if int(hashlib.sha1(key.encode()).hexdigest()[:6], 16) % 4 == 0 else "fit"


def matrix(texts: list[str]) -> sparse.csr_matrix:
    data: list[np.ndarray] = []
    index: list[np.ndarray] = []
    indptr = [0]
    for text in texts:
        i, v = ngram_vector(normalize(text).text)
        index.append(i)
        data.append(v)
        indptr.append(indptr[-1] + len(i))
    return sparse.csr_matrix((np.concatenate(data), np.concatenate(index), indptr), shape=(len(texts), BUCKETS))


def cut(scores: np.ndarray, fpr: float) -> float:
    """The score with at most ``fpr`` of ``scores`` above it."""
    ranked = np.sort(scores)[::-1]
    return float(ranked[min(int(fpr * len(ranked)), len(ranked) - 1)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=MODELS_DIR)
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    recs, _ = records(args.data or tg.default_data_dir())
    rows = [r for r in recs if r.kind == "prompt" and r.inj in (0, 1) and r.split != "test"]
    # the training script's own rules first: dev-only rows (hand-written trigger prompts kept for
    # thresholds) only calibrate, train-only rows (hand-written hard negatives) only fit
    fit = [r for r in rows if not r.extra.get("dev_only") and (r.extra.get("train_only") or part(r.key) == "fit")]
    cal = [r for r in rows if r.extra.get("dev_only") or (not r.extra.get("train_only") and part(r.key) == "calibrate")]
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000)
    # hand-written hard negatives (benign prompts full of trigger words) count three times, as in
    # the embedding model: a string model is quick to learn "instructions" as an attack word
    weights = np.array([tg.HANDWRITTEN_WEIGHT if r.source.startswith("handwritten/") else 1.0 for r in fit])
    clf.fit(matrix([r.text for r in fit]), np.array([r.inj for r in fit]), sample_weight=weights)
    z = clf.decision_function(matrix([r.text for r in cal]))
    # at run time the model reads only text that is not mostly English: calibrate on that text
    foreign = np.array([not mostly_english(normalize(r.text).text) for r in cal])
    benign = np.array([r.inj == 0 for r in cal]) & foreign
    trigger = np.array([r.inj == 0 and bool(tg.TRIGGER_WORDS.search(r.text)) for r in cal])
    shift = -cut(z[benign], 0.01) - 1e-4  # the cut itself falls below 0.5
    p = np.where(foreign, 1.0 / (1.0 + np.exp(-(z + shift))), 0.0)
    by: dict[str, list[bool]] = defaultdict(list)
    for r, s in zip(cal, p, strict=True):
        if r.inj == 1:
            by[r.source].append(bool(s >= 0.5))
    meta = {
        "kind": "char n-grams",
        "orders": [3, 4, 5],
        "buckets": BUCKETS,
        "C": C,
        "calibration_shift": round(shift, 4),
        "rows": {
            "fit": len(fit),
            "fit_attacks": sum(r.inj for r in fit),
            "calibrate": len(cal),
            "calibrate_benign_not_english": int(benign.sum()),
            "calibrate_not_english": int(foreign.sum()),
            "calibrate_trigger_benign": int(trigger.sum()),
        },
        "calibration_part": {
            "fpr_at_0.5": round(float((p[np.array([r.inj == 0 for r in cal])] >= 0.5).mean()), 4),
            "fpr_not_english_at_0.5": round(float((p[benign] >= 0.5).mean()), 4),
            "trigger_fpr_at_0.5": round(float((p[trigger] >= 0.5).mean()), 4),
            "tpr_at_0.5": {k: [len(v), round(float(np.mean(v)), 3)] for k, v in sorted(by.items())},
        },
    }
    model = LexicalModel(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]) + shift, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "injection_ngrams.npz")
    write_card(args.out / "injection_ngrams.md", meta)
    print(json.dumps(meta, indent=1))


def write_card(path: Path, meta: dict) -> None:
    rows, cal = meta["rows"], meta["calibration_part"]
    lines = [
        "# Data card: the character n-gram stage of the injection guard",
        "",
        "Written by `scripts/train_lexical_guard.py`; the code is `llmgw/guards/lexical.py`.",
        "",
        "- **What it scores:** user turns (and their decoded variants), as hashed character 3-5-grams of",
        "  the normalised, lower-cased text; it sees attacks in languages the English embedding model does",
        "  not read (deepset's German prompts).",
        f"- **Data:** the user prompts of `train_guards.py` (gandalf, verazuo, giskard, deepset attacks; benign"
        f" prompts of deepset, the COVID FAQ, Davidson, Surge and hand-written hard negatives), test split"
        f" excluded. Fit: {rows['fit']} prompts ({rows['fit_attacks']} attacks). Calibration:"
        f" {rows['calibrate']} prompts, {rows['calibrate_not_english']} of them not mostly English"
        f" ({rows['calibrate_benign_not_english']} benign); {rows['calibrate_trigger_benign']} benign"
        " with trigger words.",
        f"- **Calibration:** 0.5 = at most 1% of the calibration part's benign prompts that are not mostly"
        f" English above it. On all its benign prompts: FPR {cal['fpr_at_0.5']}; with trigger words:"
        f" {cal['trigger_fpr_at_0.5']}.",
        "",
        "TPR at 0.5 on the calibration part (near-duplicates may straddle the parts, so this is",
        "optimistic; held-out numbers are in `docs/benchmarks.md`):",
        "",
        "| attack set | n | TPR |",
        "|---|---|---|",
        *[f"| {k} | {n} | {v:.3f} |" for k, (n, v) in cal["tpr_at_0.5"].items()],
        "",
        "Limits: it learns the strings of the attack sets it was given; a new phrasing in a language it",
        "has not seen is left to the embedding classifier and the rules. It does not read retrieved",
        "passages or tool output.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
