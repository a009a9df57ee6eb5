"""Which task a request is: given by the client, or inferred from the last user turn.

Inference is a logistic regression on all-MiniLM-L6-v2 sentence embeddings, trained at start-up
on exemplars (``llmgw/routing/exemplars.yaml`` plus ``routing.tasks`` from the config: users
extend a task by adding examples, or add a task). Training takes a few seconds; classifying one
turn is one query embedding (ONNX Runtime) and a 390×7 product (384 + six cues).

**Calibrated confidence.** A regression fitted to a few dozen exemplars per task is over-confident
on its own exemplars and says little about unseen requests, so the probabilities are temperature
scaled: the exemplars are split in five stratified folds, each fold is scored by a model trained on
the others, and the temperature that minimises the log loss of those out-of-fold scores is kept
(``temperature``). A confidence of 0.6 then means about 60 % of such requests are labelled right,
whatever exemplars the configuration adds, which is what ``routing.task_threshold`` compares with.

**The instruction apart from the paste.** A turn that pastes a long text before or after its
instruction is read twice: as a whole (its first 256 word pieces, as before) and through its
*instruction view* (:mod:`llmgw.routing.views`: the head of its first line and the tail of its
last, outside code fences and quotes). ``COMBINE`` says what the regression reads:
``instruction`` (the default, chosen by cross-validation over all five: the instruction view
alone, so a long turn costs one *short* embedding), ``full`` (the whole turn, the behaviour
before), or both: ``concat`` (side by side), ``mean``, ``max`` (the more confident view). A
short turn is its own instruction view, and every combination reads it once.

**Task words.** Each view's embedding carries six lexical cues (:mod:`llmgw.routing.cues`: does it use
a summarize, extract, translate, code, math or creative word, in eleven languages) scaled by
``CUE_WEIGHT``; they cost no embedding and let a German or Japanese instruction say its task to an
English model. The exemplars come from ``exemplars.yaml``, ``pasted.yaml``, ``broad.yaml`` (summarize
and extract in many phrasings and languages, and their neighbours) and ``public.yaml`` (real public
prompts labelled by hand), each with its source (:func:`sourced_exemplars`) so a benchmark can leave
one out (``python -m bench.routing_sources``).

**Two encoders** (``routing.task_encoder``, :data:`ENCODERS`). ``tuned``, the default, reads the
shared MiniLM vector (the one the guards and the semantic cache compute, memoised) beside the vector
of a MiniLM tuned on the exemplars (:mod:`llmgw.routing.encoder`), each with the cues: one more pass
per request, 85 → 90 % routed right on two fresh sets (route26). ``shared`` reads the shared vector
alone. Each has its own ``C`` (:data:`C_OF`).

Below the threshold the route's ``selection.default_task`` applies; its default ``safest`` asks
:func:`llmgw.routing.select.safest_task` for the task, among the :meth:`TaskClassifier.plausible`
ones, whose chosen model serves all of them best.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from llmgw.routing import cues, views

log = logging.getLogger("llmgw.routing.tasks")

EXEMPLARS = Path(__file__).with_name("exemplars.yaml")
#: instructions composed with pasted texts (e-mails, articles, logs, tables, code...), before or after them
PASTED = Path(__file__).with_name("pasted.yaml")
#: summarize and extract in many phrasings and languages, and their confusable neighbours (plain
#: requests, and instructions composed with the texts of ``pasted.yaml``)
BROAD = Path(__file__).with_name("broad.yaml")
#: real public prompts, labelled by hand, each with its corpus (``source``)
PUBLIC = Path(__file__).with_name("public.yaml")
#: requests phrased as people unaware of the exemplars phrase them (paste first or last, long pastes,
#: ten languages, task words that point to another task), with their own pasted texts (route19)
PHRASINGS = Path(__file__).with_name("phrasings.yaml")
#: whether the shipped exemplars include ``phrasings.yaml``: not yet; it failed its pre-registered ship
#: rule (per-task cross-validation of chat and math, docs/benchmarks.md, route19)
WITH_PHRASINGS = False
#: the cues of the view's two ends apart (head of the first line, tail of the last: 2 x 6 dimensions)
#: rather than of the view as a whole (6): a task word in the instruction and one in the paste's first or
#: last sentence then weigh differently (chosen by cross-validation, ``python -m bench.routing_phrasings``)
CUE_ENDS = False
#: weight of the lexical task cues appended to each embedding (0: embeddings alone; chosen by
#: cross-validation and leave-one-source-out, ``python -m bench.routing_sources``)
CUE_WEIGHT = 0.25
#: inverse regularisation strength of the regression, chosen by cross-validation on the shipped
#: exemplars (``python -m bench.routing``; docs/benchmarks.md, 2026-12-04), for the shared encoder alone
C = 2.0
#: what the regression reads (``routing.task_encoder``): ``shared``, the vector of the MiniLM the guards
#: and the cache read (no pass of its own), or ``tuned``, that vector beside one of a MiniLM tuned on
#: the exemplars (:mod:`llmgw.routing.encoder`; one more pass; route26, the gateway's default)
ENCODERS = ("shared", "tuned")
#: ``C`` of each encoder: ``tuned``'s chosen by ``bench.routing_encoders.choose_c`` on all exemplars (route26)
C_OF = {"shared": C, "tuned": 8.0}
#: how the whole turn and its instruction view are combined (chosen by cross-validation; see the docstring)
COMBINE = "instruction"
COMBINES = ("full", "instruction", "concat", "mean", "max")
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


#: how a composed request joins instruction and text, in turn: a blank line, a line break, a space
SEPARATORS = ("\n\n", "\n", " ")


def compose(requests: dict[str, list[list[str]]], texts: dict[str, str]) -> dict[str, list[str]]:
    """Instruction then text (``before``) or text then instruction (``after``), joined by each of
    :data:`SEPARATORS` in turn (people paste on the same line as often as below)."""
    out: dict[str, list[str]] = {}
    for task, rows in requests.items():
        for i, (position, name, instruction) in enumerate(rows):
            text, sep = texts[name], SEPARATORS[i % len(SEPARATORS)]
            out.setdefault(task, []).append(
                f"{instruction}{sep}{text}" if position == "before" else f"{text}{sep}{instruction}"
            )
    return out


def pasted_exemplars() -> dict[str, list[str]]:
    """``pasted.yaml`` composed (:func:`compose`)."""
    data = yaml.safe_load(PASTED.read_text(encoding="utf-8"))
    return compose(data["requests"], data["texts"])


def sourced_exemplars(with_phrasings: bool | None = None) -> list[tuple[str, str, str]]:
    """Every shipped exemplar as (source, task, text): ``exemplars``, ``pasted``, ``broad`` (its plain
    requests and its instructions composed with the texts of ``pasted.yaml``), then each public
    corpus of ``public.yaml`` under its own name, so a benchmark can leave one source out; with
    ``with_phrasings`` (default :data:`WITH_PHRASINGS`), ``phrasings`` last (:func:`phrasings_exemplars`)."""
    out = [("exemplars", t, x) for t, xs in yaml.safe_load(EXEMPLARS.read_text(encoding="utf-8")).items() for x in xs]
    out += [("pasted", t, x) for t, xs in pasted_exemplars().items() for x in xs]
    if BROAD.is_file():
        broad = yaml.safe_load(BROAD.read_text(encoding="utf-8"))
        texts = yaml.safe_load(PASTED.read_text(encoding="utf-8"))["texts"]
        out += [("broad", t, x) for t, xs in broad["plain"].items() for x in xs]
        out += [("broad", t, x) for t, xs in compose(broad["pasted"], texts).items() for x in xs]
    if PUBLIC.is_file():
        for task, rows in yaml.safe_load(PUBLIC.read_text(encoding="utf-8")).items():
            out += [(source, task, text) for source, text in rows]
    if (WITH_PHRASINGS if with_phrasings is None else with_phrasings) and PHRASINGS.is_file():
        out += [("phrasings", t, x) for t, xs in phrasings_exemplars(PHRASINGS).items() for x in xs]
    return out


def phrasings_exemplars(path: Path) -> dict[str, list[str]]:
    """A file shaped like ``phrasings.yaml`` (``texts``, ``requests`` composed with them, ``plain``)
    as task -> requests; the held-out part of the phrasings has the same shape."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = {t: list(xs) for t, xs in (data.get("plain") or {}).items()}
    for t, xs in compose(data.get("requests") or {}, data.get("texts") or {}).items():
        out.setdefault(t, []).extend(xs)
    return out


def load_exemplars(extra: dict[str, list[str]] | None = None, replace: bool = False) -> dict[str, list[str]]:
    """The shipped exemplars (:func:`sourced_exemplars`) plus ``extra``."""
    merged: dict[str, list[str]] = {}
    if not replace:
        for _, task, text in sourced_exemplars():
            merged.setdefault(task, []).append(text)
    for task, examples in (extra or {}).items():
        merged.setdefault(task, []).extend(examples)
    return merged


def fit(vectors: np.ndarray, labels: np.ndarray, c: float = C) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) of the regression: logits = vectors @ weights.T + bias."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(vectors, labels)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


@dataclass(frozen=True, slots=True)
class Views:
    """Each text's two vectors: the whole turn and its instruction view (the same row when a
    text is its own instruction view)."""

    full: np.ndarray
    instruction: np.ndarray

    def __getitem__(self, rows: np.ndarray) -> Views:
        return Views(self.full[rows], self.instruction[rows])


def training_rows(data: Views, labels: np.ndarray, combine: str) -> tuple[np.ndarray, np.ndarray]:
    """What the regression is fitted on: one row per text, or (``max``) one per distinct view."""
    if combine == "max":
        differs = np.any(data.full != data.instruction, axis=1)
        return np.vstack([data.full, data.instruction[differs]]), np.concatenate([labels, labels[differs]])
    return features(data, combine), labels


def features(data: Views, combine: str) -> np.ndarray:
    if combine == "full":
        return data.full
    if combine == "instruction":
        return data.instruction
    if combine == "concat":
        return np.hstack([data.full, data.instruction])
    if combine == "mean":
        mean = data.full + data.instruction
        return (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    raise ValueError(f"unknown combine {combine!r}; one of {COMBINES}")


def logits_of(weights: np.ndarray, bias: np.ndarray, data: Views, combine: str) -> np.ndarray:
    if combine != "max":
        return features(data, combine) @ weights.T + bias
    whole, instruction = data.full @ weights.T + bias, data.instruction @ weights.T + bias
    # the view the regression is surer of (the larger top probability, before calibration)
    surer = softmax(instruction).max(axis=1) > softmax(whole).max(axis=1)
    return np.where(surer[:, None], instruction, whole)


def out_of_fold_logits(
    data: Views, labels: np.ndarray, c: float = C, folds: int = FOLDS, combine: str = COMBINE
) -> np.ndarray:
    """Each exemplar's logits from a model that did not see it (stratified folds, fixed seed)."""
    from sklearn.model_selection import StratifiedKFold

    logits = np.zeros((len(labels), int(labels.max()) + 1), dtype=np.float32)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(data.full, labels)
    for train, held in splits:
        weights, bias = fit(*training_rows(data[train], labels[train], combine), c)
        logits[held] = logits_of(weights, bias, data[held], combine)
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


def embed(text: str, encoder: str = "shared") -> np.ndarray:
    """Blocking: one text's vector as the regression reads it (:data:`ENCODERS`): the shared MiniLM's
    (memoised: the guards and the cache embed the same turn), and with ``tuned`` the tuned one's beside it."""
    from llmgw import encoders

    shared = encoders.encode_query(text)
    if encoder == "shared":
        return shared
    from llmgw.routing import encoder as tuned

    return np.concatenate([shared, tuned.encode(text)])


def exemplar_vectors(texts: list[str], encoder: str = "shared") -> np.ndarray:
    """The exemplars' query vectors (:func:`embed`), cached on disk by content: a restart does not embed
    them again. The query encoders (ONNX; the vectors torch gives, to 1e-7) embed what is not cached yet.
    """
    from llmgw import embedder, encoders

    width = 384 * (2 if encoder == "tuned" else 1)
    if not texts:
        return np.zeros((0, width), dtype=np.float32)
    key = [embedder.model_path(), *texts]
    if encoder == "tuned":
        from llmgw.routing import encoder as tuned

        key.insert(0, tuned.adapter_digest())
    digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:24]
    path = encoders.cache_dir() / f"task-exemplars-{digest}.npy"
    if path.is_file():
        cached = np.load(path)
        if cached.shape == (len(texts), width):
            return cached
    vectors = np.stack([embed(t[:2000], encoder) for t in texts]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def cue_features(text: str, ends: bool = CUE_ENDS) -> np.ndarray:
    """A text's cue vector; with ``ends``, the cues of its first and of its last non-blank line apart
    (an instruction view is "head of the first line" newline "tail of the last"; a one-line text has
    the same cues at both ends)."""
    if not ends:
        return cues.cue_vector(text)
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    first = cues.cue_vector(lines[0])
    return np.concatenate([first, first if len(lines) == 1 else cues.cue_vector(lines[-1])])


def with_cues(vectors: np.ndarray, texts: list[str], weight: float, ends: bool = CUE_ENDS) -> np.ndarray:
    """The embeddings with each text's lexical task cues appended (:mod:`llmgw.routing.cues`,
    :func:`cue_features`), scaled by ``weight``; unchanged when the weight is 0."""
    if weight == 0:
        return vectors
    width = cues.DIMENSIONS * (2 if ends else 1)
    extra = np.stack([cue_features(t, ends) for t in texts]) if texts else np.zeros((0, width))
    return np.hstack([vectors, weight * extra.astype(np.float32)]).astype(np.float32)


def exemplar_views(
    texts: list[str],
    words: int = views.WORDS,
    sentences: bool = views.SENTENCES,
    cue_weight: float = CUE_WEIGHT,
    cue_ends: bool = CUE_ENDS,
    encoder: str = "shared",
) -> Views:
    """Both views of every exemplar (cached on disk like :func:`exemplar_vectors`); an exemplar that
    is its own instruction view is embedded once. Each view carries its own cues."""
    full = exemplar_vectors(texts, encoder)
    shown = [views.instruction_view(t, words, sentences) for t in texts]
    distinct = [i for i, view in enumerate(shown) if view is not None]
    instruction = full.copy()
    if distinct:
        instruction[distinct] = exemplar_vectors([shown[i] or "" for i in distinct], encoder)
    return Views(
        with_cues(full, texts, cue_weight, cue_ends),
        with_cues(instruction, [shown[i] or t for i, t in enumerate(texts)], cue_weight, cue_ends),
    )


def query_views(
    text: str,
    combine: str = COMBINE,
    words: int = views.WORDS,
    sentences: bool = views.SENTENCES,
    cue_weight: float = CUE_WEIGHT,
    cue_ends: bool = CUE_ENDS,
    encoder: str = "shared",
) -> Views:
    """Blocking: one request's views: one embedding (a short turn, ``full``, ``instruction``) or two
    (each one pass per encoder: :func:`embed`)."""
    view = None if combine == "full" else views.instruction_view(text, words, sentences)
    if view is not None and combine == "instruction":  # the whole turn is not needed
        instruction = with_cues(embed(view, encoder)[None, :], [view], cue_weight, cue_ends)
        return Views(instruction, instruction)
    full = embed(text[:2000], encoder)[None, :]
    instruction = full if view is None else embed(view, encoder)[None, :]
    head = text[:2000]  # what the embedding reads, and a bound on the cue scan of a pasted book
    return Views(
        with_cues(full, [head], cue_weight, cue_ends), with_cues(instruction, [view or head], cue_weight, cue_ends)
    )


class TaskClassifier:
    """``encoder`` (:data:`ENCODERS`) defaults to ``shared``, the vectors every benchmark before route26
    read; the gateway passes ``routing.task_encoder`` (default ``tuned``). ``c`` defaults to the encoder's."""

    def __init__(
        self,
        exemplars: dict[str, list[str]],
        c: float | None = None,
        combine: str = COMBINE,
        words: int = views.WORDS,
        sentences: bool = views.SENTENCES,
        cue_weight: float = CUE_WEIGHT,
        cue_ends: bool = CUE_ENDS,
        encoder: str = "shared",
    ) -> None:
        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}; one of {COMBINES}")
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; one of {ENCODERS}")
        c = C_OF[encoder] if c is None else c
        self.tasks = sorted(exemplars)
        self.combine, self.words, self.sentences, self.cue_weight = combine, words, sentences, cue_weight
        self.cue_ends, self.encoder = cue_ends, encoder
        texts = [t for task in self.tasks for t in exemplars[task]]
        labels = np.asarray([i for i, task in enumerate(self.tasks) for _ in exemplars[task]])
        data = exemplar_views(texts, words, sentences, cue_weight, cue_ends, encoder)
        self.weights, self.bias = fit(*training_rows(data, labels, combine), c)
        smallest = min(len(v) for v in exemplars.values())
        # too few exemplars of some task to hold any out: leave the probabilities as fitted
        self.temperature = (
            best_temperature(out_of_fold_logits(data, labels, c, min(FOLDS, smallest), combine), labels)
            if smallest >= 2 and len(self.tasks) > 1
            else 1.0
        )

    def probabilities(self, text: str) -> dict[str, float]:
        """Blocking (one or two embeddings per encoder): every task's calibrated probability, most probable first."""
        data = query_views(text, self.combine, self.words, self.sentences, self.cue_weight, self.cue_ends, self.encoder)
        logits = logits_of(self.weights, self.bias, data, self.combine)[0]
        probs = softmax(logits, self.temperature)
        order = np.argsort(-probs, kind="stable")
        return {self.tasks[i]: float(probs[i]) for i in order}

    def classify(self, text: str) -> tuple[str, float]:
        """Blocking (one or two embeddings): the most likely task and its probability."""
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
#: encoders that could not be built and were replaced by ``shared`` (for tests and the operator's log)
fallbacks: list[str] = []


def classifier_for(
    extra: dict[str, list[str]], replace: bool, view: str = "default", encoder: str = "tuned"
) -> TaskClassifier:
    """One classifier per distinct exemplar set, view combination (``routing.task_view``) and encoder
    (``routing.task_encoder``), built on first use (blocking; the gateway builds its own at start-up,
    ``llmgw.warmup``)."""
    combine = COMBINE if view == "default" else view
    key = hash((replace, combine, encoder, tuple(sorted((k, tuple(v)) for k, v in extra.items()))))
    with _lock:
        found = _cache.get(key)
        if found is None:
            exemplars = load_exemplars(extra, replace)
            try:
                found = TaskClassifier(exemplars, combine=combine, encoder=encoder)
            except Exception:
                if encoder == "shared":
                    raise
                # the tuned encoder is built on this machine (merge, export: a writable cache, torch);
                # routing is about cost and quality, not safety, so it degrades instead of failing requests
                log.exception("the tuned task encoder is unavailable; routing reads the shared encoder alone")
                fallbacks.append(encoder)
                found = TaskClassifier(exemplars, combine=combine, encoder="shared")
            _cache[key] = found
    return found
