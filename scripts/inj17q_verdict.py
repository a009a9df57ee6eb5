#!/usr/bin/env python
"""The verdict of experiment inj17q, clause by clause, as ``docs/experiments/inj17q-rule.md`` states it.

    PYTHONPATH=. .venv/bin/python scripts/inj17q_verdict.py

Reads the blind10 run (``bench/results/guard_blind10_injection-inj17q.json``, written by
``bench.guard_blind --injection-model``; aggregates only), the test-split figures
(``bench/results/inj17q-test.json``) and the candidate's files; writes ``bench/results/inj17q-verdict.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def passage_figures(blind: dict) -> tuple[dict, dict, dict, dict, object, object]:
    """A blind passage run's benign and attack figures, shipped then candidate, and their security docs."""
    ship, cand = blind["float"], blind["float:candidate"]
    b_s, b_c = ship["passages_benign.jsonl"], cand["passages_benign.jsonl"]
    a_s, a_c = ship["passages_attacks.jsonl"], cand["passages_attacks.jsonl"]
    sec_s, sec_c = (b["acted_by_category"].get("security_docs") for b in (b_s, b_c))
    return b_s, b_c, a_s, a_c, sec_s, sec_c


def verdict(blind: dict, test: dict, model_dir: Path) -> dict:
    b_s, b_c, a_s, a_c, sec_s, sec_c = passage_figures(blind)
    from llmgw.guards.classifier import load

    unit = load(model_dir / "injection_passages.npz")
    size = (model_dir / "injection_passages.npz").stat().st_size
    d = test["clause_d"]
    out = {
        "a": {"candidate": b_c["acted"], "shipped": b_s["acted"],
              "holds": b_c["acted"] <= 0.02 and b_c["acted"] <= b_s["acted"]},
        "b": {"candidate": a_c["acted"], "shipped": a_s["acted"], "needed": round(a_s["acted"] + 0.05, 4),
              "holds": a_c["acted"] >= a_s["acted"] + 0.05 - 1e-9},
        "c": {"candidate": sec_c, "shipped": sec_s,
              "holds": sec_c is not None and sec_s is not None and sec_c <= sec_s},
        "d": {"per_source": d["per_source"], "user_identical": d["user_identical"], "holds": d["holds"]},
        "e": {"weights_shape": list(np.asarray(unit.weights).shape), "artifact_bytes": size,
              "holds": np.asarray(unit.weights).size == 384 and size <= 2 * 1024 * 1024},
        "points": {"candidate_2pct": b_c["act_at"],
                   "shipped_2pct": b_s["act_at"]},
        "flagged_or_dropped": {"benign": {"candidate": b_c["flagged_or_acted"], "shipped": b_s["flagged_or_acted"]},
                               "attacks": {"candidate": a_c["flagged_or_acted"], "shipped": a_s["flagged_or_acted"]}},
        "by_category": {"benign": {"candidate": b_c["acted_by_category"], "shipped": b_s["acted_by_category"]},
                        "attacks": {"candidate": a_c["acted_by_category"], "shipped": a_s["acted_by_category"]}},
    }  # fmt: skip
    out["ship"] = all(out[k]["holds"] for k in "abcde")
    return out


def main() -> None:
    blind = json.loads((RESULTS / "guard_blind10_injection-inj17q.json").read_text())
    test = json.loads((RESULTS / "inj17q-test.json").read_text())["test"]
    out = verdict(blind, test, RESULTS / "inj17q-model")
    (RESULTS / "inj17q-verdict.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: (v["holds"] if isinstance(v, dict) and "holds" in v else v) for k, v in out.items()
                      if k in ("a", "b", "c", "d", "e", "ship")}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
