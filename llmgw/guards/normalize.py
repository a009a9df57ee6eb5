"""Text normalisation for the guards: undo the cheap tricks attackers use to hide words.

:func:`normalize` returns the cleaned text plus *decoded variants* that are present in it:

* the text itself: Unicode NFKC (fullwidth and mathematical letters fold to ASCII), zero-width,
  bidi-control, variation-selector and tag characters removed, and Cyrillic/Greek lookalike letters
  mapped to Latin (everywhere in mostly-Latin text, only inside mixed-script words otherwise, so
  genuine Russian or Greek text is left alone);
* variants, each ``(kind, text)``: ``base64`` / ``hex`` / ``url`` runs that decode to mostly
  printable text, ``tags`` (text hidden in invisible Unicode tag characters), ``rot13`` and
  ``reversed`` runs that turn unknown tokens into common English words, ``leet`` (1→i, 3→e, 4→a,
  0→o, 5→s, 7→t, @→a, $→s) when that makes words, and ``spaced`` (``i g n o r e`` → ``ignore``).

Everything is a handful of linear passes over the text; no model is involved. A variant is only
produced when the decoding yields words, so plain text normally has no variants at all.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

__all__ = ["Normalized", "known_word", "normalize", "strip_invisible"]

MAX_CHARS = 200_000  # longer input is normalised in full, but variants are only searched in this prefix

_WORDS_FILE = Path(__file__).resolve().parents[2] / "guardrails" / "lexicons" / "english_words.txt"
# fmt: off
_FALLBACK_WORDS = (  # used only if the word list file is missing
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
    "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
    "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do",
    "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
    "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see",
    "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil",
    "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part", "ignore",
    "disregard", "forget", "previous", "prior", "above", "instructions", "instruction", "prompt", "system",
    "password", "secret", "reveal", "tell", "print", "show", "repeat", "output", "answer", "respond",
    "everything", "rules", "new", "act", "pretend", "mode", "developer", "jailbreak",
)
# fmt: on

# -- invisible characters --------------------------------------------------------------------------
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_TAG_RUN = re.compile("[\U000e0020-\U000e007e]{2,}")

# -- homoglyphs: Cyrillic, Greek and a few other lookalikes of Latin letters -----------------------
_HOMOGLYPHS = {
    # Cyrillic lower / upper
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ӏ": "l", "ɡ": "g", "һ": "h", "ь": "b", "п": "n", "г": "r",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ї": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    "Ӏ": "I", "Һ": "H", "Ь": "b",
    # Greek lower / upper
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "η": "n", "μ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian and other Latin lookalikes
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ı": "i", "ȷ": "j", "ǀ": "l", "ʟ": "L",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
_CONFUSABLE = frozenset(_HOMOGLYPHS)
_WORDISH = re.compile(r"\w+")

# -- decoders --------------------------------------------------------------------------------------
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){10,}(?![0-9A-Fa-f])")
_URL_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}){4,}")
_ALPHA_TOKEN = re.compile(r"[A-Za-z]+")
_LEET_TOKEN = re.compile(r"[A-Za-z0-9@$!|]+")
_SPACED = re.compile(r"(?<![A-Za-z0-9])(?:[A-Za-z][ .\-_*+·,]{1,3}){3,}[A-Za-z](?![A-Za-z0-9])")
_LEET_MAP = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s",
             "!": "i", "|": "l"}  # fmt: skip
_LEET_ALT = {"1": "l", "!": "l", "|": "i", "9": "q"}


@dataclass(frozen=True, slots=True)
class Normalized:
    """The cleaned text and the decoded variants found in it, each ``(kind, text)``."""

    text: str
    variants: list[tuple[str, str]] = field(default_factory=list)

    def views(self) -> list[tuple[str | None, str]]:
        """The texts to scan: ``(None, text)`` first, then every variant with its kind."""
        return [(None, self.text), *self.variants]


@lru_cache(maxsize=1)
def _words() -> frozenset[str]:
    try:
        lines = _WORDS_FILE.read_text(encoding="utf-8").splitlines()
        words = {w.strip().lower() for w in lines if w.strip() and not w.startswith("#")}
    except OSError:
        words = set()
    return frozenset(words | set(_FALLBACK_WORDS))


def known_word(token: str) -> bool:
    """Whether ``token`` is a common English word (case-insensitive)."""
    return token.lower() in _words()


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def _map_homoglyphs(text: str) -> str:
    if not any(ch in _CONFUSABLE for ch in text):
        return text
    latin = other = 0
    for ch in text:
        if "a" <= ch <= "z" or "A" <= ch <= "Z":
            latin += 1
        elif ch.isalpha():
            other += 1
    if latin >= other:
        return text.translate(_HOMOGLYPH_TABLE)

    # mostly non-Latin text: only fix words that mix Latin letters with lookalikes
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if any(c.isascii() and c.isalpha() for c in word) and any(c in _CONFUSABLE for c in word):
            return word.translate(_HOMOGLYPH_TABLE)
        return word

    return _WORDISH.sub(fix, text)


def _printable_ratio(text: str) -> float:
    if not text:
        return 0.0
    good = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return good / len(text)


def _looks_like_text(decoded: str) -> bool:
    """Mostly printable, with letters and at least one recognisable word or several spaces."""
    if len(decoded) < 4 or _printable_ratio(decoded) < 0.9:
        return False
    letters = sum(ch.isalpha() for ch in decoded)
    if letters < 0.5 * len(decoded.replace(" ", "")):
        return False
    tokens = _ALPHA_TOKEN.findall(decoded)
    return sum(known_word(t) for t in tokens if len(t) >= 2) >= 1 or decoded.count(" ") >= 2


def _decode_b64(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    for alt in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(
                padded.translate(str.maketrans("-_", "+/")) if alt == b"-_" else padded, validate=True
            )
        except (binascii.Error, ValueError):
            continue
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _looks_like_text(decoded):
            return decoded
    return None


def _decode_hex(run: str) -> str | None:
    digits = re.sub(r"[ :]", "", run)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        decoded = bytes.fromhex(digits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if _looks_like_text(decoded) else None


def _replace_runs(text: str, pattern: re.Pattern[str], decode) -> str | None:
    out: list[str] = []
    last = 0
    changed = False
    for m in pattern.finditer(text):
        decoded = decode(m.group(0))
        if decoded is None:
            continue
        out.append(text[last : m.start()])
        out.append(" " + decoded.strip() + " ")
        last = m.end()
        changed = True
    if not changed:
        return None
    out.append(text[last:])
    return "".join(out).strip()


def _rot13(s: str) -> str:
    return codecs.encode(s, "rot_13")


def _transform_runs(text: str, transform) -> str | None:
    """Apply a character-level ``transform`` to the runs of tokens it turns into English words.

    A token *converts* when its transform is a known word and it is not one itself. Runs are maximal
    sequences of converting (or one-letter) tokens with at most small gaps of separators; a run is
    rewritten when it holds at least two converting tokens of three or more letters, or the whole
    text is mostly converting tokens.
    """
    tokens = list(_ALPHA_TOKEN.finditer(text))
    if len(tokens) < 2:
        return None
    flags: list[bool | None] = []  # None: a neutral one-letter token
    for m in tokens:
        tok = m.group(0)
        if len(tok) == 1:
            flags.append(None)  # neutral
            continue
        flags.append(known_word(transform(tok)) and not known_word(tok))
    strong = [m.group(0).lower() for f, m in zip(flags, tokens, strict=True) if f and len(m.group(0)) >= 3]
    converting = len(strong)
    considered = sum(1 for f in flags if f is not None)
    distinct = len(set(strong))
    if not (distinct >= 3 or (distinct >= 2 and considered <= 6)):
        return None
    if considered and converting >= 0.6 * considered:
        return transform(text)
    # rewrite runs
    pieces: list[str] = []
    last = 0
    i = 0
    changed = False
    while i < len(tokens):
        if not flags[i]:
            i += 1
            continue
        j = i
        long_runs = 0
        while j < len(tokens) and flags[j] is not False:
            if flags[j] and len(tokens[j].group(0)) >= 3:
                long_runs += 1
            j += 1
        # trim trailing neutral tokens
        end = j - 1
        while end > i and flags[end] is None:
            end -= 1
        if long_runs >= 2:
            start_c, end_c = tokens[i].start(), tokens[end].end()
            pieces.append(text[last:start_c])
            pieces.append(transform(text[start_c:end_c]))
            last = end_c
            changed = True
        i = j
    if not changed:
        return None
    pieces.append(text[last:])
    return "".join(pieces)


def _deleet_token(tok: str) -> str:
    plain = "".join(_LEET_MAP.get(ch, ch) for ch in tok)
    if known_word(plain):
        return plain
    alt = "".join(_LEET_ALT.get(ch, _LEET_MAP.get(ch, ch)) for ch in tok)
    return alt if known_word(alt) else plain


def _leet(text: str) -> str | None:
    pieces: list[str] = []
    last = 0
    converted: set[str] = set()
    for m in _LEET_TOKEN.finditer(text):
        tok = m.group(0)
        core = tok.rstrip("!|")
        if not core or not any(c.isalpha() for c in core) or not any(c in _LEET_MAP for c in core):
            continue
        if core.isalpha():  # only trailing punctuation, e.g. "hello!"
            continue
        letters = [c for c in core if c.isalpha()]
        if len(letters) >= 2 and all(c.isupper() for c in letters):
            continue  # identifiers such as NS5A, H5N1, CD40
        start = m.start() + tok.index(core)
        plain = _deleet_token(core)
        if known_word(plain) and not known_word(core) and len(plain) >= 3:
            converted.add(plain.lower())
        pieces.append(text[last:start])
        pieces.append(plain)
        last = start + len(core)
    if len(converted) < 2 and not (converted and max(map(len, converted)) >= 5 and len(text) <= 200):
        return None
    pieces.append(text[last:])
    return "".join(pieces)


def _segment(letters: str) -> list[str] | None:
    """Split a run of letters into known words (fewest words wins), or None."""
    n = len(letters)
    if n > 200:
        return None
    low = letters.lower()
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for i in range(n):
        before = best[i]
        if before is None:
            continue
        for j in range(i + 1, min(n, i + 20) + 1):
            piece = low[i:j]
            if (len(piece) >= 2 or piece in ("a", "i")) and known_word(piece):
                cand = [*before, letters[i:j]]
                known = best[j]
                if known is None or len(cand) < len(known):
                    best[j] = cand
    return best[n]


def _despace(text: str) -> str | None:
    pieces: list[str] = []
    last = 0
    made = False
    for m in _SPACED.finditer(text):
        run = m.group(0)
        groups = [re.sub(r"[^A-Za-z]", "", g) for g in re.split(r"[ .\-_*+·,]{2,}", run)]
        words: list[str] = []
        for g in filter(None, groups):
            words.extend(([g] if known_word(g) else _segment(g)) or [g])
        if not any(len(w) >= 3 and known_word(w) for w in words):
            continue
        pieces.append(text[last : m.start()])
        pieces.append(" ".join(words))
        last = m.end()
        made = True
    if not made:
        return None
    pieces.append(text[last:])
    return "".join(pieces)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` and collect its decoded variants (see the module docstring)."""
    if not text:
        return Normalized("", [])
    variants: list[tuple[str, str]] = []
    tags = _TAG_RUN.findall(text)
    if tags:
        hidden = " ".join("".join(chr(ord(c) - 0xE0000) for c in run) for run in tags)
        variants.append(("tags", hidden))
    clean = unicodedata.normalize("NFKC", text)
    clean = strip_invisible(clean)
    clean = _map_homoglyphs(clean)
    scan = clean[:MAX_CHARS]

    if len(scan) >= 16:
        b64 = _replace_runs(scan, _B64_RUN, _decode_b64)
        if b64 is not None:
            variants.append(("base64", b64))
        hexed = _replace_runs(scan, _HEX_RUN, _decode_hex)
        if hexed is not None:
            variants.append(("hex", hexed))
    if "%" in scan:
        url = _replace_runs(scan, _URL_RUN, lambda run: (lambda d: d if _looks_like_text(d) else None)(unquote(run)))
        if url is not None:
            variants.append(("url", url))
    rot = _transform_runs(scan, _rot13)
    if rot is not None:
        variants.append(("rot13", rot))
    rev = _transform_runs(scan, lambda s: s[::-1])
    if rev is not None:
        variants.append(("reversed", rev))
    if any(ch in scan for ch in "0134579@$!|"):
        leet = _leet(scan)
        if leet is not None:
            variants.append(("leet", leet))
    spaced = _despace(scan)
    if spaced is not None:
        variants.append(("spaced", spaced))
    return Normalized(clean, variants)
