"""Streaming-safe pieces of the output guards, with bounded work per chunk.

* :class:`Restorer` puts masked values back into streamed text. A placeholder may arrive split
  across chunks (``<PER`` + ``SON_1>``): only the shortest suffix that could still become a
  placeholder is held back, everything before it is released at once.
* :class:`Windows` cuts text into fixed windows of words. Streamed and non-streamed answers are
  cut the same way (a word is complete once whitespace follows it, or at the end), so the
  moderation verdict on the same text is the same on both paths. It also says how much of a
  stream may be sent: only text whose windows have all passed.
* :meth:`Windows.view` is a window's *context*: its sentence with the sentence before and the one
  after (bounded in words). A classifier hit on a short window stops the answer only if it holds on
  this view, so "It is wrong to say that X are vermin" is read whole, not as "X are vermin". The
  view depends on the text alone, never on how it was chunked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s")
#: a word that ends a sentence: final punctuation, maybe inside closing quotes or brackets
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002][\"'\u201d\u2019)\]*_]*$")


def replace_placeholders(text: str, placeholders: dict[str, str], lookup: Callable[[str], str] = str) -> str:
    """Every placeholder in ``text`` replaced by ``lookup`` of its value, in one pass: a restored
    value that itself looks like a placeholder is never replaced again."""
    if "<" not in text or not placeholders:
        return text
    pattern = re.compile("|".join(re.escape(t) for t in sorted(placeholders, key=len, reverse=True)))
    return pattern.sub(lambda m: lookup(placeholders[m.group()]), text)


class Restorer:
    """Incremental placeholder restoration for one text stream (a choice's content, refusal or
    reasoning, or one tool call's arguments)."""

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
    """One choice's text: windows of ``size`` words to check, and how much of it may be sent.

    Each window is checked with the ``context`` words before it, so the next window re-reads the
    last ``context`` words of the one before. Text is released only up to where the next window
    starts: a word leaves once every window that reads it has passed, and a finding that straddles
    two windows (a threat, a multi-word secret) is seen whole in the second before any of it is sent.
    """

    size: int
    context: int = 4
    words: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # where each word starts in the text
    checked: int = 0  # words covered by windows handed out so far
    verified: int = 0  # words covered by windows that passed every check
    length: int = 0  # characters received
    finished: bool = False
    #: per window handed out: (first word read, first word new to it, end), word indexes
    spans: list[tuple[int, int, int]] = field(default_factory=list)
    _pieces: list[str] = field(default_factory=list)  # the text as received (joined only for a view)
    _partial: list[str] = field(default_factory=list)  # pieces of a word no whitespace has ended yet
    _partial_start: int = 0

    def feed(self, text: str) -> None:
        """Add text; work is proportional to ``text`` (a long word is joined once, when it ends)."""
        if not text:
            return
        start = self.length
        self.length += len(text)
        self._pieces.append(text)
        if _SPACE.search(text) is None:  # the word goes on
            if not self._partial:
                self._partial_start = start
            self._partial.append(text)
            return
        if self._partial:
            start = self._partial_start
            text = "".join(self._partial) + text
            self._partial = []
        matches = list(_WORD.finditer(text))
        if matches and matches[-1].end() == len(text):
            last = matches.pop()
            self._partial, self._partial_start = [last.group()], start + last.start()
        for m in matches:
            self.words.append(m.group())
            self.starts.append(start + m.start())

    def finish(self) -> None:
        if self._partial:
            self.words.append("".join(self._partial))
            self.starts.append(self._partial_start)
            self._partial = []
        self.finished = True

    def received(self) -> int:
        """Words received so far, a trailing partial word included."""
        return len(self.words) + (1 if self._partial else 0)

    def take(self, final: bool = False) -> list[str]:
        """Texts of the windows now complete (``final``: the last, shorter one too)."""
        out = []
        while len(self.words) - self.checked >= self.size or (final and self.checked < len(self.words)):
            end = min(self.checked + self.size, len(self.words))
            read = max(0, self.checked - self.context)
            out.append(" ".join(self.words[read:end]))
            self.spans.append((read, self.checked, end))
            self.checked = end
        return out

    def _ends(self, i: int) -> bool | None:
        """Whether word ``i`` ends a sentence (final punctuation, or a line break after it); None
        while that is not decided yet (the last word, and no whitespace after it has arrived)."""
        if _SENTENCE_END.search(self.words[i]):
            return True
        nxt = self.starts[i + 1] if i + 1 < len(self.words) else self._partial_start if self._partial else None
        if nxt is None:
            if not self.finished:
                return None
            return True
        gap_from = self.starts[i] + len(self.words[i])
        return "\n" in self._text()[gap_from:nxt]

    def _text(self) -> str:
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def view(self, k: int, before: int, after: int, sentences: tuple[int, int] = (1, 1)) -> str | None:
        """Window ``k`` in context: from ``sentences[0]`` sentences before the one its first new word
        is in (at most ``before`` words before it; the words it re-reads from the window before do
        not pull their sentence in) to ``sentences[1]`` sentences after the one it ends in (at most
        ``after`` words after it). None while that text has not all arrived."""
        _, read, end = self.spans[k]
        n, limit = len(self.words), end + after
        b, found, i = None, 0, end - 1
        while i < min(n, limit):
            ends = self._ends(i)
            if ends is None:
                break
            if ends:
                found += 1
                if found == sentences[1] + 1:
                    b = i + 1
                    break
            i += 1
        if b is None:
            if limit <= n:  # the view's last word is complete: its end is known either way
                b = limit
            elif self.finished:
                b = min(n, limit)
            else:
                return None
        floor = max(0, read - before)
        a, seen, j = floor, 0, read - 1
        while j >= floor:
            if self._ends(j):
                seen += 1
                if seen == sentences[0] + 1:
                    a = j + 1
                    break
            j -= 1
        return self._text()[self.starts[a] : self.starts[b - 1] + len(self.words[b - 1])]

    def released(self) -> int:
        """Characters that may be sent: everything once the text ended and passed, else up to the
        first word the next window will read."""
        if self.finished and self.verified >= len(self.words):
            return self.length
        first = max(0, self.verified - self.context)
        if first < len(self.words):
            return self.starts[first]
        return self._partial_start if self._partial else self.length


def windows_of(text: str, size: int, context: int = 4) -> list[str]:
    """The windows a streamed answer with this text would have been checked in."""
    return finished_windows(text, size, context).take(final=True)


def finished_windows(text: str, size: int, context: int = 4) -> Windows:
    """A :class:`Windows` holding the whole of ``text``, as a stream ends."""
    w = Windows(size, context)
    w.feed(text)
    w.finish()
    return w
