"""Long inputs under the guards: a pasted document is screened, not refused, and does not stall others.

The input guards' work grows with the text (PII analysis and one MiniLM pass per 700-character
window): ~0.05-0.08 s per 1,000 characters on a 2-core VM. With one flat ``timeout_s`` every
document past a few tens of thousands of characters was refused with 503, and since a timed-out
scan cannot be stopped, its thread stayed busy and every short request queued behind it failed
too. Now the budget grows with the characters read (``timeout_per_1k_chars_s``), long reads run on
threads of their own, and past ``max_chars`` the refusal says what to change (413).
"""

from __future__ import annotations

import threading
from typing import Any

import anthropic
import openai
import pytest

from llmgw.guards.pii import PiiAnalyzer
from tests.conftest import ADMIN_KEY, RunningGateway

PARAGRAPH = (
    "The quarterly report describes revenue growth across the three regions, with the northern office "
    "leading on new contracts while the southern team focused on retention. Margins improved slightly. "
)


def document(chars: int) -> str:
    """A report of numbered paragraphs: no two 700-character windows alike (the encoder keeps the
    vectors of texts it has read, so a repeated paragraph would cost one pass)."""
    parts, n = ["Summarize this report:\n"], 0
    while sum(map(len, parts)) < chars:
        n += 1
        parts.append(f"Section {n}, item {n * 7 % 1000}: {PARAGRAPH}")
    return "".join(parts)[:chars]


def policy(timeout_s: float, **extra: Any) -> str:
    lines = [f"timeout_s: {timeout_s}", *(f"{k}: {v}" for k, v in extra.items())]
    return "\n".join(lines) + "\npii: {enabled: true}\ninjection: {enabled: true}\nmoderation: {enabled: false}\n"


def test_a_long_document_gets_a_budget_in_proportion(guarded: Any) -> None:
    """20,000 characters take far longer than a 0.2 s flat budget (a 503 before); the budget grows
    by ``timeout_per_1k_chars_s`` (default 0.15 s) per 1,000 characters read, so it is screened."""
    gw: RunningGateway = guarded(policy(0.2))
    reply = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": document(20_000)}]
    )
    assert reply.choices[0].message.content
    row = gw.rows()[0]
    assert row["status"] == "ok" and not row["meta"].get("guards_failed_open")


def test_a_short_request_is_not_queued_behind_a_long_one(guarded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a long document is screened, a short request is screened at once on the shared
    threads: before, it queued behind the document, past its own 1 s budget (503).

    The document's PII analysis is held at a gate until the short request is answered, so the
    order does not depend on how fast this machine screens 600,000 characters (a race on timing
    failed in CI when the document finished first)."""
    entered, release = threading.Event(), threading.Event()
    analyze = PiiAnalyzer.analyze

    def gated(self: PiiAnalyzer, text: str) -> Any:
        if len(text) > 100_000:  # only the document waits, wherever the guards ran it
            entered.set()
            release.wait(60)
        return analyze(self, text)

    monkeypatch.setattr(PiiAnalyzer, "analyze", gated)
    gw: RunningGateway = guarded(policy(1.0, max_chars=1_000_000))
    long_done: list[Any] = []

    def long_request() -> None:
        client = gw.client(timeout=180)
        long_done.append(client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": document(600_000)}]
        ))  # fmt: skip

    worker = threading.Thread(target=long_request)
    worker.start()
    try:
        assert entered.wait(60), "the document never reached the PII analysis"
        reply = gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "What is the capital of France?"}]
        )
        assert reply.choices[0].message.content
        assert not long_done  # held at the gate: the short one was screened beside it
    finally:
        release.set()
        worker.join(180)
    assert long_done and long_done[0].choices[0].message.content


def test_past_max_chars_the_refusal_names_the_limit(guarded: Any) -> None:
    gw: RunningGateway = guarded(policy(3.0, max_chars=5_000))
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": document(6_000)}])
    assert info.value.status_code == 413
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "too_long_to_screen" and "5000" in error["message"]
    messages = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as shaped:
        messages.messages.create(
            model="test-model", max_tokens=20, messages=[{"role": "user", "content": document(6_000)}]
        )
    assert shaped.value.status_code == 413 and shaped.value.body["type"] == "error"  # type: ignore[index]
    assert gw.rows()[0]["error_code"] == "too_long_to_screen"


def test_past_max_chars_an_open_policy_serves_unscreened_and_says_so(guarded: Any) -> None:
    gw: RunningGateway = guarded(policy(3.0, max_chars=5_000, on_error="open"))
    reply = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": document(6_000)}]
    )
    assert reply.choices[0].message.content
    assert gw.rows()[0]["meta"]["guards_failed_open"] is True


def test_a_long_answer_is_moderated_in_a_budget_in_proportion(guarded: Any) -> None:
    """The output check of a long non-streamed answer (here the document echoed back) reads every
    window of it: under a flat 0.2 s budget it failed (503); its budget now grows with it too."""
    gw: RunningGateway = guarded(
        "timeout_s: 0.2\npii: {enabled: false}\ninjection: {enabled: false}\nmoderation: {enabled: true}\n"
    )
    text = document(20_000) + " #echo"
    reply = gw.client(timeout=60).chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": text}]
    )
    assert reply.choices[0].message.content == text
    assert gw.rows()[0]["status"] == "ok"
