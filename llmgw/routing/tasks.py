"""Which task a request is: given by the client, or inferred from the last user turn.

Inference is a logistic regression on all-MiniLM-L6-v2 sentence embeddings, trained at start-up
on exemplars (``llmgw/routing/exemplars.yaml`` plus ``routing.tasks`` from the config: users
extend a task by adding examples, or add a task). Training takes a few seconds; classifying one
turn is one query embedding (ONNX Runtime) and a 384×7 product.

**Calibrated confidence.** A regression fitted to a few dozen exemplars per task is over-confident
on its own exemplars and says little about unseen requests, so the probabilities are temperature
scaled: the exemplars are split in five stratified folds, each fold is scored by a model trained on
the others, and the temperature that minimises the log loss of those out-of-fold scores is kept
(``temperature``). A confidence of 0.6 then means about 60 % of such requests are labelled right,
whatever exemplars the configuration adds, which is what ``routing.task_threshold`` compares with.

Below the threshold the route's ``selection.default_task`` applies; its default ``safest`` asks
:func:`llmgw.routing.select.safest_task` for the task, among the :meth:`TaskClassifier.plausible`
ones, whose chosen model serves all of them best.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

EXEMPLARS = Path(__file__).with_name("exemplars.yaml")
#: inverse regularisation strength of the regression, chosen by cross-validation on the shipped
#: exemplars (``python -m bench.routing``; docs/routing.md)
C = 32.0
FOLDS = 5
TEMPERATURES = np.exp(np.linspace(np.log(0.2), np.log(5.0), 41))
#: plausible tasks: the most probable ones until they hold this much probability, at most MAX_PLAUSIBLE
PLAUSIBLE_MASS = 0.9
MAX_PLAUSIBLE = 3


@dataclass(frozen=True, slots=True)
class TaskGuess:
    task: str
    confidence: float
    source: str  # "request" | "classifier" | "default" | why the default applied
    plausible: tuple[str, ...] = ()  # set when the classifier was unsure and the safest of these should apply


def load_exemplars(extra: dict[str, list[str]] | None = None, replace: bool = False) -> dict[str, list[str]]:
    base: dict[str, list[str]] = {} if replace else yaml.safe_load(EXEMPLARS.read_text(encoding="utf-8"))
    merged = {task: list(examples) for task, examples in base.items()}
    for task, examples in (extra or {}).items():
        merged.setdefault(task, []).extend(examples)
    return merged


def fit(vectors: np.ndarray, labels: np.ndarray, c: float = C) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) of the regression: logits = vectors @ weights.T + bias."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(vectors, labels)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def out_of_fold_logits(vectors: np.ndarray, labels: np.ndarray, c: float = C, folds: int = FOLDS) -> np.ndarray:
    """Each exemplar's logits from a model that did not see it (stratified folds, fixed seed)."""
    from sklearn.model_selection import StratifiedKFold

    logits = np.zeros((len(labels), int(labels.max()) + 1), dtype=np.float32)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(vectors, labels)
    for train, held in splits:
        weights, bias = fit(vectors[train], labels[train], c)
        logits[held] = vectors[held] @ weights.T + bias
    return logits


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def best_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the log loss of held-out logits (a grid: one parameter, no optimiser)."""
    losses = [-np.log(softmax(logits, t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def exemplar_vectors(texts: list[str]) -> np.ndarray:
    """The exemplars' query vectors, cached on disk by content: a restart does not embed them again.

    The query encoder (ONNX; the vectors torch gives, to 1e-7) embeds what is not cached yet.
    """
    from llmgw import embedder, encoders

    digest = hashlib.sha256("\x00".join([embedder.model_path(), *texts]).encode()).hexdigest()[:24]
    path = encoders.cache_dir() / f"task-exemplars-{digest}.npy"
    if path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    vectors = np.stack([encoders.encode_query(t[:2000]) for t in texts]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


class TaskClassifier:
    def __init__(self, exemplars: dict[str, list[str]], c: float = C) -> None:
        self.tasks = sorted(exemplars)
        texts = [t for task in self.tasks for t in exemplars[task]]
        labels = np.asarray([i for i, task in enumerate(self.tasks) for _ in exemplars[task]])
        vectors = exemplar_vectors(texts)
        self.weights, self.bias = fit(vectors, labels, c)
        smallest = min(len(v) for v in exemplars.values())
        # too few exemplars of some task to hold any out: leave the probabilities as fitted
        self.temperature = (
            best_temperature(out_of_fold_logits(vectors, labels, c, min(FOLDS, smallest)), labels)
            if smallest >= 2 and len(self.tasks) > 1
            else 1.0
        )

    def probabilities(self, text: str) -> dict[str, float]:
        """Blocking (one embedding): every task's calibrated probability, most probable first."""
        from llmgw import encoders

        probs = softmax(self.weights @ encoders.encode_query(text[:2000]) + self.bias, self.temperature)
        order = np.argsort(-probs, kind="stable")
        return {self.tasks[i]: float(probs[i]) for i in order}

    def classify(self, text: str) -> tuple[str, float]:
        """Blocking (one embedding): the most likely task and its probability."""
        task, confidence = next(iter(self.probabilities(text).items()))
        return task, confidence


def plausible(probabilities: dict[str, float]) -> tuple[str, ...]:
    """The most probable tasks until they hold ``PLAUSIBLE_MASS`` of the probability (at most ``MAX_PLAUSIBLE``)."""
    chosen: list[str] = []
    mass = 0.0
    for task, p in sorted(probabilities.items(), key=lambda item: -item[1]):
        chosen.append(task)
        mass += p
        if mass >= PLAUSIBLE_MASS or len(chosen) == MAX_PLAUSIBLE:
            break
    return tuple(chosen)


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
