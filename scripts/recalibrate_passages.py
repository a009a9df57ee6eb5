#!/usr/bin/env python
"""Recompute the injection guard's passage operating points with the hand-written benign passage
sources (issue 17), the weights unchanged; report calibration, test and leave-one-new-source-out.

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/recalibrate_passages.py \
        --stage test --json bench/results/2026-12-04-passage-calibration.json [--write guardrails/models]

``--stage calibration`` reads nothing of the test split. ``--write DIR`` writes ``DIR/injection.npz``
(new passage points; user points and weights as shipped) and the data card ``DIR/injection.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.passage_calibration import run, write_model  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--models", type=Path, default=REPO / "guardrails" / "models", help="the shipped model files")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/llmgw-passage-calibration-vectors"))
    ap.add_argument("--stage", choices=("calibration", "test"), default="calibration")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--write", type=Path, default=None, help="write injection.npz and injection.md here (needs --stage test)"
    )
    ap.add_argument("--candidate", choices=("A", "B"), default="B", help="what --write writes")
    args = ap.parse_args(argv)
    result = run(args.data or default_data_dir(), args.models, args.cache, args.stage)
    print(
        f"points: shipped {result['shipped_points']}\n  A {result['A']['points']}\n"
        f"  B (C={result['B']['C']}) {result['B']['points']}"
    )
    for split in ("calibration", "test"):
        cands = [c for c in ("shipped", "A", "B") if split in result.get(c, {})]
        if not cands:
            continue
        for s in result[cands[-1]][split]:
            cells = "  ".join(
                f"{c}: {result[c][split][s]['hits_at']['0.02']:2d} ({result[c][split][s]['hit']['0.02']:.3f})"
                f" flag {result[c][split][s]['hit']['0.05']:.3f}"
                for c in cands
            )
            print(f"{split:11s} {s:26s} n={result[cands[-1]][split][s]['n']:3d}  {cells}")
    if args.stage == "test":
        verdict = ship_check(result)
        result["ship_check"] = verdict
        print(json.dumps(verdict, indent=1))
        for kind in ("loso_calibration_only", "loso_refit"):
            for s, r in result["B"].get(kind, {}).items():
                print(
                    f"B {kind} {s}: point@0.02 {r['points']['0.02']:.3f}, "
                    f"test drop {r['test']['hits_at']['0.02']}/{r['test']['n']}"
                    f", flag {r['test']['hit']['0.05']:.3f}"
                )
        for s, r in result["A"]["loso_calibration_only"].items():
            print(
                f"A loso {s}: point@0.02 {r['points']['0.02']:.3f}, "
                f"test drop {r['test']['hits_at']['0.02']}/{r['test']['n']}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {k: v for k, v in result.items() if k != "_unit"},
                indent=1,
                sort_keys=True,
                default=lambda o: {k: v for k, v in o.items() if k != "_unit"},
            )
            + "\n"
        )
    if args.write:
        if args.stage != "test":
            raise SystemExit("--write needs --stage test (the data card reports the test split)")
        write_model(args.models, args.write, result, args.candidate)
        from guard_training.injection_broad import write_card

        from llmgw.guards.classifier import load

        write_card(args.write / "injection.md", load(args.write / "injection.npz").metadata)


def ship_check(result: dict, drop: str = "0.02", base_tpr: float = 58 / 101) -> dict:
    """The rule committed before the test figures were read (commit f4d8ff5), for candidate B."""
    test = result["B"]["test"]
    benign = {s: t for s, t in test.items() if s.startswith("passage/")}
    per_source = {s: t["hits_at"][drop] <= (1 if t["n"] < 50 else int(0.02 * t["n"])) for s, t in benign.items()}
    pooled = sum(t["hits_at"][drop] for t in benign.values()) / sum(t["n"] for t in benign.values())
    planted = [t for s, t in test.items() if s.startswith("planted/")]
    tpr = sum(t["hits_at"][drop] for t in planted) / sum(t["n"] for t in planted)
    a = all(per_source.values()) and pooled <= 0.02
    b = tpr >= base_tpr - 0.15
    return {
        "a_per_source_ok": per_source,
        "a_pooled_benign_drop": round(pooled, 4),
        "a": a,
        "b_planted_tpr": round(tpr, 4),
        "b_floor": round(base_tpr - 0.15, 4),
        "b": b,
        "c": "checked when the file is written (user weights and points copied)",
        "ship": a and b,
    }


if __name__ == "__main__":
    main()
