"""Reversible PII masking of the input, and its restoration in non-streamed answers (audit of
2026-12-06), through a real gateway with real Presidio, driven by the official SDKs; the scripted
upstream records exactly what reached it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from llmgw.config import parse_config
from tests.conftest import ADMIN_KEY, RunningGateway, base_config
from tests.test_cache import cache_config
from tests.upstream import FakeUpstream, StubServer, last_user

POLICY = """
pii:
  default: {action: allow}
  entities:
    EMAIL_ADDRESS: {action: mask, threshold: 0.5}
    PHONE_NUMBER: {action: mask, threshold: 0.3}
    PERSON: {action: mask, threshold: 0.5}
injection: {enabled: false}
moderation: {enabled: false}
"""
ALICE, BOB = "alice.smith@example.com", "bob.jones@example.com"


def chat(gw: RunningGateway, content: Any, **kwargs: Any) -> Any:
    messages = kwargs.pop("messages", None) or [{"role": "user", "content": content}]
    return gw.client().chat.completions.with_raw_response.create(model="test-model", messages=messages, **kwargs)


def answer(raw: Any) -> str:
    return str(raw.parse().choices[0].message.content)


def sent(upstream: FakeUpstream) -> str:
    """The last body the upstream received, as JSON text (non-ASCII as is)."""
    return json.dumps(upstream.requests[-1], ensure_ascii=False)


# --- placeholder identity and restoration ---------------------------------------------------------


def test_same_value_same_placeholder_different_values_never_collapse(guarded: Any, upstream: FakeUpstream) -> None:
    gw = guarded(POLICY)
    text = f"Mail {ALICE} and {BOB}, then {ALICE} again. #echo"
    raw = chat(gw, text)
    assert upstream.requests[-1]["messages"][-1]["content"] == (
        "Mail <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>, then <EMAIL_ADDRESS_1> again. #echo"
    )
    assert answer(raw) == text
    # across the turns of one conversation: the history is masked alike on every turn
    history = [{"role": "user", "content": f"Mail {ALICE}"}, {"role": "assistant", "content": f"Mailed {ALICE}."},
               {"role": "user", "content": f"And {BOB}? #echo"}]  # fmt: skip
    chat(gw, None, messages=history)
    assert [m["content"] for m in upstream.requests[-1]["messages"]] == [
        "Mail <EMAIL_ADDRESS_1>", "Mailed <EMAIL_ADDRESS_1>.", "And <EMAIL_ADDRESS_2>? #echo"
    ]  # fmt: skip


def test_only_issued_placeholders_are_restored_and_a_typed_one_comes_back_as_written(
    guarded: Any, upstream: FakeUpstream
) -> None:
    """An attacker's typed ``<EMAIL_ADDRESS_1>`` never turns into a value; a placeholder the model
    invents, or changes (case, brackets), is left as written (documented: the exact placeholder)."""
    gw = guarded(POLICY)
    raw = chat(gw, f"<EMAIL_ADDRESS_1> is mine, {ALICE} is hers #echo")
    sent_text = upstream.requests[-1]["messages"][-1]["content"]
    assert sent_text == "<EMAIL_ADDRESS_1> is mine, <EMAIL_ADDRESS_2> is hers #echo"
    assert answer(raw) == f"<EMAIL_ADDRESS_1> is mine, {ALICE} is hers #echo"
    untouched = "<EMAIL_ADDRESS_2> <PERSON_1> <email_address_1> EMAIL_ADDRESS_1"
    upstream.scripts["v"] = f"<EMAIL_ADDRESS_1>, <EMAIL_ADDRESS_1>; {untouched}"
    raw = chat(gw, f"Write to {ALICE} #say:v")
    assert answer(raw) == f"{ALICE}, {ALICE}; {untouched}"


# --- where a client puts text ---------------------------------------------------------------------


def test_every_text_field_is_masked_before_the_upstream(guarded: Any, upstream: FakeUpstream) -> None:
    gw = guarded(POLICY)
    values = [f"{name}@example.com" for name in ("sys.one", "dev.two", "user.three", "asst.four", "args.five",
                                                  "tool.six", "part.seven", "stop.eight", "meta.nine")]  # fmt: skip
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": json.dumps({"to": values[4]})}}
    messages = [
        {"role": "system", "content": f"Agent for {values[0]}"},
        {"role": "developer", "content": f"Escalate to {values[1]}"},
        {"role": "user", "content": f"I am {values[2]}"},
        {"role": "assistant", "content": f"Noted {values[3]}", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": f"sent to {values[5]}"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"see {values[6]}"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "#echo"},
            ],
        },
    ]
    chat(gw, None, messages=messages, stop=[values[7]], metadata={"k": values[8]}, user=ALICE)
    body = sent(upstream)
    assert [v for v in [*values, ALICE] if v in body] == []
    # an earlier assistant turn's refusal, as a content part (it reached the upstream raw) and as a field
    refusals = [{"role": "user", "content": f"who is {ALICE}?"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": f"I cannot look up {ALICE} or {BOB}"}],
                 "refusal": f"Not {values[2]}"},
                {"role": "user", "content": "ok #echo"}]  # fmt: skip
    chat(gw, None, messages=refusals)
    assert [v for v in (ALICE, BOB, values[2]) if v in sent(upstream)] == []
    refused = upstream.requests[-1]["messages"][1]
    assert refused["content"][0]["refusal"] == "I cannot look up <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_2>"
    assert all(f"<EMAIL_ADDRESS_{n}>" in body for n in range(1, 10))
    # the Anthropic and Responses shapes: system blocks, instructions, stop sequences, metadata.user_id
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    client.messages.create(model="test-model", max_tokens=50, system=[{"type": "text", "text": f"for {values[0]}"}],
                           messages=[{"role": "user", "content": [{"type": "text", "text": f"hi {values[2]} #echo"}]}],
                           metadata={"user_id": ALICE}, stop_sequences=[values[7]])  # fmt: skip
    assert [v for v in [*values, ALICE] if v in sent(upstream)] == []
    gw.client().responses.create(model="test-model", instructions=f"Agent for {values[0]}",
                                 input=[{"role": "user", "content": f"mail {values[2]} #echo"}])  # fmt: skip
    assert [v for v in [*values, ALICE] if v in sent(upstream)] == []


def test_a_json_tool_result_in_text_parts_is_masked_value_by_value(guarded: Any, upstream: FakeUpstream) -> None:
    """A JSON tool result is read as JSON whether it is the tool message's content or a text part of
    it (Anthropic's ``tool_result`` text blocks, OpenAI's content parts). Read as text, a tool's
    ``json.dumps`` output (ASCII escapes) reached the upstream with the name in it: ``Jos\\u00e9``."""
    gw = guarded(POLICY)
    result = json.dumps({"customer": "José García", "note": "Customer José García called."})
    assert "\\u00e9" in result
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"who": "x"})}}
    for content in (result, [{"type": "text", "text": result}]):
        messages = [{"role": "user", "content": "look the customer up"},
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "c1", "content": content},
                    {"role": "user", "content": "thanks #echo"}]  # fmt: skip
        chat(gw, None, messages=messages)
        tool = upstream.requests[-1]["messages"][2]["content"]
        text = tool if isinstance(tool, str) else tool[0]["text"]
        assert json.loads(text) == {"customer": "<PERSON_1>", "note": "Customer <PERSON_1> called."}, text
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    blocks = [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": result}]},
              {"type": "text", "text": "thanks #echo"}]  # fmt: skip
    client.messages.create(model="test-model", max_tokens=50, messages=[
        {"role": "user", "content": "look up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"who": "x"}}]},
        {"role": "user", "content": blocks},
    ])  # fmt: skip
    body = sent(upstream)
    assert "Garc" not in body and "u00e9" not in body and "<PERSON_1>" in body, body


def test_safety_identifier_and_prompt_cache_key_are_treated_as_user(guarded: Any, upstream: FakeUpstream) -> None:
    """OpenAI's successors of ``user`` (an end user's id, often an e-mail address) follow ``pii.user``:
    hashed by default, as ``user`` is; they reached the upstream raw."""
    gw = guarded(POLICY)
    chat(gw, "hello", safety_identifier=ALICE, prompt_cache_key=BOB, user=ALICE)
    body = upstream.requests[-1]
    assert ALICE not in sent(upstream) and BOB not in sent(upstream)
    assert body["safety_identifier"] == body["user"] and body["user"].startswith("user-")
    assert body["prompt_cache_key"].startswith("user-")
    chat(gw, "hello", safety_identifier=ALICE, prompt_cache_key=BOB)
    assert upstream.requests[-1]["safety_identifier"] == body["safety_identifier"], "the same id on every request"
    gw.client().responses.create(model="test-model", input="hello", safety_identifier=ALICE, prompt_cache_key=BOB)
    assert ALICE not in sent(upstream) and BOB not in sent(upstream)


def test_scan_keeps_an_opaque_safety_identifier_and_hashes_an_address(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream
) -> None:
    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY.replace("pii:\n", "pii:\n  user: scan\n", 1))
    gw = make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})
    chat(gw, "hello", safety_identifier="end-user-42", prompt_cache_key="bucket-7")
    assert (upstream.requests[-1]["safety_identifier"], upstream.requests[-1]["prompt_cache_key"]) == (
        "end-user-42", "bucket-7")  # fmt: skip
    chat(gw, "hello", safety_identifier=ALICE, prompt_cache_key=f"team of {BOB}")
    assert ALICE not in sent(upstream) and BOB not in sent(upstream)
    assert upstream.requests[-1]["safety_identifier"].startswith("user-")
    assert upstream.requests[-1]["prompt_cache_key"].startswith("user-")


def test_entities_in_urls_code_and_non_ascii_names_round_trip(guarded: Any, upstream: FakeUpstream) -> None:
    gw = guarded(POLICY)
    text = (f"Write to José Müller-Łukasz. See https://crm.example.com/u?email={ALICE} and `grep {BOB} log`"
            f"\n```\nmail {ALICE}\n```\n#echo")  # fmt: skip
    raw = chat(gw, text)
    body = sent(upstream)
    assert ALICE not in body and BOB not in body and "Müller" not in body, body
    assert answer(raw) == text


# --- the cache ------------------------------------------------------------------------------------


def test_a_cached_answer_is_served_as_it_was_answered(guarded: Any, upstream: FakeUpstream, tmp_path: Path) -> None:
    """The answer is kept with the request's placeholders and restored on a hit. Parts of a masked value
    ("Dana" of "Dana Reyes") were put back as the whole placeholder: the hit then read "Dana Reyes will
    call" and "Dana Reyesher" where the answer said "Dana will call" and "Danaher"."""
    gw = guarded(POLICY, cache=cache_config(tmp_path))
    upstream.scripts["a"] = "Hello <PERSON_1>. Dana will call; Danaher sent the Reyesville report to <PERSON_1>."
    first = chat(gw, "Please greet Dana Reyes warmly #say:a")
    assert upstream.requests[-1]["messages"][-1]["content"] == "Please greet <PERSON_1> warmly #say:a"
    expected = "Hello Dana Reyes. Dana will call; Danaher sent the Reyesville report to Dana Reyes."
    assert (first.headers["x-llmgw-cache"], answer(first)) == ("miss", expected)
    hit = chat(gw, "Please greet Dana Reyes warmly #say:a")
    assert (hit.headers["x-llmgw-cache"], answer(hit)) == ("hit", expected)
    other = chat(gw, "Please greet Maria Gonzalez warmly #say:a")  # masked alike, never served the other's
    assert other.headers["x-llmgw-cache"] == "miss" and "Hello Maria Gonzalez." in answer(other)
    assert len(upstream.requests) == 2


def test_semantic_tier_never_serves_another_value(guarded: Any, upstream: FakeUpstream, tmp_path: Path) -> None:
    gw = guarded(POLICY, cache=cache_config(tmp_path, threshold=0.9))
    first = chat(gw, f"How can I protect my child from COVID-19? Write to {ALICE}")
    assert first.headers["x-llmgw-cache"] == "miss"
    same = chat(gw, f"What can I do to protect my kid from COVID-19? Write to {ALICE}")
    assert same.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1, "the same value: a hit"
    other = chat(gw, f"What can I do to protect my kid from COVID-19? Write to {BOB}")
    assert other.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2


@pytest.mark.parametrize("share", ["team", "key"])
def test_a_typed_placeholder_never_restores_another_callers_value_from_the_cache(
    guarded: Any, upstream: FakeUpstream, tmp_path: Path, share: str
) -> None:
    """Caller A's answer is kept with ``<EMAIL_ADDRESS_1>``; caller B types that very placeholder: B's
    question is another question (no masked value), so A's entry never answers it."""
    gw = guarded(POLICY, cache=cache_config(tmp_path, share=share))
    upstream.scripts["s"] = "I will write to <EMAIL_ADDRESS_1> today."
    a = chat(gw, f"Please write to {ALICE} #say:s")
    assert answer(a) == f"I will write to {ALICE} today."
    b = chat(gw, "Please write to <EMAIL_ADDRESS_1> #say:s")
    assert b.headers["x-llmgw-cache"] == "miss" and ALICE not in answer(b)
    assert answer(b) == "I will write to <EMAIL_ADDRESS_1> today."


# --- the other texts of an answer -----------------------------------------------------------------


class Reasoner(StubServer):
    """An OpenAI-compatible upstream whose answers carry the reasoning as vLLM and DeepSeek
    (``reasoning_content``) and OpenRouter (``reasoning``) send it, each quoting the question."""

    thread_name = "reasoner-upstream"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        text = last_user(body)
        if "#parts" in text:  # content as parts, as Mistral's reasoning models send it
            message: dict[str, Any] = {"role": "assistant", "content": [{"type": "text", "text": f"Done: {text}"}]}
            choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
            return web.json_response({"id": "chatcmpl-p", "object": "chat.completion", "created": 1, "model": "r1",
                                      "choices": choices})  # fmt: skip
        message = {"role": "assistant", "content": f"Done: {text}", "reasoning_content": f"The user asks: {text}",
                   "reasoning": f"So: {text}"}  # fmt: skip
        usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
        return web.json_response({"id": "chatcmpl-r", "object": "chat.completion", "created": 1, "model": "r1",
                                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                  "usage": usage})  # fmt: skip


def test_the_reasoning_of_an_answer_is_restored_and_cached_masked(tmp_path: Path) -> None:
    """Non-streamed: the reasoning fields came back with ``<EMAIL_ADDRESS_1>`` in them (only
    ``content`` and ``refusal`` were restored); the cache keeps them masked and a hit restores them."""
    reasoner = Reasoner().start()
    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY)
    config = base_config(f"http://127.0.0.1:{reasoner.port}/v1", f"sqlite:///{tmp_path}/gw.db",
                         guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"},
                         cache=cache_config(tmp_path))  # fmt: skip
    gw = RunningGateway(parse_config(config)).start()
    try:
        question = f"Please write to {ALICE}"
        first = chat(gw, question)
        assert ALICE not in json.dumps(reasoner.requests[-1])
        expected = {"content": f"Done: {question}", "reasoning_content": f"The user asks: {question}",
                    "reasoning": f"So: {question}"}  # fmt: skip
        message = json.loads(first.text)["choices"][0]["message"]
        assert {k: message.get(k) for k in expected} == expected
        hit = chat(gw, question)
        assert hit.headers["x-llmgw-cache"] == "hit" and len(reasoner.requests) == 1
        assert {k: json.loads(hit.text)["choices"][0]["message"].get(k) for k in expected} == expected
        persister = gw.gateway.cache.memory.persister
        assert persister is not None
        persister.flush()
        assert ALICE.encode() not in (tmp_path / "cache.sqlite").read_bytes(), "the entry keeps the placeholders"
        parts = chat(gw, f"{question} #parts")
        assert json.loads(parts.text)["choices"][0]["message"]["content"] == [
            {"type": "text", "text": f"Done: {question} #parts"}
        ]
    finally:
        gw.stop()
        reasoner.stop()
