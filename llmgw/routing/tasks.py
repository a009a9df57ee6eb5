"""Which task a request is: given by the client, or inferred from the last user turn.

Inference is a logistic regression on all-MiniLM-L6-v2 sentence embeddings, trained at start-up
on exemplars (``llmgw/routing/exemplars.yaml`` plus ``routing.tasks`` from the config: users
extend a task by adding examples, or add a task). Below ``routing.task_threshold`` confidence the
route's default task applies. Training takes about a second; classifying one turn is one query
embedding (ONNX Runtime) and a 384×7 product.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

EXEMPLARS = Path(__file__).with_name("exemplars.yaml")


@dataclass(frozen=True, slots=True)
class TaskGuess:
    task: str
    confidence: float
    source: str  # "request" | "classifier" | "default"


def load_exemplars(extra: dict[str, list[str]] | None = None, replace: bool = False) -> dict[str, list[str]]:
    base: dict[str, list[str]] = {} if replace else yaml.safe_load(EXEMPLARS.read_text(encoding="utf-8"))
    merged = {task: list(examples) for task, examples in base.items()}
    for task, examples in (extra or {}).items():
        merged.setdefault(task, []).extend(examples)
    return merged


class TaskClassifier:
    def __init__(self, exemplars: dict[str, list[str]]) -> None:
        from sklearn.linear_model import LogisticRegression

        from llmgw import embedder

        self.tasks = sorted(exemplars)
        texts = [t for task in self.tasks for t in exemplars[task]]
        labels = [i for i, task in enumerate(self.tasks) for _ in exemplars[task]]
        vectors = embedder.encode(texts)
        model = LogisticRegression(C=10.0, max_iter=2000)
        model.fit(vectors, labels)
        self.weights = model.coef_.astype(np.float32)  # (tasks, 384)
        self.bias = model.intercept_.astype(np.float32)

    def classify(self, text: str) -> tuple[str, float]:
        """Blocking (one embedding): the most likely task and its probability."""
        from llmgw import encoders

        logits = self.weights @ encoders.encode_query(text[:2000]) + self.bias
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        return self.tasks[best], float(probs[best])


_lock = threading.Lock()
_cache: dict[int, TaskClassifier] = {}


def classifier_for(extra: dict[str, list[str]], replace: bool) -> TaskClassifier:
    """One classifier per distinct exemplar set, built on first use (blocking; the gateway builds
    its own at start-up, ``llmgw.warmup``)."""
    key = hash((replace, tuple(sorted((k, tuple(v)) for k, v in extra.items()))))
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = TaskClassifier(load_exemplars(extra, replace))
    return found
