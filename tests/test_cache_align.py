"""The cache's verifier (llmgw/cache/align.py) on pairs of every near-miss kind and on rewordings.

Each near-miss differs from its question in one thing the embedding blurs; each rewording says
the same thing in other words (synonyms, other spellings of numbers and units, other word order).
The error-bound table (llmgw/cache/bounds.py) is checked for order: a stricter bound never gives a
lower threshold.
"""

from __future__ import annotations

import itertools

import pytest

from llmgw.cache.align import verify
from llmgw.cache.bounds import table, threshold_for
from llmgw.cache.lexicon import lexicon, unit

REFUSED = [
    # a dropped or added qualifier
    (
        "How do I sort a list of dictionaries by a key?",
        "How do I sort a list of dictionaries by a key in descending order?",
        "unmatched",
    ),
    ("Is a distance MBA in India worth it?", "Is a distance MBA in IT in India worth it?", "unmatched"),
    ("What are the arguments for virtue ethics?", "What are the arguments against virtue ethics?", "unmatched"),
    (
        "How do I undo the last commit but keep the changes?",
        "How do I undo the last commit and discard the changes?",
        "unmatched",
    ),
    # another entity
    ("How deep is Lake Como?", "How deep is Lake Constance?", "unmatched"),
    ("What is the capital of France?", "What is the capital of Germany?", "unmatched"),
    ("what is the capital of france", "what is the capital of germany", "unmatched"),
    ("should i buy apple shares now?", "should i buy tesla shares now?", "unmatched"),
    # numbers in any spelling
    ("What were the causes of World War I?", "What were the causes of World War II?", "number"),
    ("Who was Henry VIII?", "Who was Henry VII?", "number"),
    ("What happened in the third century?", "What happened in the 4th century?", "number"),
    ("How many calories are in twenty one grams of sugar?", "How many calories are in 12 grams of sugar?", "number"),
    ("Convert 5 miles to km", "Convert 50 miles to km", "number"),
    # question words
    ("Who wrote Pride and Prejudice?", "When was Pride and Prejudice written?", "question"),
    ("Where was Mozart born?", "When was Mozart born?", "question"),
    # negation and antonyms
    ("Can I travel with a mask?", "Can I travel without a mask?", "negation"),
    ("How do I sort a list in ascending order?", "How do I sort a list in descending order?", "opposite"),
    ("How do I create a branch?", "How do I delete a branch?", "opposite"),
    ("Is it cheap to live in Lisbon?", "Is it expensive to live in Lisbon?", "opposite"),
    # quantifiers are content
    ("Do all birds fly?", "Do some birds fly?", "opposite"),
    ("Which country has the most people?", "Which country has more people?", "unmatched"),
    # order of arguments
    ("Is tea better than coffee?", "Is coffee better than tea?", "order"),
    ("How do I convert miles to km?", "How do I convert km to miles?", "order"),
]
SERVED = [
    ("What is the capital of France?", "What is France's capital?"),
    ("What is the capital of France?", "which city is the capital of france"),
    ("How many ounces in a pound?", "How many oz in one lb?"),
    ("How many kilometers is a marathon?", "How many km is a marathon?"),
    (
        "What is the difference between militants and terrorists?",
        "What is the difference between terrorists and militants?",
    ),
    ("What is a novel coronavirus?", "What is a new coronavirus?"),
    ("Who wrote Hamlet?", "Who is the author of Hamlet?"),
    ("What were the causes of the Second World War?", "What were the causes of World War II?"),
    ("Can you tell me how to make pancakes?", "How do I make pancakes?"),
    ("What is twenty one times three?", "What is 21 times 3?"),
    ("Who was Henry VIII?", "Who was Henry the eighth?"),
    ("Should children wear masks?", "Do kids need to wear masks?"),
    ("How do I fix a flat tire?", "How can I repair a flat tire?"),
    ("Can the virus spread through food?", "Can the viruses spread through food?"),
    ("Does every cat purr?", "Do all cats purr?"),
    ("Which is bigger, the Sun or the Earth?", "Which is bigger, the Earth or the Sun?"),
]


@pytest.mark.parametrize(("cached", "asked", "reason"), REFUSED)
def test_near_misses_are_refused(cached: str, asked: str, reason: str) -> None:
    assert verify(cached, asked) == reason
    assert verify(asked, cached) == reason, "symmetric"


@pytest.mark.parametrize(("cached", "asked"), SERVED)
def test_rewordings_are_aligned(cached: str, asked: str) -> None:
    assert verify(cached, asked) is None
    assert verify(asked, cached) is None


def test_lexical_resources() -> None:
    lex = lexicon()
    assert lex.synonyms("purchase", "buy") and lex.synonyms("author", "wrote")
    assert not lex.synonyms("keep", "discard") and not lex.synonyms("como", "constance")
    assert lex.opposite("ascending", "descending") and lex.opposite("increase", "decrease")
    assert unit("oz") == unit("ounces") == "ounce" and unit("lb") == "pound" and unit("the") is None


def test_error_bound_table_is_ordered() -> None:
    for side in ("verifier", "no_verifier"):
        rows = sorted(table()[side].items())
        assert all(t1 >= t2 for (_, t1), (_, t2) in itertools.pairwise(rows)), side
    assert threshold_for(0.01) >= threshold_for(0.05)
    assert threshold_for(0.012) == threshold_for(0.01), "between two rows: the stricter one"


def test_the_verifier_never_lowers_the_threshold_below_similarity_alone():
    """The bound must hold on similarity alone; the verifier only adds refusals (bounds.py)."""
    for bound in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
        assert threshold_for(bound, verifier=True) >= threshold_for(bound, verifier=False)
    assert threshold_for(0.01) == max(table()["verifier"][0.01], table()["no_verifier"][0.01])
