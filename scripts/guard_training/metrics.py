"""Small numeric helpers shared by both guards: thresholds at a false-positive rate, TPR,
precision / recall / F1, per-source row weights, and the tables and hash the data cards print."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np

from .config import HANDWRITTEN_WEIGHT
from .data import Rec


def roc_threshold(neg_scores: np.ndarray, fpr: float, neg_weights: np.ndarray | None = None) -> float:
    """Smallest threshold t with (weighted) share of negatives scoring >= t at most ``fpr``."""
    if len(neg_scores) == 0:
        return 0.5
    w = np.ones_like(neg_scores) if neg_weights is None else neg_weights
    order = np.argsort(-neg_scores)
    s, cw = neg_scores[order], np.cumsum(w[order]) / w.sum()
    # walk down the sorted scores: the threshold just above the first score that would exceed fpr
    for i in range(len(s)):
        if cw[i] > fpr + 1e-12:
            return float(np.nextafter(s[i], np.inf))
    return float(s[-1])


def tpr_at(pos: np.ndarray, thr: float) -> float:
    return float((pos >= thr).mean()) if len(pos) else float("nan")


def prf(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    tp = float((y & p).sum())
    fp = float((~y & p).sum())
    fn = float((y & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def source_weights(recs: list[Rec], cap: float, neg_cap: float | None = None) -> np.ndarray:
    """Per-row weights so that no source counts for more than ``cap`` rows (``neg_cap`` for benign)."""
    counts = Counter(r.source for r in recs)
    caps = [neg_cap if (neg_cap is not None and r.inj == 0) else cap for r in recs]
    return np.array(
        [
            min(1.0, c / counts[r.source]) * (HANDWRITTEN_WEIGHT if r.source.startswith("handwritten/") else 1.0)
            for r, c in zip(recs, caps, strict=True)
        ],
        dtype=np.float64,
    )


def data_hash(recs: list[Rec]) -> str:
    h = hashlib.sha256()
    for k in sorted(f"{r.source}:{r.key}" for r in recs):
        h.update(k.encode())
    return h.hexdigest()[:16]


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def size_table(recs: list[Rec], pred: Callable[[Rec], bool]) -> str:
    by: dict[str, Counter] = defaultdict(Counter)
    lic = {}
    for r in recs:
        if pred(r):
            by[r.source][r.split] += 1
            lic[r.source] = r.licence
    rows = [[s, lic[s], c["train"], c["dev"], c["test"]] for s, c in sorted(by.items())]
    return md_table(["source", "licence", "train", "dev", "test"], rows)
