"""Phone numbers in the shapes people type, with llmgw's own context check.

Presidio's phone recognizer (the ``phonenumbers`` library for a few regions) scores 0.4 and misses
local formats (``96 228011``, ``070-073-058``); its context boost reads spaCy lemmas with stop words
removed, and spaCy counts "call" as a stop word, so "call me at 322 327 102" never gets boosted.
This recognizer scores on its own:

* strong shapes stand alone: a ``+country`` prefix, an area code in parentheses, an extension,
  or the North American ``555-123-4567``;
* other digit groups (6-15 digits) only count next to a context word, read on the raw text
  ("call", "mobile", "fax" before; "office", "fax", "(home)" after, glued with a hyphen too);
* dates, times, IP addresses and house numbers before a street name are not phone numbers, nor
  is a zero-padded id ("Invoice 00042113"): a 00 / 011 prefix counts only before a country code
  (which never starts with 0) and eight digits or more.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PHONE_CONTEXT_AFTER", "PHONE_CONTEXT_BEFORE", "find_phones", "phone_recognizer"]

_EXT = r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})"
#: digit groups with one separator between them, optional parentheses, optional + (or "(+44)") and extension
_CANDIDATE = re.compile(
    r"(?<![\w.+/-])(?P<num>(?:\(\+|\+)?\(?\d{1,15}\)?(?:(?:[ .\-/]|\)\s?)\(?\d{1,8}\)?){0,6})"
    r"(?P<ext>" + _EXT + r")?(?![\w]|[.,-]\d)",
    re.IGNORECASE,
)
_NANP = re.compile(r"^(?:\+?1[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}$")
_DATE = re.compile(r"^(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2}))$")
_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
PHONE_CONTEXT_BEFORE = re.compile(
    r"\b(?:phone\w*|call\w*|tel|tel\.|telephone|mobile|mob|cell\w*|contact\w*|reach\w*|fax\w*|whats\s?app|text\w*|sms"
    r"|dial\w*|ring\w*|hotline|landline|line|office|home|work|direct|answer\w*|voicemail|extension|ph|"
    r"(?:my|your|his|her|our|their|the)\s+(?:new\s+)?number)\b",
    re.IGNORECASE,
)
PHONE_CONTEXT_AFTER = re.compile(
    r"^\W{0,3}(?:office|fax|home|work|mobile|cell|direct|landline|phone|tel|whatsapp|switchboard)\b", re.IGNORECASE
)
_STREET = re.compile(
    r"^\s+(?:\S+\s+){0,2}?(?:street|st\.?|avenue|ave\.?|road|rd\.?|boulevard|blvd\.?|lane|ln\.?|drive|dr\.?|"
    r"parkway|pkwy|court|ct\.?|place|pl\.?|square|sq\.?|highway|hwy|rue|via|calle|avenida|rua|strasse|straße|"
    r"platz|weg|gasse|vej|gade|laan|straat|ul\.?|apt\.?|suite)\b",
    re.IGNORECASE,
)
BEFORE_CHARS, AFTER_CHARS = 40, 20


def _international(rest: str) -> bool:
    """What follows a 00 / 011 dialling prefix: a country code (never starting with 0) and at least
    eight digits in all, as every international number has."""
    digits = sum(c.isdigit() for c in rest)
    first = rest.lstrip(" .-/(")[:1]
    return digits >= 8 and first != "" and first in "123456789"


def _kind(number: str, ext: str | None) -> str | None:
    """``"strong"``, ``"weak"`` (needs context) or None (not a phone number). A leading 00 / 011
    is an international dialling prefix."""
    if number.startswith("(+"):
        number = number[1:]  # "(+44) 7700 900123": the country code in parentheses
    digits = sum(c.isdigit() for c in number)
    groups = re.findall(r"\d+", number)
    if digits > 15 or digits < 6 or _DATE.match(number) or _IP.match(number):
        return None
    prefix = next((p for p in ("011", "00") if number.startswith(p)), None)
    if prefix is not None and not _international(number[len(prefix) :]):
        return None if len(groups) == 1 else "weak"  # "Invoice 00042113": a zero-padded id, no dialling prefix
    if ext or prefix or number.startswith("+") or re.search(r"\(\d{2,5}\)", number) or _NANP.match(number):
        return "strong" if digits >= 7 else None
    if len(groups) == 1 and digits < 8:
        return None  # a bare short number: a year, an amount, a postcode
    return "weak"


def find_phones(text: str) -> list[tuple[int, int, float]]:
    """``(start, end, score)`` of phone numbers in ``text``: 0.6 for a strong shape or a weak one
    with a context word, 0.2 for a weak one without (below the default policy's 0.3)."""
    out: list[tuple[int, int, float]] = []
    for m in _CANDIDATE.finditer(text):
        number, ext = m.group("num").rstrip(" .-/"), m.group("ext")
        kind = _kind(number, ext)
        if kind is None:
            continue
        start = m.start()
        end = m.end() if ext else start + len(number)
        if kind == "strong":
            out.append((start, end, 0.6))
            continue
        if _STREET.match(text[end : end + 40]):
            continue  # "38 73 Rue Ibn Al Khatib": a house number
        before = text[max(0, start - BEFORE_CHARS) : start]
        context = bool(PHONE_CONTEXT_BEFORE.search(before) or PHONE_CONTEXT_AFTER.match(text[end : end + AFTER_CHARS]))
        out.append((start, end, 0.6 if context else 0.2))
    return out


def phone_recognizer(language: str) -> Any:
    """A Presidio recognizer around :func:`find_phones` (its score already includes the context)."""
    from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

    class LlmgwPhoneRecognizer(LocalRecognizer):
        name: str  # set by Presidio's EntityRecognizer.__init__, which its stubs leave untyped

        def load(self) -> None:
            pass

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            if entities and "PHONE_NUMBER" not in entities:
                return []
            results = []
            for start, end, score in find_phones(text):
                explanation = AnalysisExplanation(self.name, score, textual_explanation="phone shape and context")
                results.append(RecognizerResult(
                    "PHONE_NUMBER", start, end, score, explanation,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                                          RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True},
                ))  # fmt: skip
            return results

    return LlmgwPhoneRecognizer(
        supported_entities=["PHONE_NUMBER"], name="llmgw_phone_shapes", supported_language=language
    )
