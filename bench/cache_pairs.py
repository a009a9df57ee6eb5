"""Same/different question pairs for the semantic cache, built from templates (no data downloaded).

Each *family* is a question asked several ways (paraphrases: the same meaning) about a slot value,
plus near-misses that change one thing: the entity, the number, a negation or an opposite word,
or a plain noun. Families are split whole into a tuning half and a held-out half, so the held-out
numbers come from wordings and values the threshold never saw.

A question's *meaning* is (family, variant, value): two questions may share an answer only when
their meanings are equal.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

COUNTRIES = ["France", "Germany", "Japan", "Brazil", "Canada", "Italy", "Spain", "India", "Egypt", "Mexico",
             "Sweden", "Kenya"]  # fmt: skip
CITIES = ["Paris", "Berlin", "Tokyo", "Madrid", "Toronto", "Chicago", "Sydney", "Mumbai", "Cairo", "Lisbon"]
LANGS = ["Python", "Java", "Rust", "Go", "JavaScript", "Ruby", "Kotlin", "C#"]
FOODS = ["sushi", "blue cheese", "raw eggs", "tuna", "liver", "salami", "honey", "coffee"]
DRUGS = ["ibuprofen", "paracetamol", "aspirin", "naproxen", "loratadine", "cetirizine"]
NOUNS = ["food", "water", "air", "pets", "money", "mosquitoes", "swimming pools", "clothes"]


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # what the value swap changes: entity | number | noun
    values: list[str]
    ways: list[str]  # paraphrases of one question, with {x}
    flips: tuple[tuple[str, list[str]], ...] = ()  # (kind, paraphrases of the flipped question)


FAMILIES = [
    Family(
        "capital",
        "entity",
        COUNTRIES,
        [
            "What is the capital of {x}?",
            "Which city is the capital of {x}?",
            "Tell me the capital city of {x}.",
            "what's the capital of {x}",
        ],
    ),
    Family(
        "population",
        "entity",
        CITIES,
        ["What is the population of {x}?", "How many people live in {x}?", "How many inhabitants does {x} have?"],
    ),
    Family(
        "visa",
        "entity",
        COUNTRIES,
        ["Do I need a visa to travel to {x}?", "Is a visa required to visit {x}?", "Do tourists need a visa for {x}?"],
        (("negation", ["Can I travel to {x} without a visa?", "Is it possible to visit {x} with no visa?"]),),
    ),
    Family(
        "csv",
        "entity",
        LANGS,
        [
            "How do I read a CSV file in {x}?",
            "What's the best way to parse a CSV file using {x}?",
            "How can I load a CSV file with {x}?",
        ],
    ),
    Family(
        "timezone",
        "entity",
        CITIES,
        ["What time zone is {x} in?", "Which time zone does {x} use?", "{x} is in which time zone?"],
    ),
    Family(
        "miles",
        "number",
        ["3", "5", "10", "26", "42", "100", "150"],
        ["How many kilometers are {x} miles?", "Convert {x} miles to kilometers.", "What is {x} miles in km?"],
    ),
    Family(
        "percent",
        "number",
        ["200", "350", "80", "1200", "45", "60"],
        ["What is 15% of {x}?", "Calculate 15 percent of {x}.", "How much is fifteen percent of {x}?"],
    ),
    Family(
        "worldcup",
        "number",
        ["1998", "2002", "2006", "2010", "2014", "2018"],
        [
            "Who won the {x} World Cup?",
            "Which team won the World Cup in {x}?",
            "Who was the winner of the {x} FIFA World Cup?",
        ],
    ),
    Family(
        "age",
        "number",
        ["6", "12", "16", "18", "65"],
        [
            "How much sleep does a {x} year old need?",
            "How many hours should a {x}-year-old sleep?",
            "What is the recommended amount of sleep at age {x}?",
        ],
    ),
    Family(
        "git",
        "entity",
        ["branch", "tag", "remote", "stash"],
        ["How do I create a new {x} in git?", "What's the git command to make a {x}?", "How can I add a {x} in git?"],
        (("opposite", ["How do I delete a {x} in git?", "What's the git command to remove a {x}?"]),),
    ),
    Family(
        "setting",
        "entity",
        ["dark mode", "two-factor authentication", "notifications", "auto-update"],
        ["How do I enable {x}?", "How can I turn on {x}?", "Where do I activate {x}?"],
        (("opposite", ["How do I disable {x}?", "How can I turn off {x}?"]),),
    ),
    Family(
        "pregnancy",
        "noun",
        FOODS,
        [
            "Is it safe to eat {x} during pregnancy?",
            "Can pregnant women safely eat {x}?",
            "Is {x} okay to eat while pregnant?",
        ],
        (("negation", ["Why should pregnant women not eat {x}?", "Why is {x} not recommended during pregnancy?"]),),
    ),
    Family(
        "bread",
        "noun",
        ["yeast", "eggs", "butter", "sugar"],
        ["How do I bake bread with {x}?", "What is a bread recipe that uses {x}?", "How can I make bread using {x}?"],
        (("negation", ["How do I bake bread without {x}?", "What is a bread recipe with no {x}?"]),),
    ),
    Family(
        "dose",
        "noun",
        DRUGS,
        [
            "What is the maximum daily dose of {x} for adults?",
            "How much {x} can an adult take per day?",
            "What's the highest safe daily amount of {x} for an adult?",
        ],
        (
            (
                "opposite",
                ["What is the maximum daily dose of {x} for children?", "How much {x} can a child take per day?"],
            ),
        ),
    ),
    Family(
        "spread",
        "noun",
        NOUNS,
        [
            "Can the coronavirus spread through {x}?",
            "Is it possible to catch COVID-19 from {x}?",
            "Can you get infected with the virus via {x}?",
        ],
    ),
    Family(
        "stock",
        "entity",
        ["Apple", "Microsoft", "Tesla", "Amazon", "Nvidia"],
        [
            "Should I buy {x} shares now?",
            "Is now a good time to buy {x} stock?",
            "Is it wise to purchase {x} stock today?",
        ],
        (("opposite", ["Should I sell my {x} shares now?", "Is now a good time to sell {x} stock?"]),),
    ),
]

#: The answer a cache entry of each family would hold (an LLM-style reply to ``ways[0]``, written by
#: hand once, before any measurement with them), so answer-aware matching is measured on built
#: entries too. ``{x}`` is the slot value.
ANSWERS = {
    "capital": "The capital of {x} is its largest administrative city, where the national government and "
    "parliament sit.",
    "population": "{x} has a population of a few million people in the city proper, and more in the wider "
    "metropolitan area.",
    "visa": "Whether you need a visa for {x} depends on your nationality; many visitors can enter {x} visa-free "
    "for short stays, others must apply at an embassy before travelling.",
    "csv": "In {x}, use the standard library's CSV reader: open the file, create a reader, and iterate over the "
    "rows, each a list of fields.",
    "timezone": "{x} uses its country's standard time zone, and switches to daylight saving time in summer.",
    "miles": "One mile is 1.609 kilometers, so {x} miles is {x} times 1.609 kilometers.",
    "percent": "15% of {x} is 0.15 times {x}.",
    "worldcup": "The {x} FIFA World Cup was won by the national team that beat its opponent in the final match.",
    "age": "A {x} year old needs a number of hours of sleep a night that depends on that age; sleep needs fall "
    "from childhood to adulthood.",
    "git": "To create a new {x} in git, use the git {x} command with the name of the new {x}.",
    "setting": "To enable {x}, open Settings, find {x} and switch it on.",
    "pregnancy": "Whether {x} is safe during pregnancy depends on how it is prepared; ask your midwife or doctor "
    "about {x}.",
    "bread": "To bake bread with {x}, mix flour, water, salt and {x} into a dough, let it rise, shape it and bake "
    "it at 220 degrees.",
    "dose": "For adults, the maximum daily dose of {x} is stated on the package leaflet; do not exceed it "
    "without a doctor's advice.",
    "spread": "The coronavirus spreads mainly between people through respiratory droplets; spread through {x} "
    "is considered unlikely.",
    "stock": "Nobody can tell whether now is a good time to buy {x} shares; consider your goals, diversify, and "
    "do not try to time the market.",
}


#: Known blind spot, reported apart: same words, arguments swapped.
ORDER = Family(
    "order",
    "order",
    ["cats|dogs", "Python|Java", "tea|coffee", "Paris|London"],
    ["Is {a} better than {b}?", "Are {a} better than {b}?"],
)


@dataclass(frozen=True)
class Question:
    text: str
    meaning: tuple[str, str, str]  # (family, variant, value)
    kind: str  # what makes it differ from the stored question, for near-misses


def split(seed: int = 7) -> tuple[list[Family], list[Family]]:
    families = FAMILIES[:]
    random.Random(seed).shuffle(families)
    half = len(families) // 2
    return families[:half], families[half:]


def ask(way: str, value: str) -> str:
    return way.format(x=value)


def pairs(families: list[Family]) -> list[tuple[str, str, int, str]]:
    """(stored, asked, same meaning 1/0, kind) for every family: paraphrases and near-misses."""
    out: list[tuple[str, str, int, str]] = []
    for fam in families:
        for i, value in enumerate(fam.values):
            other = fam.values[(i + 1) % len(fam.values)]
            base = ask(fam.ways[0], value)
            for way in fam.ways[1:]:
                out.append((base, ask(way, value), 1, "paraphrase"))
                out.append((base, ask(way, other), 0, fam.kind))
            out.append((base, ask(fam.ways[0], other), 0, fam.kind))
            out.append((base.lower(), ask(fam.ways[1], value).lower(), 1, "paraphrase"))  # typed in lower case
            out.append((base.lower(), ask(fam.ways[0], other).lower(), 0, fam.kind))
            for kind, flipped in fam.flips:
                for way in flipped:
                    out.append((base, ask(way, value), 0, kind))
                if len(flipped) > 1:
                    out.append((ask(flipped[0], value), ask(flipped[1], value), 1, "paraphrase"))
    return out


def order_pairs() -> list[tuple[str, str, int, str]]:
    out = []
    for value in ORDER.values:
        a, b = value.split("|")
        out.append((ORDER.ways[0].format(a=a, b=b), ORDER.ways[0].format(a=b, b=a), 0, "order"))
    return out


def cache_simulation(families: list[Family]) -> tuple[list[Question], list[Question]]:
    """Entries and queries for a cache-shaped test: half the values are stored, the rest only asked.

    Each stored question is asked again in its other wordings (should hit it) and the questions on
    values that were never stored, and the flipped ones, are asked too (should not hit anything).
    """
    stored: list[Question] = []
    queries: list[Question] = []
    for fam in families:
        for i, value in enumerate(fam.values):
            meaning = (fam.name, "base", value)
            if i % 2 == 0:
                stored.append(Question(ask(fam.ways[0], value), meaning, "stored"))
                queries.extend(Question(ask(way, value), meaning, "paraphrase") for way in fam.ways[1:])
                for kind, flipped in fam.flips:
                    queries.extend(Question(ask(w, value), (fam.name, kind, value), kind) for w in flipped)
            else:
                queries.extend(Question(ask(way, value), meaning, fam.kind) for way in fam.ways)
    return stored, queries


def answers(families: list[Family]) -> dict[str, str]:
    """The stored answer of every base question (and its lower-case form) of these families."""
    out: dict[str, str] = {}
    for fam in families:
        for value in fam.values:
            text = ANSWERS[fam.name].format(x=value)
            out[ask(fam.ways[0], value)] = out[ask(fam.ways[0], value).lower()] = text
    return out


@dataclass(frozen=True)
class RoleFamily:
    """A question about two values whose parts are not interchangeable (or, ``symmetric``, are).

    ``ways`` are paraphrases that keep every value in its part (some move the words around);
    asking one with the two values exchanged is a near-miss of kind ``role`` (or a paraphrase when
    the family is symmetric: "X and Y" / "Y and X"). ``flips`` are other near-misses built from the
    same words: another tense, another modality. Written for issue 18 from the kinds of near-miss
    named there (swapped comparison arguments, from/to, conversions, tense, modality), before any
    measurement with them, and split whole into a development, a calibration and a test third.
    """

    name: str
    values: list[str]  # "a|b"
    ways: list[str]  # with {a} and {b}
    flips: tuple[tuple[str, list[str]], ...] = ()
    symmetric: bool = False


ROLE_FAMILIES = [
    RoleFamily("faster", ["Python|Java", "Rust|Go", "a cheetah|a lion", "light|sound"],
               ["Is {a} faster than {b}?", "Is {a} quicker than {b}?", "Does {a} run faster than {b}?"]),
    RoleFamily("flights", ["Paris|Rome", "Berlin|Madrid", "Tokyo|Seoul", "Chicago|Denver"],
               ["Are there direct flights from {a} to {b}?", "Are there direct flights to {b} from {a}?",
                "Can I fly direct from {a} to {b}?"],
               (("tense", ["Were there direct flights from {a} to {b}?"]),)),
    RoleFamily("convert", ["Celsius|Fahrenheit", "miles|kilometers", "pounds|kilograms", "inches|centimeters"],
               ["How do I convert {a} to {b}?", "How can I convert {a} into {b}?",
                "What is the formula to convert {a} to {b}?"]),
    RoleFamily("translate", ["English|French", "Spanish|German", "Italian|Portuguese", "Dutch|Swedish"],
               ["How do you translate a letter from {a} to {b}?", "How can I translate a letter from {a} into {b}?",
                "What is the best way to translate a letter from {a} to {b}?"]),
    RoleFamily("beat", ["Brazil|Germany", "Spain|Italy", "France|Croatia", "Argentina|Mexico"],
               ["Did {a} beat {b} in the final?", "Did {a} defeat {b} in the final?",
                "Was {b} beaten by {a} in the final?"],
               (("tense", ["Will {a} beat {b} in the final?", "Is {a} going to beat {b} in the final?"]),)),
    RoleFamily("before", ["lunch|exercise", "coffee|breakfast", "stretching|running", "studying|sleeping"],
               ["Is it better to have {a} before {b}?", "Should I have {a} before {b}?"]),
    RoleFamily("capital", ["Paris|France", "Rome|Italy", "Lima|Peru", "Oslo|Norway"],
               ["Is {a} the capital of {b}?", "Is {a} the capital city of {b}?", "Is {a} {b}'s capital?"]),
    RoleFamily("send", ["Alice|Bob", "the client|the server", "the parent|the child", "the manager|the team"],
               ["Why does {a} send messages to {b}?", "Why does {a} send a message to {b}?"],
               (("tense", ["Why did {a} send messages to {b}?"]),)),
    RoleFamily("win", ["the 2010 World Cup|football", "the Tour de France|cycling", "Wimbledon|tennis",
                       "the Super Bowl|American football"],
               ["Who won {a}?", "Which team won {a}?", "Can you tell me who won {a}?"],
               (("tense", ["Who will win {a}?", "Who is going to win {a}?", "Who is winning {a}?"]),)),
    RoleFamily("take", ["ibuprofen|aspirin", "paracetamol|ibuprofen", "vitamin D|calcium", "iron|coffee"],
               ["Can I take {a} with {b}?", "Is it okay to take {a} with {b}?", "Can I take {a} together with {b}?"],
               (("modality", ["Should I take {a} with {b}?", "Must I take {a} with {b}?"]),)),
    RoleFamily("difference", ["a virus|a bacterium", "weather|climate", "a crocodile|an alligator", "TCP|UDP"],
               ["What is the difference between {a} and {b}?", "How does {a} differ from {b}?",
                "What's the difference between {a} and {b}?"], symmetric=True),
    RoleFamily("pair", ["red wine|cheese", "rice|beans", "tea|milk", "salt|pepper"],
               ["Do {a} and {b} go well together?", "Does {a} go well with {b}?"],
               (("tense", ["Did {a} and {b} go well together?"]),), symmetric=True),
]  # fmt: skip


def role_split(seed: int = 11) -> tuple[list[RoleFamily], list[RoleFamily], list[RoleFamily]]:
    """Development, calibration and test thirds of ``ROLE_FAMILIES`` (whole families)."""
    families = ROLE_FAMILIES[:]
    random.Random(seed).shuffle(families)
    third = len(families) // 3
    return families[:third], families[third : 2 * third], families[2 * third :]


def role_pairs(families: list[RoleFamily]) -> list[tuple[str, str, int, str]]:
    """(stored, asked, same meaning 1/0, kind): rewordings that keep the parts, the parts exchanged,
    the flips, and another pair of values."""
    out: list[tuple[str, str, int, str]] = []
    for fam in families:
        for i, value in enumerate(fam.values):
            a, b = value.split("|")
            other_a, other_b = fam.values[(i + 1) % len(fam.values)].split("|")
            base = fam.ways[0].format(a=a, b=b)
            for way in fam.ways[1:]:
                out.append((base, way.format(a=a, b=b), 1, "paraphrase"))
            for way in fam.ways:
                out.append((base, way.format(a=b, b=a), int(fam.symmetric), "paraphrase" if fam.symmetric else "role"))
            out.append((base, fam.ways[0].format(a=other_a, b=other_b), 0, "entity"))
            for kind, flipped in fam.flips:
                out.extend((base, way.format(a=a, b=b), 0, kind) for way in flipped)
    return out
