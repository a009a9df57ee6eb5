"""A tiny runtime for the guards' linear models over sentence embeddings (numpy only).

An artifact is an ``.npz`` file holding

* ``weights`` (``k x d``, float16 or float32) and ``bias`` (``k``): one logistic unit per class
  (one-vs-rest), or a softmax over classes when ``metadata["kind"] == "softmax"``;
* ``classes`` (``k`` strings);
* ``metadata``: a JSON string (embedding model and dimension, thresholds tuned on the dev split,
  training-data hashes, metrics on the held-out test split, ...).

Training lives in ``scripts/train_guards.py`` (scikit-learn); nothing here imports it. The
embedding model is loaded lazily, once per process, and shared by every guard
(:func:`default_embedder`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODELS_DIR", "LinearModel", "chunk_text", "default_embedder", "load", "sigmoid"]

#: where the shipped artifacts live when running from the repository
MODELS_DIR = Path(__file__).resolve().parents[2] / "guardrails" / "models"

Embedder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class LinearModel:
    weights: np.ndarray  # (k, d) float32
    bias: np.ndarray  # (k,) float32
    classes: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim}-d vectors, got {x.shape[1]}")
        return x @ self.weights.T + self.bias

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, k)`` probabilities: per-class sigmoids, or a softmax for ``kind == "softmax"``."""
        z = self.logits(vectors)
        if self.metadata.get("kind") == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        return sigmoid(z)

    def save(self, path: str | Path, dtype: Any = np.float16) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(dtype),
            bias=self.bias.astype(np.float32),
            classes=np.array(self.classes, dtype=str),
            metadata=np.array(json.dumps(self.metadata, sort_keys=True)),
        )


def sigmoid(z: Any) -> Any:
    """The logistic function, clipped so that no logit overflows ``exp``."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def load(path: str | Path) -> LinearModel:
    with np.load(Path(path), allow_pickle=False) as data:
        weights = data["weights"].astype(np.float32)
        bias = data["bias"].astype(np.float32).reshape(-1)
        classes = [str(c) for c in data["classes"].tolist()]
        metadata = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
    if weights.ndim != 2 or weights.shape[0] != len(classes) or bias.shape[0] != len(classes):
        raise ValueError(f"{path}: weights {weights.shape}, bias {bias.shape} and {len(classes)} classes disagree")
    return LinearModel(weights, bias, classes, metadata)


# -- text windows ----------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n\s*")


def chunk_text(text: str, size: int = 700, limit: int = 24) -> list[str]:
    """Cut ``text`` into windows of at most about ``size`` characters on sentence or line ends.

    Short text is one window. Consecutive windows share one sentence when it is short, so an
    instruction on a boundary is seen whole at least once. At most ``limit`` windows are returned
    (the first ``limit - 1`` and the last, so both ends of a long document are always scanned).
    """
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    sentences: list[str] = []
    for part in _SENTENCE_END.split(text):
        part = part.strip()
        while len(part) > size:
            cut = part.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            sentences.append(part[:cut])
            part = part[cut:].strip()
        if part:
            sentences.append(part)
    windows: list[str] = []
    current: list[str] = []
    length = 0
    for sent in sentences:
        if current and length + 1 + len(sent) > size:
            windows.append(" ".join(current))
            carry = current[-1] if len(current[-1]) <= size // 3 else None
            current = [carry] if carry else []
            length = len(carry) if carry else 0
        current.append(sent)
        length += len(sent) + (1 if length else 0)
    if current:
        windows.append(" ".join(current))
    if len(windows) > limit:
        windows = [*windows[: limit - 1], windows[-1]]
    return windows


# -- the shared embedding model --------------------------------------------------------------------
def default_embedder() -> Embedder:
    """all-MiniLM-L6-v2 as the guards read it: the float encoder of :mod:`llmgw.encoders`, the same
    vectors on every CPU (checked against committed reference vectors at first use)."""
    from llmgw.encoders import encoder

    return encoder("float")
