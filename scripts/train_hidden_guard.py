"""Train the hidden-instruction stage of the injection guard (``llmgw/guards/hidden.py``).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python scripts/train_hidden_guard.py

Reads the same data and the same held-out test split as ``scripts/train_guards.py`` (the test rows
listed in ``guardrails/models/splits.json`` are dropped before anything else, so they are never
trained or tuned on). Of the remaining passages, a hash of the attack string (or of the benign
passage) puts two thirds in a *fit* half and one third in a *calibration* half:

* fit: first the *request* direction, a logistic regression on embeddings of user prompts (what
  people ask a model; up to 400 characters, benign and attacks, test split excluded) against the
  sentences of the fit half's benign passages (what documents say); then a logistic unit over each
  sentence's three features (the shipped injection model's logit for the sentence, its cosine to
  the rest of the passage, its request logit); a sentence is positive when it is the planted
  attack;
* calibration: the bias is shifted so that a passage scores 0.5 when its best sentence is above
  all but 1% of the calibration half's benign passages, the same convention as the injection
  model; the card reports TPR on this half (optimistic for the window score, whose model saw
  some of these rows in training; ``bench.guard_quality`` has the held-out numbers).

Writes ``guardrails/models/injection_sentences.npz`` and its card ``injection_sentences.md``.
Rerun after retraining the injection model: the two are a pair (checked at load time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_guards as tg

from llmgw.encoders import encoder
from llmgw.guards.classifier import MODELS_DIR
from llmgw.guards.hidden import FEATURES, HiddenInstructionModel, SentenceStage, features, model_digest, sentences
from llmgw.guards.injection import InjectionDetector
from llmgw.guards.normalize import normalize

C = 1.0  # chosen on the calibration half among 0.1 and 1.0 (and against two-feature variants)
REQUEST_PROMPTS = 4000
CALIBRATION_FPR = 0.01


def half(key: str) -> str:
    return "calibrate" if int(hashlib.sha1(key.encode()).hexdigest()[:6], 16) % 3 == 0 else "fit"


def canon(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def records(data: Path) -> tuple[list, dict]:
    """The training script's records, each marked ``test`` (held out) or ``train``."""
    test = {src: set(keys) for src, keys in json.loads((MODELS_DIR / "splits.json").read_text())["test"].items()}
    recs, bipia = tg.load_records(data)
    for r in recs:
        r.split = "test" if r.key in test.get(r.source, ()) else "train"
    return recs, bipia


def request_prompts(recs: list) -> list[str]:
    """User prompts (benign and attacks, at most 400 characters), test split excluded, hash-sampled."""
    prompts = sorted(
        {r.text for r in recs if r.kind == "prompt" and r.split != "test" and 0 < len(r.text) <= 400},
        key=lambda t: hashlib.sha1(t.encode()).hexdigest(),
    )
    return prompts[:REQUEST_PROMPTS]


def passages(recs: list, bipia: dict) -> list[dict]:
    """Hidden-attack passages (label 1, with the planted sentence marked) and benign passages,
    test split excluded."""
    out = []
    for r in tg.build_indirect(recs, bipia):
        if r.split != "test":
            out.append({"text": r.text, "source": r.source, "y": 1, "attack": r.extra["attack"],
                        "half": half(r.extra["attack"])})  # fmt: skip
    for r in recs:
        if r.split != "test" and r.kind == "passage" and r.inj == 0 and not r.extra.get("train_only"):
            out.append({"text": r.text, "source": r.source, "y": 0, "attack": None, "half": half(r.key)})
    return out


def embed_sentences(items: list[dict], det: InjectionDetector) -> None:
    embed = encoder("float")
    for item in items:
        parts = sentences(normalize(item["text"]).text)
        item["sentences"] = parts
        item["v"] = embed(parts) if len(parts) >= 2 else np.zeros((0, det.model.dim), np.float32)
        needle = canon(item["attack"]) if item["attack"] else ""
        item["labels"] = [
            int(bool(needle) and len(canon(s)) >= 10 and (canon(s) in needle or needle[:40] in canon(s))) for s in parts
        ]
        item["window"] = det.score(item["text"], "retrieved").score


def best(stage: SentenceStage, item: dict) -> float:
    return float(stage.logit(item["x"]).max()) if len(item["x"]) else -40.0


def tpr_table(items: list[dict], scores: list[float]) -> dict[str, dict[str, float]]:
    neg = np.sort([s for it, s in zip(items, scores, strict=True) if it["y"] == 0])[::-1]
    out: dict[str, dict[str, float]] = {}
    for fpr in (0.01, 0.02, 0.05):
        thr = neg[min(int(fpr * len(neg)), len(neg) - 1)]
        by: dict[str, list[bool]] = defaultdict(list)
        for it, s in zip(items, scores, strict=True):
            if it["y"] == 1:
                by[it["source"]].append(s > thr)
                by["pooled"].append(s > thr)
        out[f"fpr_{fpr}"] = {k: round(float(np.mean(v)), 3) for k, v in sorted(by.items())}
    return out


def main(argv: list[str] | None = None) -> None:
    """Train on one BLAS thread, so that the artifact does not depend on ``OMP_NUM_THREADS``."""
    with threadpool_limits(limits=1, user_api="blas"):
        _main(argv)


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=MODELS_DIR)
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    det = InjectionDetector(MODELS_DIR / "injection.npz", hidden=False)
    recs, bipia = records(args.data or tg.default_data_dir())
    items = passages(recs, bipia)
    embed_sentences(items, det)
    fit = [it for it in items if it["half"] == "fit" and len(it["v"])]
    cal = [it for it in items if it["half"] == "calibrate"]

    prompts = request_prompts(recs)
    statements = np.concatenate([it["v"] for it in fit if it["y"] == 0])
    xr = np.concatenate([encoder("float")(prompts), statements])
    yr = np.r_[np.ones(len(prompts)), np.zeros(len(statements))]
    req = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000).fit(xr, yr)
    request = (req.coef_[0].astype(np.float32), float(req.intercept_[0]))
    for it in items:
        it["x"] = features(it["v"], det.model, request) if len(it["v"]) else np.zeros((0, len(FEATURES)), np.float32)

    x = np.concatenate([it["x"] for it in fit])
    y = np.concatenate([it["labels"] for it in fit])
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(x, y)
    raw = SentenceStage(request[0], request[1], clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))
    neg = np.sort([best(raw, it) for it in cal if it["y"] == 0])[::-1]
    shift = -float(neg[int(CALIBRATION_FPR * len(neg))])
    stage = SentenceStage(
        raw.request_weights,
        raw.request_bias,
        raw.weights,
        raw.bias + shift,
        {"injection_model": model_digest(det.model)},
    )
    runtime = HiddenInstructionModel(det.model, stage)  # as the gateway scores: abstains where requests abound
    prob = [runtime.probability(it["v"]) for it in cal]
    report = {
        "windows and rules only": tpr_table(cal, [it["window"] for it in cal]),
        "sentence stage only": tpr_table(cal, prob),
        "both (the larger score)": tpr_table(cal, [max(it["window"], p) for it, p in zip(cal, prob, strict=True)]),
    }
    meta = {
        "kind": "ovr",
        "features": list(FEATURES),
        "injection_model": model_digest(det.model),
        "C": C,
        "calibration_shift": shift,
        "calibration": f"0.5 = top {CALIBRATION_FPR:.0%} of the calibration half's benign passages"
        " (before the abstention rule, which only lowers scores)",
        "rows": {
            "fit_passages": len(fit),
            "fit_sentences": len(y),
            "fit_positive_sentences": int(y.sum()),
            "request_prompts": len(prompts),
            "request_statements": len(statements),
            "calibration_passages": len(cal),
            "calibration_benign": int(sum(it["y"] == 0 for it in cal)),
        },
        "calibration_half_tpr": report,
        "coefficients": dict(zip(FEATURES, [round(float(c), 4) for c in raw.weights], strict=True)),
    }
    stage = SentenceStage(stage.request_weights, stage.request_bias, stage.weights, stage.bias, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    stage.save(args.out / "injection_sentences.npz")
    write_card(args.out / "injection_sentences.md", meta)
    print(json.dumps(meta, indent=1))


def write_card(path: Path, meta: dict) -> None:
    rows = meta["rows"]
    lines = [
        "# Data card: the hidden-instruction stage of the injection guard",
        "",
        "Written by `scripts/train_hidden_guard.py`; the code is `llmgw/guards/hidden.py`.",
        "",
        "- **What it scores:** each sentence of a retrieved passage, from three numbers: the",
        "  injection model's logit for the sentence alone, its cosine to the mean of the passage's other",
        "  sentences (an instruction planted in a document is usually off-topic there), and its request logit",
        f"  (user prompts vs document sentences: {rows['request_prompts']} prompts, {rows['request_statements']}"
        " sentences of benign passages in the fit half).",
        f"- **Coefficients:** {meta['coefficients']} (C = {meta['C']}), for injection model "
        f"`{meta['injection_model']}`.",
        f"- **Data:** the hidden-attack passages and benign passages of `train_guards.py` (BIPIA, gandalf,"
        f" deepset, verazuo, giskard attacks planted in COVID-QA passages, FAQ answers and BIPIA e-mails),"
        f" test split excluded. Fit: {rows['fit_passages']} passages, {rows['fit_sentences']} sentences"
        f" ({rows['fit_positive_sentences']} planted). Calibration: {rows['calibration_passages']} passages"
        f" ({rows['calibration_benign']} benign).",
        f"- **Calibration:** {meta['calibration']}.",
        "",
        "TPR on the calibration half at the FPR of its benign passages (the window score's model was",
        "trained on some of these rows, so its column is optimistic; held-out numbers are in",
        "`docs/benchmarks.md`):",
        "",
        "| score | FPR | "
        + " | ".join(k.split("/")[-1] for k in meta["calibration_half_tpr"]["both (the larger score)"]["fpr_0.02"])
        + " |",
        "|---|---|" + "---|" * len(meta["calibration_half_tpr"]["both (the larger score)"]["fpr_0.02"]),
    ]
    for name, table in meta["calibration_half_tpr"].items():
        for fpr, row in table.items():
            lines.append(f"| {name} | {fpr[4:]} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
    lines += [
        "",
        "Limits: the attacks were planted at sentence boundaries, at the start or at the end of the",
        "passage; an instruction woven into a sentence of the passage's own topic is left to the window",
        "classifier and the rules. A passage of one sentence has no rest to compare with. The stage",
        "abstains where more than a quarter of the other sentences read like requests (FAQ pages,",
        "how-tos, READMEs), and it does not read tool output.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
