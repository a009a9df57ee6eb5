"""Would a stronger sentence encoder help the hidden-instruction stage? (an experiment, not the product)

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.hidden_encoder --model DIR

The stage (``llmgw/guards/hidden.py``) scores each sentence of a passage from the injection model's
logit, its cosine to the rest of the passage and a request logit, all on MiniLM. This refits it
with the cosine and the request direction computed on another sentence-transformers model (the
injection logit stays MiniLM's: retraining the window classifier on another encoder is a separate
job) and compares the two on the *calibration* half of ``scripts/train_hidden_guard.py``, exactly as
that script reports it: TPR at FPR <= 2% of the calibration half's benign passages, for the stage
alone and for the larger of it and the window score. No test row is read. The abstention rule is
left out of both sides (it is the same rule for both). ``--model DIR``: a local model folder
(measured: all-mpnet-base-v2, fetched from PyPI as docs/benchmarks.md shows); its vectors are
cached in ``--cache``. About 13 minutes on two cores for mpnet (12,851 sentences and prompts).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_hidden_guard as th

from llmgw.encoders import encoder
from llmgw.guards.classifier import MODELS_DIR, sigmoid
from llmgw.guards.hidden import features
from llmgw.guards.injection import InjectionDetector


def refit(fit: list[dict], cal: list[dict], prompts: np.ndarray, det: InjectionDetector, key: str) -> dict[str, Any]:
    """Fit the request direction and the sentence unit on ``it[key]`` vectors; report on ``cal``."""
    from sklearn.linear_model import LogisticRegression

    statements = np.concatenate([it[key] for it in fit if it["y"] == 0])
    xr, yr = np.concatenate([prompts, statements]), np.r_[np.ones(len(prompts)), np.zeros(len(statements))]
    req = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000).fit(xr, yr)
    request = (req.coef_[0].astype(np.float32), float(req.intercept_[0]))

    def feats(it: dict) -> np.ndarray:
        if not len(it["v"]):
            return np.zeros((0, 3), np.float32)
        minilm = features(it["v"], det.model, (np.zeros(det.model.dim, np.float32), 0.0))
        own = features(it[key], det.model, request) if key == "v" else _cos_request(it[key], request)
        return np.column_stack([minilm[:, 0], own[:, -2], own[:, -1]]).astype(np.float32)

    for it in fit + cal:
        it["x"] = feats(it)
    x, y = np.concatenate([it["x"] for it in fit]), np.concatenate([it["labels"] for it in fit])
    clf = LogisticRegression(C=th.C, class_weight="balanced", max_iter=3000).fit(x, y)
    w, b = clf.coef_[0], float(clf.intercept_[0])
    raw = [float((it["x"] @ w + b).max()) if len(it["x"]) else -40.0 for it in cal]
    negatives = np.sort([r for it, r in zip(cal, raw, strict=True) if it["y"] == 0])[::-1]
    shift = -negatives[int(th.CALIBRATION_FPR * len(negatives))]
    prob = [float(sigmoid(r + shift)) for r in raw]
    both = [max(it["window"], p) for it, p in zip(cal, prob, strict=True)]
    return {
        "coefficients": [round(float(c), 3) for c in w],
        "stage only": th.tpr_table(cal, prob)["fpr_0.02"],
        "both (the larger score)": th.tpr_table(cal, both)["fpr_0.02"],
    }


def _cos_request(vectors: np.ndarray, request: tuple[np.ndarray, float]) -> np.ndarray:
    rest = vectors.sum(axis=0)[None, :] - vectors
    rest /= np.linalg.norm(rest, axis=1, keepdims=True) + 1e-9
    return np.column_stack([(vectors * rest).sum(axis=1), vectors @ request[0] + request[1]])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a sentence-transformers model folder")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/llmgw-hidden-encoder.pkl"))
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    det = InjectionDetector(MODELS_DIR / "injection.npz", hidden=False)
    recs, bipia = th.records(th.tg.default_data_dir())
    items = th.passages(recs, bipia)
    th.embed_sentences(items, det)
    fit = [it for it in items if it["half"] == "fit" and len(it["v"])]
    cal = [it for it in items if it["half"] == "calibrate"]
    prompts = th.request_prompts(recs)
    vectors: dict[str, np.ndarray] = pickle.loads(args.cache.read_bytes()) if args.cache.is_file() else {}
    todo = list(dict.fromkeys([s for it in items for s in it["sentences"]] + prompts))
    todo = [t for t in todo if t not in vectors]
    if todo:
        model = SentenceTransformer(args.model, device="cpu")
        for text, v in zip(todo, model.encode(todo, normalize_embeddings=True, batch_size=32), strict=True):
            vectors[text] = v.astype(np.float32)
        args.cache.write_bytes(pickle.dumps(vectors))
    for it in items:
        it["w"] = np.stack([vectors[s] for s in it["sentences"]]) if len(it["v"]) else np.zeros((0, 1), np.float32)
    result = {
        "windows and rules only": th.tpr_table(cal, [it["window"] for it in cal])["fpr_0.02"],
        "MiniLM (as shipped, without abstention)": refit(fit, cal, encoder("float")(prompts), det, "v"),
        Path(args.model).name: refit(fit, cal, np.stack([vectors[p] for p in prompts]), det, "w"),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
