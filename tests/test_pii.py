"""PII masking with real Presidio: nothing raw reaches the upstream, answers are restored exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import openai
import pytest

from llmgw.guards.pii import Finding, Masker, resolve_overlaps
from llmgw.guards.policy import EntityRule, PiiPolicy
from llmgw.guards.stream import Restorer, Windows, windows_of
from tests.conftest import RunningGateway
from tests.upstream import FakeUpstream

RAW = {
    "EMAIL_ADDRESS": "dana.reyes@northwind.example",
    "PHONE_NUMBER": "(212) 555-0147",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "US_SSN": "536-22-8726",
    "IBAN_CODE": "GB82 WEST 1234 5698 7654 32",
    "IP_ADDRESS": "203.0.113.42",
    "PERSON": "Dana Reyes",
}
MESSAGE = (
    f"Hi, I am {RAW['PERSON']}. My email is {RAW['EMAIL_ADDRESS']} and my phone number is {RAW['PHONE_NUMBER']}. "
    f"My social security number is {RAW['US_SSN']}. Charge my credit card {RAW['CREDIT_CARD']} "
    f"or my bank account IBAN {RAW['IBAN_CODE']}. My server's IP address is {RAW['IP_ADDRESS']}."
)
POLICY = """
pii:
  default: {action: allow}
  entities:
    EMAIL_ADDRESS: {action: mask, threshold: 0.5}
    PHONE_NUMBER: {action: mask, threshold: 0.3}
    CREDIT_CARD: {action: mask, threshold: 0.5}
    US_SSN: {action: mask, threshold: 0.3}
    IBAN_CODE: {action: mask, threshold: 0.5}
    IP_ADDRESS: {action: mask, threshold: 0.5}
    PERSON: {action: mask, threshold: 0.5}
    EMPLOYEE_ID: {action: redact}
    CODENAME: {action: block}
  recognizers:
    - entity: EMPLOYEE_ID
      patterns: [{regex: "EMP-\\\\d{6}", score: 0.9}]
    - entity: CODENAME
      deny_list: [Nightjar]
injection: {enabled: false}
moderation: {enabled: false}
"""


@pytest.fixture()
def pgw(make_gateway: Any, tmp_path: Path) -> Any:
    def make(policy: str = POLICY, **guards: Any) -> RunningGateway:
        folder = tmp_path / "guardrails"
        folder.mkdir(exist_ok=True)
        (folder / "default.yaml").write_text(policy)
        return make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "s3cret", **guards})

    return make


def split_randomly(text: str, rng: random.Random) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, 4)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def test_restorer_handles_any_split_and_holds_back_only_a_possible_placeholder() -> None:
    placeholders = {"<PERSON_1>": "Dana", "<PERSON_12>": "Eve", "<EMAIL_ADDRESS_1>": 'a"b@c.d'}
    text = "Dear <PERSON_1>, <PERSON_12> wrote to <EMAIL_ADDRESS_1> about <3 and <PERSON_9>."
    expected = 'Dear Dana, Eve wrote to a"b@c.d about <3 and <PERSON_9>.'
    rng = random.Random(7)
    for _ in range(300):
        r = Restorer(placeholders)
        out = "".join(r.feed(p) for p in split_randomly(text, rng)) + r.flush()
        assert out == expected
    r = Restorer(placeholders)
    assert r.feed("Hello <PER") == "Hello "
    assert r.feed("SON_1") == ""
    assert r.feed("> and <3") == "Dana and <3", "'<3' cannot start a placeholder: released at once"
    assert r.feed(" x <EMAIL_ADDRESS_1") == " x "
    j = Restorer(placeholders, json_string=True)
    assert j.feed('{"to": "<EMAIL_ADDRESS_1>"}') + j.flush() == '{"to": "a\\"b@c.d"}'


def test_windows_are_the_same_streamed_and_not() -> None:
    text = "one two three  four\nfive six seven eight nine ten eleven twelve thirteen " * 3
    rng = random.Random(3)
    for _ in range(50):
        w = Windows(4, context=3)
        got: list[str] = []
        for piece in split_randomly(text, rng):
            w.feed(piece)
            got.extend(w.take())
        w.finish()
        got.extend(w.take(final=True))
        assert got == windows_of(text, 4, context=3)


def test_overlaps_prefer_the_stronger_finding() -> None:
    found = [Finding("PHONE_NUMBER", 10, 21, 0.4), Finding("US_SSN", 10, 21, 0.85), Finding("PERSON", 0, 4, 0.9)]
    assert resolve_overlaps(found) == [found[2], found[1]]
    masker = Masker(PiiPolicy(entities={"PERSON": EntityRule(action="mask")}))
    text, records = masker.apply("Dana met Dana", [Finding("PERSON", 0, 4, 0.9), Finding("PERSON", 9, 13, 0.9)], "m")
    assert text == "<PERSON_1> met <PERSON_1>", "the same value gets the same placeholder"
    assert records[0]["value_hash"] == records[1]["value_hash"] and "Dana" not in json.dumps(records)


def test_no_raw_pii_reaches_the_upstream_and_answers_are_restored(pgw: Any, upstream: FakeUpstream) -> None:
    gw = pgw()
    history = [
        {"role": "user", "content": f"My name is {RAW['PERSON']}, email {RAW['EMAIL_ADDRESS']}."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": MESSAGE + " #echo"},
    ]
    completion = gw.client().chat.completions.create(model="test-model", messages=history)
    sent = json.dumps(upstream.requests[-1])
    for entity, value in RAW.items():
        assert value not in sent, f"{entity} leaked to the upstream"
        assert f"<{entity}_1>" in sent, f"{entity} was not masked"
    first, last = upstream.requests[-1]["messages"][0]["content"], upstream.requests[-1]["messages"][2]["content"]
    assert "<PERSON_1>" in first and "<PERSON_1>" in last, "the same value has the same placeholder in history"
    assert completion.choices[0].message.content == MESSAGE + " #echo", "the answer is restored exactly"


def test_streamed_restoration_with_tiny_chunks(pgw: Any, upstream: FakeUpstream) -> None:
    gw = pgw()
    stream = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": MESSAGE + " #echo"}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == MESSAGE + " #echo"
    assert not any("<" in p and "_" in p for p in pieces), "no placeholder fragment reaches the client"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_arguments_masked_and_restored(pgw: Any, upstream: FakeUpstream, stream: bool) -> None:
    gw = pgw()
    messages = [
        {"role": "user", "content": f"Save this: {MESSAGE} #tool-echo"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c0", "type": "function", "function": {
            "name": "lookup", "arguments": json.dumps({"email": RAW["EMAIL_ADDRESS"]})}}]},
        {"role": "tool", "tool_call_id": "c0", "content": f"found {RAW['PERSON']}"},
        {"role": "user", "content": f"Save this: {MESSAGE} #tool-echo"},
    ]  # fmt: skip
    tools = [{"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}]
    response = gw.client().chat.completions.create(model="test-model", messages=messages, tools=tools, stream=stream)
    if stream:
        arguments = "".join(
            tc.function.arguments or "" for c in response if c.choices for tc in c.choices[0].delta.tool_calls or ()
        )
    else:
        arguments = response.choices[0].message.tool_calls[0].function.arguments
    assert json.loads(arguments) == {"text": f"Save this: {MESSAGE} #tool-echo"}
    sent = json.dumps(upstream.requests[-1])
    assert RAW["EMAIL_ADDRESS"] not in sent and RAW["PERSON"] not in sent


def test_custom_recognizers_redact_and_block(pgw: Any, upstream: FakeUpstream) -> None:
    gw = pgw()
    gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "badge EMP-123456"}])
    assert upstream.requests[-1]["messages"][0]["content"] == "badge [EMPLOYEE_ID]"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "Project Nightjar"}]
        )
    assert info.value.body["code"] == "pii_blocked" and info.value.body["param"] == "messages[0].content"
    assert len(upstream.requests) == 1, "a blocked request never reaches the upstream"


def test_history_is_analysed_once(pgw: Any) -> None:
    gw = pgw()
    analyzer = gw.gateway.guards.analyzer(gw.gateway.guards.policies["default"])
    history = [{"role": "user", "content": f"I am {RAW['PERSON']} (turn {i})"} for i in range(5)]
    gw.client().chat.completions.create(model="test-model", messages=history)
    before = analyzer.calls
    gw.client().chat.completions.create(model="test-model", messages=[*history, {"role": "user", "content": "next"}])
    assert analyzer.calls - before == 1, "only the new message is analysed"


def test_analyzer_failure_blocks_or_fails_open(
    pgw: Any, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmgw.guards.pii import PiiAnalyzer

    def broken(self: PiiAnalyzer, text: str) -> list[Finding]:
        raise RuntimeError("analyzer is down")

    gw = pgw()
    monkeypatch.setattr(PiiAnalyzer, "analyze", broken)
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503 and info.value.body["code"] == "guard_unavailable"
    assert upstream.requests == []
    open_gw = pgw(POLICY + "on_error: open\n")
    assert open_gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    assert open_gw.rows()[0]["meta"]["guards_failed_open"] is True


def test_a_routes_guard_failure_open_serves_its_requests_while_the_others_fail_closed(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``routes.<r>.guard_failure: open`` opens that route only, whatever the policy says; the failure
    is on the row and in the guardrail log."""
    from llmgw.guards.pii import PiiAnalyzer
    from tests.test_guards_e2e import events

    def broken(self: PiiAnalyzer, text: str) -> list[Finding]:
        raise RuntimeError("analyzer is down")

    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY)  # fails closed (the default on_error)
    gw = make_gateway(
        guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "s3cret"},
        routes={"lenient": {"default_model": "test-model", "guard_failure": "open"}},
    )
    monkeypatch.setattr(PiiAnalyzer, "analyze", broken)
    upstream.reset()
    turn = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=turn)
    assert info.value.status_code == 503 and info.value.body["code"] == "guard_unavailable"
    assert upstream.requests == []
    served = gw.client().chat.completions.create(
        model="test-model", messages=turn, extra_headers={"x-llmgw-route": "lenient"}
    )
    assert served.choices[0].message.content and len(upstream.requests) == 1
    (row,) = [r for r in gw.rows() if r["route"] == "lenient"]
    assert row["meta"]["guards_failed_open"] is True
    failures = sorted((e["verdict"], e["detail"]) for e in events(gw, guard="input"))
    assert failures == [("allow", "guard failed: RuntimeError: analyzer is down"),  # the open route: served
                        ("block", "guard failed: RuntimeError: analyzer is down")]  # fmt: skip


def test_known_values_are_masked_again_for_the_log() -> None:
    masker = Masker(PiiPolicy(entities={"PERSON": EntityRule(action="mask")}))
    masker.apply("I am Dana Reyes", [Finding("PERSON", 5, 15, 0.9)], "m")
    assert masker.mask_known("... Reyes said hi. Dana Reyes again") == "... <PERSON_1> said hi. <PERSON_1> again"


TYPED = "Please keep <PERSON_1> and <EMAIL_ADDRESS_1> literally: they are my template slots. "


@pytest.mark.parametrize("stream", [False, True])
def test_placeholders_the_client_typed_come_back_as_typed(pgw: Any, upstream: FakeUpstream, stream: bool) -> None:
    """The client's own ``<PERSON_1>`` is not a placeholder of this request: the masked name gets
    another one, and the echoed answer is restored to exactly what the client sent."""
    gw = pgw()
    text = f"{TYPED}I am {RAW['PERSON']}, mail {RAW['EMAIL_ADDRESS']}. #echo"
    response = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": text}], stream=stream
    )
    if stream:
        answer = "".join(c.choices[0].delta.content or "" for c in response if c.choices)
    else:
        answer = response.choices[0].message.content
    assert answer == text
    sent = upstream.requests[-1]["messages"][0]["content"]
    assert RAW["PERSON"] not in sent and RAW["EMAIL_ADDRESS"] not in sent
    assert sent.startswith(TYPED) and "<PERSON_2>" in sent and "<EMAIL_ADDRESS_2>" in sent


FRAGMENTS = [
    "<PERSON_1>",
    "<PERSON_2>",
    "<EMAIL_ADDRESS_1>",
    "<PHONE_NUMBER_1>",
    "<PERSON_",
    "_1>",
    "<",
    ">",
    RAW["PERSON"],
    "Maria Lopez",
    RAW["EMAIL_ADDRESS"],
    "ops@example.org",
    RAW["PHONE_NUMBER"],
    "met",
    "wrote to",
    "and",
    "about the invoice.",
    "<3",
]


def test_restoration_is_exact_for_generated_inputs() -> None:
    """Property-style: texts mixing real values with placeholder-shaped strings and fragments of
    them, masked by the real analyzer; the masked text echoed back (whole, or streamed in random
    pieces) restores to the input exactly."""
    from llmgw.guards.pii import PiiAnalyzer

    policy = PiiPolicy(
        entities={e: EntityRule(action="mask", threshold=0.3) for e in ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER")}
    )
    analyzer = PiiAnalyzer(policy)
    rng = random.Random(15)
    masked_any = 0
    for _ in range(40):
        text = " ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(2, 9)))
        masker = Masker(policy)
        masker.reserve([text])
        masked, _ = masker.apply(text, analyzer.analyze(text), "m")
        assert not set(masker.placeholders) & masker.taken, "a placeholder the client sent was handed out"
        assert masker.restore(masked) == text, (text, masked)
        restorer = Restorer(masker.placeholders)
        assert "".join(restorer.feed(p) for p in split_randomly(masked, rng)) + restorer.flush() == text
        masked_any += bool(masker.placeholders)
    assert masked_any >= 20, "the generated texts exercise masking"


def database_bytes(gw: RunningGateway) -> bytes:
    gw.flush()
    db_path = Path(gw.config.storage.url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def test_pii_outside_message_content_never_leaves_raw(pgw: Any, upstream: FakeUpstream) -> None:
    """``user`` (hashed, stably), ``metadata``, ``stop``, a message's ``name``, legacy
    ``function_call`` arguments and unknown pass-through fields: masked before the upstream, and
    nothing raw in the database (request rows and guard events) either."""
    from llmgw.guards.events import value_hash

    gw = pgw()
    email, name, phone = RAW["EMAIL_ADDRESS"], RAW["PERSON"], RAW["PHONE_NUMBER"]
    legacy = {"name": "lookup", "arguments": json.dumps({"who": email})}
    messages = [
        {"role": "user", "name": "Dana Reyes", "content": "Hello"},
        {"role": "assistant", "content": None, "function_call": legacy},
        {"role": "function", "name": "lookup", "content": "ok"},
        {"role": "user", "content": "Thanks #echo", "x_note": f"ring {phone}"},
    ]  # fmt: skip
    for _ in range(2):
        completion = gw.client().chat.completions.create(
            model="test-model",
            messages=messages,
            user=email,
            metadata={"customer": name},
            stop=[f"Bye {name}", "END"],
            extra_body={"x_vendor": {"notes": [f"call {phone}"]}},
        )
        assert completion.choices[0].message.content == "Thanks #echo"
    sent = upstream.requests[-1]
    assert not any(raw in json.dumps(sent) for raw in (email, name, phone)), json.dumps(sent)
    hashed = f"user-{value_hash(b's3cret', email)}"
    assert upstream.requests[-2]["user"] == sent["user"] == hashed, "a stable salted hash"
    assert sent["metadata"] == {"customer": "<PERSON_1>"} and sent["stop"] == ["Bye <PERSON_1>", "END"]
    assert sent["messages"][0]["name"] == "PERSON_1", "a valid name: the placeholder without brackets"
    assert "<EMAIL_ADDRESS_1>" in sent["messages"][1]["function_call"]["arguments"]
    assert sent["messages"][3]["x_note"] == "ring <PHONE_NUMBER_1>"
    assert sent["x_vendor"] == {"notes": ["call <PHONE_NUMBER_1>"]}
    rows = gw.rows()
    assert [r["user"] for r in rows] == [hashed, hashed], "usage per user still works"
    with gw.admin() as admin:
        logged = admin.get("/admin/guard-events", params={"guard": "pii"}).json()["data"]
    assert {e["user"] for e in logged} == {hashed}
    assert {x["where"] for x in logged[0]["entities"]} >= {"metadata.customer", "stop[0]", "messages[0].name",
                                                          "x_vendor.notes[0]", "messages[3].x_note"}  # fmt: skip
    database = database_bytes(gw)
    assert not any(raw.encode() in database for raw in (email, name, phone))


def test_a_refused_request_stores_the_hashed_user_and_policies_choose(pgw: Any, upstream: FakeUpstream) -> None:
    """Refused before the guards ran (an unknown route): the row holds the hash. ``user: allow``
    keeps the field; ``user: scan`` hashes a value holding PII; a blocked entity in metadata refuses."""
    from llmgw.guards.events import value_hash

    email = RAW["EMAIL_ADDRESS"]
    gw = pgw()
    with pytest.raises(openai.BadRequestError):
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], user=email,
            extra_body={"llmgw": {"route": "nowhere"}},
        )  # fmt: skip
    assert gw.rows()[0]["user"].startswith("user-") and email.encode() not in database_bytes(gw)
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], metadata={"project": "Nightjar"}
        )
    assert info.value.body["code"] == "pii_blocked" and info.value.body["param"] == "metadata.project"
    gw.client().embeddings.create(model="up-embed", input="x", user=email)
    assert upstream.requests[-1]["user"].startswith("user-")

    kept = pgw(POLICY.replace("pii:\n", "pii:\n  user: allow\n"))
    kept.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}], user="u-42")
    assert upstream.requests[-1]["user"] == "u-42" and kept.rows()[0]["user"] == "u-42"
    scanned = pgw(POLICY.replace("pii:\n", "pii:\n  user: scan\n"))
    for user in (email, "u-42"):
        scanned.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], user=user
        )
    assert upstream.requests[-2]["user"] == f"user-{value_hash(b's3cret', email)}", "PII: hashed, still per user"
    assert upstream.requests[-1]["user"] == "u-42", "no PII: kept"
    assert email.encode() not in database_bytes(scanned)


def test_a_placeholder_shaped_string_in_a_field_not_scanned_is_left_alone(pgw: Any, upstream: FakeUpstream) -> None:
    """A tool description (not scanned: the developer's schema) holds ``<PERSON_1>``; the real name
    in the message gets another placeholder, so an answer naming both restores only the name."""
    gw = pgw()
    upstream.scripts["both"] = "<PERSON_1> is the slot, <PERSON_2> the person"
    tools = [{"type": "function", "function": {"name": "greet", "description": "greets <PERSON_1>"}}]
    completion = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": f"I am {RAW['PERSON']} #say:both"}], tools=tools
    )
    assert completion.choices[0].message.content == f"<PERSON_1> is the slot, {RAW['PERSON']} the person"


def test_a_feedback_comment_is_stored_masked(pgw: Any) -> None:
    gw = pgw()
    completion = gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    comment = f"wrong for {RAW['PERSON']}, reach me at {RAW['EMAIL_ADDRESS']}"
    with gw.admin() as admin:
        response = admin.post("/v1/feedback", json={"request_id": completion.id[len("chatcmpl-") :], "score": 0.0,
                                                   "comment": comment})  # fmt: skip
        assert response.status_code == 201, response.text
        refused = admin.post("/v1/feedback", json={"request_id": completion.id, "label": "x",
                                                   "comment": "about Nightjar"})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "pii_blocked"
    database = database_bytes(gw)
    assert RAW["PERSON"].encode() not in database and RAW["EMAIL_ADDRESS"].encode() not in database
    assert b"wrong for <PERSON_1>, reach me at <EMAIL_ADDRESS_1>" in database
