"""Recalibrate the passage operating points of the shipped injection guard with the hand-written
benign passage sources (``handwritten_passages``), the weights unchanged (issue 17, over-defence).

The rule is the training's (``calibrated.threshold_at``): for each rate r, the lowest threshold that at
most a share r of *every* benign calibration passage source (with >= ``MIN_SOURCE_ROWS`` rows) reaches;
the new sources are four more such sources. Scores are the real detector's (``InjectionDetector``: the
passage unit, the rules) read from the model files, on the run-time float encoder (cached by
``vector_cache.VectorCache``). The existing rows and their splits are rebuilt from the shared data and
``injection_splits.json``; planted passages are rebuilt as the training builds them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from llmgw.guards.classifier import LinearModel, load
from llmgw.guards.injection import InjectionDetector

from . import broad, handwritten_passages
from .calibrated import RATES, threshold_at
from .vector_cache import VectorCache

ROUTE = "retrieved"


def existing_rows(data: Path, splits_path: Path) -> list[broad.Row]:
    """The training's passage rows (benign and planted) with the splits recorded in ``injection_splits.json``."""
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
    return [r for r in rows + planted if r.route == ROUTE]


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


def planted_tpr(scores: dict[str, np.ndarray], point: float) -> tuple[int, int]:
    caught = sum(int((v >= point).sum()) for s, v in scores.items() if s.startswith("planted/"))
    return caught, sum(len(v) for s, v in scores.items() if s.startswith("planted/"))


def run(data: Path, model_dir: Path, cache: Path, stage: str) -> dict:
    """``stage``: ``calibration`` (points and calibration figures only) or ``test`` (also the test
    split and leave-one-new-source-out)."""
    embed = VectorCache(cache)
    det = InjectionDetector(model_dir / "injection.npz", embed=embed)
    old_points = det.operating_points(ROUTE)
    rows = existing_rows(data, model_dir / "injection_splits.json")
    new = handwritten_passages.rows()
    print(f"{len(rows)} existing passage rows {dict(Counter((r.source, r.split) for r in rows))}", flush=True)
    cal = [r for r in rows + new if r.split == "calibration"]
    cal_scores = scores_by_source(det, cal)
    old_benign = {s: v for s, v in cal_scores.items() if s.startswith("passage/") and s not in _new_sources()}
    new_benign = {s: v for s, v in cal_scores.items() if s.startswith("passage/")}
    recomputed = points_from(old_benign)
    new_points = points_from(new_benign)
    out: dict = {
        "old_points": old_points, "old_points_recomputed": recomputed, "new_points": new_points,
        "calibration": {"old": hit_table(cal_scores, old_points), "new": hit_table(cal_scores, new_points)},
    }  # fmt: skip
    if stage == "test":
        test_scores = scores_by_source(det, [r for r in rows + new if r.split == "test"])
        out["test"] = {"old": hit_table(test_scores, old_points), "new": hit_table(test_scores, new_points)}
        loso = {}
        for held in _new_sources():
            pts = points_from({s: v for s, v in new_benign.items() if s != held})
            loso[held] = {"points": pts, "test": hit_table({held: test_scores[held]}, pts)[held]}
        out["leave_one_new_source_out"] = loso
    return out


def _new_sources() -> list[str]:
    return [f"passage/{n}" for n in handwritten_passages.SOURCES]


def write_model(model_dir: Path, out_dir: Path, result: dict) -> None:
    """``injection.npz`` with the new passage points (user points, weights and every other field as
    shipped), and the recalibration's figures in its metadata; the passage unit is not touched."""
    src = load(model_dir / "injection.npz")
    meta = json.loads(json.dumps(src.metadata))
    meta["operating_points"][ROUTE] = result["new_points"]
    meta["thresholds"] = meta["operating_points"]
    meta["passage_calibration"] = {
        "note": "passage operating points recomputed with the hand-written benign passage sources "
        "(scripts/guard_training/handwritten_passages.py) as calibration-only sources; weights unchanged",
        "sources": _new_sources(),
        "topic_groups": handwritten_passages.topic_groups(),
        "points_before": result["old_points"],
        "test_before": result["test"]["old"],
        "test_after": result["test"]["new"],
        "leave_one_new_source_out": result["leave_one_new_source_out"],
    }
    new_rows = handwritten_passages.rows()
    for s in _new_sources():
        meta["rows_by_source_and_split"][s] = dict(Counter(r.split for r in new_rows if r.source == s))
        meta["licences"][s] = ["project"]
    for s, t in result["test"]["new"].items():
        meta["test_metrics"][s] = {"n": t["n"], "label": 1 if s.startswith("planted/") else 0, "route": ROUTE,
                                   "hit": t["hit"]}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    LinearModel(src.weights, src.bias, src.classes, meta).save(out_dir / "injection.npz")
