"""The hand-written held-out moderation sentences (``bench/data/moderation_heldout/``): written before
round 3's frames and training, never used for a choice; read for per-kind recall only."""

from __future__ import annotations

import json

from .config import REPO
from .moderation_data import ModRow

HELDOUT = REPO / "bench" / "data" / "moderation_heldout" / "handwritten_2026-12-04.jsonl"


def heldout_rows() -> list[ModRow]:
    """One row per sentence, source ``heldout_<kind>`` (threat, harassment, selfharm, instructions;
    negated, counter, discussing, figurative)."""
    out = []
    for line in HELDOUT.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out.append(ModRow(r["text"], f"heldout_{r['kind']}", int(r["harmful"]), (), "heldout"))
    return out
