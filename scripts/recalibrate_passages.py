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
    ap.add_argument("--write", type=Path, default=None, help="write injection.npz and injection.md here (needs --stage test)")
    args = ap.parse_args(argv)
    result = run(args.data or default_data_dir(), args.models, args.cache, args.stage)
    print(json.dumps({k: result[k] for k in ("old_points", "old_points_recomputed", "new_points")}, indent=1))
    for split in ("calibration", "test"):
        if split not in result:
            continue
        for s, old in result[split]["old"].items():
            new = result[split]["new"][s]
            print(f"{split:11s} {s:26s} n={old['n']:3d}  hit@0.02 {old['hit']['0.02']:.3f} -> {new['hit']['0.02']:.3f}"
                  f"  hit@0.05 {old['hit']['0.05']:.3f} -> {new['hit']['0.05']:.3f}")
    for s, r in result.get("leave_one_new_source_out", {}).items():
        print(f"loso {s}: point@0.02 {r['points']['0.02']:.3f}, test drop {r['test']['hit']['0.02']:.3f}"
              f" ({r['test']['hits_at']['0.02']}/{r['test']['n']}), flag {r['test']['hit']['0.05']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if args.write:
        if "test" not in result:
            raise SystemExit("--write needs --stage test (the data card reports the test split)")
        write_model(args.models, args.write, result)
        from guard_training.injection_broad import write_card
        from llmgw.guards.classifier import load

        write_card(args.write / "injection.md", load(args.write / "injection.npz").metadata)


if __name__ == "__main__":
    main()
