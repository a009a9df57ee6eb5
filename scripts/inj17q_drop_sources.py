#!/usr/bin/env python
"""inj17q, test split only (read after the rule commit): how many passages dropped at the 2 % point
the passage unit reaches, and how many only a rule, for the candidate and the shipped file.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/inj17q_drop_sources.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training import passage_broad17q as pb  # noqa: E402
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402

from llmgw.guards.injection import InjectionDetector  # noqa: E402

FILES = {
    "candidate": REPO / "bench/results/inj17q-model/injection.npz",
    "shipped": REPO / "guardrails/models/injection.npz",
}


def main() -> None:
    embed = VectorCache(Path("/tmp/inj17q-vectors"))
    rows = pb.all_rows(default_data_dir(), REPO / "guardrails/models/injection_splits.json", embed)
    test = [r for r in rows if r.split == "test" and r.route == pb.ROUTE]
    out = {}
    for name, path in FILES.items():
        det = InjectionDetector(path, embed=embed)
        pt = det.operating_points(pb.ROUTE)[pb.DROP]
        c: Counter[tuple[str, str]] = Counter()
        for r, x in zip(test, det.score_many([r.text for r in test], [pb.ROUTE] * len(test)), strict=True):
            if x.score >= pt:
                kind = "quoted" if r.source == pb.QUOTED else ("benign" if r.label == 0 else "attack")
                c[(kind, "unit" if x.classifier >= pt else "rule only")] += 1
        out[name] = {f"{a}|{b}": n for (a, b), n in sorted(c.items())}
    (REPO / "bench/results/inj17q-test-drop-sources.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
