"""Payment card numbers of every length the card networks issue, validated by the Luhn check.

Presidio's card recognizer matches 13 to 17 digits starting with 1, 3, 4, 5 or 6: it misses 12-digit
Maestro, 18- and 19-digit Visa, Maestro and UnionPay numbers and the whole Mastercard 2-series
(2221-2720). This recognizer replaces it:

* a candidate is 12 to 19 digits, written compact or in groups with one kind of separator (space
  or dash) throughout: ``4111 1111 1111 1111``, ``3782-822463-10005``, ``6759 6498 2643 8453 011``,
  ``4518 1909 3786 9`` (fours with a short last group), ``424861 1148936439008``;
  a digit group glued to it (``DE89 3704 ...``, a longer number) makes it part of something else;
* its prefix and length must be ones a network issues (the IIN table below, from the networks'
  published ranges), so a 12-digit number counts only with a Maestro prefix;
* and it must pass the Luhn check: a number that fails it is an order, part or customer number, not
  a card, whatever its shape or context.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["IIN_RANGES", "card_recognizer", "find_cards", "luhn_ok"]

#: 12-19 digits with one kind of separator (space or dash) throughout: compact; a group of 4 then 2-4
#: groups of 3-6, and the short last group that grouping in fours leaves (13, 14, 17, 18 digits:
#: ``4518 1909 3786 9``); or two groups (``424861 1148936439008``)
_CANDIDATE = re.compile(
    r"(?<![\w-])(?<!\d[ -])"
    r"(\d{12,19}|\d{4}([ -])\d{3,6}(?:\2\d{3,6}){1,3}(?:\2\d{1,2})?|\d{4,6}([ -])\d{8,15})"
    r"(?![\w-]|[ -]\d)"
)

#: (lowest prefix, highest prefix, lengths): prefixes compared on their own number of digits
IIN_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = tuple(
    (low, high, frozenset(lengths))
    for low, high, lengths in (
        (4, 4, (13, 16, 19)),  # Visa (13 legacy, 19 Visa Electron/debit)
        (51, 55, (16,)),  # Mastercard
        (2221, 2720, (16,)),  # Mastercard 2-series
        (2200, 2204, (16, 17, 18, 19)),  # Mir
        (34, 34, (15,)),  # American Express
        (37, 37, (15,)),
        (300, 305, (14, 15, 16, 17, 18, 19)),  # Diners Club
        (36, 36, (14, 15, 16, 17, 18, 19)),
        (38, 39, (14, 15, 16, 17, 18, 19)),
        (3528, 3589, (16, 17, 18, 19)),  # JCB
        (6011, 6011, (16, 17, 18, 19)),  # Discover
        (644, 649, (16, 17, 18, 19)),
        (65, 65, (16, 17, 18, 19)),
        (62, 62, (16, 17, 18, 19)),  # UnionPay
        (50, 50, tuple(range(12, 20))),  # Maestro
        (56, 69, tuple(range(12, 20))),
        (1, 1, (15,)),  # UATP
    )
)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries in its last digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def issued(digits: str) -> bool:
    """Whether some network issues numbers of this prefix and length."""
    n = len(digits)
    for low, high, lengths in IIN_RANGES:
        width = len(str(low))
        if n in lengths and low <= int(digits[:width]) <= high:
            return True
    return False


def find_cards(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of card numbers in ``text``."""
    out = []
    for m in _CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        if 12 <= len(digits) <= 19 and issued(digits) and luhn_ok(digits):
            out.append((m.start(1), m.end(1)))
    return out


def card_recognizer(language: str) -> Any:
    """A Presidio recognizer around :func:`find_cards`. A number that passes the network and Luhn
    checks scores 1.0, as Presidio's own recognizer scores a Luhn-valid match."""
    from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

    class LlmgwCardRecognizer(LocalRecognizer):
        name: str  # set by Presidio's EntityRecognizer.__init__, which its stubs leave untyped

        def load(self) -> None:
            pass

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            if entities and "CREDIT_CARD" not in entities:
                return []
            results = []
            for start, end in find_cards(text):
                explanation = AnalysisExplanation(self.name, 1.0, textual_explanation="card network range and Luhn")
                results.append(RecognizerResult(
                    "CREDIT_CARD", start, end, 1.0, explanation,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id},
                ))  # fmt: skip
            return results

    return LlmgwCardRecognizer(supported_entities=["CREDIT_CARD"], name="llmgw_cards", supported_language=language)
