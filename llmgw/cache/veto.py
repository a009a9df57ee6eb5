"""A cheap check that two similar questions really ask the same thing.

Sentence embeddings place "capital of France" next to "capital of Germany" and "how do I create
a branch" next to "how do I delete a branch". Before a semantic hit is served, the cached
question and the new one are compared on what embeddings blur: numbers, named entities,
negation and a list of opposites. Any difference vetoes the hit (the request goes upstream);
a veto costs a lost hit, never a wrong answer. Microseconds per pair, no model.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from functools import lru_cache

_TOKEN = re.compile(r"\w+(?:['’.\-/]\w+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\s*[\"'(]*(\w+)")

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1e6", "billion": "1e9", "trillion": "1e12",
    "half": "0.5", "twice": "x2", "double": "x2", "triple": "x3", "dozen": "12",
}  # fmt: skip

NEGATIONS = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without", "cannot",
    "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't", "won't", "wouldn't",
    "shouldn't", "couldn't", "mustn't", "haven't", "hasn't", "hadn't", "needn't", "ain't", "unless", "except",
    "excluding", "instead",
})  # fmt: skip

#: Words whose swap turns a question into another one. Each group is (one side, other side).
OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split()))
    for a, b in (
        (
            "create creating created make new add adding added insert",
            "delete deleting deleted remove removing removed drop erase destroy",
        ),
        (
            "enable enabling enabled activate turn_on switch_on",
            "disable disabling disabled deactivate turn_off switch_off",
        ),
        (
            "increase increasing raise raising more higher above over grow",
            "decrease decreasing lower lowering less fewer below under reduce shrink",
        ),
        ("before prior earlier", "after later following"),
        ("max maximum largest biggest highest most", "min minimum smallest lowest least"),
        ("buy buying purchase", "sell selling"),
        ("start starting begin open opening", "stop stopping end close closing"),
        ("allow allowed permit accept", "deny denied forbid block reject"),
        ("encrypt encryption encode", "decrypt decryption decode"),
        ("upload uploading", "download downloading"),
        ("import importing", "export exporting"),
        ("install installing", "uninstall uninstalling"),
        ("lock locking", "unlock unlocking"),
        ("push", "pull"),
        ("send sending", "receive receiving"),
        ("true", "false"),
        ("best better", "worst worse"),
        ("first", "last"),
        ("safe", "unsafe dangerous"),
        ("legal", "illegal"),
        ("possible", "impossible"),
        ("advantages pros benefits", "disadvantages cons drawbacks risks"),
        ("hot warm", "cold cool"),
        ("fast faster quick", "slow slower"),
        ("input", "output"),
        ("left", "right"),
        ("north", "south"),
        ("east", "west"),
        ("win", "lose"),
        ("inside indoor indoors", "outside outdoor outdoors"),
        ("always", "sometimes"),
        ("men man male", "women woman female"),
        ("adults adult", "children child kids kid"),
        ("yesterday", "tomorrow"),
        ("join", "leave"),
        ("plus add sum", "minus subtract difference"),
        ("multiply", "divide"),
    )
)

#: Lower-case names worth catching when people type without capitals (a small, general list).
_NAMES = """
afghanistan albania algeria argentina armenia australia austria bangladesh belgium bolivia brazil bulgaria
cambodia canada chile china colombia croatia cuba czechia denmark ecuador egypt england estonia ethiopia
finland france germany ghana greece hungary iceland india indonesia iran iraq ireland israel italy jamaica
japan jordan kenya korea latvia lebanon lithuania luxembourg malaysia mexico mongolia morocco nepal
netherlands nigeria norway pakistan peru philippines poland portugal romania russia scotland serbia
singapore slovakia slovenia somalia spain sweden switzerland syria taiwan thailand tunisia turkey uganda
ukraine uruguay venezuela vietnam wales yemen zambia zimbabwe europe asia africa america antarctica
london paris berlin madrid rome tokyo beijing moscow delhi mumbai sydney toronto chicago boston seattle
amsterdam vienna prague warsaw dublin lisbon athens cairo istanbul dubai singapore seoul bangkok
january february march april june july august september october november december monday tuesday
wednesday thursday friday saturday sunday mercury venus mars jupiter saturn uranus neptune pluto
english french german spanish italian chinese japanese russian arabic hindi portuguese dutch korean
python java javascript typescript rust golang ruby kotlin swift scala haskell perl php sql postgres
postgresql mysql sqlite redis mongodb linux windows macos android ios docker kubernetes git aws azure
dollar dollars euro euros pound pounds yen rupee rupees bitcoin celsius fahrenheit kelvin
"""
GAZETTEER = frozenset(_NAMES.split())

_STOP_CAPS = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay"})

#: Function words: swapping one of these for another does not change what is asked about.
_FUNCTION_WORDS = """
a an the this that these those is are was were be been being am do does did can could will would should
shall may might must have has had i me my we our you your it its they them their he she his her of in on at
to for from by with about as into through over under than then so and or but if what which who whom whose
when where why how there here some any all each every much many more most very just also please tell give
"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())


@lru_cache(maxsize=16384)
def features(text: str) -> tuple[Counter[str], tuple[str, ...], int, frozenset[str], tuple[frozenset[str], ...]]:
    """(numbers, entities, negation count, all tokens lower-cased, opposite sides mentioned)."""
    text = text.replace("’", "'")
    matches = list(_TOKEN.finditer(text))
    tokens = [m.group() for m in matches]
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    numbers: Counter[str] = Counter()
    entities: dict[str, None] = {}  # ordered: acronyms are matched against initials in order
    negations = 0
    lower = [t.lower() for t in tokens]
    spelled: set[str] = set()  # one spelling of names that carry a number: COVID-19, COVID 19, covid19
    joined_parts: set[str] = set()  # "covid" and "19" of "COVID 19": "COVID" alone is another name
    skip = False
    for i, (token, low, m) in enumerate(zip(tokens, lower, matches, strict=True)):
        if skip:
            skip = False
        elif _NUMBER.fullmatch(token):
            numbers[_number(token)] += 1
        elif low in NUMBER_WORDS:
            numbers[NUMBER_WORDS[low]] += 1
        elif low in NEGATIONS or low.endswith("n't"):
            negations += 1
        elif _entity_like(token, low, m.start() in starts):
            if token.isalpha() and _numbered(text, m, matches[i + 1] if i + 1 < len(matches) else None):
                joined_parts |= {low, lower[i + 1]}
                low, skip = low + lower[i + 1], True  # "COVID 19" is the name "covid19"
            low = _spelling(low)
            entities[low] = None
            spelled.add(low)
    words = frozenset(lower) - joined_parts | spelled
    joined = {"_".join(pair) for pair in itertools.pairwise(lower)}
    sides = tuple(
        frozenset(name for name, side in (("a", a), ("b", b)) if words & side or joined & side) for a, b in OPPOSITES
    )
    return numbers, tuple(entities), negations, words, sides


def _numbered(text: str, name: re.Match[str], nxt: re.Match[str] | None) -> bool:
    """A name followed by its number after one space: "COVID 19", "Windows 11", "iPhone 15"."""
    return nxt is not None and text[name.end() : nxt.start()] == " " and nxt.group().isdigit()


def _spelling(name: str) -> str:
    """The name without the punctuation people spell it with or without (covid-19, gpt-3.5)."""
    return name if not any(c.isdigit() for c in name) else re.sub(r"[-'/]", "", name)


def _number(token: str) -> str:
    token = re.sub(r"(st|nd|rd|th)$", "", token)
    if re.fullmatch(r"\d{1,3}(,\d{3})+", token):
        token = token.replace(",", "")
    token = token.replace(",", ".")
    try:
        value = float(token)
    except ValueError:
        return token
    return str(int(value)) if value.is_integer() else repr(value)


def _entity_like(token: str, low: str, sentence_start: bool) -> bool:
    if low in GAZETTEER:
        return True
    if low in _STOP_CAPS or len(token) < 2:
        return False
    if any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
        return True  # gpt-4, COVID-19, python3, A4
    if token.isupper():
        return True  # acronyms: NASA, USA
    return token[0].isupper() and not sentence_start


def _acronym_of(acronym: str, entities: tuple[str, ...]) -> bool:
    """ "us" for "united states": the other side's entity words, in order, have these initials."""
    initials = "".join(w[0] for w in entities if w)
    return len(acronym) >= 2 and acronym.isalpha() and acronym in initials


def veto(cached: str, asked: str) -> str | None:
    """Why the two questions may differ in meaning ("number", "entity", "negation", "opposite",
    "substitution", "order"), or None."""
    if cached == asked:
        return None
    n1, e1, neg1, w1, s1 = features(cached)
    n2, e2, neg2, w2, s2 = features(asked)
    if n1 != n2:
        return "number"
    if (neg1 > 0) != (neg2 > 0) or (neg1 + neg2 > 0 and neg1 % 2 != neg2 % 2):
        return "negation"
    for side1, side2 in zip(s1, s2, strict=True):
        if side1 and side2 and side1 != side2:
            return "opposite"
    only1 = {e for e in e1 if e not in w2 and not _acronym_of(e, e2)}
    only2 = {e for e in e2 if e not in w1 and not _acronym_of(e, e1)}
    if only1 and only2:
        return "entity"
    if _one_word_swapped(cached, asked) or _one_span_swapped(cached, asked):
        return "substitution"
    if _arguments_swapped(cached, asked):
        return "order"
    return None


_NAME_NUMBER = re.compile(r"\b([a-z]+)[ -](\d+)\b")


@lru_cache(maxsize=16384)
def _words(text: str) -> tuple[str, ...]:
    """Lower-case tokens, a name and its number spelt one way ("covid 19", "covid-19": "covid19")."""
    return tuple(_TOKEN.findall(_NAME_NUMBER.sub(r"\1\2", text.lower().replace("’", "'"))))


def _differences(a: str, b: str) -> list[tuple[str, str]]:
    """The positions where two questions of the same length in words differ (``[]`` if the lengths
    differ: the word-swap checks compare word for word)."""
    t1, t2 = _words(a), _words(b)
    if len(t1) != len(t2):
        return []
    return [(x, y) for x, y in zip(t1, t2, strict=True) if x != y]


def _one_word_swapped(a: str, b: str) -> bool:
    """The same question with exactly one content word replaced ("spread through food" / "water").

    Then that word is the whole difference, and unless the two are forms of one word ("kid" /
    "kids") the questions are about different things. A synonym swap ("novel" / "new") is vetoed
    too: a lost hit, not a wrong one.
    """
    diffs = _differences(a, b)
    if len(diffs) != 1:
        return False
    x, y = diffs[0]
    if x in STOPWORDS or y in STOPWORDS:
        return False
    prefix = next((i for i, (c, d) in enumerate(zip(x, y, strict=False)) if c != d), min(len(x), len(y)))
    return prefix < 3 or prefix < min(len(x), len(y)) - 1


def _arguments_swapped(a: str, b: str) -> bool:
    """The same words with two content words traded places ("Is tea better than coffee?" / "Is
    coffee better than tea?", "miles to km" / "km to miles"): embeddings score these ~0.98.

    Only an exact exchange counts; a rewording that moves a phrase ("On surfaces, how long...")
    is not one. "cats and dogs" / "dogs and cats" is refused too: a lost hit, not a wrong one.
    """
    diffs = _differences(a, b)
    if len(diffs) != 2:
        return False
    (x1, y1), (x2, y2) = diffs
    return x1 == y2 and x2 == y1 and x1 not in STOPWORDS and x2 not in STOPWORDS


def _one_span_swapped(a: str, b: str, longest: int = 3) -> bool:
    """The same question with one short run of content words replaced ("through swimming pools" /
    "through water"): the one-word rule, for names of things that take two or three words.

    Only content words on both sides: a run holding a function word ("the virus" / "COVID-19") is
    a rewording, not a swap.
    """
    t1, t2 = _words(a), _words(b)
    start = 0
    while start < min(len(t1), len(t2)) and t1[start] == t2[start]:
        start += 1
    end = 0
    while end < min(len(t1), len(t2)) - start and t1[-1 - end] == t2[-1 - end]:
        end += 1
    x, y = t1[start : len(t1) - end], t2[start : len(t2) - end]
    if not x or not y or len(x) > longest or len(y) > longest or (len(x) == 1 and len(y) == 1):
        return False
    return not any(w in STOPWORDS for w in x + y)
