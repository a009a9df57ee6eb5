"""Streaming-safe pieces of the output guards, with bounded work per chunk.

* :class:`Restorer` puts masked values back into streamed text. A placeholder may arrive split
  across chunks (``<PER`` + ``SON_1>``): only the shortest suffix that could still become a
  placeholder is held back, everything before it is released at once.
* :class:`Windows` cuts text into fixed windows of words. Streamed and non-streamed answers are
  cut the same way (a word is complete once whitespace follows it, or at the end), so the
  moderation verdict on the same text is the same on both paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_WORD = re.compile(r"\S+")


def replace_placeholders(text: str, placeholders: dict[str, str], lookup: Callable[[str], str] = str) -> str:
    """Every placeholder in ``text`` replaced by ``lookup`` of its value, in one pass: a restored
    value that itself looks like a placeholder is never replaced again."""
    if "<" not in text or not placeholders:
        return text
    pattern = re.compile("|".join(re.escape(t) for t in sorted(placeholders, key=len, reverse=True)))
    return pattern.sub(lambda m: lookup(placeholders[m.group()]), text)


class Restorer:
    """Incremental placeholder restoration for one text stream (one choice, or one tool call)."""

    __slots__ = ("_lookup", "_pending", "_tokens", "maxlen")

    def __init__(self, placeholders: dict[str, str], json_string: bool = False) -> None:
        self._tokens = placeholders
        self.maxlen = max((len(t) for t in placeholders), default=0)
        self._pending = ""
        # inside a JSON string (tool-call arguments) a restored value must stay valid JSON
        self._lookup: Callable[[str], str] = (
            (lambda v: json.dumps(v, ensure_ascii=False)[1:-1]) if json_string else (lambda v: v)
        )

    def _restore(self, text: str) -> str:
        return replace_placeholders(text, self._tokens, self._lookup)

    def feed(self, piece: str) -> str:
        text = self._pending + piece if self._pending else piece
        cut = len(text)
        i = text.find("<", max(0, len(text) - self.maxlen + 1))
        while i != -1:
            tail = text[i:]
            if any(token.startswith(tail) for token in self._tokens):
                cut = i
                break
            i = text.find("<", i + 1)
        self._pending = text[cut:]
        return self._restore(text[:cut])

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._restore(text)


@dataclass
class Windows:
    """Collects text and hands out complete windows of ``size`` words, each with ``context`` words before it."""

    size: int
    context: int = 4
    words: list[str] = field(default_factory=list)
    _partial: str = ""
    checked: int = 0  # words covered by windows handed out so far

    def feed(self, text: str) -> None:
        text = self._partial + text
        parts = _WORD.findall(text)
        if parts and not text[-1].isspace():
            self._partial = parts.pop()
        else:
            self._partial = ""
        self.words.extend(parts)

    def finish(self) -> None:
        if self._partial:
            self.words.append(self._partial)
            self._partial = ""

    def received(self) -> int:
        """Words received so far, a trailing partial word included."""
        return len(self.words) + (1 if self._partial else 0)

    def take(self, final: bool = False) -> list[str]:
        """Texts of the windows now complete (``final``: the last, shorter one too)."""
        out = []
        while len(self.words) - self.checked >= self.size or (final and self.checked < len(self.words)):
            end = min(self.checked + self.size, len(self.words))
            out.append(" ".join(self.words[max(0, self.checked - self.context) : end]))
            self.checked = end
        return out


def windows_of(text: str, size: int, context: int = 4) -> list[str]:
    """The windows a streamed answer with this text would have been checked in."""
    w = Windows(size, context)
    w.feed(text)
    w.finish()
    return w.take(final=True)
