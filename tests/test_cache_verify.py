"""The cache's verifier, error bound and feedback through a real gateway and the openai SDK.

Near-misses of every kind are refused even with a threshold low enough that the embedding alone
would serve them; rewordings are served; ``cache.max_wrong_rate`` moves the threshold as the
shipped table says; a semantic hit marked wrong raises its entry's own threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmgw.cache.bounds import threshold_for
from tests.conftest import RunningGateway
from tests.test_cache import ask, feedback, row_of
from tests.upstream import FakeUpstream

NEAR_MISSES = [
    (
        "How do I sort a list of dictionaries by a key?",
        "How do I sort a list of dictionaries by a key in descending order?",
        "unmatched",
    ),
    (
        "How do I undo the last git commit but keep the changes?",
        "How do I undo the last git commit and discard the changes?",
        "unmatched",
    ),
    ("What were the main causes of World War I?", "What were the main causes of World War II?", "number"),
    ("What are the arguments for virtue ethics?", "What are the arguments against virtue ethics?", "unmatched"),
    ("Is a distance MBA in India worth it?", "Is a distance MBA in IT in India worth it?", "unmatched"),
    ("Who wrote Pride and Prejudice?", "When was Pride and Prejudice written?", "question"),
    ("How do I sort a list in ascending order?", "How do I sort a list in descending order?", "opposite"),
    ("Is tea better than coffee for focus?", "Is coffee better than tea for focus?", "order"),
]
REWORDINGS = [
    ("What is the capital of France?", "What is France's capital?"),
    ("How many ounces are in a pound?", "How many oz are in one lb?"),
    (
        "What is the difference between militants and terrorists?",
        "What is the difference between terrorists and militants?",
    ),
    ("Who wrote the novel Pride and Prejudice?", "Who is the author of the novel Pride and Prejudice?"),
]


@pytest.fixture()
def gw(make_gateway: Callable[..., RunningGateway], tmp_path) -> RunningGateway:  # type: ignore[no-untyped-def]
    # threshold 0.6: far below any shipped one, so only the verifier stands between these and a hit
    return make_gateway(cache={"enabled": True, "persist_path": None, "threshold": 0.6, "margin": 0})


def test_near_misses_of_each_kind_are_refused(gw: RunningGateway, upstream: FakeUpstream) -> None:
    for stored, asked, reason in NEAR_MISSES:
        ask(gw, stored)
        raw = ask(gw, asked)
        assert raw.headers["x-llmgw-cache"] == "miss", (stored, asked)
        reasons = [v["reason"] for v in row_of(gw, raw)["meta"]["cache"]["vetoes"]]
        assert reason in reasons, (asked, reasons)
    assert len(upstream.requests) == 2 * len(NEAR_MISSES), "every near-miss went upstream"


def test_rewordings_are_served(gw: RunningGateway, upstream: FakeUpstream) -> None:
    for stored, asked in REWORDINGS:
        ask(gw, stored)
        raw = ask(gw, asked)
        assert raw.headers["x-llmgw-cache"] == "hit", (stored, asked)
        assert row_of(gw, raw)["meta"]["cache"]["tier"] == "semantic"
    assert len(upstream.requests) == len(REWORDINGS)


def test_the_error_bound_moves_the_threshold(
    make_gateway: Callable[..., RunningGateway], upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewording scoring between the thresholds of two bounds: served under the looser, not the stricter.

    The shipped table (bounds.json, 2026-12-03) certifies no bound on similarity alone, so every
    row is 1.0 and the knob has nothing to move there; this test gives the gateway a table that
    does. With the verifier on the threshold is the stricter of its table and the similarity-only
    one (bounds.py), so the bound moves the decision the same way with and without it.
    """
    from llmgw.cache import bounds

    made = {"verifier": {0.02: 0.9, 0.2: 0.5}, "no_verifier": {0.02: 0.95, 0.2: 0.85}}
    monkeypatch.setattr(bounds, "table", lambda: made)
    stored, asked = "How many ounces are in a pound?", "How many oz are in one lb?"  # cosine 0.894
    loose, strict = 0.2, 0.02
    assert threshold_for(loose, verifier=False) <= 0.894 < threshold_for(strict, verifier=False)
    assert threshold_for(loose) == 0.85 and threshold_for(strict) == 0.95, "the stricter of the two tables"
    for bound, expected in ((strict, "miss"), (loose, "hit")):
        gw = make_gateway(cache={"enabled": True, "persist_path": None, "max_wrong_rate": bound, "veto": False})
        ask(gw, stored)
        raw = ask(gw, asked)
        assert raw.headers["x-llmgw-cache"] == expected, bound
        gw.stop()
    for bound, expected in ((strict, "miss"), (loose, "hit")):  # the verifier never lowers the threshold
        verified = make_gateway(cache={"enabled": True, "persist_path": None, "max_wrong_rate": bound})
        ask(verified, stored)
        assert ask(verified, asked).headers["x-llmgw-cache"] == expected, ("verifier on", bound)
        verified.stop()


def test_the_shipped_table_serves_no_semantic_hit_by_default() -> None:
    """Calibrated with near-misses made of the same words, no bound up to 2 % is certified."""
    assert threshold_for(0.01) == 1.0 and threshold_for(0.02) == 1.0


def test_wrong_hit_feedback_raises_the_entry_threshold(make_gateway: Callable[..., RunningGateway],
                                                       upstream: FakeUpstream) -> None:  # fmt: skip
    gw = make_gateway(cache={"enabled": True, "persist_path": None, "threshold": 0.9, "margin": 0})
    stored = "How can I protect my child from COVID-19?"
    loose, close = "How could I protect my children from COVID-19?", "How can I protect my kid from COVID-19?"
    ask(gw, stored)
    hit = ask(gw, loose)
    score = float(hit.headers["x-llmgw-cache-score"])
    assert hit.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    feedback(gw, hit, label="wrong")
    entry = next(e for e in gw.gateway.cache.memory.entries.values() if e.question == stored)
    assert entry.floor == pytest.approx(score + 0.01, abs=1e-3), "the entry's own threshold is above the wrong hit"
    again = ask(gw, loose)
    assert again.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2
    assert "feedback" in [v["reason"] for v in row_of(gw, again)["meta"]["cache"]["vetoes"]]
    closer = ask(gw, close)  # scores above the raised threshold: still served from the entry
    assert closer.headers["x-llmgw-cache"] == "hit" and float(closer.headers["x-llmgw-cache-score"]) > entry.floor
    assert ask(gw, stored).headers["x-llmgw-cache"] == "hit", "its own question, exactly"
