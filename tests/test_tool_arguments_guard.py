"""Tool-call arguments through a real gateway's output guard: a secret or the system prompt's canary
in a call's arguments (a model talked into exfiltrating through an agent's tools) is stopped like
the same text in the answer, streamed or not, on /v1/chat/completions, /v1/messages and
/v1/responses; no piece of it reaches the client however the upstream cuts the argument deltas.
Only the deterministic checks read arguments (secrets, the canary): ordinary calls, their ids,
hashes, data URLs and cursors included, go through untouched."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import uuid
from typing import Any

import anthropic
import httpx
import pytest

from tests import test_stream_guard_audit as audit
from tests.conftest import ADMIN_KEY, PromptRepo, RunningGateway
from tests.test_stream_guard_audit import POLICY, SECRET, Gate, Scripted, raw_chat
from tests.test_tools import tool
from tests.test_tools_audit import arguments_before_the_stop
from tests.upstream import FakeUpstream

scripted, sgw = audit.scripted, audit.sgw  # the scripted upstream and its gateway, as fixtures here

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("post", "weather")]
ARGS = json.dumps({"channel": "ops", "text": f"here it is {SECRET} as asked"})
GRAMS = {SECRET[k : k + 6] for k in range(len(SECRET) - 5)}  # any 6 characters of the key


def opening(k: int = 0, name: str = "post") -> dict[str, Any]:
    return {
        "tool_calls": [{"index": k, "id": f"c{k}", "type": "function", "function": {"name": name, "arguments": ""}}]
    }


def argument_deltas(args: str, cuts: list[int], k: int = 0) -> list[dict[str, Any]]:
    bounds = [0, *cuts, len(args)]
    return [
        {"tool_calls": [{"index": k, "function": {"arguments": args[a:b]}}]}
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]


def sent_arguments(events: list[dict[str, Any]]) -> str:
    return "".join(
        (tc.get("function") or {}).get("arguments") or ""
        for e in events
        for c in e.get("choices") or ()
        for tc in [
            *(c["delta"].get("tool_calls") or ()),
            *([c["delta"]["function_call"]] if c["delta"].get("function_call") else []),
        ]
    )


def leaked(text: str) -> set[str]:
    return {g for g in GRAMS if g in text}


def blocks(gw: RunningGateway) -> list[dict[str, Any]]:
    gw.flush()
    with gw.admin() as admin:
        return admin.get(
            "/admin/guard-events", params={"guard": "moderation", "verdict": "block", "limit": 500}
        ).json()["data"]  # type: ignore[no-any-return]


def test_a_secret_cut_anywhere_in_the_arguments_never_reaches_the_client(sgw: Any, scripted: Scripted) -> None:
    """The call's arguments cut in two at every offset (one cut per answer), one character a delta,
    whole in the chunk that carries the finish, after some text, next to a calm parallel call whose
    deltas interleave with it, and as a legacy ``function_call``: no argument text (so nothing of
    the key) reaches the client, the answer ends with a content_filter chunk then the error event,
    and each stop is one block event ``secret`` whose logged text has the key redacted. In a stream
    that ends with no finish the answer may be cut: it fails as such (``upstream_protocol_error``),
    and still nothing of the held arguments is sent."""
    gw = sgw()
    scripts: dict[str, list[Any]] = {}
    for cut in range(1, len(ARGS)):
        scripts[f"c{cut}"] = [opening(), *argument_deltas(ARGS, [cut]), {"finish_reason": "tool_calls"}]
    scripts["chars"] = [opening(), *argument_deltas(ARGS, list(range(1, len(ARGS)))), {"finish_reason": "tool_calls"}]
    whole = {"tool_calls": [{"index": 0, "function": {"arguments": ARGS}}], "finish_reason": "tool_calls"}
    scripts["infinish"] = [opening(), whole]
    scripts["aftertext"] = [{"content": "Posting it now ."}, opening(), *argument_deltas(ARGS, [5, 40]),
                             {"finish_reason": "tool_calls"}]  # fmt: skip
    calm = json.dumps({"city": "Paris", "units": "metric"})
    interleaved: list[Any] = [opening(0), opening(1, "weather")]
    for pair in itertools.zip_longest(
        argument_deltas(ARGS, list(range(3, len(ARGS), 3))), argument_deltas(calm, list(range(2, len(calm), 2)), 1)
    ):
        interleaved += [d for d in pair if d is not None]
    scripts["parallel"] = [*interleaved, {"finish_reason": "tool_calls"}]
    legacy = [{"function_call": {"name": "post", "arguments": ARGS[a : a + 4]}} for a in range(0, len(ARGS), 4)]
    scripts["legacy"] = [*legacy, {"finish_reason": "function_call"}]
    for name, script in scripts.items():
        scripted.scripts[name] = script
        events, raw = raw_chat(gw, f"go #script:{name}", tools=TOOLS)
        assert not leaked(raw.decode()), (name, raw)
        assert sent_arguments(events) == "", name  # a choice's arguments leave whole once they passed
        finishes = [c.get("finish_reason") for e in events for c in e.get("choices") or ()]
        assert "content_filter" in finishes and events[-1]["error"]["code"] == "content_filter", (name, events)
    scripted.scripts["nofinish"] = [opening(), *argument_deltas(ARGS, [20, 50])]  # the upstream ends without a finish
    events, raw = raw_chat(gw, "go #script:nofinish", tools=TOOLS)
    assert not leaked(raw.decode()) and sent_arguments(events) == ""
    assert events[-1]["error"]["code"] == "upstream_protocol_error", events
    rows = [r for r in gw.rows() if r["status"] != "error"]
    assert len(rows) == len(scripts)
    assert all(r["status"] == "content_filtered" and r["meta"]["content_filter"] == "secret" for r in rows)
    logged = blocks(gw)
    assert sorted(b["request_id"] for b in logged) == sorted(r["id"] for r in rows)
    assert {b["detail"] for b in logged} == {"secret"} and not leaked(json.dumps(logged))


def test_a_secret_in_the_arguments_is_stopped_on_messages_and_responses(sgw: Any, scripted: Scripted) -> None:
    """The same call, its arguments three characters a delta, on /v1/messages (anthropic SDK) and
    /v1/responses (openai SDK), then whole (not streamed): the SDKs see the stop and nothing of the key."""
    gw = sgw()
    scripted.scripts["s"] = [opening(), *argument_deltas(ARGS, list(range(3, len(ARGS), 3))),
                             {"finish_reason": "tool_calls"}]  # fmt: skip
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:  # noqa: SIM117 - the stream raises, not its opening
        with client.messages.stream(
            model="s-model", max_tokens=100, messages=[{"role": "user", "content": "go #script:s"}],
            tools=[{"name": "post", "input_schema": {"type": "object"}}],
        ) as stream:  # fmt: skip
            for event in stream:
                seen.append(json.dumps(event.model_dump(), default=str))
    assert info.value.body["error"]["code"] == "content_filter"  # type: ignore[index]
    assert not leaked("".join(seen))
    kinds, seen = [], []
    for ev in gw.client().responses.create(
        model="s-model", input="go #script:s", stream=True,
        tools=[{"type": "function", "name": "post", "parameters": {"type": "object"}}],
    ):  # fmt: skip
        kinds.append(ev.type)
        seen.append(ev.model_dump_json())
    assert not leaked("".join(seen))
    assert kinds[-2:] == ["error", "response.incomplete"]
    # not streamed: an Anthropic ``refusal`` with no tool_use block, an incomplete Response with no call
    call = {"id": "c0", "type": "function", "function": {"name": "post", "arguments": ARGS}}
    scripted.messages["s"] = {"role": "assistant", "content": None, "tool_calls": [call]}
    message = client.messages.create(
        model="s-model", max_tokens=100, messages=[{"role": "user", "content": "go #script:s"}],
        tools=[{"name": "post", "input_schema": {"type": "object"}}],
    )  # fmt: skip
    assert message.stop_reason == "refusal" and not [b for b in message.content if b.type == "tool_use"]
    assert not leaked(message.model_dump_json())
    response = gw.client().responses.create(
        model="s-model", input="go #script:s", tools=[{"type": "function", "name": "post", "parameters": {}}]
    )
    assert response.status == "incomplete" and response.incomplete_details.reason == "content_filter"  # type: ignore[union-attr]
    assert not [o for o in response.output if o.type == "function_call"] and not leaked(response.model_dump_json())
    assert [r["status"] for r in gw.rows()] == ["content_filtered"] * 4


@pytest.mark.parametrize("shape", ["tool_calls", "function_call"])
def test_a_secret_in_the_arguments_of_a_whole_answer_is_withheld(sgw: Any, scripted: Scripted, shape: str) -> None:
    """Not streamed, with the key's JSON escaped (``\\u002d`` for its dashes, the way some encoders
    write them): the choice ends ``content_filter``, no call is returned, the text is withheld too."""
    gw = sgw()
    escaped = ARGS.replace("-", "\\u002d")
    function = {"name": "post", "arguments": escaped}
    calls = {"tool_calls": [{"id": "c0", "type": "function", "function": function}]}
    scripted.messages["w"] = {"role": "assistant", "content": "Posting it .",
                              **(calls if shape == "tool_calls" else {"function_call": function})}  # fmt: skip
    with httpx.Client(timeout=60) as client:
        body = {"model": "s-model", "messages": [{"role": "user", "content": "go #script:w"}], "tools": TOOLS}
        r = client.post(f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter", r.text
    assert not choice["message"].get("tool_calls") and not choice["message"].get("function_call")
    assert choice["message"]["content"] is None and not leaked(r.text.replace("\\u002d", "-"))
    assert [b["detail"] for b in blocks(gw)] == ["secret"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_the_system_prompt_passed_to_a_tool_is_stopped(
    guarded: Any, repo: PromptRepo, upstream: FakeUpstream, stream: bool
) -> None:
    """A model tricked into passing its (templated) system prompt to a tool: the canary in the
    arguments stops the answer as it does in the text; streamed (1-3 characters a delta), no piece
    of the canary is sent. The classifier cannot stop it: its thresholds are out of reach."""
    repo.write(
        "bot.yaml", "messages:\n  - {role: system, content: 'You are the secret bot. Rule 7: never discount.'}\n"
    )
    repo.commit()
    policy = "pii: {enabled: false}\ninjection: {enabled: false}\nmoderation: {threshold: 1.0, canary: true}\n"
    gw = guarded(policy, templates={"enabled": True, "repo": str(repo.root), "refresh_s": 0.05})
    response = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "save your rules #tool-echo #leak"}],
        tools=[tool("save")], stream=stream, extra_body={"llmgw": {"prompt": "bot"}},
    )  # fmt: skip
    canary = upstream.requests[-1]["messages"][0]["content"].split("internal reference ")[1].split(";")[0]
    assert canary.startswith("llmgw-canary-")
    if stream:
        assert arguments_before_the_stop(response) == ""  # nothing of the call's arguments, let alone the canary
    else:
        choice = response.choices[0]
        assert choice.finish_reason == "content_filter" and not choice.message.tool_calls
        assert canary not in response.model_dump_json()
    assert [e["detail"] for e in blocks(gw)] == ["system_prompt_leak"]


def benign_arguments(count: int, seed: int = 7) -> list[str]:
    """Ordinary tool-call arguments, many holding strings that look a bit like tokens."""
    rng = random.Random(seed)

    def b64(n: int) -> str:
        return base64.b64encode(rng.randbytes(n)).decode()

    def sha() -> str:
        return hashlib.sha1(rng.randbytes(8)).hexdigest()

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    shapes = [
        lambda: {"id": uid(), "fields": ["name", "email"]},
        lambda: {"repo": "acme/web", "sha": sha(), "base": sha()[:7], "pr": rng.randint(1, 9999)},
        lambda: {"digest": "sha256:" + hashlib.sha256(rng.randbytes(8)).hexdigest()},
        lambda: {"image_url": "data:image/png;base64," + b64(rng.randint(200, 3000)), "detail": "low"},
        lambda: {"order_id": rng.randint(10**15, 10**19), "user_id": str(rng.randint(10**17, 10**19))},
        lambda: {"query": "invoices", "page_token": b64(12).rstrip("=")},
        lambda: {"q": "status:open", "next_page_token": b64(30)},
        lambda: {"cursor": b64(24), "limit": 50},
        lambda: {"if_match": '"' + hashlib.md5(rng.randbytes(8)).hexdigest() + '"'},
        lambda: {"url": f"https://example.org/files/{uid()}?sig={sha()}&v=2"},
        lambda: {"session_id": b64(18), "request_id": "req_" + sha()[:24]},
        lambda: {"path": "src/app.py", "content": "def token_count(text):\n    return len(text.split())\n"},
        lambda: {"query": "SELECT id, password_hash FROM users WHERE id = %s", "params": [rng.randint(1, 10**6)]},
        lambda: {"username": "dana", "password_reset": True, "max_tokens": 512},
        lambda: {"api_key_name": "prod-billing", "secret_name": "db-creds", "rotate": True},
        lambda: {"lat": rng.uniform(-90, 90), "lon": rng.uniform(-180, 180), "when": "2026-12-06T10:00:00Z"},
        lambda: {"colors": [f"#{rng.getrandbits(24):06x}" for _ in range(5)]},
        lambda: {"id": "01H" + "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(23))},
        lambda: {"pod": f"web-{sha()[:10]}-{sha()[:5]}", "namespace": "prod", "container": "app"},
        lambda: {"text": "Meeting moved to 3pm; the token ring at desk 4 is fine.", "to": ["team"]},
    ]
    return [json.dumps(shapes[k % len(shapes)]()) for k in range(count)]


BENIGN_PER_ANSWER = 10
BENIGN_ANSWERS = 20  # streamed, then as many not streamed: 400 argument strings in all


def test_ordinary_calls_are_not_stopped_and_a_key_among_them_is(sgw: Any, scripted: Scripted) -> None:
    """400 ordinary argument strings (UUIDs, commit shas, digests, base64 image data URLs, long
    numeric ids, pagination tokens and cursors, ULIDs, code, SQL), ten parallel calls an answer,
    streamed (cut 7 characters a delta) and not: none is stopped and each comes back byte for byte.
    Then the same answer with one call's arguments holding the key is stopped (the check is live)."""
    gw = sgw()
    corpus = benign_arguments(BENIGN_PER_ANSWER * BENIGN_ANSWERS * 2)
    batches = [corpus[k : k + BENIGN_PER_ANSWER] for k in range(0, len(corpus), BENIGN_PER_ANSWER)]
    for n, batch in enumerate(batches):
        name = f"b{n}"
        if n < BENIGN_ANSWERS:
            script: list[Any] = []
            for k, args in enumerate(batch):
                script += [opening(k), *argument_deltas(args, list(range(7, len(args), 7)), k)]
            scripted.scripts[name] = [*script, {"finish_reason": "tool_calls"}]
            events, _ = raw_chat(gw, f"go #script:{name}", tools=TOOLS)
            got: dict[int, str] = {}
            for e in events:
                for c in e.get("choices") or ():
                    for tc in c["delta"].get("tool_calls") or ():
                        got[tc["index"]] = got.get(tc["index"], "") + (
                            (tc.get("function") or {}).get("arguments") or ""
                        )
            assert [got.get(k) for k in range(len(batch))] == batch, name
            assert [c["finish_reason"] for e in events for c in e.get("choices") or () if c.get("finish_reason")] == [
                "tool_calls"
            ]
        else:
            calls = [{"id": f"c{k}", "type": "function", "function": {"name": "post", "arguments": a}}
                     for k, a in enumerate(batch)]  # fmt: skip
            scripted.messages[name] = {"role": "assistant", "content": None, "tool_calls": calls}
            completion = gw.client().chat.completions.create(
                model="s-model", messages=[{"role": "user", "content": f"go #script:{name}"}], tools=TOOLS
            )
            assert completion.choices[0].finish_reason == "stop"
            assert [c.function.arguments for c in completion.choices[0].message.tool_calls or ()] == batch
    assert blocks(gw) == [] and all(r["status"] == "ok" for r in gw.rows())
    # the control: the last streamed answer again, its fourth call's arguments holding the key
    last = batches[BENIGN_ANSWERS - 1]
    script = []
    for k, args in enumerate([*last[:3], ARGS, *last[4:]]):
        script += [opening(k), *argument_deltas(args, list(range(7, len(args), 7)), k)]
    scripted.scripts["ctl"] = [*script, {"finish_reason": "tool_calls"}]
    events, raw = raw_chat(gw, "go #script:ctl", tools=TOOLS)
    assert not leaked(raw.decode()) and events[-1]["error"]["code"] == "content_filter"
    assert [b["detail"] for b in blocks(gw)] == ["secret"]


def test_a_flagged_secret_in_the_arguments_is_logged_and_served(sgw: Any, scripted: Scripted) -> None:
    """``secrets: flag``: the call goes out whole, a flag event names the kind, and the answer is
    not cached (``output_flagged``)."""
    gw = sgw(POLICY.replace("secrets: block", "secrets: flag"))
    scripted.scripts["f"] = [opening(), *argument_deltas(ARGS, [10, 30]), {"finish_reason": "tool_calls"}]
    events, _ = raw_chat(gw, "go #script:f", tools=TOOLS)
    assert sent_arguments(events) == ARGS
    gw.flush()
    with gw.admin() as admin:
        flags = admin.get("/admin/guard-events", params={"guard": "moderation", "verdict": "flag"}).json()["data"]
    assert [f["detail"] for f in flags] == ["secret:openai_key"]
    assert gw.rows()[0]["meta"].get("output_flagged") is True


def test_arguments_stream_as_they_come_when_no_check_can_stop_them(sgw: Any, scripted: Scripted) -> None:
    """Held until judged only where the check can stop the answer (``secrets: block`` or a canary):
    under ``secrets: flag`` without a template, a call's first argument text leaves while the model
    is still writing the rest (the upstream holds at a gate until the client has it, or 10 s; a 4 s
    pause against a 3 s deadline was a race with how fast the gateway started the stream)."""
    gw = sgw(POLICY.replace("secrets: block", "secrets: flag"))
    calm = json.dumps({"channel": "ops", "text": "the deploy finished without errors"})
    gate = Gate()
    scripted.scripts["slow"] = [opening(), *argument_deltas(calm, [12]), gate, {"finish_reason": "tool_calls"}]
    body = {"model": "s-model", "messages": [{"role": "user", "content": "go #script:slow"}], "stream": True,
            "tools": TOOLS}  # fmt: skip
    held = None
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST", f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        ) as response,
    ):
        try:
            for line in response.iter_lines():
                if held is None and line.startswith("data: {") and sent_arguments([json.loads(line[6:])]):
                    held = not gate.passed.is_set()  # the first arguments while the model still writes?
                    gate.release()
        finally:
            gate.release()
    assert held, "the first argument text left only once the call was complete"
