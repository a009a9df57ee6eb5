"""The task classifier, its calibration and the safe default for unsure requests (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from llmgw.config import ModelConfig, RouteSelectionConfig
from llmgw.routing import cues, tasks, views
from llmgw.routing.select import safest_task
from llmgw.routing.tasks import TaskClassifier, classifier_for, plausible


def model(price: float, **quality: float) -> ModelConfig:
    return ModelConfig(
        provider="p",
        upstream_id="x",
        price={"input_per_mtok": price, "output_per_mtok": price},
        quality=quality,
    )


BODY = {"messages": [{"role": "user", "content": "help me with this"}]}


def test_safest_task_sends_a_code_or_chat_request_to_the_model_that_can_do_both() -> None:
    models = {"cheap": model(0.1, chat=0.9, code=0.5), "big": model(10.0, chat=0.95, code=0.95)}
    spec = RouteSelectionConfig(quality_floor=0.8)
    # chat alone would pick cheap, which is poor at code; code picks big, good at both
    assert safest_task(("chat", "code"), models, BODY, False, "auto", spec, lambda _: True) == "code"
    # a catalog where the cheap model does both: no reason to pay more, the more probable task stays
    both = {"cheap": model(0.1, chat=0.9, code=0.9), "big": model(10.0, chat=0.95, code=0.95)}
    assert safest_task(("chat", "code"), both, BODY, False, "auto", spec, lambda _: True) == "chat"
    # the key may not use big: then nothing is safer than what is allowed
    assert safest_task(("chat", "code"), models, BODY, False, "auto", spec, lambda n: n == "cheap") == "chat"


def test_plausible_tasks_hold_ninety_percent_of_the_probability_at_most_three() -> None:
    assert plausible({"code": 0.95, "chat": 0.05}) == ("code",)
    assert plausible({"code": 0.5, "chat": 0.3, "math": 0.15, "extract": 0.05}) == ("code", "chat", "math")
    assert plausible({"a": 0.3, "b": 0.25, "c": 0.2, "d": 0.15, "e": 0.1}) == ("a", "b", "c")


def test_best_temperature_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 5))
    drawn = np.array([rng.choice(5, p=p) for p in tasks.softmax(logits, 2.0)])
    assert tasks.best_temperature(logits, drawn) == pytest.approx(2.0, rel=0.15)
    assert tasks.best_temperature(logits, logits.argmax(1)) < 0.5  # always right: sharpen


@pytest.fixture(scope="module", params=tasks.ENCODERS)
def classifier(request: pytest.FixtureRequest) -> TaskClassifier:
    """Each ``routing.task_encoder`` as the gateway builds it (and caches per process)."""
    return classifier_for({}, False, "default", request.param)


@pytest.mark.parametrize(
    "text",
    [
        "Write a Go function that returns the nth Fibonacci number.",
        "SELECT name, COUNT(*) FROM orders GROUP BY name is too slow on 10M rows, how do I speed it up?",
        "Write a Dockerfile for a Rust web server with a multi-stage build.",
        "Refactor this JavaScript so it doesn't use global variables.",
        "ModuleNotFoundError: No module named 'numpy' when I run my script in a venv",
        "Write a shell one-liner that counts lines in all .py files.",
    ],
)
def test_code_requests_of_every_kind_are_code_and_confident(classifier: TaskClassifier, text: str) -> None:
    task, confidence = classifier.classify(text)
    assert task == "code"
    assert confidence >= 0.5  # at least the shipped threshold


def test_probabilities_are_calibrated_not_the_fit_s_own(classifier: TaskClassifier) -> None:
    probs = classifier.probabilities("Write a Go function that returns the nth Fibonacci number.")
    assert list(probs) == sorted(probs, key=lambda t: -probs[t]) and sum(probs.values()) == pytest.approx(1.0)
    assert classifier.temperature != 1.0  # fitted on out-of-fold exemplar scores


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Fasse diesen Artikel in drei Sätzen zusammen.", "summarize"),
        ("Riassumi la riunione di ieri.", "summarize"),
        ("この報告書を要約して", "summarize"),
        ("Wyciągnij wszystkie daty.", "extract"),
        ("Extrahiere die Beträge.", "extract"),
        ("Переведи на немецкий.", "translate"),
        ("Write a poem about the history of Rome.", "creative"),  # no "story" inside "history"
    ],
)
def test_cues_name_the_task_word_in_many_languages(text: str, task: str) -> None:
    vector = cues.cue_vector(text)
    assert vector[cues.TASKS.index(task)] == 1.0 and vector.sum() == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Unsummarized notes", set()),  # a stem inside a word is no cue
        ("ÜBERSETZE das bitte", {"translate"}),  # case-folded, any script with word starts
        ("請把這段中文翻译成英文", {"translate"}),  # CJK: anywhere, no word starts
        ("漢字summarize this", set()),  # a latin stem right after a CJK letter: not a word start
        ("how do I fix this in C#?", {"code"}),  # the two-character stem
        ("tl;dr please, then translate it and write a poem", {"summarize", "translate", "creative"}),
    ],
)
def test_cues_match_at_word_starts_only(text: str, expected: set[str]) -> None:
    vector = cues.cue_vector(text)
    assert {t for t, v in zip(cues.TASKS, vector, strict=True) if v} == expected


def test_cues_are_evidence_for_the_regression_not_a_rule() -> None:
    both = cues.cue_vector("Write a Python function that extracts e-mail addresses.")
    assert both[cues.TASKS.index("code")] == both[cues.TASKS.index("extract")] == 1.0
    vectors = np.ones((2, 384), dtype=np.float32)
    assert tasks.with_cues(vectors, ["a", "b"], 0.0) is vectors  # weight 0: the embeddings alone
    assert tasks.with_cues(vectors, ["tl;dr", "b"], 2.0).shape == (2, 384 + cues.DIMENSIONS)
    assert tasks.with_cues(vectors, ["tl;dr", "b"], 2.0)[0, 384 + cues.TASKS.index("summarize")] == 2.0


def test_every_shipped_exemplar_names_its_source_and_a_known_task() -> None:
    rows = tasks.sourced_exemplars()
    known = {"chat", "summarize", "translate", "extract", "creative", "code", "math"}
    assert {task for _, task, _ in rows} == known
    sources = {source for source, _, _ in rows}
    assert {"exemplars", "pasted", "broad"} <= sources
    public = sources - {"exemplars", "pasted", "broad"}
    assert public <= {"dolly", "oasst2", "ultrafeedback", "helpsteer2", "capybara", "anthropic_helpful",
                      "selfinstruct", "clinc150"}  # fmt: skip
    assert len(public) >= 5  # enough corpora to leave one out
    texts = [text for _, _, text in rows]
    assert all(t.strip() for t in texts)


@pytest.mark.parametrize(
    ("text", "task"),
    [
        # summarize and extract in phrasings and languages none of the exemplars use
        ("Kannst du mir kurz zusammenfassen, worum es in dem Protokoll geht?", "summarize"),
        ("Résume-moi ce fil de discussion en deux phrases.", "summarize"),
        ("Dame un resumen corto de la reunión de ayer.", "summarize"),
        ("What's the TL;DR of the thread above?", "summarize"),
        ("Extraia os valores e as datas deste contrato.", "extract"),
        ("Estrai i nomi delle persone citate in questo verbale.", "extract"),
        ("Pull the names and phone numbers out of the text below as CSV.", "extract"),
        # other tasks asked in other languages, which MiniLM alone read as translate
        ("Welche Bücher kannst du mir für den Urlaub empfehlen?", "chat"),
        ("¿Cuántas horas debería dormir un adulto?", "chat"),
        ("Écris un petit poème sur la pluie d'automne.", "creative"),
        # their neighbours, by the conventions of broad.yaml
        ("Translate this summary into Polish.", "translate"),
        ("Write a Rust function that extracts all URLs from a string.", "code"),
    ],
)
def test_summarize_and_extract_in_other_words_and_languages(classifier: TaskClassifier, text: str, task: str) -> None:
    assert classifier.classify(text)[0] == task


def test_the_route19_phrasings_are_kept_apart_from_their_held_out_part_and_not_shipped() -> None:
    """phrasings.yaml failed its pre-registered ship rule (docs/benchmarks.md): the gateway does not
    load it; the benchmark does, and its held-out part shares no text and no request with it."""
    assert "phrasings" not in {source for source, _, _ in tasks.sourced_exemplars()}
    with_them = tasks.sourced_exemplars(with_phrasings=True)
    train = [text for source, _, text in with_them if source == "phrasings"]
    assert len(train) >= 200
    held_path = Path(__file__).resolve().parents[1] / "bench" / "data" / "tasks_phrasings_heldout.yaml"
    held = [x for xs in tasks.phrasings_exemplars(held_path).values() for x in xs]
    assert len(held) >= 50
    assert not set(held) & set(train)
    held_texts = yaml.safe_load(held_path.read_text(encoding="utf-8"))["texts"]
    train_texts = yaml.safe_load(tasks.PHRASINGS.read_text(encoding="utf-8"))["texts"]
    assert not set(held_texts) & set(train_texts)  # whole topic groups held out
    assert not set(held_texts.values()) & set(train_texts.values())


def test_the_cues_read_the_instruction_after_a_paste_longer_than_the_embedding_reads() -> None:
    # the cues are computed on the instruction view, not on the turn's first 2,000 characters
    paste = " ".join(["The committee met on Tuesday and discussed the budget for the coming year."] * 40)
    turn = f"{paste}\n\nFasse den Text oben in drei Sätzen zusammen."
    assert len(turn) > 2000
    view = views.instruction_view(turn)
    assert view is not None and view.endswith("zusammen.")
    assert tasks.cue_features(view)[cues.TASKS.index("summarize")] == 1.0
    assert not cues.cue_vector(turn[:2000]).any()  # what a scan of the head alone would miss


def test_cues_of_the_view_s_two_ends_apart() -> None:
    ends = tasks.cue_features("Translate this article.\nIt was a poem about the sea.", ends=True)
    assert ends.shape == (2 * cues.DIMENSIONS,)
    assert ends[cues.TASKS.index("translate")] == 1.0 and ends[cues.DIMENSIONS + cues.TASKS.index("creative")] == 1.0
    assert ends[cues.TASKS.index("creative")] == 0.0 and ends[cues.DIMENSIONS + cues.TASKS.index("translate")] == 0.0
    one = tasks.cue_features("tl;dr", ends=True)
    assert np.array_equal(one[: cues.DIMENSIONS], one[cues.DIMENSIONS :])
    vectors = np.ones((1, 384), dtype=np.float32)
    assert tasks.with_cues(vectors, ["tl;dr"], 0.25, ends=True).shape == (1, 384 + 2 * cues.DIMENSIONS)
