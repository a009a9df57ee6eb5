"""Which semantic candidate, if any, a new question may be served: question, answer and ambiguity.

MiniLM scores loose rewordings of a question (0.6-0.85) where it also scores different questions,
so the question's cosine alone needs a high threshold. Two more signals make lower cosines safe:

* **The stored answer** (answer-aware matching). An entry holds the answer it would serve; its
  vector is computed in the background after the answer is stored. A candidate *with* an answer
  vector is plausible when the question cosine reaches ``answer_threshold`` (or ``threshold``,
  the lower) and the answer fits the new question almost as well as it fits the question it was
  written for: ``cos(answer, cached) - cos(answer, asked) <= answer_drop``, at any cosine. An
  answer that does not address its own question ("Yes.") counts as no answer. An answer about
  "ibuprofen" or "swimming pools" fits a question about "aspirin" or "water" much worse than its
  own question (a drop of 0.15-0.35), a rewording about as well (0.0-0.1). A candidate without an
  answer vector yet (just stored, a tool call, a shared store) needs ``threshold`` as before.
* **Ambiguity** (a margin). When two plausible candidates of different questions score within
  ``margin`` of each other, the question could be either (FAQ near-duplicates): no hit. Two
  candidates whose own questions are near-identical (cosine ≥ ``duplicate``) are one question.

Before all of this: the entry's own floor (raised by wrong-hit feedback) and the verifier
(``align.verify``: every word of each question matched on the other side).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmgw.cache.store import Entry

#: An answer whose cosine to its own question is below this says nothing checkable about it (95% of
#: the COVID FAQ's answers are above 0.55; "Yes." or "echo" are near 0).
ANSWER_FIT = 0.5


@dataclass(frozen=True, slots=True)
class Rule:
    threshold: float  # question cosine that suffices without an answer check
    answer_threshold: float | None = None  # None: answers are not used
    answer_drop: float = 0.12
    margin: float = 0.0
    duplicate: float = 0.9

    @property
    def floor(self) -> float:
        """The lowest question cosine any candidate may have."""
        return self.threshold if self.answer_threshold is None else min(self.threshold, self.answer_threshold)


@dataclass(slots=True)
class Match:
    """The plausible candidates, best first, and why the others were refused."""

    plausible: list[tuple[Entry, float, str]] = field(default_factory=list)  # (entry, score, "question"|"answer")
    refused: list[dict[str, Any]] = field(default_factory=list)


def answer_drop(entry: Entry, asked: np.ndarray) -> float | None:
    """How much worse the stored answer fits the new question than its own.

    None when there is no answer vector, or when the answer does not recognisably address its own
    question (cosine < ``ANSWER_FIT``: "Yes.", a code block, an empty reply): such an answer fits
    every question equally badly, so a small drop would prove nothing.
    """
    if entry.answer_vector is None or entry.vector is None:
        return None
    fit = float(entry.answer_vector @ entry.vector)
    return None if fit < ANSWER_FIT else fit - float(entry.answer_vector @ asked)


def match(asked: str, vector: np.ndarray, candidates: Sequence[tuple[Entry, float]], rule: Rule,
          veto: Callable[[str, str, str | None], str | None] | None) -> Match:  # fmt: skip
    """Sort the candidates (best first by question cosine) into plausible hits and refusals."""
    out = Match()
    for entry, score in candidates:
        if score < rule.floor:
            break
        reason = "feedback" if score < entry.floor else None  # wrong hits were marked this close
        if reason is None and veto is not None:
            reason = veto(entry.question or "", asked, entry.roles)
        drop = answer_drop(entry, vector) if rule.answer_threshold is not None else None
        basis = "question" if score >= rule.threshold else "answer"
        if reason is None and drop is not None and drop > rule.answer_drop:
            reason = "answer"  # the stored answer is about something else
        elif reason is None and drop is None and score < rule.threshold:
            reason = "threshold"  # no answer vector (yet): the question alone must be close enough
        if reason is None:
            out.plausible.append((entry, score, basis))
            if len(out.plausible) == 2:
                break  # the margin compares the best two; verifying the rest would only cost time
        elif reason != "threshold":
            out.refused.append({"reason": reason, "score": round(score, 4), "entry": entry.source})
    if rule.margin > 0 and len(out.plausible) > 1:
        (first, best, _), (second, runner_up, _) = out.plausible[0], out.plausible[1]
        if best - runner_up < rule.margin and not _same_question(first, second, rule.duplicate):
            out.refused.append({"reason": "ambiguous", "score": round(best, 4), "entry": first.source,
                                "other": second.source, "other_score": round(runner_up, 4)})  # fmt: skip
            out.plausible = []
    return out


def _same_question(a: Entry, b: Entry, duplicate: float) -> bool:
    return a.vector is not None and b.vector is not None and float(a.vector @ b.vector) >= duplicate
