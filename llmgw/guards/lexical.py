"""A character n-gram model for user turns: the words an attack is made of, in any language.

all-MiniLM-L6-v2 is an English model: a German "Vergiss alles davor" or "Nun bist du Ted" lands
near nothing in its space, and the embedding classifier misses most such attacks. Character 3- to
5-grams of the normalised text see them as the strings they are. The text is lower-cased with runs
of whitespace collapsed; each n-gram is hashed (CRC-32, 2^18 buckets) into a log-count vector of
unit length, and a logistic unit scores it (``guardrails/models/injection_ngrams.npz``, trained by
``scripts/train_lexical_guard.py``, calibrated so that 0.5 is the threshold with at most 1% of
held-back benign prompts above it, and at most 5% of those full of trigger words).

It reads user turns only (it learnt from prompts, not from documents or tool output), and of those
only text that is **not mostly English** (:func:`mostly_english`): in English the embedding model
reads the meaning, while a string model fires on the words benign requests share with attacks
("ignore the previous paragraph", "write instructions for ..."). It reads each decoded variant
(base64, rot13, ...), the first 8,000 characters of each. No scikit-learn at run time: a sparse
dot product in numpy.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmgw.guards.classifier import MODELS_DIR, sigmoid

__all__ = ["DEFAULT_MODEL", "LexicalModel", "mostly_english", "ngram_vector"]

DEFAULT_MODEL = MODELS_DIR / "injection_ngrams.npz"
BUCKETS = 1 << 18
ORDERS = (3, 4, 5)
MAX_CHARS = 8000

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+")
ENGLISH_SHARE = 0.6


def _english_words() -> frozenset[str]:
    from llmgw.guards.names import _ordinary_words

    return _ordinary_words(nouns=True)


def mostly_english(text: str) -> bool:
    """Whether at least 60% of the words are English (spaCy's stop words and WordNet's nouns, verbs,
    adjectives and adverbs, with plural, past and -ing endings taken off). German, Khmer or
    French text falls well below; English prose, typos and names included, well above."""
    words = _WORD.findall(text[:MAX_CHARS].lower())
    if not words:
        return True
    vocabulary = _english_words()

    def known(word: str) -> bool:
        if word in vocabulary:
            return True
        for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e")):
            if word.endswith(suffix) and word[: -len(suffix)] + repl in vocabulary:
                return True
        return False

    return sum(known(w) for w in words) >= ENGLISH_SHARE * len(words)


def ngram_vector(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bucket indices, values)``: the unit-length log-count vector of ``text``'s character n-grams."""
    t = f" {_SPACES.sub(' ', text[:MAX_CHARS].lower()).strip()} "
    counts = Counter(zlib.crc32(t[i : i + n].encode()) % BUCKETS for n in ORDERS for i in range(len(t) - n + 1))
    index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = np.log1p(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    return index, values / (float(np.linalg.norm(values)) + 1e-9)


@dataclass(frozen=True)
class LexicalModel:
    weights: np.ndarray  # (BUCKETS,) float32
    bias: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def probability(self, text: str) -> float:
        """The attack probability of ``text``; 0 for mostly English text (the embedding model's)."""
        if mostly_english(text):
            return 0.0
        index, values = ngram_vector(text)
        z = float(values @ self.weights[index]) + self.bias if len(index) else -40.0
        return float(sigmoid(z))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=np.float32(self.bias),
            metadata=np.array(json.dumps(self.metadata, sort_keys=True)),
        )

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> LexicalModel:
        with np.load(Path(path), allow_pickle=False) as data:
            weights = data["weights"].astype(np.float32)
            model = cls(weights, float(data["bias"]), json.loads(str(data["metadata"])))
        if weights.shape != (BUCKETS,):
            raise ValueError(f"{path}: {weights.shape[0]} weights, expected {BUCKETS}")
        return model
