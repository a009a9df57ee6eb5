"""A person-name score from evidence, so that a policy can trade recall for precision.

spaCy's small model and the census-name rules (``llmgw.guards.names``) each took a span for a name
on one piece of evidence: spaCy tags product, company and place names, headlines and ordinary
capitalised words PERSON, and a census list holds "Jordan", "Apple" and "Parkinson". Here every
span that *could* be a name is a candidate: spaCy's PERSON entities, the rules' spans, runs of
capitalised words and lower-case census names. Overlapping candidates join into one span, and a
logistic model scores it from features any text has:

* who proposed it (spaCy PERSON, which rule, a capitalised run only) and the entity spaCy gave its
  tokens (ORG, GPE, PRODUCT, WORK_OF_ART, NORP, DATE, ...);
* how many people in the US census carry its first word as a first name and its last word as a
  surname, and how many of its words are ordinary English (stop words, WordNet verbs, adjectives,
  adverbs, nouns; the 8,000 most common words);
* its shape (Title Case, lower case, ALL CAPS, length) and where it stands: at the start of a
  sentence, in a Title Case line, after a title, a greeting, "with", "in" / "at", an article or a
  possessive, before "'s", a verb of saying or an organisation word ("Inc", "University");
* whether the same word is written in lower case elsewhere in the text (an ordinary word);
* how public text writes its words (``guardrails/lexicons/word_case.tsv``: in lower case or
  capitalised past a sentence start; "miles" 799 to 16, "Tom" 6 to 133), and whether a plain noun
  follows or precedes it ("Miller syndrome", "cable bill").

The weights are fitted by ``scripts/train_person_scorer.py`` on public data (WNUT17 train tweets,
presidio's synthetic dev half, text without names), and the model file carries, for each
precision target, the score threshold that reaches it on a calibration split and the share of
rows it masks in each no-PII calibration source: a policy chooses ``pii.person_precision`` (or a
plain PERSON threshold). The score reads only the tokens and
entities the one spaCy pass already made: no extra model pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmgw.guards.names import (
    ADDRESS_WORDS,
    PARTICLES,
    TITLES,
    _fold,
    _ordinary_words,
    _wordlike,
    _words,
    name_lists,
    name_rules,
    name_shares,
)

__all__ = ["MODEL_FILE", "PersonScorer", "candidates", "features", "person_scorer"]

MODEL_FILE = Path(__file__).resolve().parents[2] / "guardrails" / "models" / "person_names.json"
COMMON_WORDS_FILE = Path(__file__).resolve().parents[2] / "guardrails" / "lexicons" / "english_words.txt"
WORD_CASE_FILE = Path(__file__).resolve().parents[2] / "guardrails" / "lexicons" / "word_case.tsv"

ORG_LABELS = frozenset({"ORG"})
PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})
WORK_LABELS = frozenset({"PRODUCT", "WORK_OF_ART", "EVENT", "LAW", "LANGUAGE"})
NUMBER_LABELS = frozenset({"DATE", "TIME", "MONEY", "CARDINAL", "ORDINAL", "PERCENT", "QUANTITY"})
#: words before a person: greetings, thanks, meeting, asking, "with", credits ("feat.", "by")
PERSON_BEFORE = _words(
    "hi hey hello dear thanks thank congrats congratulations love miss meet met ask asked tell told call"
    " called named with by feat ft cc dm text texted"
)
#: verbs of saying and thinking after a person
PERSON_AFTER = _words("said says say told tells asked asks wrote writes thinks thought replied added")
ARTICLES = frozenset({"the", "a", "an", "this", "that", "these", "those"})
POSSESSIVES = frozenset({"my", "your", "our", "his", "her", "their"})
LOCATIVE = frozenset({"in", "at", "from", "near", "into", "across", "around", "via", "towards", "on"})
#: words that make the capitalised words before them an organisation or a place
ORG_WORDS = ADDRESS_WORDS | _words(
    "inc ltd llc corp corporation co company group university college school hospital bank church club"
    " team foundation institute association museum center centre airport station hotel restaurant cafe"
    " bar store shop market mall stadium arena city county state river lake mountain island beach"
    " festival show series album records news times post magazine party"
)
SENTENCE_ENDS = frozenset({".", "!", "?", ":", ";", "…", "|", '"', "“", "”", "-", "–", "—"})


def _is_cap(text: str) -> bool:
    return len(text) >= 2 and text[0].isupper() and any(c.islower() for c in text[1:]) and _wordlike(text)


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    lines = COMMON_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@lru_cache(maxsize=1)
def word_case() -> dict[str, tuple[int, int]]:
    """word -> (lower-case uses, capitalised uses past a sentence's first word) in public text
    (``scripts/build_word_case.py``): "miles" is written in lower case 799 times for 16 capitals,
    "Tom" 6 for 133. How people write a word tells a name from an ordinary word better than any
    word list, which holds both."""
    out: dict[str, tuple[int, int]] = {}
    for line in WORD_CASE_FILE.read_text(encoding="utf-8").split("\n"):
        parts = line.split("\t")
        if len(parts) == 3 and not line.startswith("#"):
            out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out


def lower_share(word: str, table: dict[str, tuple[int, int]]) -> float | None:
    """The smoothed share of a (folded) word's uses in lower case; None when it was not seen."""
    seen = table.get(word)
    if seen is None:
        return None
    return (seen[0] + 1) / (seen[0] + seen[1] + 2)


@lru_cache(maxsize=1)
def noun_only_words() -> frozenset[str]:
    """WordNet nouns that are no verb, adjective, adverb nor stop word ("syndrome", "file", "gold"):
    a name is seldom followed or preceded by one ("Miller syndrome", "Docker image", "cable bill")."""
    return _ordinary_words(nouns=True) - _ordinary_words()


def _noun_only(tok: Any, nouns: frozenset[str]) -> bool:
    text = tok.text
    if not (text.islower() and text.isalpha() and len(text) > 2):
        return False
    return text in nouns or (text.endswith("s") and text[:-1] in nouns)


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """English words of any part of speech (WordNet's tables, stop words) and the common-word list."""
    return _ordinary_words(nouns=True) | common_words()


def _share_level(share: float) -> float:
    """0 for no census entry, then 0.2 per decade from 0.0001 % of people up to 1 %."""
    return 0.0 if share <= 0 else min(1.0, max(0.0, (math.log10(share) + 4) / 5) + 0.2)


@dataclass
class Candidate:
    """Tokens ``start`` to ``end`` (exclusive) that may be a name, and who proposed them."""

    start: int
    end: int
    sources: set[str] = field(default_factory=set)


def _sentence_starts(tokens: list[Any]) -> list[bool]:
    starts = []
    for i in range(len(tokens)):
        prev = tokens[i - 1] if i else None
        starts.append(prev is None or prev.text in SENTENCE_ENDS or "\n" in prev.text or prev.is_space)
    return starts


def candidates(doc: Any, tokens: list[Any] | None = None) -> list[Candidate]:
    """Every span that could be a name, overlapping proposals joined into one (``tokens``: the
    doc's tokens when the caller already listed them; spaCy builds a new object for each)."""
    first, last = name_lists()
    ordinary = _ordinary_words()
    words = known_words()
    tokens = tokens if tokens is not None else list(doc)
    spans: list[tuple[int, int, str]] = []

    def trim(i: int, j: int) -> int:
        """Past a greeting or common word before a name, which is no part of it ("Bye Dana Reyes")."""
        while j - i > 1 and _fold(tokens[i].text) in words and _fold(tokens[i].text) not in first:
            i += 1
        return i

    for ent in doc.ents:
        if ent.label_ in ("PERSON", "PER"):
            spans.append((trim(ent.start, ent.end), ent.end, "spacy"))
    by_start = {t.idx: i for i, t in enumerate(tokens)}
    by_end = {t.idx + len(t.text): i + 1 for i, t in enumerate(tokens)}
    for start, end, kind in name_rules(doc, tokens):  # rule spans start and end on token edges
        if start in by_start and end in by_end:
            spans.append((by_start[start], by_end[end], kind))
    i = 0
    while i < len(tokens):  # runs of capitalised words that are no stop word nor an ordinary non-name word
        j = i
        while j < len(tokens) and j - i < 4:
            t = tokens[j]
            folded = _fold(t.text)
            ok = _is_cap(t.text) and not t.is_stop and (folded not in ordinary or folded in first or folded in last)
            if ok:
                j += 1
            elif j > i and folded in PARTICLES and j + 1 < len(tokens) and _is_cap(tokens[j + 1].text):
                j += 2
            else:
                break
        if j > i:
            spans.append((trim(i, j), j, "cap_run"))
            i = j
        else:
            i += 1
    for i, t in enumerate(tokens):  # lower-case census first names ("saw jessica today")
        folded = t.text.lower()
        if t.text.islower() and len(t.text) >= 3 and t.is_alpha and not t.is_stop and folded in first:
            spans.append((i, i + 1, "lower_census"))
    out: list[Candidate] = []
    for start, end, source in sorted(spans):
        if out and start < out[-1].end:
            out[-1].end = max(out[-1].end, end)
            out[-1].sources.add(source)
        else:
            out.append(Candidate(start, end, {source}))
    return out


RULES = ("title", "lead_in", "first_surname", "first", "surname", "lower_pair", "lower_first")
FEATURES = (
    "src_spacy", *(f"src_{r}" for r in RULES), "src_cap_run_only", "src_lower_census_only",
    "ent_org", "ent_place", "ent_work", "ent_norp", "ent_number",
    "first_share", "last_share", "is_first_name", "is_last_name", "all_names",
    "frac_stop", "frac_ordinary", "frac_noun", "frac_common",
    "title_case", "lower_case", "all_caps", "one_word", "two_words", "three_plus",
    "sentence_start", "sentence_caps", "text_start",
    "prev_title", "prev_person_word", "prev_locative", "prev_article", "prev_possessive", "prev_lower", "prev_at",
    "next_possessive", "next_saying", "next_org_word", "next_cap", "hashtag", "handle", "not_a_word",
    "lower_elsewhere", "spacy_and_name", "spacy_only", "frac_unknown", "spacy_and_unknown", "cap_and_unknown",
    "lower_and_word", "case_lower_max", "case_lower_mean", "case_lower_first", "case_unseen", "case_seen_often",
    "case_lower_and_cap", "case_lower_last", "next_noun", "prev_noun", "next_lower_word",
)  # fmt: skip


def features(doc: Any, cand: Candidate, ctx: dict[str, Any] | None = None) -> list[float]:
    """The feature vector of one candidate, in the order of :data:`FEATURES` (values in [0, 1])."""
    tokens = ctx["tokens"] if ctx else list(doc)
    starts = ctx["starts"] if ctx else _sentence_starts(tokens)
    lower_words = ctx["lower_words"] if ctx else {t.text for t in tokens if t.text.islower()}
    first_share, last_share = name_shares()
    ordinary, nouns, common = _ordinary_words(), _ordinary_words(nouns=True), common_words()
    span = tokens[cand.start : cand.end]
    words = [t for t in span if t.is_alpha] or span
    folded = [_fold(t.text) for t in words]
    labels = {t.ent_type_ for t in span}
    n = len(words)
    prev = tokens[cand.start - 1] if cand.start else None
    prev2 = tokens[cand.start - 2] if cand.start > 1 else None
    nxt = tokens[cand.end] if cand.end < len(tokens) else None
    prev_low = prev.text.lower().rstrip(".") if prev is not None else ""
    next_low = nxt.text.lower() if nxt is not None else ""
    # the sentence around the candidate: share of its other words that are capitalised
    s = cand.start
    while s > 0 and not starts[s]:
        s -= 1
    e = cand.end
    while e < len(tokens) and not starts[e]:
        e += 1
    others = [t for t in tokens[s : cand.start] + tokens[cand.end : e] if t.is_alpha and len(t) > 1]
    caps = sum(t.text[0].isupper() for t in others) / len(others) if len(others) >= 3 else 0.0
    rules = cand.sources
    cap_only = rules == {"cap_run"}
    fs = first_share.get(folded[0], 0.0) if folded else 0.0
    ls = last_share.get(folded[-1], 0.0) if folded else 0.0
    # words in no list at all (no English word of any part of speech, no census name): "Obama", "Rubik"
    unknown = (
        sum(
            f.isalpha() and f not in nouns and f not in common and f not in first_share and f not in last_share
            for f in folded
        )
        / n
    )
    table = word_case()
    shares = [lower_share(f, table) for f in folded if f.isalpha()]
    seen = [v for v in shares if v is not None]
    lower_max = max(seen, default=0.0)
    values = {
        # how the span's words are written elsewhere: in lower case (an ordinary word) or capitalised
        "case_lower_max": lower_max,
        "case_lower_mean": sum(seen) / len(seen) if seen else 0.0,
        "case_lower_first": (shares[0] or 0.0) if shares else 0.0,
        "case_unseen": sum(v is None for v in shares) / len(shares) if shares else 0.0,
        "case_seen_often": sum(sum(table.get(f, (0, 0))) >= 50 for f in folded) / n,
        # a capitalised span whose words are mostly written in lower case: a heading or a product
        "case_lower_and_cap": lower_max if all(_is_cap(t.text) for t in words) else 0.0,
        "case_lower_last": (shares[-1] or 0.0) if len(shares) > 1 else 0.0,
        "next_noun": nxt is not None and _noun_only(nxt, noun_only_words()),
        "prev_noun": prev is not None and _noun_only(prev, noun_only_words()),
        # the next word is one people write in lower case (not a stop word nor a verb of saying)
        "next_lower_word": nxt is not None
        and nxt.text.islower()
        and nxt.is_alpha
        and not nxt.is_stop
        and next_low not in PERSON_AFTER
        and (lower_share(next_low, table) or 0.0) >= 0.95,
        "src_spacy": "spacy" in rules,
        **{f"src_{r}": r in rules for r in RULES},
        "src_cap_run_only": cap_only,
        "src_lower_census_only": rules == {"lower_census"},
        "ent_org": bool(labels & ORG_LABELS),
        "ent_place": bool(labels & PLACE_LABELS),
        "ent_work": bool(labels & WORK_LABELS),
        "ent_norp": "NORP" in labels,
        "ent_number": bool(labels & NUMBER_LABELS),
        "first_share": _share_level(fs),
        "last_share": _share_level(ls),
        "is_first_name": fs > 0,
        "is_last_name": ls > 0 and n > 1,
        "all_names": all(f in first_share or f in last_share or f in PARTICLES for f in folded),
        "frac_stop": sum(t.is_stop for t in words) / n,
        "frac_ordinary": sum(f in ordinary for f in folded) / n,
        "frac_noun": sum(f in nouns and f not in ordinary for f in folded) / n,
        "frac_common": sum(f in common for f in folded) / n,
        "title_case": all(_is_cap(t.text) or t.text.lower() in PARTICLES for t in words),
        "lower_case": all(t.text.islower() for t in words),
        "all_caps": all(t.text.isupper() for t in words),
        "one_word": n == 1,
        "two_words": n == 2,
        "three_plus": n >= 3,
        "sentence_start": starts[cand.start],
        "sentence_caps": caps,
        "text_start": cand.start == 0,
        "prev_title": prev_low in TITLES or (prev_low == "." and prev2 is not None and prev2.lower_ in TITLES),
        "prev_person_word": prev_low in PERSON_BEFORE,
        "prev_locative": prev_low in LOCATIVE,
        "prev_article": prev_low in ARTICLES,
        "prev_possessive": prev_low in POSSESSIVES,
        "prev_lower": prev is not None and prev.text.islower() and prev.is_alpha,
        "prev_at": prev_low == "@",
        "next_possessive": next_low in ("'s", "’s", "'"),
        "next_saying": next_low in PERSON_AFTER,
        "next_org_word": _fold(next_low) in ORG_WORDS,
        "next_cap": nxt is not None and _is_cap(nxt.text),
        "hashtag": prev_low == "#" or any(t.text.startswith("#") for t in span),
        "handle": any(t.text.startswith("@") for t in span),
        "not_a_word": any(any(c.isdigit() or c in "_/:" for c in t.text) for t in span),
        "spacy_and_name": "spacy" in rules and (fs > 0 or ls > 0),
        "spacy_only": rules == {"spacy"},
        "frac_unknown": unknown,
        # a lower-case word that is also English ("rose", "will"): a name only with other evidence
        "lower_and_word": all(t.text.islower() for t in words) and any(f in known_words() for f in folded),
        "spacy_and_unknown": unknown if "spacy" in rules else 0.0,
        "cap_and_unknown": unknown if "cap_run" in rules and not starts[cand.start] else 0.0,
        "lower_elsewhere": any(t.text.lower() in lower_words for t in words if not t.text.islower()),
    }
    return [float(values[f]) for f in FEATURES]


def context(doc: Any) -> dict[str, Any]:
    """What :func:`features` reads from the whole text, computed once per text."""
    tokens = list(doc)
    return {
        "tokens": tokens,
        "starts": _sentence_starts(tokens),
        "lower_words": {t.text for t in tokens if t.text.islower()},
    }


@dataclass(frozen=True)
class PersonScorer:
    """A logistic model over :data:`FEATURES` and its calibrated operating points."""

    weights: tuple[float, ...]
    bias: float
    #: (precision on the calibration split, the lowest score threshold that reaches it), ascending
    operating_points: tuple[tuple[float, float], ...] = ()

    def probability(self, x: list[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1.0 / (1.0 + math.exp(-z))

    def score(self, doc: Any) -> list[tuple[int, int, float]]:
        """``(start, end, probability)`` character spans of every candidate in ``doc``."""
        ctx = context(doc)
        tokens = ctx["tokens"]
        out = []
        for cand in candidates(doc, tokens):
            p = self.probability(features(doc, cand, ctx))
            first, end = tokens[cand.start], tokens[cand.end - 1]
            out.append((first.idx, end.idx + len(end.text), p))
        return out

    def threshold_for(self, precision: float) -> float:
        """The score threshold at which calibration precision reaches ``precision`` (the highest
        point measured when no threshold reaches it)."""
        for reached, threshold in self.operating_points:
            if reached >= precision:
                return threshold
        return self.operating_points[-1][1] if self.operating_points else 0.5

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersonScorer:
        if list(data["features"]) != list(FEATURES):
            raise ValueError("person name model was fitted on other features: re-run scripts/train_person_scorer.py")
        points = tuple((float(p["precision"]), float(p["threshold"])) for p in data.get("operating_points", []))
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]), points)


@lru_cache(maxsize=2)
def person_scorer(path: str = str(MODEL_FILE)) -> PersonScorer:
    return PersonScorer.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
