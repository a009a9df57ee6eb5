"""The role alignment (llmgw/cache/roles.py): the same words in other parts are another question.

Each near-miss is made of the same words as its question (so the word verifier alone passes it)
with two of them in each other's parts, a direction reversed, or another tense or modality; each
rewording keeps every word in its part while moving it, coordinating it otherwise or putting the
question in the passive.
"""

from __future__ import annotations

import pytest

from llmgw.cache.align import equivalent, verify
from llmgw.cache.roles import Signature, conflict, signature

REFUSED = [
    # swapped comparison, inside a reworded question (the word-order check needs the same words)
    ("Is Python faster than Java?", "Is Java quicker than Python?", "direction"),
    ("Is Rust faster than Go?", "Is Go quicker than Rust?", "direction"),  # "Go" parsed as a verb
    # direction
    ("Are there direct flights from Paris to Rome?", "Are there direct flights to Paris from Rome?", "direction"),
    ("How do I convert Celsius to Fahrenheit?", "How can I convert Fahrenheit into Celsius?", "direction"),
    # who did what to whom
    ("Did Caesar defeat Pompey?", "Was Caesar defeated by Pompey?", "role"),
    ("Is Paris the capital of France?", "Is France the capital city of Paris?", "role"),
    # tense
    ("Who won the 2010 World Cup?", "Who will win the 2010 World Cup?", "tense"),
    ("Who won the World Cup?", "Who is going to win the World Cup?", "tense"),
    ("Does aspirin thin the blood?", "Did aspirin thin the blood?", "tense"),
    ("What was the capital of Germany?", "What is the capital of Germany?", "tense"),
    # modality
    ("Should I take ibuprofen with food?", "Can I take ibuprofen with food?", "modality"),
    ("Can I cancel my trip?", "Do I have to cancel my trip?", "modality"),
]
SERVED = [
    # reordered, every word in its part
    ("Are there direct flights from Paris to Rome?", "Are there direct flights to Rome from Paris?"),
    ("Did Caesar defeat Pompey?", "Was Pompey defeated by Caesar?"),
    ("Who wrote Hamlet?", "Can you tell me who wrote Hamlet?"),
    ("What is the capital of France?", "What's France's capital?"),
    # coordination is order-free
    ("Why do militants and terrorists attack civilians?", "Why do terrorists and militants attack civilians?"),
    ("What is the difference between weather and climate?", "What is the difference between climate and weather?"),
    # a word may change its part in a rewording, alone
    ("Who wrote Hamlet?", "Who is the author of Hamlet?"),
    ("What is 5 miles in kilometers?", "How many kilometers are 5 miles?"),
    ("Who wrote Hamlet?", "Hamlet was written by whom?"),
    # tense and modality that do not change the question
    ("Has Brazil won the World Cup?", "Did Brazil win the World Cup?"),
    ("How do I read a CSV file in Python?", "How can I read a CSV file in Python?"),
    ("Should I cancel my trip?", "Do I have to cancel my trip?"),
]


@pytest.mark.parametrize(("cached", "asked", "reason"), REFUSED)
def test_same_words_in_other_parts_are_refused(cached: str, asked: str, reason: str) -> None:
    assert verify(cached, asked, by_role=False) is None, "the word verifier alone passes it"
    assert verify(cached, asked) == reason
    assert verify(asked, cached) == reason, "symmetric"


@pytest.mark.parametrize(("cached", "asked"), SERVED)
def test_rewordings_that_keep_the_parts_are_served(cached: str, asked: str) -> None:
    assert verify(cached, asked) is None
    assert verify(asked, cached) is None


def test_the_stored_signature_is_the_one_compared() -> None:
    """A lookup parses only the new question: the cached side comes from the entry's signature."""
    stored = signature("Is Python faster than Java?")
    assert Signature.loads(stored.dumps()) == stored
    question = "Is Python faster than Java?"
    assert verify(question, "Is Python quicker than Java?", stored.dumps()) is None
    swapped = signature("Is Java faster than Python?").dumps()  # as if the entry had been parsed so
    assert verify(question, "Is Python quicker than Java?", swapped) == "direction"
    assert verify(question, "Is Python quicker than Java?", by_role=False) is None


def test_coordinated_words_share_a_part() -> None:
    sig = signature("Do rice and beans go well together?")
    parts = {w.text: (w.role, w.group) for w in sig.words}
    assert parts["rice"] == parts["beans"]
    assert conflict(sig, signature("Do beans and rice go well together?"), equivalent) is None
