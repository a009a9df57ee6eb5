"""The injection guard's passage operating points with the hand-written benign passage sources
(``handwritten_passages``; issue 17, over-defence): ``scripts/recalibrate_passages.py`` runs it.

Candidates, each measured on the same rows: the shipped file at its own points; *A*, the shipped
weights with the passage points recomputed with the new sources; *B*, the passage unit refitted on the
train split with the new training rows (``calibrated.training_set``, ``C`` from the grid on
calibration), the user unit and the user points untouched. The point rule is the training's
(``calibrated.threshold_at``): for each rate r, the lowest threshold that at most a share r of *every*
benign calibration passage source (with >= ``MIN_SOURCE_ROWS`` rows) reaches. Scores are the real
detector's (``InjectionDetector``: passage unit and rules) on the run-time float encoder, cached by
``vector_cache.VectorCache``. The existing rows and their splits are rebuilt from the shared data and
``injection_splits.json``; planted passages are rebuilt as the training builds them (into the old
passages only, so the planted test set is the shipped file's).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from llmgw.guards.classifier import LinearModel, load
from llmgw.guards.injection import InjectionDetector

from . import broad, handwritten_passages
from .calibrated import C_GRID, RATES, Embed, fit, threshold_at, training_set
from .vector_cache import VectorCache

ROUTE = "retrieved"


def existing_rows(data: Path, splits_path: Path) -> list[broad.Row]:
    """The training's rows (every route; planted passages included) with the splits recorded in
    ``injection_splits.json``."""
    recorded = json.loads(splits_path.read_text())["sources"]
    split_of_key = {(src, k): split for src, parts in recorded.items() for split, keys in parts.items() for k in keys}
    rows = broad.load_rows(data)
    missing = 0
    for r in rows:
        r.split = split_of_key.get((r.source, r.key[:16]), "")
        missing += not r.split
    if missing:
        raise SystemExit(f"{missing} rows not found in {splits_path}: the data or the code changed")
    bipia = broad.bipia_attacks(data)
    for a in bipia:
        a.split = broad.split_of(a.key)
    planted = broad.planted(rows, bipia)
    for r in planted:
        if split_of_key.get((r.source, r.key[:16])) != r.split:
            raise SystemExit(f"planted row of {r.source} not where injection_splits.json has it")
    return rows + planted


def scores_by_source(det: InjectionDetector, rows: list[broad.Row]) -> dict[str, np.ndarray]:
    by: dict[str, list[broad.Row]] = defaultdict(list)
    for r in rows:
        by[r.source].append(r)
    return {s: np.array([x.score for x in det.score_many([r.text for r in rs], [ROUTE] * len(rs))])
            for s, rs in sorted(by.items())}  # fmt: skip


def points_from(benign: dict[str, np.ndarray]) -> dict[str, float]:
    return {f"{rate:g}": threshold_at(benign, rate) for rate in RATES}


def hit_table(scores: dict[str, np.ndarray], points: dict[str, float]) -> dict[str, dict]:
    return {s: {"n": len(v), "hit": {k: round(float((v >= t).mean()), 4) for k, t in points.items()},
                "hits_at": {k: int((v >= t).sum()) for k, t in points.items()}}
            for s, v in scores.items()}  # fmt: skip


def _benign(scores: dict[str, np.ndarray], without: str = "") -> dict[str, np.ndarray]:
    return {s: v for s, v in scores.items() if s.startswith("passage/") and s != without}


def _macro_tpr(scores: dict[str, np.ndarray], point: float) -> float:
    rates = [float((v >= point).mean()) for s, v in scores.items() if s.startswith("planted/")]
    return float(np.mean(rates)) if rates else 0.0


def new_sources() -> list[str]:
    return [f"passage/{n}" for n in handwritten_passages.SOURCES]


def refit(
    rows: list[broad.Row], embed: Embed, shipped: InjectionDetector, c: float | None = None, without: str = ""
) -> tuple[LinearModel, float, dict[str, np.ndarray]]:
    """The passage unit fitted on the train split of ``rows`` (``calibrated.training_set``), ``C`` from
    the grid by mean planted TPR at the 1 % point on calibration (as ``calibrated.build``); returns the
    unit, its C and the calibration scores. ``without``: leave that source's rows out entirely."""
    rows = [r for r in rows if r.source != without]
    x, y, w = training_set([r for r in rows if r.split == "train"], ROUTE, embed)
    cal = [r for r in rows if r.split == "calibration" and r.route == ROUTE]
    best: tuple[float, float, LinearModel, dict[str, np.ndarray]] | None = None
    for cc in [c] if c is not None else C_GRID:
        unit = fit(x, y, w, cc)
        scores = scores_by_source(_detector(shipped, unit, embed), cal)
        tpr = _macro_tpr(scores, points_from(_benign(scores))["0.01"])
        print(f"  C={cc}: calibration macro planted TPR at the 1 % point {tpr:.3f}", flush=True)
        if best is None or tpr > best[0]:
            best = (tpr, cc, unit, scores)
    assert best is not None
    return best[2], best[1], best[3]


def _detector(shipped: InjectionDetector, unit: LinearModel, embed: Embed) -> InjectionDetector:
    return InjectionDetector(shipped.model, embed=embed, lexical=shipped.lexical or False, passage_model=unit)


def evaluate(
    det: InjectionDetector,
    rows: list[broad.Row],
    cal_scores: dict[str, np.ndarray] | None = None,
    with_test: bool = True,
) -> dict:
    """Operating points from the benign calibration passage sources, and the tables."""
    cal = [r for r in rows if r.split == "calibration" and r.route == ROUTE]
    cal_scores = cal_scores if cal_scores is not None else scores_by_source(det, cal)
    points = points_from(_benign(cal_scores))
    out: dict = {"points": points, "calibration": hit_table(cal_scores, points)}
    if with_test:
        test_scores = scores_by_source(det, [r for r in rows if r.split == "test" and r.route == ROUTE])
        out["test"] = hit_table(test_scores, points)
        out["loso_calibration_only"] = {}
        for held in new_sources():
            pts = points_from(_benign(cal_scores, without=held))
            out["loso_calibration_only"][held] = {
                "points": pts,
                "test": hit_table({held: test_scores[held]}, pts)[held],
            }
    return out


def run(data: Path, model_dir: Path, cache: Path, stage: str) -> dict:
    """``stage``: ``calibration`` (points and calibration figures only) or ``test`` (also the test
    split and leave-one-new-source-out). Candidates: ``shipped`` (the shipped file as it is, its
    own points), ``A`` (shipped weights, points with the new sources), ``B`` (passage unit refitted
    with the new training rows, points with the new sources)."""
    embed = VectorCache(cache)
    shipped = InjectionDetector(model_dir / "injection.npz", embed=embed)
    rows = existing_rows(data, model_dir / "injection_splits.json") + handwritten_passages.rows()
    print(f"{len(rows)} rows {dict(Counter((r.source, r.split) for r in rows if r.route == ROUTE))}", flush=True)
    test = stage == "test"
    cal = [r for r in rows if r.split == "calibration" and r.route == ROUTE]
    cal_shipped = scores_by_source(shipped, cal)
    out: dict = {"shipped_points": shipped.operating_points(ROUTE)}
    a = evaluate(shipped, rows, cal_shipped, with_test=test)
    out["A"] = a
    if test:  # the shipped file at its own points, on the same rows
        test_scores = scores_by_source(shipped, [r for r in rows if r.split == "test" and r.route == ROUTE])
        out["shipped"] = {"points": out["shipped_points"], "test": hit_table(test_scores, out["shipped_points"])}
    print("refitting the passage unit", flush=True)
    unit, c, cal_b = refit(rows, embed, shipped)
    b = evaluate(_detector(shipped, unit, embed), rows, cal_b, with_test=test)
    b["C"] = c
    out["B"] = b
    out["_unit"] = unit
    if test:  # leave one new source out entirely: refit without its training rows, calibrate without it
        b["loso_refit"] = {}
        for held in new_sources():
            u, _, cs = refit(rows, embed, shipped, c=c, without=held)
            pts = points_from(_benign(cs))
            det = _detector(shipped, u, embed)
            ts = scores_by_source(det, [r for r in rows if r.split == "test" and r.source == held])
            b["loso_refit"][held] = {"points": pts, "test": hit_table(ts, pts)[held]}
    return out


def write_model(model_dir: Path, out_dir: Path, result: dict, candidate: str = "B") -> None:
    """``injection.npz`` (user unit, user points and every other field as shipped; the candidate's
    passage points and the figures) and ``injection_passages.npz``: for *B* the refitted passage unit,
    for *A* the shipped passage unit with the new points (its weights unchanged)."""
    b = result[candidate]
    src = load(model_dir / "injection.npz")
    meta = json.loads(json.dumps(src.metadata))
    meta["operating_points"][ROUTE] = b["points"]
    meta["thresholds"] = meta["operating_points"]
    if candidate == "B":
        meta["C"][ROUTE] = b["C"]
    how = (
        "passage unit refitted with the hand-written benign passage sources "
        "(scripts/guard_training/handwritten_passages.py) and passage points recomputed with them"
        if candidate == "B"
        else "passage unit as shipped; passage points recomputed with the hand-written benign passage sources "
        "(scripts/guard_training/handwritten_passages.py) in calibration"
    )
    meta["passage_calibration"] = {
        "candidate": candidate,
        "note": f"{how} (scripts/recalibrate_passages.py); user unit and user points as shipped before",
        "sources": new_sources(),
        "topic_groups": handwritten_passages.topic_groups(),
        "points_before": result["shipped_points"],
        "test_before": result["shipped"]["test"],
        "test_after": b["test"],
        "calibration_only_candidate": {"points": result["A"]["points"], "test": result["A"]["test"]},
        "leave_one_new_source_out": {"calibration_only": b["loso_calibration_only"], "refit": b.get("loso_refit")},
    }
    new_rows = handwritten_passages.rows()
    for s in new_sources():
        meta["rows_by_source_and_split"][s] = dict(Counter(r.split for r in new_rows if r.source == s))
        meta["licences"][s] = ["project"]
    for s, t in b["test"].items():
        meta["test_metrics"][s] = {"n": t["n"], "label": 1 if s.startswith("planted/") else 0, "route": ROUTE,
                                   "hit": t["hit"]}  # fmt: skip
    meta["test_metrics"] = dict(sorted(meta["test_metrics"].items()))
    out_dir.mkdir(parents=True, exist_ok=True)
    LinearModel(src.weights, src.bias, src.classes, meta).save(out_dir / "injection.npz")
    old_passage = load(model_dir / "injection_passages.npz")
    pmeta = {**old_passage.metadata, "C": meta["C"], "operating_points": meta["operating_points"],
             "thresholds": meta["operating_points"]}  # fmt: skip
    unit = result["_unit"] if candidate == "B" else old_passage
    LinearModel(unit.weights, unit.bias, ["injection"], pmeta).save(out_dir / "injection_passages.npz")
