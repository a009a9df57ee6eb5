"""The output side of streamed answers through a real gateway, with the official SDKs as clients:
flagged text (a secret, which the output guard stops deterministically) split across chunks every
way an upstream can split it never reaches the client before the stop; masked PII comes back whole
however its placeholder is cut; the stop is reported in each API's own shape and logged.

The upstream here is scripted chunk by chunk (``Scripted``): a test says exactly which chunks it
streams, so the chunk boundaries are where the test puts them."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest
from aiohttp import web

from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import DIRECTIVE, StubServer, last_user, sse


class Gate:
    """A pause in a script that lasts until the test releases it (at most ``bound_s``, then the
    upstream goes on by itself and says so in ``passed``). What a client has while ``passed`` is
    unset left the gateway during the pause, however fast or slow this machine is: a fixed pause
    of a few seconds made that a race with how long the gateway took to start the stream."""

    def __init__(self, bound_s: float = 10.0) -> None:  # under sgw's read_timeout_s (20 s)
        self.bound_s = bound_s
        self.released = threading.Event()
        self.passed = threading.Event()

    def release(self) -> None:
        self.released.set()

    async def hold(self) -> None:
        await asyncio.to_thread(self.released.wait, self.bound_s)
        self.passed.set()


class Scripted(StubServer):
    """A chat upstream that streams exactly the chunks registered under ``#script:NAME`` (each a
    delta dict, a full chunk dict with ``choices``, or raw bytes), then ``[DONE]`` unless the name
    is in ``no_done``; ``pause`` seconds between chunks, a float in the script pauses there, and a
    :class:`Gate` holds the stream there until the test releases it.
    Not streamed, it answers the message registered under the name in ``messages``. A callable in
    place of a chunk or a message is called with the request's body (to echo what the gateway sent)."""

    thread_name = "scripted-upstream"

    def __init__(self) -> None:
        super().__init__()
        self.scripts: dict[str, list[Any]] = {}
        self.no_done: set[str] = set()
        self.pause = 0.0
        self.messages: dict[str, dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        d = {name: value for name, value in DIRECTIVE.findall(last_user(body))}
        name = d["script"]
        if not body.get("stream"):
            registered = self.messages[name]
            message = dict(registered(body) if callable(registered) else registered)
            choice = {
                "index": 0,
                "message": message,
                "finish_reason": "stop",
                "logprobs": message.pop("logprobs", None),
            }
            usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
            return web.json_response({"id": "up-w", "object": "chat.completion", "created": int(time.time()),
                                      "model": "s-1", "choices": [choice], "usage": usage})  # fmt: skip
        base = {"id": "up-x", "object": "chat.completion.chunk", "created": int(time.time()), "model": "s-1"}
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for item in self.scripts[name]:
            if callable(item):
                item = item(body)
            if isinstance(item, float):  # a pause here
                await asyncio.sleep(item)
            elif isinstance(item, Gate):
                await item.hold()
            elif isinstance(item, bytes):
                await response.write(item)
            elif "choices" in item:
                await response.write(sse({**base, **item}))
            else:
                item = dict(item)  # not the script's own: a second request streams it whole again
                finish = item.pop("finish_reason", None) if "finish_reason" in item else None
                index = item.pop("index", 0) if "index" in item else 0
                choice = {"index": index, "delta": item, "finish_reason": finish}
                await response.write(sse({**base, "choices": [choice]}))
            if self.pause:
                await asyncio.sleep(self.pause)
        if name not in self.no_done:
            await response.write(b"data: [DONE]\n\n")
        return response


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    server = Scripted().start()
    yield server
    server.stop()


POLICY = """
timeout_s: 30
pii:
  default: {action: allow}
  entities:
    EMAIL_ADDRESS: {action: mask, threshold: 0.5}
injection: {enabled: false}
moderation: {hold_back_tokens: 8, window_words: 4, secrets: block, canary: true}
"""
SECRET = "sk-proj-Q7vX2mN9pL4kR8sT1wY6zB3cD5fG0hJ"
EMAIL = "dana.reyes@northwind.example"


@pytest.fixture()
def sgw(guarded: Any, scripted: Scripted) -> Callable[..., RunningGateway]:
    def make(policy: str = POLICY, **overrides: Any) -> RunningGateway:
        scripted.scripts.clear()
        scripted.messages.clear()
        scripted.no_done.clear()
        scripted.pause = 0.0
        provider = {"type": "openai", "base_url": f"http://127.0.0.1:{scripted.port}/v1", "api_key": "sk-up",
                    "max_retries": 0, "read_timeout_s": 20}  # fmt: skip
        model = {"provider": "scripted", "upstream_id": "s-1", "context_window": 8192,
                 "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                 "capabilities": ["chat", "streaming", "tools"]}  # fmt: skip
        return guarded(policy, providers={"scripted": provider}, models={"s-model": model},
                       routes={"default": {"default_model": "s-model"}}, **overrides)  # fmt: skip

    return make


def raw_chat(gw: RunningGateway, prompt: str, **extra: Any) -> tuple[list[dict[str, Any]], bytes]:
    """The SSE events of a streamed chat answer as the wire carried them."""
    body = {"model": "s-model", "messages": [{"role": "user", "content": prompt}], "stream": True, **extra}
    with httpx.Client(timeout=60) as client:
        r = client.post(f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    raw = r.content
    events = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: {")]
    return events, raw


def text_of(events: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["delta"].get("content") or "" for e in events for c in e.get("choices") or () if c.get("index") == index
    )


def pieces(text: str, cuts: list[int]) -> list[dict[str, Any]]:
    bounds = [0, *cuts, len(text)]
    return [{"content": text[a:b]} for a, b in itertools.pairwise(bounds) if b > a]


WITH_SECRET = f"Of course . Here is the key : {SECRET} keep it safe ."


def assert_stopped_before(events: list[dict[str, Any]], raw: bytes, text: str, at: int, index: int = 0) -> str:
    sent = text_of(events, index)
    assert sent == text[: len(sent)] and len(sent) <= at, sent
    assert b"sk-" not in raw
    finishes = [c.get("finish_reason") for e in events for c in e.get("choices") or ()]
    assert "content_filter" in finishes
    assert events[-1].get("error", {}).get("code") == "content_filter"
    return sent


def test_a_secret_cut_anywhere_never_reaches_the_client(sgw: Any, scripted: Scripted) -> None:
    """The key cut in two at every offset around it (one cut per answer), then cut one character a
    chunk, then arriving whole in the chunk that carries the finish: no byte of it is sent, what is
    sent is a prefix of the answer, the stop is a content_filter chunk then the error event."""
    gw = sgw()
    at = WITH_SECRET.index(SECRET)
    scripts = {f"c{cut}": [*pieces(WITH_SECRET, [cut]), {"finish_reason": "stop"}]
               for cut in range(at - 2, at + len(SECRET) + 2)}  # fmt: skip
    scripts["chars"] = [*pieces(WITH_SECRET, list(range(1, len(WITH_SECRET)))), {"finish_reason": "stop"}]
    scripts["last"] = [{"content": WITH_SECRET[:at]}, {"content": WITH_SECRET[at:], "finish_reason": "stop"}]
    scripts["one"] = [{"content": WITH_SECRET, "finish_reason": "stop"}]
    for name, script in scripts.items():
        scripted.scripts[name] = script
        events, raw = raw_chat(gw, f"go #script:{name}")
        assert_stopped_before(events, raw, WITH_SECRET, at)
    rows = gw.rows()
    assert len(rows) == len(scripts)
    assert all(r["status"] == "content_filtered" and r["meta"]["content_filter"] == "secret" for r in rows)


def test_a_secret_in_the_second_choice_stops_the_stream_before_it_leaves(sgw: Any, scripted: Scripted) -> None:
    """n=2, the choices' chunks interleaved: choice 1 carries the key, choice 0 is calm. Choice 0's
    passed text may go out; nothing of the key does, and the stop names choice 1."""
    gw = sgw()
    calm = "A calm answer about tomatoes and sun and water every day of the week ."
    script: list[Any] = []
    for k, word in enumerate(WITH_SECRET.split(" ")):
        script.append({"content": word + " ", "index": 1})
        script.append({"content": calm.split(" ")[k % 15] + " ", "index": 0})
    script += [{"finish_reason": "stop", "index": 0}, {"finish_reason": "stop", "index": 1}]
    scripted.scripts["n2"] = script
    events, raw = raw_chat(gw, "go #script:n2", n=2)
    assert b"sk-" not in raw
    stops = [c for e in events for c in e.get("choices") or () if c.get("finish_reason") == "content_filter"]
    assert [c["index"] for c in stops] == [1]
    assert text_of(events, 1) == (WITH_SECRET + " ")[: len(text_of(events, 1))]


def test_a_secret_in_a_refusal_is_stopped_streamed_and_not(sgw: Any, scripted: Scripted) -> None:
    """A refusal is text the client reads (chat's ``refusal``, a Responses refusal part): a model
    refusing while quoting the key must not hand it out. Before, only ``content`` was moderated:
    the key went out in ``delta.refusal`` (and in ``message.refusal``) untouched."""
    gw = sgw()
    refusal = f"I am sorry , I cannot share the key {SECRET} with you at all ."
    at = refusal.index(SECRET)
    scripted.scripts["ref"] = [*({"refusal": p["content"]} for p in pieces(refusal, [5, at + 3, at + 9])),
                               {"finish_reason": "stop"}]  # fmt: skip
    events, raw = raw_chat(gw, "go #script:ref")
    assert b"sk-" not in raw, raw
    sent = "".join(c["delta"].get("refusal") or "" for e in events for c in e.get("choices") or ())
    assert refusal.startswith(sent) and len(sent) <= at
    assert events[-1]["error"]["code"] == "content_filter"
    # the same refusal through the openai SDK on /v1/responses: an error event, then incomplete
    last = None
    for event in gw.client().responses.create(model="s-model", input="go #script:ref", stream=True):
        assert "sk-" not in json.dumps(event.model_dump())
        last = event
    assert last is not None and last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "content_filter"  # type: ignore[union-attr]
    # not streamed: the choice is a content_filter with its refusal withheld
    scripted.messages["ref"] = {"role": "assistant", "content": None, "refusal": refusal}
    with httpx.Client(timeout=60) as client:
        body = {"model": "s-model", "messages": [{"role": "user", "content": "go #script:ref"}]}
        r = client.post(f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert "sk-" not in r.text, r.text
    assert r.json()["choices"][0]["finish_reason"] == "content_filter"
    rows = gw.rows()
    assert [r["status"] for r in rows] == ["content_filtered"] * 3
    assert rows[0]["meta"]["content_filter"] == "secret"


def test_placeholders_are_restored_however_they_are_cut(sgw: Any, scripted: Scripted) -> None:
    """The masked address comes back whole with its placeholder cut at every offset (twice in one
    answer), a placeholder the model made up stays as it is, and no half placeholder is sent."""
    gw = sgw()
    answer = "Mail <EMAIL_ADDRESS_1> now , and again <EMAIL_ADDRESS_1> ; not <EMAIL_ADDRESS_7> ok ."
    expected = answer.replace("<EMAIL_ADDRESS_1>", EMAIL)
    for cut in range(5, 23):
        second = answer.index("<EMAIL_ADDRESS_1>", 10) + cut - 5
        scripted.scripts[f"p{cut}"] = [*pieces(answer, [cut, second]), {"finish_reason": "stop"}]
        events, _ = raw_chat(gw, f"write to {EMAIL} #script:p{cut}")
        chunks = [c["delta"].get("content") or "" for e in events for c in e.get("choices") or ()]
        assert "".join(chunks) == expected, cut
        assert not any("<EMAIL" in c and "<EMAIL_ADDRESS_7>" not in c for c in chunks), chunks
    # in a tool call's arguments, two characters a delta
    args = json.dumps({"to": "<EMAIL_ADDRESS_1>", "cc": ["<EMAIL_ADDRESS_1>"], "x": "<EMAIL_ADDRESS_9>"})
    opening = {"index": 0, "id": "c1", "type": "function", "function": {"name": "mail", "arguments": ""}}
    script: list[Any] = [{"tool_calls": [opening]}]
    script += [
        {"tool_calls": [{"index": 0, "function": {"arguments": args[k : k + 2]}}]} for k in range(0, len(args), 2)
    ]
    scripted.scripts["tc"] = [*script, {"finish_reason": "tool_calls"}]
    tools = [{"type": "function", "function": {"name": "mail", "parameters": {"type": "object"}}}]
    events, _ = raw_chat(gw, f"write to {EMAIL} #script:tc", tools=tools)
    got = "".join(tc["function"].get("arguments") or "" for e in events for c in e.get("choices") or ()
                  for tc in c["delta"].get("tool_calls") or ())  # fmt: skip
    assert json.loads(got) == {"to": EMAIL, "cc": [EMAIL], "x": "<EMAIL_ADDRESS_9>"}


@pytest.mark.parametrize("ending", ["finish", "no-finish"])
def test_text_held_as_a_possible_placeholder_is_not_lost_at_the_end(sgw: Any, scripted: Scripted, ending: str) -> None:
    """An answer whose last characters could begin a placeholder (``<``, ``<EMAIL_ADD`` cut by a
    length limit) keeps them: before, the restorer's tail was written into a throwaway delta when
    the finish chunk's delta was empty, and never flushed when the upstream sent no finish at all.
    Since 2026-12-06 an upstream stream without a finish is itself a failure (the answer may be
    cut): it ends with the error event, after nothing but a part of the answer."""
    gw = sgw()
    for k, answer in enumerate(["Mail it to me <", "Write to <EMAIL_ADD"]):
        end = [{"finish_reason": "length"}] if ending == "finish" else []
        scripted.scripts[f"t{k}"] = [*pieces(answer, [6]), *end]
        for moderated in (True,):
            events, raw = raw_chat(gw, f"write to {EMAIL} #script:t{k}")
            if ending == "no-finish":
                assert answer.startswith(text_of(events)), raw
                assert events[-1]["error"]["code"] == "upstream_protocol_error", raw
                continue
            assert text_of(events) == answer, (moderated, raw)
            assert raw.endswith(b"data: [DONE]\n\n")


def test_a_secret_in_reasoning_content_is_not_sent(sgw: Any, scripted: Scripted) -> None:
    gw = sgw()
    scripted.scripts["r"] = [{"reasoning_content": f"the key is {SECRET} ok "}, {"content": "fine ."},
                             {"finish_reason": "stop"}]  # fmt: skip
    _, raw = raw_chat(gw, "go #script:r")
    assert b"sk-" not in raw


def test_the_stop_in_each_api_shape_with_the_sdks(sgw: Any, scripted: Scripted) -> None:
    """The same stopped answer on /v1/messages (anthropic SDK) and /v1/responses (openai SDK): the
    SDKs raise, nothing of the key was handed over, and each request's row and guard event say so."""
    gw = sgw()
    at = WITH_SECRET.index(SECRET)
    scripted.scripts["s"] = [*pieces(WITH_SECRET, [3, at + 2, at + 10, at + 30]), {"finish_reason": "stop"}]
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    text = ""
    with pytest.raises(anthropic.APIStatusError) as info:  # noqa: SIM117 - the stream raises, not its opening
        with client.messages.stream(
            model="s-model", max_tokens=100, messages=[{"role": "user", "content": "go #script:s"}]
        ) as stream:
            for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text += event.delta.text
    assert info.value.body["error"]["code"] == "content_filter"  # type: ignore[index]
    assert WITH_SECRET.startswith(text) and len(text) <= at
    text = ""
    kinds = []
    for ev in gw.client().responses.create(model="s-model", input="go #script:s", stream=True):
        kinds.append(ev.type)
        text += getattr(ev, "delta", "") if ev.type == "response.output_text.delta" else ""
    assert WITH_SECRET.startswith(text) and len(text) <= at
    assert kinds[-2:] == ["error", "response.incomplete"]
    rows = gw.rows()
    assert [r["status"] for r in rows] == ["content_filtered"] * 2
    with gw.admin() as admin:
        blocks = admin.get("/admin/guard-events", params={"guard": "moderation", "verdict": "block"}).json()["data"]
    assert len(blocks) == 2 and all("sk-" not in json.dumps(b) for b in blocks), blocks


def test_a_long_calm_answer_streams_as_it_comes(sgw: Any, scripted: Scripted) -> None:
    """200 words one a chunk, 20 ms apart, then the upstream holds before it finishes: the client has
    most of the text while it holds (the holdback trails by windows, it does not buffer the answer),
    and all of it at the end. The hold is a gate the test releases, not a timing: comparing arrival
    times with the upstream's own pace could fail when the machine was slower than the pace."""
    gw = sgw()
    words = [f"word{k % 17} " for k in range(200)]
    gate = Gate()
    scripted.scripts["long"] = [*({"content": w} for w in words), gate, {"finish_reason": "stop"}]
    scripted.pause = 0.02
    got, held = "", None
    try:
        stream = gw.client().chat.completions.create(
            model="s-model", messages=[{"role": "user", "content": "go #script:long"}], stream=True
        )
        for chunk in stream:
            for c in chunk.choices:
                if c.delta.content:
                    got += c.delta.content
            if held is None and len(got) >= len("".join(words)) // 2:
                held = not gate.passed.is_set()  # half of it while the upstream still holds?
                gate.release()
    finally:
        gate.release()
    assert got == "".join(words)
    assert held, "half of the text came only once the upstream had finished: the answer was buffered"


def test_a_stopped_stream_is_one_block_event(sgw: Any, scripted: Scripted) -> None:
    """Every word is read by two windows (its own and, as context, the next), and a stream's checks
    run while text keeps coming: the window after the key's may be checked, and stopped on the same
    key, before the stream acts on the first verdict. The log said so twice (two ``block`` events
    for one stopped answer, now and then); it is one block per stopped answer."""
    gw = sgw()
    # window 1 (five six KEY seven) completes in one chunk, window 2 (eight..eleven, reading the
    # four words before it, the key among them) in the very next; then the upstream pauses, and
    # both checks answer while the stream waits for it
    chunks = ["one two three four ", f"five six {SECRET} seven ", "eight nine ten eleven ", 0.3, "twelve ."]
    scripted.scripts["w"] = [*({"content": c} if isinstance(c, str) else c for c in chunks), {"finish_reason": "stop"}]
    for _ in range(6):
        events, raw = raw_chat(gw, "go #script:w")
        assert b"sk-" not in raw and events[-1]["error"]["code"] == "content_filter"
    rows = gw.rows()
    with gw.admin() as admin:
        blocks = admin.get("/admin/guard-events", params={"guard": "moderation", "verdict": "block"}).json()["data"]
    assert sorted(b["request_id"] for b in blocks) == sorted(r["id"] for r in rows)


def test_a_withheld_answer_keeps_no_logprobs(sgw: Any, scripted: Scripted) -> None:
    """Not streamed, a stopped answer's content is withheld; its ``logprobs`` (asked for with
    ``logprobs: true``) spell the same text token by token, the key included, and went out as
    they came. A stream sends a chunk's logprobs only with its text, which the holdback covers."""
    gw = sgw()
    tokens = ["Here", " is", " the", " key", " :", " sk-", "proj-", SECRET[8:], " ok", " ."]
    logprobs = {"content": [{"token": t, "logprob": -0.1, "bytes": list(t.encode()), "top_logprobs": []}
                            for t in tokens]}  # fmt: skip
    scripted.messages["lp"] = {"role": "assistant", "content": "".join(tokens), "logprobs": logprobs}
    completion = gw.client().chat.completions.create(
        model="s-model", messages=[{"role": "user", "content": "go #script:lp"}], logprobs=True
    )
    assert completion.choices[0].finish_reason == "content_filter"
    assert "sk-" not in completion.model_dump_json()


def test_text_after_a_choices_finish_is_checked_too(sgw: Any, scripted: Scripted) -> None:
    """An upstream that goes on after a choice's finish chunk: the text it sends then was released
    unchecked (a finished text is sent whole once its windows passed, and the late words were in
    no window), so a key there went out. It is checked as it comes, like the rest."""
    gw = sgw()
    scripted.scripts["af"] = [{"content": "Hello there ."}, {"content": "", "finish_reason": "stop"},
                              {"content": SECRET}, {"content": " and more words here"}]  # fmt: skip
    events, raw = raw_chat(gw, "go #script:af")
    assert b"sk-" not in raw
    assert events[-1]["error"]["code"] == "content_filter"
    scripted.scripts["calm"] = [{"content": "Hello there ."}, {"content": "", "finish_reason": "stop"},
                                {"content": " Tomatoes"}, {"content": " like sun ."}]  # fmt: skip
    events, _ = raw_chat(gw, "go #script:calm")
    assert text_of(events) == "Hello there . Tomatoes like sun ."
