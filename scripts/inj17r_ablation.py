#!/usr/bin/env python
"""inj17r, after the verdict (reported, not a clause): the quote-aware rules alone, on the shipped files.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/inj17r_ablation.py

The decision set (blind17) is spent and read once; this separates, on the calibration and the
project's test split only, what the rules change from what inj17q's unit changes: the shipped files at
their own points with the rules as shipped and quote-aware (``quotes``), and the candidate files with
the rules as shipped and quote-aware. Writes ``bench/results/inj17r-ablation.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

import numpy as np  # noqa: E402
from guard_training import passage_broad17q as pb  # noqa: E402
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402

from llmgw.guards.injection import InjectionDetector, QuoteKinds  # noqa: E402

RESULTS = REPO / "bench" / "results"


def main() -> None:
    embed = VectorCache(Path("/tmp/inj17q-vectors"))
    models = REPO / "guardrails" / "models"
    rows = pb.all_rows(default_data_dir(), models / "injection_splits.json", embed)
    files = {"shipped": models / "injection.npz", "candidate": RESULTS / "inj17r-model" / "injection.npz"}
    out: dict = {}
    for split in ("calibration", "test"):
        part = [r for r in rows if r.split == split and r.route == pb.ROUTE
                and (not getattr(r, "extra", False) or r.source == pb.QUOTED)]  # fmt: skip
        for name, path in files.items():
            for kinds in (False, QuoteKinds.QUOTES):
                det = InjectionDetector(path, embed=embed, quotes=kinds)
                pts = det.operating_points(pb.ROUTE)
                sc = pb.scores_by_source(det, part)
                key = f"{split}: {name} files, rules {'quote-aware' if kinds else 'as shipped'}"
                benign = np.concatenate([v for s, v in sc.items() if s.startswith("passage/") and s != pb.QUOTED])
                planted = np.concatenate([v for s, v in sc.items() if s.startswith("planted/")])
                out[key] = {
                    "point": pts[pb.DROP],
                    "benign_dropped": round(float((benign >= pts[pb.DROP]).mean()), 4), "benign_n": len(benign),
                    "planted_dropped": round(float((planted >= pts[pb.DROP]).mean()), 4), "planted_n": len(planted),
                    "per_source": {s: round(float((v >= pts[pb.DROP]).mean()), 4) for s, v in sc.items()},
                }  # fmt: skip
                print(key, {k: v for k, v in out[key].items() if k != "per_source"}, flush=True)
    (RESULTS / "inj17r-ablation.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
