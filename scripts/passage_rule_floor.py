#!/usr/bin/env python
"""A floor for the injection rules on passages (issue 17): a rule hit counts only where the passage
unit's own probability reaches ``rule_floor``; chosen on calibration, reported on test.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/passage_rule_floor.py --stage calibration
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/passage_rule_floor.py --stage test --json OUT

Why: the rules score well-known attack phrasing at a fixed 0.85-0.95, and on passages they also fire
on text that *quotes* such phrasing to explain it (a "DAN" explainer, a changelog about a linter's
"new instructions" option), so security documentation is dropped whatever the point. The unit reads
the whole passage; with a floor, a rule only adds to a passage the unit already finds a little
suspicious (as moderation's lexicon floor does). Rows, splits and the four hand-written document kinds
are those of ``scripts/recalibrate_passages.py``; every candidate floor is applied to the same scores
(score = the unit's probability where it is under the floor, else the detector's full score).
The choice (commit bc8206f, before any figure): the floor whose 2 % point drops the most planted
calibration attacks; ties to the lower floor.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training import handwritten_passages  # noqa: E402
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.passage_calibration import ROUTE, existing_rows, hit_table, points_from  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402

from llmgw.guards.injection import InjectionDetector  # noqa: E402

FLOORS = [0.0, 0.05, *[round(0.1 * i, 1) for i in range(1, 10)], 1.01]  # 1.01: rules off for passages


def scored(det: InjectionDetector, rows: list) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per source: (the detector's score, the unit's own probability)."""
    by: dict[str, list] = defaultdict(list)
    for r in rows:
        by[r.source].append(r)
    out = {}
    for s, rs in sorted(by.items()):
        res = det.score_many([r.text for r in rs], [ROUTE] * len(rs))
        out[s] = (np.array([x.score for x in res]), np.array([x.classifier for x in res]))
    return out


def floored(scores: dict[str, tuple[np.ndarray, np.ndarray]], floor: float) -> dict[str, np.ndarray]:
    return {s: np.where(clf >= floor, full, clf) for s, (full, clf) in scores.items()}


def pooled_planted(table: dict[str, dict], rate: str = "0.02") -> tuple[int, int]:
    planted = [t for s, t in table.items() if s.startswith("planted/")]
    return sum(t["hits_at"][rate] for t in planted), sum(t["n"] for t in planted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=("calibration", "test"), default="calibration")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/llmgw-passage-calibration-vectors"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    models = REPO / "guardrails" / "models"
    det = InjectionDetector(models / "injection.npz", embed=VectorCache(args.cache))
    rows = existing_rows(default_data_dir(), models / "injection_splits.json") + handwritten_passages.rows()
    rows = [r for r in rows if r.route == ROUTE]
    cal = scored(det, [r for r in rows if r.split == "calibration"])
    out: dict = {"floors": {}}
    for f in FLOORS:
        s = floored(cal, f)
        points = points_from({k: v for k, v in s.items() if k.startswith("passage/")})
        table = hit_table(s, points)
        caught, n = pooled_planted(table)
        out["floors"][str(f)] = {"points": points, "calibration_planted_at_2pct": [caught, n], "calibration": table}
        print(f"floor {f:4}: 2 % point {points['0.02']:.3f}, calibration planted dropped {caught}/{n}", flush=True)
    best = max(FLOORS, key=lambda f: (out["floors"][str(f)]["calibration_planted_at_2pct"][0], -f))
    out["chosen"] = best
    print(f"chosen floor (calibration): {best}", flush=True)
    if args.stage == "test":
        test = scored(det, [r for r in rows if r.split == "test"])
        for name, f in (("shipped", 0.0), ("floor", best)):
            points = out["floors"][str(f)]["points"]
            table = hit_table(floored(test, f), points)
            benign = {s: t for s, t in table.items() if s.startswith("passage/")}
            drops = sum(t["hits_at"]["0.02"] for t in benign.values())
            total = sum(t["n"] for t in benign.values())
            caught, n = pooled_planted(table)
            out[f"test_{name}"] = {"floor": f, "table": table, "benign_dropped": [drops, total], "planted": [caught, n]}
            print(f"test {name} (floor {f}): benign dropped {drops}/{total}, planted dropped {caught}/{n} "
                  f"({caught / n:.3f})", flush=True)  # fmt: skip
            for s, t in sorted(benign.items()):
                print(f"   {s:28s} {t['hits_at']['0.02']}/{t['n']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
