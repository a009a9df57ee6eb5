"""The instruction of a request, seen apart from what was pasted with it.

A request often pastes a text (an e-mail, an article, a log, a table, code) before or after the
instruction that says what to do with it. MiniLM reads at most 256 word pieces and mean-pools
them, so in one embedding of the whole turn the instruction is cut off (pasted before it) or
drowned (a few words among hundreds), and the pasted text decides the task: "summarize this" +
an e-mail reads as the e-mail. The *instruction view* is a second, short text made of what is
most likely the instruction — the head of the first part and the tail of the last part of the
turn, outside fenced code blocks and quoted lines — so the classifier sees the instruction
whatever length the paste has. It costs a second embedding only when it differs from the turn.

The split is deliberately dumb and general (no task words, no language rules):

1. fenced blocks (lines between ````` / ``~~~`` fences) and quoted lines (``>``) are pasted
   content and leave the view;
2. the view is the head of the first remaining line and the tail of the last one: with
   ``sentences``, as many whole sentences from its start / end as fit in ``words`` words (at least
   one, cut to ``words``) — an instruction is usually a sentence or two, and the first sentence of a
   paste is a cheap "what is this" hint; without, the first / last ``words`` words;
3. a turn of one line of at most ``2 * words`` words is its own view.

``None`` means the view would be the turn itself (a short request): one embedding is enough.
The window and the sentence rule are chosen by cross-validation (``python -m bench.routing``).
"""

from __future__ import annotations

import re

#: the longest head or tail, in whitespace-separated words (chosen by cross-validation)
WORDS = 16
#: heads and tails are whole sentences (cut to WORDS) rather than word windows (chosen by cross-validation)
SENTENCES = True

_FENCE = re.compile(r"^\s*(```|~~~)")
_QUOTE = re.compile(r"^\s*>")
# after . ! ? : ; (and their CJK forms) followed by space; no language-specific abbreviation rules
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|(?<=[。！？；：])")


def outside_pasted(text: str) -> list[str]:
    """The turn's non-blank lines, fenced blocks and quoted lines left out.

    An unclosed fence runs to the end (a paste that was cut off is still a paste).
    """
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and not _QUOTE.match(line) and line.strip():
            lines.append(" ".join(line.split()))
    return lines


def sentences_of(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text)) if s]


def head(line: str, words: int, sentences: bool) -> str:
    """The line's first ``words`` words, or its first whole sentences that fit in them."""
    if not sentences:
        return " ".join(line.split()[:words])
    kept: list[str] = []
    for sentence in sentences_of(line):
        if kept and len(" ".join([*kept, sentence]).split()) > words:
            break
        kept.append(sentence)
    return " ".join(" ".join(kept).split()[:words])


def tail(line: str, words: int, sentences: bool) -> str:
    """The line's last ``words`` words, or its last whole sentences that fit in them."""
    if not sentences:
        return " ".join(line.split()[-words:])
    kept: list[str] = []
    for sentence in reversed(sentences_of(line)):
        if kept and len(" ".join([sentence, *kept]).split()) > words:
            break
        kept.insert(0, sentence)
    return " ".join(" ".join(kept).split()[-words:])


def instruction_view(text: str, words: int = WORDS, sentences: bool = SENTENCES) -> str | None:
    """The head of the first line and the tail of the last one; None when that is the whole turn."""
    lines = outside_pasted(text)
    if not lines:
        return None  # nothing but pasted content: the turn itself is all there is
    if len(lines) == 1 and len(lines[0].split()) <= 2 * words:
        view = lines[0]  # one short line: head and tail would overlap
    else:
        first, last = head(lines[0], words, sentences), tail(lines[-1], words, sentences)
        view = first if len(lines) == 1 and first == last else f"{first}\n{last}"
    if " ".join(view.split()) == " ".join(text.split()):
        return None
    return view
