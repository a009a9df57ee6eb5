"""The end of an IBAN: what Presidio's pattern takes past it is given back to the text.

Presidio's IBAN pattern ends with an optional group of one to three letters or digits, and with the
analyzer's case-insensitive flags a short word after the number fits it ("IBAN CZ02 … 9119 by
Friday"). The checksum is tried on the longer match first and, over a short word, passes about
once in 97 numbers; the mask then swallows the word and the sentence loses it. An IBAN has exactly
its country's registered format (ISO 13616; Presidio's ``regex_per_country`` holds each one), so a
span is cut back, one trailing group at a time, to the longest part that matches its country's
format exactly and passes the mod-97 check.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["iban_end"]

_GROUP = re.compile(r"[ -]?[A-Za-z0-9]+$")


@lru_cache(maxsize=1)
def _formats() -> dict[str, re.Pattern[str]]:
    from presidio_analyzer.predefined_recognizers.generic.iban_patterns import regex_per_country

    return {cc: re.compile(f"^{pattern}$") for cc, pattern in regex_per_country.items()}


def _valid(compact: str) -> bool:
    shape = _formats().get(compact[:2])
    if shape is None or not shape.match(compact):
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def iban_end(text: str, start: int, end: int) -> int:
    """Where the IBAN found at ``text[start:end]`` really ends (``end`` when the span is already
    exact, or when no shorter part of it is a valid IBAN)."""
    span = text[start:end]
    if _valid(re.sub(r"[ -]", "", span).upper()):
        return end
    shorter = span
    while True:
        group = _GROUP.search(shorter)
        if group is None or group.start() == 0:
            return end
        shorter = shorter[: group.start()]
        if _valid(re.sub(r"[ -]", "", shorter).upper()):
            return start + len(shorter)
