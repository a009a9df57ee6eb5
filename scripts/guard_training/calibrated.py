"""Fit the injection guard's two logistic units, choose operating points on calibration, report.

* one embedding per view (``llmgw.guards.injection.views``: the text, or its 700-character windows
  when longer, and decoded variants), each distinct text embedded once and cached;
* ``user`` unit: user-turn rows; ``retrieved`` unit: passage windows (benign ones 0, the window of a
  planted passage that holds the attack 1) plus the user-turn rows at half weight;
* rows weighted so that every source counts at most ``SOURCE_CAP`` rows, and attacks as much as
  benign text in total; ``C`` chosen on calibration;
* operating points per route, on the **full** detector score (unit, rules, n-gram model) of the
  calibration split: for each rate r of ``RATES``, the lowest threshold that at most a share r of
  *every* benign calibration source (with >= ``MIN_SOURCE_ROWS`` rows) reaches;
* reports: per source on the test split at every operating point, the external sets, and
  leave-one-source-out (fit and calibrate without source X, measure on all of X).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression

from llmgw.guards.classifier import LinearModel
from llmgw.guards.injection import InjectionDetector, QuoteKinds, views
from llmgw.guards.normalize import normalize

from .broad import Row

RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)
SOURCE_CAP = 300.0
MIN_SOURCE_ROWS = 30
C_GRID = (0.5, 2.0, 8.0)
#: benign sources made of hard negatives (ordinary requests full of trigger words) count this many times
#: (3 against 1 and 6 on the calibration split: fewer trigger-word prompts flagged at the same attack TPR)
HARD_NEGATIVE_WEIGHT = 3.0
HARD_NEGATIVE_SOURCES = ("user/chat/trigger_word", "user/handwritten")
Embed = Callable[[list[str]], np.ndarray]


def plain_windows(text: str) -> list[str]:
    """The windows of the text itself (decoded variants are not trained on: they are rare)."""
    return [body for kind, body in views(text) if kind is None]


def attack_windows(row: Row) -> list[str]:
    """The windows of a planted passage that hold (the start or the end of) its attack."""
    attack = normalize(row.attack).text.strip()
    head, tail = attack[:40], attack[-40:]
    return [w for w in plain_windows(row.text) if head in w or tail in w] or plain_windows(row.text)[-1:]


def training_set(rows: list[Row], route: str, embed: Embed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, weights)`` of ``route``'s unit from the train-split ``rows`` given."""
    texts: list[str] = []
    labels: list[int] = []
    sources: list[str] = []
    extra: list[float] = []
    for r in rows:
        if r.route == "external":
            continue
        if route == "user" and r.route != "user":
            continue
        ws = attack_windows(r) if r.route == "retrieved" and r.label == 1 else plain_windows(r.text)
        for w in ws:
            texts.append(w)
            labels.append(r.label)
            sources.append(r.source)
            extra.append(0.5 if route == "retrieved" and r.route == "user" else 1.0)
    y = np.array(labels)
    per_source: dict[str, int] = defaultdict(int)
    for s in sources:
        per_source[s] += 1
    hard = [HARD_NEGATIVE_WEIGHT if s in HARD_NEGATIVE_SOURCES else 1.0 for s in sources]
    w = np.array([min(1.0, SOURCE_CAP / per_source[s]) * e * h for s, e, h in zip(sources, extra, hard, strict=True)])
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    if pos > 0:
        w[y == 1] *= neg / pos
    return embed(texts), y, w / w.mean()


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float) -> LinearModel:
    clf = LogisticRegression(C=c, max_iter=2000, solver="lbfgs")
    clf.fit(x, y, sample_weight=w)
    return LinearModel(clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32), ["injection"], {})


def scores(detector: InjectionDetector, rows: list[Row]) -> np.ndarray:
    """The detector's full score of each row, read as its route (external rows as user turns)."""
    sources = ["retrieved" if r.route == "retrieved" else "user" for r in rows]
    return np.array([res.score for res in detector.score_many([r.text for r in rows], sources)])


def threshold_at(benign: dict[str, np.ndarray], rate: float) -> float:
    """The lowest threshold that at most ``rate`` of every benign source's scores reach."""
    t = 0.0
    for s in benign.values():
        if len(s) < MIN_SOURCE_ROWS:
            continue
        desc = np.sort(s)[::-1]
        k = int(np.floor(rate * len(desc)))
        t = max(t, float(desc[k]) + 1e-6 if k < len(desc) else 0.0)
    return round(min(t, 1.000001), 6)


def conformal_threshold_at(benign: dict[str, np.ndarray], rate: float) -> float:
    """The lowest threshold at which a *new* turn of every benign source is expected to reach it
    with probability at most ``rate`` (split-conformal: above the ceil((n + 1)(1 - rate))-th smallest
    calibration score; exchangeable rows assumed).

    ``threshold_at`` lets ``floor(rate * n)`` calibration rows reach the point, so a source of n rows
    is only ever held to "above its k-th highest row"; a new row beats that more often than ``rate``
    when n is small. Here a source too small to certify ``rate`` (n + 1 < 1 / rate) gets its highest
    row, and its bound is 1 / (n + 1) instead: reported, not hidden, by :func:`conformal_bounds`.
    """
    t = 0.0
    for s in benign.values():
        if len(s) < MIN_SOURCE_ROWS:
            continue
        asc = np.sort(s)
        k = int(np.ceil((len(asc) + 1) * (1 - rate)))  # 1-based rank
        t = max(t, float(asc[min(k, len(asc)) - 1]) + 1e-6)
    return round(min(t, 1.000001), 6)


def conformal_bounds(benign: dict[str, np.ndarray], rate: float) -> dict[str, float]:
    """Per source, the expected share of new benign turns reaching ``conformal_threshold_at``'s point
    that the calibration rows can vouch for: ``rate`` when the source is large enough, else 1 / (n + 1)."""
    return {s: round(max(rate, 1 / (len(v) + 1)), 5) for s, v in benign.items() if len(v) >= MIN_SOURCE_ROWS}


def operating_points(detector: InjectionDetector, rows: list[Row], route: str) -> dict[str, float]:
    cal = [r for r in rows if r.split == "calibration" and r.route == route and r.label == 0]
    by: dict[str, list[Row]] = defaultdict(list)
    for r in cal:
        by[r.source].append(r)
    benign = {s: scores(detector, rs) for s, rs in by.items()}
    return {f"{rate:g}": threshold_at(benign, rate) for rate in RATES}


def per_source(detector: InjectionDetector, rows: list[Row], points: dict[str, dict[str, float]]) -> dict:
    """Share of each source's rows at or above each operating point of its route."""
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by[r.source].append(r)
    out = {}
    for source, rs in sorted(by.items()):
        s = scores(detector, rs)
        route = "retrieved" if rs[0].route == "retrieved" else "user"
        out[source] = {"n": len(rs), "label": rs[0].label, "route": route,
                       "hit": {k: round(float((s >= t).mean()), 4) for k, t in points[route].items()}}  # fmt: skip
    return out


def build(rows: list[Row], embed: Embed, lexical: object, c: float | None = None) -> tuple[InjectionDetector, dict]:
    """Fit both units on the train split (``C`` from the grid on calibration unless given) and
    measure the operating points on calibration."""
    train = [r for r in rows if r.split == "train"]
    models: dict[str, LinearModel] = {}
    chosen: dict[str, float] = {}
    for route in ("user", "retrieved"):
        x, y, w = training_set(train, route, embed)
        best: tuple[float, float, LinearModel] | None = None
        for cc in [c] if c is not None else C_GRID:
            model = fit(x, y, w, cc)
            det = _detector(model, model, embed, lexical)
            pts = operating_points(det, rows, route)
            cal_attacks = [r for r in rows if r.split == "calibration" and r.route == route and r.label == 1]
            tpr = _macro_tpr(det, cal_attacks, pts["0.01"])
            if best is None or tpr > best[0]:
                best = (tpr, cc, model)
        assert best is not None
        models[route], chosen[route] = best[2], best[1]
    det = _detector(models["user"], models["retrieved"], embed, lexical)
    points = {route: operating_points(det, rows, route) for route in ("user", "retrieved")}
    return det, {"C": chosen, "operating_points": points}


#: quote-aware passage rules, as the shipped files have them since inj17s (docs/experiments/inj17s-rule.md):
#: a retrain measures its operating points with them and writes them into the files' metadata
PASSAGE_QUOTES = QuoteKinds.QUOTES


def _detector(user: LinearModel, passage: LinearModel, embed: Embed, lexical: object) -> InjectionDetector:
    return InjectionDetector(
        user,
        embed,  # type: ignore[arg-type]
        lexical=lexical,  # type: ignore[arg-type]
        passage_model=passage,
        quotes=PASSAGE_QUOTES,
    )


def _macro_tpr(det: InjectionDetector, attacks: list[Row], threshold: float) -> float:
    by: dict[str, list[Row]] = defaultdict(list)
    for r in attacks:
        by[r.source].append(r)
    return float(np.mean([(scores(det, rs) >= threshold).mean() for rs in by.values()])) if by else 0.0


def loso(rows: list[Row], embed: Embed, lexical: object, c: dict[str, float]) -> dict:
    """Leave one source out: fit and calibrate without source X (for a benign passage source, also
    without the passages planted into it), then measure every row of X at the operating points."""
    out = {}
    sources = sorted({r.source for r in rows if r.route != "external" and not r.source.startswith("user/chat/")})
    sources.append("user/chat/*")
    for source in sources:

        def held(r: Row, s: str = source) -> bool:
            if s.endswith("/*"):
                return r.source.startswith(s[:-1])
            return r.source == s or r.context_source == s

        kept = [r for r in rows if not held(r)]
        target = [r for r in rows if r.source.startswith(source[:-1]) if source.endswith("/*")] or [
            r for r in rows if r.source == source
        ]
        det, meta = build(kept, embed, lexical, c=c["user"] if target[0].route == "user" else c["retrieved"])
        route = "retrieved" if target[0].route == "retrieved" else "user"
        s = scores(det, target)
        points = meta["operating_points"][route]
        out[source] = {"n": len(target), "label": target[0].label, "route": route,
                       "hit": {k: round(float((s >= t).mean()), 4) for k, t in points.items()}}  # fmt: skip
        print(f"  loso {source}: {out[source]['hit']}", flush=True)
    return out
