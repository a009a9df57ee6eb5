"""The verifier: two questions are the same only when every word of each is matched on the other side.

Sentence embeddings score "sort a list by a key" and "… in descending order" 0.95, "World War I"
and "World War II" 0.90, "arguments for" and "arguments against" 0.99: one added, dropped or
changed word is a different question, and a cosine cannot see it. So before a semantic hit is
served the two questions are *aligned*: each content word and constraint of one must have an
equivalent in the other, and anything left over refuses the hit:

* **question words**: who, when, where, why, how must agree (what and which go with any);
* **numbers** in any spelling: digits, words ("twenty one"; word2number), ordinals ("2nd",
  "second"), Roman numerals ("World War II"), "a pound" for "one pound";
* **negation** (``veto.NEGATIONS``) and **opposites**: WordNet antonyms ("ascending" /
  "descending") and ``veto.OPPOSITES``;
* **content words**: equal, the same word's forms ("wrote" / "written", WordNet morphology),
  WordNet synonyms among a word's first senses or one relation away ("novel" / "new", "author" /
  "wrote"), WordNet multi-word names ("world war ii" / "second world war"), one unit however
  written ("oz" / "ounces", pint), an acronym and its words ("IT" stays a name, not "it"); a
  word the other side implies, a WordNet hypernym of one of its words ("which city is the capital");
* **quantifiers** (all/every/each, some, more, most, less, least, few, many, both, only) are
  content: each must be matched by one of its own class ("do all birds fly" / "do some birds
  fly"; "how many" is a question word);
* **order**: two content words that traded places around anything but "and"/"or" ("is tea
  better than coffee" / "is coffee better than tea"; ``veto._arguments_swapped``).

Words that frame a request rather than say what is asked ("please", "can you tell me") are
light (``LIGHT``) and may be left over. A refusal costs a model call, never a wrong answer.
Microseconds per pair once WordNet is loaded (``lexicon.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from llmgw.cache import roles
from llmgw.cache.lexicon import lexicon, unit
from llmgw.cache.veto import NEGATIONS, NUMBER_WORDS, OPPOSITES, STOPWORDS, _arguments_swapped, _number

_TOKEN = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z0-9]+)*\d*|\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")
_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
QUESTION_WORDS = frozenset({"who", "whom", "whose", "when", "where", "why", "how"})
_SAME_QUESTION = {"whom": "who", "whose": "who"}
ORDINALS = {
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6", "seventh": "7",
    "eighth": "8", "ninth": "9", "tenth": "10", "eleventh": "11", "twelfth": "12", "twentieth": "20",
    "hundredth": "100", "thousandth": "1000",
}  # fmt: skip
#: Words that frame a request ("can you tell me", "I'd like to know", "please") and carry none of
#: what is asked: they may be left unmatched. Everything else must be matched.
LIGHT = STOPWORDS | frozenset(
    [
        "during",
        "via",
        "per",
        "while",
        "within",
        "please",
        "mean",
        "means",
        "tell",
        "know",
        "explain",
        "want",
        "wanted",
        "like",
        "need",
        "help",
        "me",
        "us",
        "let",
        "someone",
        "anyone",
        "somebody",
        "possible",
        "exactly",
        "actually",
        "really",
        "basically",
        "currently",
        "generally",
        "usually",
        "typically",
        "ever",
        "still",
        "just",
        "there's",
        "what's",
        "who's",
        "where's",
        "how's",
        "it's",
        "i'd",
        "i'm",
        "get",
        "got",
        "going",
        "way",
        "ways",
        "thing",
        "things",
        "question",
        "idea",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "does",
        "did",
        "done",
        "do",
        "doing",
        "yes",
        "okay",
        "ok",
        "hi",
        "hello",
        "thanks",
        "thank",
        "is",
        "are",
        "was",
        "were",
        "be",
        "being",
        "been",
        "am",
        "has",
        "have",
        "had",
        "having",
    ]
)
_SYMMETRIC = frozenset({"and", "or", "&", "vs", "versus", ","})
#: Quantifiers say how much of what is asked ("do all birds fly" / "do some birds fly", "the most
#: people" / "more people"): content, not function words, matched only by one of their own class.
#: "how many" / "how much" are question words.
QUANTIFIERS = {
    "all": "all", "every": "all", "each": "all", "some": "some", "several": "some", "more": "more",
    "most": "most", "less": "less", "fewer": "less", "least": "least", "fewest": "least", "few": "few",
    "many": "many", "much": "many", "both": "both", "only": "only",
}  # fmt: skip
LIGHT = LIGHT - frozenset(QUANTIFIERS)


@dataclass(frozen=True, slots=True)
class Parsed:
    numbers: Counter[str]
    negations: int
    questions: frozenset[str]
    content: tuple[str, ...]  # lower-case content words and WordNet multi-word names ("world_war_ii")
    names: frozenset[str]  # acronyms kept apart from function words ("IT", "US", "WHO")
    articles: int  # "a"/"an": "a pound" is "one pound"


@lru_cache(maxsize=16384)
def parse(text: str) -> Parsed:
    lex = lexicon()
    text = text.replace("’", "'").replace("%", " percent ")
    text = re.sub(r"(\w)'s\b", r"\1", text)  # France's capital: "France"
    raw = _TOKEN.findall(text)
    shouting = sum(t.isupper() for t in raw) > len(raw) / 2
    numbers: Counter[str] = Counter()
    names: set[str] = set()
    questions: set[str] = set()
    words: list[str] = []
    negations = articles = 0
    run: list[str] = []  # number words in a row: "twenty one" is 21

    def flush() -> None:
        if run:
            numbers[_spelled(run)] += 1
            run.clear()

    for i, token in enumerate(raw):
        low = token.lower()
        if low in NUMBER_WORDS or (run and low == "and" and i + 1 < len(raw) and raw[i + 1].lower() in NUMBER_WORDS):
            run.append(low)
            continue
        flush()
        if token[0].isdigit():
            numbers[_number(token.replace("'", ""))] += 1
        elif low in ORDINALS:
            numbers[ORDINALS[low]] += 1
        elif not shouting and _roman(token, raw, i):
            numbers[str(_from_roman(token))] += 1
        elif low in NEGATIONS or low.endswith("n't"):
            negations += 1
        elif low in QUESTION_WORDS:
            questions.add(_SAME_QUESTION.get(low, low))
        elif low in ("many", "much") and i > 0 and raw[i - 1].lower() == "how":
            continue  # "how many": the question word
        elif low in ("a", "an"):
            articles += 1
        elif not shouting and token.isupper() and len(token) > 1 and low in LIGHT:
            names.add(token)  # IT, US, WHO: names, not function words
        else:
            words.append(low)
    flush()
    return Parsed(numbers, negations, frozenset(questions), _collocations(words, lex.collocations), frozenset(names),
                  articles)  # fmt: skip


def _spelled(run: list[str]) -> str:
    from word2number import w2n

    words = [w for w in run if w != "and"]
    if len(words) == 1:
        return NUMBER_WORDS[words[0]]
    try:
        return _number(str(w2n.word_to_num(" ".join(run))))
    except (ValueError, IndexError):  # word2number fails with IndexError on some runs ("thousand million")
        return "+".join(NUMBER_WORDS[w] for w in words)


def _roman(token: str, raw: list[str], i: int) -> bool:
    """A Roman numeral: II, XIV anywhere; "I" only after a name and not before a verb ("World War I")."""
    if not token.isupper() or not _ROMAN.fullmatch(token):
        return False
    if token != "I":
        return len(token) > 1 or (i > 0 and raw[i - 1][:1].isupper() and raw[i - 1] != "I")
    nxt = raw[i + 1].lower() if i + 1 < len(raw) else ""
    return i > 1 and raw[i - 1][:1].isupper() and nxt in ("", "and", "or", "in", "of", "start", "end", "begin")


def _from_roman(token: str) -> int:
    import roman

    return int(roman.fromRoman(token))


def _collocations(words: list[str], known: set[str]) -> tuple[str, ...]:
    """Join runs WordNet knows as one name ("world war ii", "united states"), longest first."""
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in (4, 3, 2):
            joined = "_".join(words[i : i + n])
            if i + n <= len(words) and joined in known:
                out.append(joined)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return tuple(out)


@lru_cache(maxsize=65536)
def equivalent(a: str, b: str) -> bool:
    """Whether one word may stand for the other in a question (see the module docstring)."""
    if a == b:
        return True
    if a in QUANTIFIERS or b in QUANTIFIERS:
        return QUANTIFIERS.get(a) == QUANTIFIERS.get(b)
    if len(a) > 3 and len(b) > 3 and a.rstrip("s") == b.rstrip("s"):
        return True
    lex = lexicon()
    if lex.bases(a) & lex.bases(b) or lex.synonyms(a, b):
        return True
    ua = unit(a)
    return ua is not None and ua == unit(b)


def _acronym(name: str, words: tuple[str, ...]) -> bool:
    """ "IT" for "information technology": consecutive words on the other side with these initials."""
    initials = "".join(w[0] for part in words for w in part.split("_"))
    return len(name) > 1 and name.lower() in initials


def _unmatched(mine: tuple[str, ...], theirs: tuple[str, ...], their_names: frozenset[str]) -> list[str]:
    """Content words of ``mine`` with no equivalent in ``theirs``; a multi-word name that has none
    as a whole is matched word by word ("capital_of_france" / "france", "capital")."""
    parts = tuple({*theirs, *(w for t in theirs if "_" in t for w in t.split("_") if w not in LIGHT)})
    names = {n.lower() for n in their_names}
    out = []
    for word in mine:
        if word in LIGHT or word in names or any(equivalent(word, other) for other in parts):
            continue
        if any(lexicon().implied(word, other) for other in parts):
            continue  # "city" beside "capital": said already
        if "_" in word and all(w in LIGHT or w in names or any(equivalent(w, o) for o in parts)
                               for w in word.split("_")):  # fmt: skip
            continue
        out.append(word)
    return out


def _opposites(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    lex = lexicon()
    only_a, only_b = set(a) - set(b), set(b) - set(a)
    for x in only_a:
        for y in only_b:
            if lex.opposite(x, y):
                return True
            if any((x in one and y in two) or (x in two and y in one) for one, two in OPPOSITES):
                return True
    return False


def _numbers(p: Parsed, q: Parsed) -> bool:
    """The same numbers; "one pound" is "a pound" (an article stands for a single 1)."""
    if p.numbers == q.numbers:
        return True
    diff = (p.numbers - q.numbers) + (q.numbers - p.numbers)
    if set(diff) == {"1"} and sum(diff.values()) == 1:
        more, other = (p, q) if p.numbers["1"] > q.numbers["1"] else (q, p)
        return other.articles > more.articles - 1 or other.articles > 0
    return False


def warm() -> None:
    """Load WordNet, pint's registry, the number parsers and the parser (at start-up, not on a first lookup)."""
    lexicon()
    roles.warm()
    unit("oz")
    verify("What is twenty one ounces in pounds in World War II?", "What is 21 oz in lb in the Second World War?")


def verify(cached: str, asked: str, cached_roles: str | None = None, by_role: bool = True) -> str | None:
    """Why the two questions may differ in meaning, or None when every part of each is matched.

    Reasons: ``number``, ``negation``, ``question`` (who/when/where/why/how), ``opposite``,
    ``order`` (traded arguments), ``unmatched`` (a content word with no equivalent), and with
    ``by_role`` the role alignment's (``roles.conflict``): ``direction``, ``role``, ``tense``,
    ``modality``. ``cached_roles`` is the stored question's signature (parsed at insertion); the
    asked question is parsed only when every word check passed.
    """
    if cached == asked:
        return None
    p, q = parse(cached), parse(asked)
    if not _numbers(p, q):
        return "number"
    if (p.negations > 0) != (q.negations > 0) or p.negations % 2 != q.negations % 2:
        return "negation"
    if p.questions and q.questions and p.questions != q.questions:
        return "question"
    if _opposites(p.content, q.content):
        return "opposite"
    if _swapped(cached, asked):
        return "order"
    if p.names != q.names and (
        any(not _acronym(n, q.content) for n in p.names - q.names)
        or any(not _acronym(n, p.content) for n in q.names - p.names)
    ):
        return "unmatched"
    if _unmatched(p.content, q.content, q.names) or _unmatched(q.content, p.content, p.names):
        return "unmatched"
    if by_role:
        mine = roles.Signature.loads(cached_roles) if cached_roles else roles.signature(cached)
        return roles.conflict(mine, roles.signature(asked), equivalent)
    return None


def unmatched(cached: str, asked: str) -> tuple[list[str], list[str]]:
    """The content words of each question left without an equivalent (for reports and tests)."""
    p, q = parse(cached), parse(asked)
    return _unmatched(p.content, q.content, q.names), _unmatched(q.content, p.content, p.names)


def _swapped(a: str, b: str) -> bool:
    """Arguments that traded places, unless they are coordinated ("militants and terrorists")."""
    if not _arguments_swapped(a, b):
        return False
    from llmgw.cache.veto import _words

    t1, t2 = _words(a), _words(b)
    diff = [i for i, (x, y) in enumerate(zip(t1, t2, strict=True)) if x != y]
    between = [w for w in t1[diff[0] + 1 : diff[1]] if w not in ("the", "a", "an")]  # "the Sun or the Earth"
    return not (len(between) == 1 and between[0] in _SYMMETRIC)
