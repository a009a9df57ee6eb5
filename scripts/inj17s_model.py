#!/usr/bin/env python
"""inj17s: the shipped injection files with quote-aware passage rules switched on, nothing else changed.

inj17r tried quote-aware rules (``llmgw/guards/reported.py``) together with inj17q's refitted passage
unit, and lost planted attacks through that unit. This candidate isolates the rules: the shipped user
and passage units, the shipped operating points (measured with the rules as shipped; a quote-aware
rule can only lower a passage's score, so no benign calibration rate can rise), and ``passage_quotes:
quotes`` (quotation marks of any script; not code spans, blockquotes or fences: inj17r's calibration
choice of the narrowest span set) in both files' metadata. Rule: docs/experiments/inj17s-rule.md.

    python scripts/inj17s_model.py      # writes bench/results/inj17s-model/
    python -m bench.guard_blind --sets bench/data/blind18/guards --only injection --tag inj17s \\
        --injection-model bench/results/inj17s-model
"""

from __future__ import annotations

import shutil
from pathlib import Path

from llmgw.guards.classifier import LinearModel, load

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "guardrails" / "models"
OUT = ROOT / "bench" / "results" / "inj17s-model"


def with_quotes(name: str) -> None:
    model = load(SHIPPED / name)
    meta = {**model.metadata, "passage_quotes": "quotes", "inj17s": "shipped file; quote-aware passage rules on"}
    LinearModel(model.weights, model.bias, model.classes, meta).save(OUT / name)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("injection.npz", "injection_passages.npz"):
        with_quotes(name)
    shutil.copy(SHIPPED / "injection_ngrams.npz", OUT / "injection_ngrams.npz")
    for name in ("injection.npz", "injection_passages.npz"):
        a, b = load(SHIPPED / name), load(OUT / name)
        assert (a.weights == b.weights).all() and (a.bias == b.bias).all(), name  # float16 weights: lossless
        assert a.metadata.get("operating_points") == b.metadata.get("operating_points"), name
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
