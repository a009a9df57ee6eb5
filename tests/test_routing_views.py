"""The instruction view: a request's instruction seen apart from the text pasted before or after it."""

from __future__ import annotations

import numpy as np
import pytest

from llmgw.routing import tasks, views
from llmgw.routing.tasks import ENCODERS, TaskClassifier, Views, classifier_for
from llmgw.routing.views import instruction_view

# about 330 word pieces: longer than MiniLM's 256, so an instruction after it is cut off in one embedding
ARTICLE = (
    "The regional rail operator announced on Thursday that it will replace its entire diesel fleet on "
    "the northern lines with battery trains by 2031. The 46 new units, ordered from a Spanish "
    "manufacturer for 610 million euros, can run 120 kilometres on a charge and recharge under the "
    "short electrified sections near the cities. Passenger groups welcomed the decision but pointed out "
    "that the timetable will not improve: the single-track sections that cause most delays are not part "
    "of the plan. The operator says the trains are quieter and cheaper to maintain, and that the depot "
    "in Lindholm will be rebuilt with a solar roof to cover part of the charging demand. Unions asked "
    "for guarantees that the drivers and mechanics of the diesel depot in Osterby, which will close in "
    "2032, are offered jobs elsewhere; the operator promised talks before the summer. The regional "
    "parliament still has to approve the financing, with a vote expected in March. Critics in the "
    "opposition argue that full electrification of the lines would have cost only a third more and "
    "lasted twice as long, while the government says overhead lines through the protected wetlands "
    "would never have been approved. The first trains are due to enter service on the coastal line in "
    "December 2028, followed by the inland routes a year later, when the last diesel units are retired "
    "and sold to operators abroad."
)


def test_a_short_request_is_its_own_instruction_view() -> None:
    assert instruction_view("Translate 'good morning' into Italian.") is None
    assert instruction_view("I have a meeting at nine. Can you help me write an agenda?") is None
    assert instruction_view("hey") is None


def test_an_instruction_before_a_long_paste_heads_the_view() -> None:
    view = instruction_view(f"Summarize this article for me:\n\n{ARTICLE}")
    assert view is not None and view.startswith("Summarize this article for me:")
    assert len(view.split()) <= 2 * views.WORDS
    assert "Lindholm" not in view  # the middle of the paste is left out


def test_an_instruction_after_a_long_paste_ends_the_view() -> None:
    view = instruction_view(f"{ARTICLE}\n\nCan you translate the article above into German?")
    assert view is not None and view.endswith("Can you translate the article above into German?")
    assert len(view.split()) <= 2 * views.WORDS


def test_fenced_code_and_quoted_lines_are_pasted_content() -> None:
    text = "Why does this loop never end?\n```python\nwhile True:\n    pass\n```\n> quoted reply\nThanks in advance."
    assert instruction_view(text) == "Why does this loop never end?\nThanks in advance."
    # an unclosed fence runs to the end of the turn: its lines never count as the instruction
    assert instruction_view("Fix this:\n```\nint main() {\n  return 0;") == "Fix this:"
    assert instruction_view("```\nSELECT 1;\n```") is None  # nothing but the paste: the turn itself


def test_windows_cut_long_heads_and_tails_and_sentences_are_optional() -> None:
    words = [f"w{i}" for i in range(100)]
    one_line = " ".join(words)
    assert instruction_view(one_line, words=8) == " ".join(words[:8]) + "\n" + " ".join(words[-8:])
    lines = "First line. Second part of it.\nmiddle\nLast line here. Really the end."
    # whole sentences while they fit in the window (at least one), from the start and from the end
    assert instruction_view(lines, words=4, sentences=True) == "First line.\nReally the end."
    assert (
        instruction_view(lines, words=32, sentences=True)
        == "First line. Second part of it.\nLast line here. Really the end."
    )
    assert instruction_view(lines, words=4, sentences=False) == "First line. Second part\nhere. Really the end."


def test_view_combinations_on_known_vectors() -> None:
    full = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    instruction = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    data = Views(full, instruction)
    assert tasks.features(data, "concat").shape == (2, 4)
    mean = tasks.features(data, "mean")
    assert np.allclose(np.linalg.norm(mean, axis=1), 1.0) and np.allclose(mean[1], [0.7071, 0.7071], atol=1e-3)
    # "max" trains on each distinct view once and answers with the view it is surer of
    rows, labels = tasks.training_rows(data, np.array([0, 1]), "max")
    assert rows.shape == (3, 2) and labels.tolist() == [0, 1, 1]
    weights = np.array([[4.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    bias = np.zeros(2, dtype=np.float32)
    logits = tasks.logits_of(weights, bias, data, "max")
    assert logits[1].tolist() == [4.0, 0.0]  # the instruction view (4 vs 0) beats the whole turn (0 vs 1)
    with pytest.raises(ValueError):
        tasks.features(data, "median")


@pytest.fixture(scope="module", params=ENCODERS)
def classifier(request: pytest.FixtureRequest) -> TaskClassifier:
    """Each ``routing.task_encoder`` as the gateway builds it (and caches per process)."""
    return classifier_for({}, False, "default", request.param)


def known_miss(request: pytest.FixtureRequest, classifier: TaskClassifier, encoder: str, reason: str) -> None:
    """A request ``encoder``'s classifier is known to route wrong: a strict xfail, so a fix is noticed."""
    if classifier.encoder == encoder:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def test_the_instruction_after_a_long_paste_decides_the_task(classifier: TaskClassifier) -> None:
    summarize = f"{ARTICLE}\n\nSummarize the article above in two sentences."
    translate = f"{ARTICLE}\n\nTranslate the article above into French."
    extract = f"{ARTICLE}\n\nList every place name and year mentioned above as JSON."
    assert classifier.classify(summarize)[0] == "summarize"
    assert classifier.classify(translate)[0] == "translate"
    assert classifier.classify(extract)[0] == "extract"
    # one embedding of the whole turn cannot tell them apart: the instruction is past its 256 word pieces
    # (the embedding alone: the lexical cues read the whole text)
    whole = TaskClassifier(tasks.load_exemplars(), combine="full", cue_weight=0.0)
    assert whole.probabilities(summarize) == whole.probabilities(translate) == whole.probabilities(extract)


def test_the_instruction_before_a_long_paste_decides_the_task(classifier: TaskClassifier) -> None:
    assert classifier.classify(f"Write a short poem inspired by this news:\n\n{ARTICLE}")[0] == "creative"
    # MiniLM alone read this one as translate (an English model); the lexical cues fix it
    assert classifier.classify(f"Fasse diesen Artikel in drei Sätzen zusammen:\n\n{ARTICLE}")[0] == "summarize"


def test_a_polish_extract_request_after_a_paste(request: pytest.FixtureRequest, classifier: TaskClassifier) -> None:
    known_miss(request, classifier, "tuned", "route26 (2026-12-05): the tuned classifier reads it as chat; "
               "better on fresh sets overall (85.1 -> 90.3 %), this one it lost")  # fmt: skip
    assert classifier.classify(f"{ARTICLE}\n\nWyciągnij z artykułu wszystkie nazwy miejsc i lata.")[0] == "extract"


def test_a_summarize_request_without_a_task_word_before_a_paste(
    request: pytest.FixtureRequest, classifier: TaskClassifier
) -> None:
    known_miss(request, classifier, "shared", "regression of the lexical cues (2026-12-04): a summarize request "
               "with no task word of the lists is pulled away from summarize (extract 0.30, summarize 0.20); "
               "passed before the cues; the tuned classifier (route26) routes it right")  # fmt: skip
    assert classifier.classify(f"Boil this article down to three sentences:\n\n{ARTICLE}")[0] == "summarize"


def test_a_short_request_costs_one_embedding_a_long_one_at_most_two(
    classifier: TaskClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmgw import encoders

    calls: list[str] = []
    real = encoders.encode_query

    def counting(text: str, model_dir: str | None = None) -> np.ndarray:
        calls.append(text)
        return real(text, model_dir)

    monkeypatch.setattr(encoders, "encode_query", counting)
    classifier.classify("Write a haiku about the sea.")
    assert len(calls) == 1
    long = f"{ARTICLE}\n\nSummarize the article above in two sentences."
    classifier.classify(long)
    # the instruction view, alone or after the whole turn: one short embedding more at most
    assert len(calls) == (2 if classifier.combine == "instruction" else 3)
    assert calls[-1] == instruction_view(long, classifier.words, classifier.sentences)
    assert calls[-1].endswith("Summarize the article above in two sentences.")
