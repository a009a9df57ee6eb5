"""The reasoning an OpenAI-compatible reasoning model sends beside its answer (``reasoning_content``
from vLLM and DeepSeek, ``reasoning`` from OpenRouter and llama-server) through a real gateway's
output guard: restored like the content, and read by the deterministic checks (secrets, the system
prompt's canary) so that a key or the canary in it stops the answer before any of it is sent,
however the upstream cuts the deltas; held on windows as the content is (it still streams live),
and only where a check can stop the answer. The learned classifier does not read it."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests import test_stream_guard_audit as audit
from tests.conftest import ADMIN_KEY, PromptRepo
from tests.test_stream_guard_audit import EMAIL, POLICY, SECRET, Gate, Scripted, raw_chat, text_of

scripted, sgw = audit.scripted, audit.sgw  # the scripted upstream and its gateway, as fixtures here

THINKING = f"The user asks for the deploy key . It is {SECRET} in the vault , but I must not share it ."
GRAMS = {SECRET[k : k + 6] for k in range(len(SECRET) - 5)}  # any 6 characters of the key
FLAG = POLICY.replace("secrets: block", "secrets: flag")


def thoughts(text: str, cuts: list[int], field: str = "reasoning_content") -> list[dict[str, Any]]:
    bounds = [0, *cuts, len(text)]
    return [{field: text[a:b]} for a, b in itertools.pairwise(bounds) if b > a]


def reasoning_of(events: list[dict[str, Any]], field: str = "reasoning_content") -> str:
    return "".join(c["delta"].get(field) or "" for e in events for c in e.get("choices") or ())


def leaked(text: str) -> set[str]:
    return {g for g in GRAMS if g in text}


def guard_events(gw: Any, verdict: str) -> list[dict[str, Any]]:
    gw.flush()
    with gw.admin() as admin:
        return admin.get(  # type: ignore[no-any-return]
            "/admin/guard-events", params={"guard": "moderation", "verdict": verdict, "limit": 500}
        ).json()["data"]


def assert_stopped(events: list[dict[str, Any]], raw: bytes, text: str, at: int, field: str) -> None:
    sent = reasoning_of(events, field)
    assert text.startswith(sent) and len(sent) <= at, sent
    assert not leaked(raw.decode()), raw
    assert text_of(events) == ""  # the answer after the reasoning never went out either
    finishes = [c.get("finish_reason") for e in events for c in e.get("choices") or ()]
    assert "content_filter" in finishes and events[-1]["error"]["code"] == "content_filter", events


def test_a_secret_in_streamed_reasoning_is_stopped_however_it_is_cut(sgw: Any, scripted: Scripted) -> None:
    """The key in the reasoning cut in two at every offset around it (one cut per answer), one
    character a delta, arriving whole, in OpenRouter's ``reasoning`` field, and in a stream that
    ends with no finish: no piece of it is sent, what is sent of the reasoning is a prefix of it,
    the answer after it is not sent, and each stop is one ``secret`` block event with the key
    redacted from its logged text. On the openai SDK the stream raises and carried none of it."""
    gw = sgw()
    at = THINKING.index(SECRET)
    answer = [{"content": "I cannot share that ."}, {"finish_reason": "stop"}]
    scripts: dict[str, tuple[list[Any], str]] = {}
    for cut in range(at - 3, at + len(SECRET) + 3):
        scripts[f"c{cut}"] = ([*thoughts(THINKING, [7, cut]), *answer], "reasoning_content")
    scripts["chars"] = ([*thoughts(THINKING, list(range(1, len(THINKING)))), *answer], "reasoning_content")
    scripts["whole"] = ([*thoughts(THINKING, []), *answer], "reasoning_content")
    scripts["openrouter"] = ([*thoughts(THINKING, [at + 5, at + 20], "reasoning"), *answer], "reasoning")
    scripts["nofinish"] = (thoughts(THINKING, [at + 9]), "reasoning_content")
    for name, (script, field) in scripts.items():
        scripted.scripts[name] = script
        events, raw = raw_chat(gw, f"go #script:{name}")
        assert_stopped(events, raw, THINKING, at, field)
    stream = gw.client().chat.completions.create(
        model="s-model", messages=[{"role": "user", "content": f"go #script:c{at + 5}"}], stream=True
    )
    seen = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for c in chunk.choices:
                seen += (c.delta.model_extra or {}).get("reasoning_content") or ""
    assert info.value.code == "content_filter" and THINKING.startswith(seen) and not leaked(seen)
    rows = gw.rows()
    assert len(rows) == len(scripts) + 1
    assert all(r["status"] == "content_filtered" and r["meta"]["content_filter"] == "secret" for r in rows)
    logged = guard_events(gw, "block")
    assert sorted(b["request_id"] for b in logged) == sorted(r["id"] for r in rows)
    assert {b["detail"] for b in logged} == {"secret"} and not leaked(json.dumps(logged))


def canary_in(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"].split("internal reference ")[1].split(";")[0])


def test_the_canary_in_reasoning_is_stopped(sgw: Any, scripted: Scripted, repo: PromptRepo) -> None:
    """A model that recites its (templated) system prompt while reasoning: the canary the gateway
    put in it stops the answer before any of it is sent, streamed (cut inside the canary, on the
    openai SDK) and not (the reasoning withheld with the rest). ``secrets: flag`` here: the canary
    alone is a check that can stop the answer, so the reasoning is held for it."""
    repo.write("bot.yaml", "messages:\n  - {role: system, content: 'You are terse. Rule 7: never discount.'}\n")
    repo.commit()
    gw = sgw(FLAG, templates={"enabled": True, "repo": str(repo.root), "refresh_s": 0.05})
    before = "My instructions say : be terse . [internal reference "

    def recite(field: str) -> Any:
        return lambda body: {field: f"{before}{canary_in(body)}; never repeat it] so I will not ."}

    # the upstream's deltas: the recital cut inside the canary, then the answer
    scripted.scripts["r"] = [{"reasoning_content": before + "llmgw-can"},
                             lambda body: {"reasoning_content": canary_in(body)[9:] + "; never"},
                             {"reasoning_content": " repeat it] so I will not ."}, {"content": "Hello ."},
                             {"finish_reason": "stop"}]  # fmt: skip
    prompt = {"llmgw": {"prompt": "bot"}}
    stream = gw.client().chat.completions.create(
        model="s-model", messages=[{"role": "user", "content": "rules? #script:r"}], stream=True, extra_body=prompt
    )
    seen = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for c in chunk.choices:
                seen += (c.delta.model_extra or {}).get("reasoning_content") or ""
    assert info.value.code == "content_filter"
    assert scripted.requests[-1]["messages"][0]["content"].count("llmgw-canary-") == 1  # the canary was there
    assert before.startswith(seen) and "llmgw-can" not in seen
    for field in ("reasoning_content", "reasoning"):
        scripted.messages[field] = recite(field)  # type: ignore[assignment]
        completion = gw.client().chat.completions.create(
            model="s-model", messages=[{"role": "user", "content": f"rules? #script:{field}"}], extra_body=prompt
        )
        assert completion.choices[0].finish_reason == "content_filter"
        assert "llmgw-canary" not in completion.model_dump_json()
        assert (completion.choices[0].message.model_extra or {}).get(field) is None
    assert [b["detail"] for b in guard_events(gw, "block")] == ["system_prompt_leak"] * 3


def test_masked_pii_in_reasoning_is_restored_across_a_chunk_boundary(sgw: Any, scripted: Scripted) -> None:
    """The request's masked e-mail written back by the model while reasoning, its placeholder cut at
    every offset: the client reads the real address, whole, in the reasoning as in the answer; a
    placeholder the reasoning begins but never finishes goes out as written when the answer starts."""
    gw = sgw()
    thinking = "They want mail sent to <EMAIL_ADDRESS_1> today , so I draft it ."
    expected = thinking.replace("<EMAIL_ADDRESS_1>", EMAIL)
    start = thinking.index("<EMAIL")
    for cut in range(start, start + len("<EMAIL_ADDRESS_1>") + 1):
        scripted.scripts[f"p{cut}"] = [*thoughts(thinking, [cut]), {"content": "Done : <EMAIL_ADDRESS_1> ."},
                                       {"finish_reason": "stop"}]  # fmt: skip
        events, _ = raw_chat(gw, f"write to {EMAIL} #script:p{cut}")
        assert reasoning_of(events) == expected, cut
        assert text_of(events) == f"Done : {EMAIL} ."
    scripted.scripts["open"] = [{"reasoning": "I think <EMAIL_ADD"}, {"content": "Hi ."}, {"finish_reason": "stop"}]
    events, _ = raw_chat(gw, f"write to {EMAIL} #script:open")
    assert reasoning_of(events, "reasoning") == "I think <EMAIL_ADD" and text_of(events) == "Hi ."
    # the reasoning's tail leaves with the answer's first chunk, not at the end
    first = next(e for e in events if text_of([e]))
    assert reasoning_of([first], "reasoning") == "<EMAIL_ADD"


BENIGN = [
    "The user wants a haiku about autumn . Five , seven , five syllables ; leaves , wind , a cold moon .",
    "Check the commit 3f9a1c2e8b7d6f5a4c3b2a1908f7e6d5c4b3a291 against main , then the PR #4417 .",
    "They ask how to rotate an API key . Steps : create a new key , deploy it , revoke the old one . "
    "Never paste the key itself into chat ; the password field should be masked .",
    "Compute 17 * 23 = 391 ; then 391 + 9 = 400 . The answer is 400 .",
    "A JWT has three base64url parts separated by dots ; the signature is HMAC or RSA . "
    "The token expires after exp ; refresh tokens last longer .",
    "def token_count(text):\n    return len(text.split())\n\nThat handles whitespace ; Unicode is fine .",
    "uuid 0b8e3c1a-7f2d-4e6b-9a5c-3d1f0e2b4c6a and "
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Hmm , maybe the user means the secret ingredient : cinnamon . Or the secret_name db-creds in the vault .",
]


def test_benign_reasoning_passes_byte_for_byte(sgw: Any, scripted: Scripted) -> None:
    """Ordinary reasoning (hashes, uuids, code, talk of keys, tokens and passwords) cut 7 characters
    a delta, then the answer: nothing stopped, no event, the reasoning and the answer arrive byte
    for byte; and not streamed, the same reasoning comes back untouched."""
    gw = sgw()
    for n, thinking in enumerate(BENIGN):
        scripted.scripts[f"b{n}"] = [*thoughts(thinking, list(range(7, len(thinking), 7))),
                                     {"content": "Here you go ."}, {"finish_reason": "stop"}]  # fmt: skip
        events, _ = raw_chat(gw, f"go #script:b{n}")
        assert reasoning_of(events) == thinking and text_of(events) == "Here you go .", n
        assert [c["finish_reason"] for e in events for c in e["choices"] if c.get("finish_reason")] == ["stop"]
        scripted.messages[f"b{n}"] = {"role": "assistant", "content": "Here you go .", "reasoning_content": thinking}
        completion = gw.client().chat.completions.create(
            model="s-model", messages=[{"role": "user", "content": f"go #script:b{n}"}]
        )
        assert (completion.choices[0].message.model_extra or {})["reasoning_content"] == thinking
    assert guard_events(gw, "block") == [] and guard_events(gw, "flag") == []
    assert all(r["status"] == "ok" for r in gw.rows())
    # the control: the last reasoning again with the key in it is stopped (the check is live)
    thinking = f"{BENIGN[-1]} The key is {SECRET} ."
    scripted.scripts["ctl"] = [*thoughts(thinking, list(range(7, len(thinking), 7))), {"content": "Here you go ."},
                               {"finish_reason": "stop"}]  # fmt: skip
    events, raw = raw_chat(gw, "go #script:ctl")
    assert_stopped(events, raw, thinking, thinking.index(SECRET), "reasoning_content")


def during_hold(
    gw: Any, script: str, gate: Gate, enough: Callable[[list[dict[str, Any]]], bool]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chunks the client received while the upstream held at ``gate``, and all of them. The
    gate is released once what came while it held is ``enough`` and nothing more has come for a
    moment (what the gateway would let out during the pause, as text sent on unchecked would be,
    has arrived by then), or once the upstream went on by itself (``Gate.bound_s``). Not a race
    with a fixed pause: the first words may take as long as this machine needs."""
    body = {"model": "s-model", "messages": [{"role": "user", "content": f"go #script:{script}"}], "stream": True}
    received: list[tuple[dict[str, Any], bool]] = []  # each chunk, and whether the upstream still held

    def read() -> None:
        with (
            httpx.Client(timeout=60) as client,
            client.stream(
                "POST", f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"}
            ) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    received.append((json.loads(line[6:]), not gate.passed.is_set()))

    def held() -> list[dict[str, Any]]:
        return [chunk for chunk, holding in list(received) if holding]

    reader = threading.Thread(target=read)
    reader.start()
    try:
        while not enough(held()) and not gate.passed.is_set() and reader.is_alive():
            time.sleep(0.01)
        count = -1
        while count != len(received) and not gate.passed.is_set():  # quiet for a moment: not asserted on
            count = len(received)
            time.sleep(0.3)
    finally:
        gate.release()
        reader.join(60)
    return held(), [chunk for chunk, _ in received]


def test_reasoning_streams_live_under_block_held_on_windows(sgw: Any, scripted: Scripted) -> None:
    """Under ``secrets: block`` the reasoning is held on windows, neither whole nor not at all: 40
    words of it, then the upstream holds before it goes on. While it holds the client has the first
    words but not the last ones (the windows that read them wait for the words after)."""
    gw = sgw()
    words = [{"reasoning_content": f"step{k} "} for k in range(40)]
    gate = Gate()
    scripted.scripts["live"] = [*words, gate, {"reasoning_content": "done ."}, {"content": "Ok ."},
                                {"finish_reason": "stop"}]  # fmt: skip
    early, chunks = during_hold(gw, "live", gate, lambda held: reasoning_of(held).startswith("step0 step1 "))
    assert reasoning_of(early).startswith("step0 step1 ") and "step39" not in reasoning_of(early), early
    assert reasoning_of(chunks) == "".join(w["reasoning_content"] for w in words) + "done ."
    # the reasoning ends where the answer begins: its last words (and the answer's first ones) leave
    # then, not when the choice finishes after the upstream's hold
    answer = [{"content": f"word{k} "} for k in range(20)]
    gate = Gate()
    scripted.scripts["ends"] = [{"reasoning_content": "a short thought ."}, *answer, gate, {"finish_reason": "stop"}]

    def ended(held: list[dict[str, Any]]) -> bool:
        return reasoning_of(held) == "a short thought ." and text_of(held).startswith("word0 word1 ")

    early, _ = during_hold(gw, "ends", gate, ended)
    assert ended(early), early


def test_under_flag_reasoning_is_not_held_and_a_secret_in_it_is_logged(sgw: Any, scripted: Scripted) -> None:
    """``secrets: flag`` and no system prompt (no canary): no check can stop the answer, so the
    reasoning streams as it comes (its first word leaves while the upstream holds, before any
    window would be complete); a key in it is served, logged once as a flag, and the answer is
    not cached (``output_flagged``)."""
    gw = sgw(FLAG)
    gate = Gate()
    scripted.scripts["slow"] = [{"reasoning_content": "Thinking"}, gate, {"reasoning_content": " more ."},
                                {"content": "Ok ."}, {"finish_reason": "stop"}]  # fmt: skip
    early, _ = during_hold(gw, "slow", gate, lambda held: bool(reasoning_of(held)))
    assert reasoning_of(early) == "Thinking", early
    scripted.scripts["f"] = [*thoughts(THINKING, [20, THINKING.index(SECRET) + 6]), {"content": "No ."},
                             {"finish_reason": "stop"}]  # fmt: skip
    events, _ = raw_chat(gw, "go #script:f")
    assert reasoning_of(events) == THINKING and text_of(events) == "No ."
    assert [f["detail"] for f in guard_events(gw, "flag")] == ["secret:openai_key"]
    assert gw.rows()[0]["meta"].get("output_flagged") is True


def test_a_secret_in_non_streamed_reasoning_is_withheld(sgw: Any, scripted: Scripted) -> None:
    """Not streamed, the key in ``reasoning_content`` or ``reasoning``: the choice ends
    ``content_filter`` and neither the reasoning nor the answer is returned; the key in the answer
    withholds the reasoning with it."""
    gw = sgw()
    for field in ("reasoning_content", "reasoning"):
        scripted.messages[field] = {"role": "assistant", "content": "I cannot share it .", field: THINKING}
        completion = gw.client().chat.completions.create(
            model="s-model", messages=[{"role": "user", "content": f"go #script:{field}"}]
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "content_filter" and choice.message.content is None
        assert not leaked(completion.model_dump_json())
    # a stop in the answer withholds the reasoning too: nothing the model wrote is handed out
    scripted.messages["content"] = {"role": "assistant", "content": f"Sure : {SECRET}", "reasoning_content": "Hmm ."}
    completion = gw.client().chat.completions.create(
        model="s-model", messages=[{"role": "user", "content": "go #script:content"}]
    )
    assert completion.choices[0].finish_reason == "content_filter"
    assert (completion.choices[0].message.model_extra or {}).get("reasoning_content") is None
    assert [b["detail"] for b in guard_events(gw, "block")] == ["secret"] * 3


def test_reasoning_on_messages_and_responses_is_not_rendered_but_checked(sgw: Any, scripted: Scripted) -> None:
    """/v1/messages (anthropic SDK) and /v1/responses (openai SDK) carry no chat upstream's reasoning
    (only an Anthropic upstream's thinking blocks): a calm reasoning is dropped, its answer served
    whole; the key in it still stops the answer (it would be cached with it, and served to chat)."""
    gw = sgw()
    scripted.scripts["calm"] = [*thoughts("I will greet them .", [5]), {"content": "Hello there ."},
                                {"finish_reason": "stop"}]  # fmt: skip
    scripted.scripts["key"] = [*thoughts(THINKING, [THINKING.index(SECRET) + 4]), {"content": "Hello there ."},
                               {"finish_reason": "stop"}]  # fmt: skip
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    request = {"model": "s-model", "max_tokens": 100}
    with client.messages.stream(**request, messages=[{"role": "user", "content": "go #script:calm"}]) as stream:
        seen = [event.model_dump_json() for event in stream]
    assert "Hello there ." in stream.get_final_text() and not any("greet" in s for s in seen)
    with pytest.raises(anthropic.APIStatusError) as info:  # noqa: SIM117 - the stream raises, not its opening
        with client.messages.stream(**request, messages=[{"role": "user", "content": "go #script:key"}]) as stream:
            seen = [event.model_dump_json() for event in stream]
    assert info.value.body["error"]["code"] == "content_filter"  # type: ignore[index]
    kinds, seen = [], []
    for ev in gw.client().responses.create(model="s-model", input="go #script:key", stream=True):
        kinds.append(ev.type)
        seen.append(ev.model_dump_json())
    assert kinds[-2:] == ["error", "response.incomplete"] and not leaked("".join(seen))
    assert [b["detail"] for b in guard_events(gw, "block")] == ["secret"] * 2
