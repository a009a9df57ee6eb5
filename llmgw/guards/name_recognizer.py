"""The Presidio recognizer of person names: the census lists and rules of :mod:`llmgw.guards.names`
find candidates, :mod:`llmgw.guards.person_score` scores them, and this adapter hands the scored spans
to Presidio (its own module so that the scorer can read the rules without the rules reading it back)."""

from __future__ import annotations

from typing import Any

from llmgw.guards.names import _ordinary_words, common_first_names, name_lists, name_shares
from llmgw.guards.person_score import common_words, noun_only_words, person_scorer, word_case

__all__ = ["name_recognizer"]


def name_recognizer(language: str) -> Any:
    """A Presidio recognizer of person names, reading the tokens Presidio's NLP pass made: every
    candidate (spaCy's PERSON entities, the rules of :func:`name_rules`, capitalised runs) with its
    name score (``llmgw.guards.person_score``), which the policy's PERSON threshold cuts."""
    from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

    class LlmgwNameRecognizer(LocalRecognizer):
        name: str  # set by Presidio's EntityRecognizer.__init__, which its stubs leave untyped

        def load(self) -> None:
            person_scorer()
            name_shares()
            common_words()
            word_case()
            noun_only_words()
            name_lists()
            common_first_names()
            _ordinary_words(language)
            _ordinary_words(language, nouns=True)

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            if (entities and "PERSON" not in entities) or nlp_artifacts is None or nlp_artifacts.tokens is None:
                return []
            results = []
            for start, end, score in person_scorer().score(nlp_artifacts.tokens):
                explanation = AnalysisExplanation(self.name, score, textual_explanation="person name score")
                results.append(RecognizerResult(
                    "PERSON", start, end, score, explanation,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                                          RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True},
                ))  # fmt: skip
            return results

    return LlmgwNameRecognizer(supported_entities=["PERSON"], name="llmgw_census_names", supported_language=language)
