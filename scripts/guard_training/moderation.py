"""Output-moderation guard: one logistic unit per category, per-category dev thresholds, benign
stream-window negatives, and the held-out test report."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from llmgw.guards.classifier import LinearModel
from llmgw.guards.moderation import CATEGORIES, Moderator
from llmgw.guards.moderation import views as moderation_views

from .config import STREAM_WINDOWS_PER_PASSAGE, STREAM_WINDOWS_WEIGHT
from .data import Rec
from .embedding import CachedEmbedder
from .metrics import logit, prf, source_weights


def moderation_rows(
    recs: list[Rec], embed: Callable[[list[str]], np.ndarray], cap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ws = [], [], []
    rec_w = source_weights(recs, cap)
    for r, w in zip(recs, rec_w, strict=True):
        vs = moderation_views(r.text)
        label = np.array([c in r.cats for c in CATEGORIES], dtype=np.int8)  # type: ignore[operator]
        for i, body in enumerate(vs):
            xs.append(body)
            ys.append(label)
            ws.append(w if i == 0 else w * 0.5)
    return embed(xs), np.stack(ys), np.array(ws)


def stream_window_negatives(recs: list[Rec], per_text: int = STREAM_WINDOWS_PER_PASSAGE) -> list[str]:
    """Benign passages (papers, FAQ answers, e-mails) cut the way a stream is moderated (8 words
    plus 4 before): at run time the classifier reads such short windows, and whole-passage
    negatives alone taught it nothing about them ("control measures reduce transmission" read as
    weapons and crime). A hash picks ``per_text`` windows of each passage."""
    from llmgw.guards.stream import windows_of

    out: list[str] = []
    for r in recs:
        if r.kind != "passage" or r.cats != () or r.source.startswith("handwritten/"):
            continue
        windows = windows_of(r.text[:4000], 8, 4)
        ranked = sorted(windows, key=lambda t: hashlib.sha256(f"{r.key}:{t}".encode()).hexdigest())
        out.extend(ranked[:per_text])
    return sorted(set(out))


def train_moderation(
    recs: list[Rec], embed: CachedEmbedder, cap: float = 1500.0, t_max: float = 0.99
) -> tuple[LinearModel, dict]:
    from sklearn.linear_model import LogisticRegression

    used = [r for r in recs if r.cats is not None]
    train = [r for r in used if r.split == "train"]
    dev = [r for r in used if r.split == "dev"]
    print(f"moderation: train {len(train)}, dev {len(dev)}", flush=True)
    x, y, w = moderation_rows(train, embed, cap=cap)
    negatives = stream_window_negatives(train)
    if negatives:  # together they weigh as much as STREAM_WINDOWS_WEIGHT whole rows
        x = np.concatenate([x, embed(negatives)])
        y = np.concatenate([y, np.zeros((len(negatives), y.shape[1]), dtype=y.dtype)])
        w = np.concatenate([w, np.full(len(negatives), STREAM_WINDOWS_WEIGHT / len(negatives))])
    print(f"  {len(negatives)} benign stream windows as negatives", flush=True)
    n_negatives = len(negatives)
    dev_views = [moderation_views(r.text) for r in dev]
    flat = embed([v for vs in dev_views for v in vs])
    dev_x, pos = [], 0
    for vs in dev_views:
        dev_x.append(flat[pos : pos + len(vs)])
        pos += len(vs)
    dev_y = np.array([[c in r.cats for c in CATEGORIES] for r in dev])  # type: ignore[operator]
    coefs, biases, chosen, shifts = [], [], {}, {}
    for j, cat in enumerate(CATEGORIES):
        yj = y[:, j]
        pos, neg = w[yj == 1].sum(), w[yj == 0].sum()
        wj = np.where(yj == 1, w * (pos + neg) / (2 * pos), w * (pos + neg) / (2 * neg))
        best = None
        for c in (0.3, 1.0, 3.0, 10.0):
            clf = LogisticRegression(C=c, max_iter=3000, tol=1e-5)
            clf.fit(x, yj, sample_weight=wj * len(wj) / wj.sum())
            coef, bias = clf.coef_[0].astype(np.float32), float(clf.intercept_[0])
            p = np.array([float((1 / (1 + np.exp(-(v @ coef + bias)))).max()) for v in dev_x])
            f1, t = max((prf(dev_y[:, j], p >= t)[2], t) for t in np.unique(np.round(p, 3)))
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, c, coef, bias, t)
        f1, c, coef, bias, t = best  # type: ignore[misc]
        t = float(min(max(t, 0.05), t_max))
        shifts[cat] = -logit(t)
        coefs.append(coef)
        biases.append(bias + shifts[cat])
        chosen[cat] = {"C": c, "dev_f1": round(f1, 4), "dev_threshold_raw": round(t, 4)}
        print(f"  {cat}: C={c} dev F1 {f1:.3f} (raw threshold {t:.3f})", flush=True)
    model = LinearModel(np.stack(coefs), np.array(biases, np.float32), list(CATEGORIES), {})
    return model, {"per_category": chosen, "calibration_shift": shifts, "stream_window_negatives": n_negatives}


def moderation_test_report(mod: Moderator, recs: list[Rec], split: str = "test") -> dict:
    test = [r for r in recs if r.cats is not None and r.split == split]
    res = mod.score_many([r.text for r in test])
    y = np.array([[c in r.cats for c in CATEGORIES] for r in test])  # type: ignore[operator]
    p = np.array([[c in x.flagged for c in CATEGORIES] for x in res])
    rep: dict = {"n": len(test), "binary": {}, "per_category": {}, "per_source": {}}
    pr, rc, f1 = prf(y.any(1), p.any(1))
    rep["binary"] = {
        "precision": round(pr, 4),
        "recall": round(rc, 4),
        "f1": round(f1, 4),
        "positives": int(y.any(1).sum()),
        "negatives": int((~y.any(1)).sum()),
    }
    for j, cat in enumerate(CATEGORIES):
        pr, rc, f1 = prf(y[:, j], p[:, j])
        rep["per_category"][cat] = {
            "precision": round(pr, 4),
            "recall": round(rc, 4),
            "f1": round(f1, 4),
            "support": int(y[:, j].sum()),
        }
    for src in sorted({r.source for r in test}):
        idx = [i for i, r in enumerate(test) if r.source == src]
        yy, pp = y[idx].any(1), p[idx].any(1)
        rep["per_source"][src] = {
            "n": len(idx),
            "flag_rate": round(float(pp.mean()), 4),
            "label_harmful_rate": round(float(yy.mean()), 4),
        }
    return rep
