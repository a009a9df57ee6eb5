"""The guard training split by concern; ``scripts/train_guards.py`` is the entry point and re-exports it.

    config       seed, split shares, caps and weights
    data         ``Rec`` rows from the shared data sets, moderation category mapping
    handwritten  hand-written and template-built hard negatives (data text)
    embedding    ``CachedEmbedder`` (MiniLM with an on-disk cache)
    splits       grouped train / dev / test split, indirect-injection examples, ``splits.json``
    metrics      thresholds, TPR, F1, row weights, card tables
    injection    prompt-injection training and test report
    moderation   moderation training and test report
    cards        the ``injection.md`` / ``moderation.md`` data cards

Importing the package sets the offline / thread defaults and puts the repository on ``sys.path``
(for ``llmgw``), as the single-file script did before any ``llmgw`` import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
