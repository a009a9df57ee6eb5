"""Moderation that reads context (issue 17): counter-speech and negation pass, threats stop, and a
window hit is confirmed on its sentence and neighbours before a stream is stopped. Through a real
gateway with the openai SDK, the shipped classifier and the real MiniLM encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llmgw.guards.output import check_output, confirm_output, context_view, overlap_words
from llmgw.guards.policy import Policy
from llmgw.guards.stream import Windows, finished_windows
from tests.conftest import RunningGateway
from tests.upstream import FakeUpstream

#: the shipped default's moderation rules, with secrets and PII left out of the way
POLICY = "timeout_s: 60\npii: {default: {action: allow}}\nmoderation: {output_pii: allow, hold_back_tokens: 16}\n"

# written for these tests, not taken from any training or evaluation set
COUNTER_SPEECH = [
    "When my cousin posted that Muslims are terrorists, I told him it is a bigoted lie and asked him to delete it.",
    "Calling disabled people a burden on society is cruel, and we should push back every time we hear it.",
    "The idea that women are too emotional to lead has been disproven again and again.",
]
NEGATED = [
    "I have never thought that gay people are dangerous, and I never will.",
    "Immigrants are not criminals; most of them work harder than anyone I know.",
    "Nobody here wants to hurt trans people, they are our friends and colleagues.",
]
THREATS = [
    "I know where you live and I am going to come over tonight and beat you until you stop breathing.",
    "All of those people are subhuman filth and we should round them up and shoot every last one of them.",
]
#: a claim that reads as hate in a window on its own, denied by the clause that opens its sentence
CONTEXTUAL = (
    "Here is what the article says . "
    "It is simply not true , whatever the angry men at the rally kept shouting , that immigrants are vermin "
    "who should be thrown out . The city council condemned the rally the next day ."
)


def policy() -> Policy:
    return Policy.model_validate(
        {"name": "t", "pii": {"default": {"action": "allow"}}, "moderation": {"output_pii": "allow"}}
    )


def stream_verdict(text: str) -> str | None:
    """The built-in verdict on ``text`` as a stream reads it: windows, then suspects confirmed."""
    p = policy()
    rules = p.moderation
    w = finished_windows(text, rules.window_words, overlap_words(rules))
    verdict = check_output(p, w.take(final=True), None, "")
    if verdict.violation:
        return verdict.violation
    views = [context_view(w, k, rules) or "" for k in verdict.suspects]
    found = confirm_output(p, views) if views else None
    return found[1] if found else None


@pytest.fixture()
def gateway(make_gateway: Any, tmp_path: Path) -> RunningGateway:
    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY)
    return make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})  # type: ignore[no-any-return]


def stream(gw: RunningGateway, upstream: FakeUpstream, text: str) -> tuple[str, str | None, bytes]:
    """Stream ``text`` from the stub (1-3 characters a chunk) through the gateway with the openai SDK:
    the text received, the last finish reason, and the raw bytes (an error event included)."""
    name = f"s{len(upstream.scripts)}"
    upstream.scripts[name] = text
    received = bytearray()

    def tap(response: httpx.Response) -> None:
        response.read()
        received.extend(response.content)

    texts, finish = [], None
    with httpx.Client(timeout=60, event_hooks={"response": [tap]}) as http:
        try:
            for chunk in gw.client(http_client=http).chat.completions.create(
                model="test-model", messages=[{"role": "user", "content": f"go #say:{name}"}], stream=True
            ):
                for choice in chunk.choices:
                    texts.append(choice.delta.content or "")
                    finish = choice.finish_reason or finish
        except openai.APIError as exc:
            assert "output guard" in str(exc.message)
    return "".join(texts), finish, bytes(received)


def test_a_view_is_the_same_whatever_the_chunking() -> None:
    """The context view a stream waits for equals the one a non-streamed answer gets."""
    whole = finished_windows(CONTEXTUAL, 8, 4)
    n = len(whole.take(final=True))
    w, seen = Windows(8, 4), {}
    for i in range(0, len(CONTEXTUAL), 3):
        w.feed(CONTEXTUAL[i : i + 3])
        w.take()
        for k in range(len(w.spans)):
            view = w.view(k, 40, 24)
            if view is not None:
                seen.setdefault(k, view)
    w.finish()
    w.take(final=True)
    for k in range(n):
        seen.setdefault(k, w.view(k, 40, 24))
        assert seen[k] == whole.view(k, 40, 24)
    assert "It is simply not true" in whole.view(2, 40, 24)  # type: ignore[operator]


@pytest.mark.parametrize("text", COUNTER_SPEECH + NEGATED)
def test_counter_speech_and_negation_are_not_stopped(text: str) -> None:
    assert stream_verdict(text) is None
    assert check_output(policy(), [text], None, "").suspects == []  # whole, not even a suspect


@pytest.mark.parametrize("text", THREATS)
def test_threats_and_hate_are_stopped(text: str) -> None:
    assert stream_verdict(text) in ("violence", "hate", "harassment")


def test_counter_speech_streams_whole_and_a_threat_is_stopped(gateway: RunningGateway, upstream: FakeUpstream) -> None:
    for text in (COUNTER_SPEECH[0], NEGATED[1]):
        sent, finish, _ = stream(gateway, upstream, text)
        assert sent == text and finish == "stop"
    threat = "Sure . " + THREATS[0]
    sent, finish, raw = stream(gateway, upstream, threat)
    assert finish == "content_filter"
    assert threat.startswith(sent) and "beat" not in sent and b"beat you" not in raw
    rows = gateway.rows()
    assert rows[0]["status"] == "content_filtered" and rows[0]["meta"]["content_filter"] in ("violence", "harassment")


def test_a_window_that_looks_bad_alone_is_delivered_with_its_context(
    gateway: RunningGateway, upstream: FakeUpstream
) -> None:
    """A window of CONTEXTUAL is flagged on its own; its sentence (with the ones around it) is not, so
    the whole answer arrives (non-streamed too), and the log says the hit was not confirmed."""
    p = policy()
    rules = p.moderation
    windows = finished_windows(CONTEXTUAL, rules.window_words, overlap_words(rules)).take(final=True)
    assert check_output(p, windows, None, "").suspects, (
        "no window of the text is flagged alone: the test proves nothing"
    )
    no_context = Policy.model_validate({"name": "n", "moderation": {"confirm": False, "output_pii": "allow"}})
    assert check_output(no_context, windows, None, "").violation is not None  # without context it would stop

    sent, finish, _ = stream(gateway, upstream, CONTEXTUAL)
    assert sent == CONTEXTUAL and finish == "stop"
    upstream.scripts["quoted"] = CONTEXTUAL
    completion = gateway.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "go #say:quoted"}]
    )
    assert completion.choices[0].message.content == CONTEXTUAL and completion.choices[0].finish_reason == "stop"
    gateway.flush()
    with gateway.admin() as admin:
        events = admin.get("/admin/guard-events", params={"guard": "moderation", "limit": 50}).json()["data"]
    assert any("not confirmed" in (e.get("detail") or "") for e in events), json.dumps(events)[:2000]


def test_a_threat_after_a_calm_preamble_is_held_back_until_confirmed(
    gateway: RunningGateway, upstream: FakeUpstream
) -> None:
    """The suspect window waits for its context while the upstream is read on: nothing from its
    first word (its leading context words included) reaches the client."""
    text = (
        "Here is a calm answer about gardening and tomatoes this spring . "
        + THREATS[1]
        + " And then the story goes on for a while ."
    )
    sent, finish, raw = stream(gateway, upstream, text)
    assert finish == "content_filter"
    assert text.startswith(sent) and "subhuman" not in sent and b"subhuman" not in raw
