#!/usr/bin/env python
"""Experiment inj17q: the passage unit refitted on broader benign document data (issue 17).

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/inj17q_passages.py --stage calibration
    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/inj17q_passages.py --stage test \
        --write bench/results/inj17q-model

``--stage calibration`` fits every variant on the train split and reads the calibration split only
(``bench/results/inj17q-calibration.json``). ``--stage test`` (only after the rule
``docs/experiments/inj17q-rule.md`` is committed) also reads the test split, the leave-one-source-out
folds and writes the candidate files (``injection.npz``: the shipped user unit and user points, the
candidate's passage points; ``injection_passages.npz``; the n-gram model copied) and
``bench/results/inj17q-test.json``. See ``guard_training/passage_broad17q.py`` for the data.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from guard_training import passage_broad17q as pb  # noqa: E402
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402

from llmgw.guards.classifier import LinearModel, load  # noqa: E402
from llmgw.guards.injection import InjectionDetector  # noqa: E402

RESULTS = REPO / "bench" / "results"


def _project(r: object) -> bool:
    """A row of the project's test split as it stood before this experiment."""
    src = r.source  # type: ignore[attr-defined]
    return not getattr(r, "extra", False) and src.startswith("passage/") and src != pb.QUOTED


def test_stage(rows: list, embed: VectorCache, shipped: InjectionDetector, cal: dict) -> dict:
    chosen = cal["variants"][cal["chosen"]]
    unit = cal["_unit"]
    cand = pb.detector(shipped, unit, embed)
    pts, own = chosen["points"], shipped.operating_points(pb.ROUTE)
    test = [r for r in rows if r.split == "test" and r.route == pb.ROUTE]
    sc_c, sc_s = pb.scores_by_source(cand, test), pb.scores_by_source(shipped, test)
    proj = [r for r in test if _project(r)]
    pc, ps = pb.scores_by_source(cand, proj), pb.scores_by_source(shipped, proj)
    out: dict = {
        "chosen": cal["chosen"], "points": pts, "shipped_points": own,
        "test_all": {"candidate": pb.hit_table(sc_c, pts), "shipped": pb.hit_table(sc_s, own)},
        "test_project_benign": {"candidate": pb.hit_table(pc, pts), "shipped": pb.hit_table(ps, own)},
    }  # fmt: skip
    # user turns: the same user unit and points in both files, so the same verdicts
    user = [r for r in rows if r.split == "test" and r.route == "user"]
    upts = shipped.operating_points("user")
    us = [x.score for x in shipped.score_many([r.text for r in user], ["user"] * len(user))]
    uc = [x.score for x in cand.score_many([r.text for r in user], ["user"] * len(user))]
    out["user_test"] = {"n": len(user), "identical_scores": bool(np.array_equal(us, uc)),
                        "refused_at_0.005": {"shipped": int(sum(s >= upts["0.005"] for s in us)),
                                             "candidate": int(sum(s >= upts["0.005"] for s in uc))}}  # fmt: skip
    # clause (d): per benign passage source of the project's test split, candidate not above shipped + 1 point
    d = {}
    for s, t in out["test_project_benign"]["candidate"].items():
        b = out["test_project_benign"]["shipped"][s]
        d[s] = {"n": t["n"], "candidate": t["hit"][pb.DROP], "shipped": b["hit"][pb.DROP],
                "ok": t["hit"][pb.DROP] <= b["hit"][pb.DROP] + 0.01}  # fmt: skip
    out["clause_d"] = {"per_source": d, "user_identical": out["user_test"]["identical_scores"],
                       "holds": all(v["ok"] for v in d.values()) and out["user_test"]["identical_scores"]}  # fmt: skip
    out["loso"] = loso(rows, embed, shipped, chosen)
    return out


def loso(rows: list, embed: VectorCache, shipped: InjectionDetector, chosen: dict) -> dict:
    """Fit and calibrate without benign passage source X (and the attacks planted into it), measure all
    of X's rows at the fold's 2 % point."""
    sources = sorted({r.source for r in rows if r.route == pb.ROUTE and r.label == 0})
    out: dict = {}
    for held in sources:
        kept = [r for r in rows if r.source != held and r.context_source != held]
        x, y, w = pb.training_set(kept, embed, chosen["frames"])
        unit = pb.fit(x, y, w, chosen["C"])
        det = pb.detector(shipped, unit, embed)
        cal = pb.scores_by_source(det, [r for r in kept if r.split == "calibration" and r.route == pb.ROUTE])
        pts = pb.points_from(cal)
        target = [r for r in rows if r.source == held]
        s = pb.scores_by_source(det, target)[held]
        s_ship = pb.scores_by_source(shipped, target)[held]
        own = shipped.operating_points(pb.ROUTE)
        out[held] = {"n": len(s), "point": pts[pb.DROP], "dropped": int((s >= pts[pb.DROP]).sum()),
                     "rate": round(float((s >= pts[pb.DROP]).mean()), 4),
                     "shipped_file_dropped": int((s_ship >= own[pb.DROP]).sum())}  # fmt: skip
        print(f"  loso {held}: {out[held]}", flush=True)
    n = sum(v["n"] for v in out.values())
    dropped = sum(v["dropped"] for v in out.values())
    shipped_dropped = sum(v["shipped_file_dropped"] for v in out.values())
    out["_pooled"] = {"n": n, "rate": round(dropped / n, 4), "shipped_file_rate": round(shipped_dropped / n, 4)}
    return out


def write_model(models: Path, out_dir: Path, unit: LinearModel, chosen: str, pts: dict) -> None:
    src = load(models / "injection.npz")
    meta = json.loads(json.dumps(src.metadata))
    meta["operating_points"][pb.ROUTE] = pts
    meta["thresholds"] = meta["operating_points"]
    meta["passage_unit_inj17q"] = {"variant": chosen, "note": "scripts/inj17q_passages.py; user unit as shipped"}
    out_dir.mkdir(parents=True, exist_ok=True)
    LinearModel(src.weights, src.bias, src.classes, meta).save(out_dir / "injection.npz")
    old = load(models / "injection_passages.npz")
    pmeta = {**old.metadata, "operating_points": meta["operating_points"], "thresholds": meta["operating_points"],
             "inj17q_variant": chosen}  # fmt: skip
    LinearModel(unit.weights, unit.bias, ["injection"], pmeta).save(out_dir / "injection_passages.npz")
    shutil.copy(models / "injection_ngrams.npz", out_dir / "injection_ngrams.npz")


def _strip(o: object) -> object:
    if isinstance(o, dict):
        return {k: _strip(v) for k, v in o.items() if not k.startswith("_unit")}
    return o


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options of the passage experiments on inj17q's rows (this script, ``inj17r_quotes``)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--models", type=Path, default=REPO / "guardrails" / "models")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/inj17q-vectors"))
    ap.add_argument("--stage", choices=("calibration", "test"), default="calibration")
    return ap


def main(argv: list[str] | None = None) -> None:
    ap = arguments(__doc__)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args(argv)
    embed = VectorCache(args.cache)
    shipped = InjectionDetector(args.models / "injection.npz", embed=embed)
    rows = pb.all_rows(args.data or default_data_dir(), args.models / "injection_splits.json", embed)
    counts = Counter((r.source, r.split) for r in rows if r.route == pb.ROUTE)
    print(f"{len(rows)} rows; passage route: {dict(sorted(counts.items()))}", flush=True)
    cal = pb.calibrate(rows, embed, shipped)
    print(f"chosen: {cal['chosen']}", flush=True)
    result: dict = {"calibration": cal, "rows": {f"{s}|{sp}": n for (s, sp), n in sorted(counts.items())}}
    if args.stage == "test":
        result["test"] = test_stage(rows, embed, shipped, cal)
        if args.write:
            ch = cal["variants"][cal["chosen"]]
            write_model(args.models, args.write, cal["_unit"], cal["chosen"], ch["points"])
    name = "inj17q-calibration.json" if args.stage == "calibration" else "inj17q-test.json"
    (RESULTS / name).write_text(json.dumps(_strip(result), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
