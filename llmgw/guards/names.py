"""Person names spaCy's small English model misses: a census name list plus capitalisation and context.

spaCy's ``en_core_web_sm`` (the only English model installable offline here) finds about 70% of
names: it misses names in lists ("Kaylee, Brandi and Miguel"), lower-case names ("jared
paavolainen") and names after a title ("Mr. Crnić"). This recognizer adds, on the same spaCy
tokens Presidio already computed:

* a capitalised token that is a known first name (US census lists, the ``names`` package), with the
  capitalised tokens after it as the surname ("Madison Boyes");
* a title followed by capitalised tokens ("Dr. Brenda Eldarkhanov", "Mr. Rodriguez");
* a name after "my name is", "call me", "named", "this is" when capitalised;
* a census surname alone when spaCy tags it a proper noun and it is no ordinary English word
  ("Sjöberg and Cantu were ...");
* lower-case "first last" only when both halves are census names and neither is an ordinary
  English verb, adjective or adverb (spaCy's lemma tables) nor a stop word;
* a lower-case (or, in mixed-case text, ALL CAPS) first name alone, as people write in chats and
  posts ("saw jessica today"), when it is a common one (at least ``COMMON_FIRST_SHARE`` percent of
  people in the census list, chosen on WNUT17's train tweets) and no English word of any part of
  speech: rarer list entries are mostly words of other languages ("kasi", "yan").

Ordinary words that are also names ("Will", "May", "Mark", "Hope") never count from the list alone;
nor do dates, places after "in" / "to", words before "Street" or "Suite", or Title Case headlines.

In the gateway these spans no longer mask on their own: they are evidence (which rule took a span)
for the name score of ``llmgw.guards.person_score``, whose threshold the policy sets.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmgw.guards.nlp import SPACY_MODEL

__all__ = ["common_first_names", "find_names", "name_lists", "name_shares"]

TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "dame", "mister", "doctor", "professor"}
PARTICLES = {"van", "von", "de", "der", "den", "da", "del", "della", "di", "du", "la", "le", "ter", "ten", "bin", "al"}
#: the share (percent of people in the census list) from which a lone lower-case first name counts;
#: chosen on WNUT17's train tweets: 0.01 kept 30 of 34 such names there and cut look-alikes 51 -> 13
COMMON_FIRST_SHARE = 0.01
#: words after which a capitalised word is a name ("my name is X", "call me X")
LEAD_INS = ({"name", ":"}, {"name", "is"}, {"call", "me"}, {"calls", "me"}, {"named"}, {"this", "is"}, {"called"})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: in the census first-name list, but far more often a date or a place
NOT_NAMES = _words(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july august"
    " september october november december america china india paris florida georgia virginia carolina dakota"
    " england ireland london berlin sydney"
)
ADDRESS_WORDS = _words(
    "street st suite apt apartment road rd avenue ave lane ln drive dr court ct place pl square sq park parkway"
    " boulevard blvd way box floor building unit block highway route"
)
#: spaCy entity types that rule a token out. Places are ruled out only after "in", "to", "from", ...:
#: the small model often calls a name in a list a place ("Kristi, Stephen, Nina" as GPE)
OTHER_ENTITIES = frozenset({"DATE", "TIME", "EVENT", "LANGUAGE", "MONEY", "CARDINAL", "ORDINAL", "PERCENT", "QUANTITY"})
PLACES = frozenset({"GPE", "LOC", "FAC"})
LOCATIVE = frozenset({"in", "at", "from", "to", "near", "into", "across", "around", "through", "via", "towards", "of"})


def _fold(word: str) -> str:
    """Lower case without accents, as the census lists are written ("Novák" -> "novak")."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def name_shares() -> tuple[dict[str, float], dict[str, float]]:
    """(first name -> percent of people, surname -> percent of people) from the US census lists
    shipped by the ``names`` package (a first name's larger share of the male and female lists)."""
    import names

    root = Path(names.__file__).parent

    def read(*files: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for file in files:
            for line in (root / file).read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    out[parts[0].lower()] = max(out.get(parts[0].lower(), 0.0), float(parts[1]))
        return out

    return read("dist.male.first", "dist.female.first"), read("dist.all.last")


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) of the census lists."""
    first, last = name_shares()
    return frozenset(first), frozenset(last)


@lru_cache(maxsize=1)
def common_first_names(share: float = COMMON_FIRST_SHARE) -> frozenset[str]:
    """Census first names given to at least ``share`` percent of people (the list's second column)."""
    return frozenset(name for name, given in name_shares()[0].items() if given >= share)


@lru_cache(maxsize=4)
def _ordinary_words(lang: str = "en", nouns: bool = False) -> frozenset[str]:
    """Stop words plus the verbs, adjectives and adverbs (and nouns if asked) of spaCy's lemma tables
    (WordNet's word lists), and the words of addresses."""
    import spacy

    words = set(spacy.blank(lang).Defaults.stop_words) | ADDRESS_WORDS
    try:
        lemmatizer: Any = spacy.load(SPACY_MODEL, enable=["lemmatizer"]).get_pipe("lemmatizer")
        index = lemmatizer.lookups.get_table("lemma_index")
        for pos in ("verb", "adj", "adv", *(("noun",) if nouns else ())):
            words.update(w for w in index.get(pos, []) if "_" not in w)
    except (OSError, KeyError, ValueError):  # no tables: stop words only
        pass
    return frozenset(words)


def _is_cap(text: str) -> bool:
    return len(text) >= 2 and text[0].isupper() and any(c.islower() for c in text[1:]) and _wordlike(text)


def _wordlike(text: str) -> bool:
    return all(c.isalpha() or c in "-'’." for c in text) and text[0].isalpha()


def _nominal(tok: Any, ordinary: frozenset[str], first: frozenset[str]) -> bool:
    """A noun, proper noun or adjective by the tagger; without a tagger, a known first name or no
    ordinary verb, adverb or adjective ("call me Mark" is a name, "my name is Going" is not)."""
    if tok.pos_:
        return bool(tok.pos_ in ("PROPN", "NOUN", "ADJ", "X"))
    folded = _fold(tok.text)
    return folded in first or folded not in ordinary


def _proper(tok: Any) -> bool:
    """A proper noun by the tagger. Without one (the gateway runs spaCy without a tagger: NER has its
    own embedding layer, and the tagger cost 40% of the analysis) any capitalised word counts: the
    caller has already ruled out ordinary nouns, verbs, adjectives and stop words."""
    return bool(tok.pos_ == "PROPN") if tok.pos_ else True


def _before_address(tokens: list[Any], i: int) -> bool:
    """A capitalised word or two before "Street", "Suite", ...: a street named after someone."""
    return any(_fold(t.text) in ADDRESS_WORDS for t in tokens[i + 1 : i + 3])


def _headline_tokens(tokens: list[Any], first: frozenset[str], last: frozenset[str], nouns: frozenset[str]) -> set[int]:
    """Indices of tokens in Title Case Or ALL CAPS sentences, where capitals say nothing about names."""
    out: set[int] = set()
    sentence: list[int] = []
    for i, tok in enumerate([*tokens, None]):
        if tok is not None and not ("\n" in tok.text or tok.text in (".", "!", "?")):
            sentence.append(i)
            continue
        words = [tokens[j] for j in sentence if tokens[j].is_alpha and len(tokens[j]) > 1]
        # names are capitalised anyway: count first names and the surnames that are no ordinary noun out
        words = [t for t in words if t.lower_ not in first and (t.lower_ not in last or t.lower_ in nouns)]
        if len(words) >= 4 and sum(t.text[0].isupper() for t in words) > 0.6 * len(words):
            out.update(sentence)
        sentence = []
    return out


#: the score each rule gave a span before spans were scored by evidence (``llmgw.guards.person_score``)
RULE_SCORES = {"title": 0.85, "lead_in": 0.7, "first_surname": 0.7, "first": 0.6, "surname": 0.6,
               "lower_pair": 0.6, "lower_first": 0.6}  # fmt: skip


def find_names(doc: Any) -> list[tuple[int, int, float]]:
    """``(start, end, score)`` character spans of person names in a spaCy ``doc``, by rule alone."""
    return [(start, end, RULE_SCORES[kind]) for start, end, kind in name_rules(doc)]


def name_rules(doc: Any, tokens: list[Any] | None = None) -> list[tuple[int, int, str]]:
    """``(start, end, rule)`` character spans the rules take for names, with the rule that took each
    (a key of :data:`RULE_SCORES`): evidence for the name score, not a verdict."""
    first, last = name_lists()
    ordinary, nouns = _ordinary_words(), _ordinary_words(nouns=True)
    common = common_first_names()
    tokens = tokens if tokens is not None else list(doc)
    headline = _headline_tokens(tokens, first, last, nouns)
    out: list[tuple[int, int, str]] = []
    i = 0

    def surname_end(j: int) -> int:
        """Index after the capitalised tokens (with particles) that continue a name from ``j``."""
        k = j
        while k < len(tokens) and k - j < 2:
            t = tokens[k].text
            folded = _fold(t)
            after_lower_title = k == j and j > 0 and tokens[j - 1].text.islower()
            if t.islower() and after_lower_title and (folded in first or folded in last):
                k += 1  # "mr. chad farmer"
            elif (
                _is_cap(t)
                and not tokens[k].is_stop
                and tokens[k].ent_type_ not in OTHER_ENTITIES
                and folded not in ADDRESS_WORDS
            ):
                k += 1
            elif t.lower() in PARTICLES and k + 1 < len(tokens) and _is_cap(tokens[k + 1].text):
                k += 2
            else:
                break
        return k

    while i < len(tokens):
        tok = tokens[i]
        text = tok.text
        low = _fold(text)
        prev = {t.lower_ for t in tokens[max(0, i - 2) : i]}
        # a title: "Mr. Rodriguez", "Dr Brenda Eldarkhanov"
        if low.rstrip(".") in TITLES and (_is_cap(text) or (i + 1 < len(tokens) and tokens[i + 1].lower_ in first)):
            j = i + 1 + (i + 1 < len(tokens) and tokens[i + 1].text == ".")
            end = surname_end(j)
            if end > j:
                out.append((tok.idx, tokens[end - 1].idx + len(tokens[end - 1]), "title"))
                i = end
                continue
        if i in headline:
            i += 1
            continue
        place = tok.ent_type_ in PLACES and i > 0 and tokens[i - 1].lower_ in LOCATIVE
        if tok.ent_type_ in OTHER_ENTITIES or low in NOT_NAMES or place:
            i += 1
            continue
        if _is_cap(text) and not tok.is_stop and not _before_address(tokens, i):
            lead_in = any(s <= prev for s in LEAD_INS) and _nominal(tok, ordinary, first)
            known = low in first and low not in ordinary
            surname = low in last and low not in nouns and _proper(tok)
            if known or lead_in:
                end = surname_end(i + 1)
                kind = "lead_in" if lead_in else "first_surname" if end > i + 1 else "first"
                out.append((tok.idx, tokens[end - 1].idx + len(tokens[end - 1]), kind))
                i = end
                continue
            if surname:  # "Sjöberg and Cantu were ...": a census surname the tagger calls a proper noun
                end = surname_end(i + 1)
                out.append((tok.idx, tokens[end - 1].idx + len(tokens[end - 1]), "surname"))
                i = end
                continue
        # lower case "jared paavolainen": both halves census names, neither an ordinary word
        if (
            text.islower()
            and _wordlike(text)
            and low in first
            and low not in ordinary
            and i + 1 < len(tokens)
            and tokens[i + 1].text.islower()
            and _wordlike(tokens[i + 1].text)
            and _fold(tokens[i + 1].text) in last
            and _fold(tokens[i + 1].text) not in ordinary
        ):
            out.append((tok.idx, tokens[i + 1].idx + len(tokens[i + 1]), "lower_pair"))
            i += 2
            continue
        # a lone lower-case (or ALL CAPS) common first name that is no English word: "saw jessica today"
        if (
            (text.islower() or text.isupper())
            and len(text) >= 3
            and _wordlike(text)
            and low in common
            and low not in nouns
            and low not in PARTICLES
            and not tok.is_stop
        ):
            out.append((tok.idx, tok.idx + len(tok), "lower_first"))
        i += 1
    return out
