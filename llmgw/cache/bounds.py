"""From an error bound to a threshold: ``cache.max_wrong_rate`` through a shipped calibration table.

``bounds.json`` beside this module maps bounds (0.5 % … 20 % of semantic hits wrong) to the lowest
cosine threshold at which, on the calibration pairs, the conservative wrong share of hits,
(wrong + 1) / (hits + 1), stayed within the bound at that threshold and above. It is made by
``python -m bench.cache_bounds`` (data, method and the figures on held-out data in
docs/benchmarks.md), once with the verifier on (``cache.veto``) and once without.

With the verifier on, the threshold is the stricter of the two tables: the bound must hold on
similarity alone, and the verifier only adds refusals on top. The verifier's own table is not
credited because its word rules were written while reading the calibration families, so its
figure there is in-sample; on sets written blind (docs/benchmarks.md, 2026-12-03) the verifier
table's threshold of 0.50 let 21-34 % of hits be wrong.

Re-derived with the role alignment (``roles.py``) and near-misses made of the same words in the
calibration data (2026-12-03): similarity alone certifies no bound, so every row of the stricter
rule is 1.0 and the default serves no semantic hit; ``cache.threshold`` overrides.

A bound between two rows takes the stricter row. The realised rate depends on how many near-miss
questions a deployment sees; feedback (``POST /v1/feedback``) raises the threshold of the entries
whose hits were marked wrong.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).with_name("bounds.json")


@lru_cache(maxsize=1)
def table() -> dict[str, dict[float, float]]:
    raw = json.loads(TABLE.read_text(encoding="utf-8"))
    return {side: {float(b): float(t) for b, t in raw[side].items()} for side in ("verifier", "no_verifier")}


def threshold_for(max_wrong_rate: float, verifier: bool = True) -> float:
    """The threshold the calibration table gives for this bound (the stricter row between two);
    with the verifier, the stricter of its table and the similarity-only one (see above)."""
    sides = ("verifier", "no_verifier") if verifier else ("no_verifier",)
    return max(_row(table()[side], max_wrong_rate) for side in sides)


def _row(rows: dict[float, float], max_wrong_rate: float) -> float:
    fitting = [b for b in rows if b <= max_wrong_rate + 1e-12]
    return rows[max(fitting)] if fitting else max(rows.values())
