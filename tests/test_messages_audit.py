"""An audit of ``POST /v1/messages`` against what an Anthropic SDK client relies on, through a real
gateway driven by the official ``anthropic`` SDK (the local upstreams of ``tests.upstream`` and
``tests.anthropic_upstream``, or a scripted one below).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from llmgw.anthropic.inbound import client_path
from tests.conftest import RunningGateway
from tests.test_guards_e2e import ATTACK, guarded  # noqa: F401  (the fixture)
from tests.test_messages import client
from tests.upstream import FakeUpstream, StubServer

# --- an error's param names the client's field, not the internal body's ---------------------------

#: a request whose internal body is shifted against the client's: a system prompt comes first, and
#: the last turn's two tool results become two ``tool`` messages before its text
SHIFTED: dict[str, Any] = {
    "model": "m",
    "max_tokens": 5,
    "system": [{"type": "text", "text": "Rules."}, {"type": "text", "text": "More rules."}],
    "messages": [
        {"role": "user", "content": "Read my mail."},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "...", "signature": "s"},
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "t1", "name": "inbox", "input": {}},
            {"type": "tool_use", "id": "t2", "name": "inbox", "input": {"folder": "spam"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "nothing"},
            {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "a"},
                                                                     {"type": "text", "text": "b"}]},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "text", "text": "Summarise."},
        ]},
    ],
    "tools": [{"name": "inbox", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "tool", "name": "inbox"},
    "stop_sequences": ["END", "STOP"],
    "metadata": {"user_id": "u-1"},
}  # fmt: skip


@pytest.mark.parametrize(
    ("internal", "client"),
    [
        ("messages[0].content[1].text", "system[1].text"),
        ("messages[1].content", "messages[0].content"),
        ("messages[2].content", "messages[1].content"),
        ("messages[2].tool_calls[1].function.arguments.folder", "messages[1].content[3].input.folder"),
        ("messages[2].tool_calls[0].function.name", "messages[1].content[2].name"),
        ("messages[2].thinking_blocks[0].thinking", "messages[1].content[0].thinking"),
        ("messages[3].content", "messages[2].content[0].content"),
        ("messages[3].tool_call_id", "messages[2].content[0].tool_use_id"),
        ("messages[4].content[1].text", "messages[2].content[1].content[1].text"),
        ("messages[5].content[0].image_url.url", "messages[2].content[2]"),
        ("messages[5].content[1].text", "messages[2].content[3].text"),
        ("messages[5].role", "messages[2]"),
        ("tools[0].function.name", "tools[0].name"),
        ("tools[0].function.parameters.properties", "tools[0].input_schema.properties"),
        ("tool_choice.function.name", "tool_choice.name"),
        ("stop[1]", "stop_sequences[1]"),
        ("user", "metadata.user_id"),
        ("messages", "messages"),
        ("max_tokens", "max_tokens"),
        ("messages[9].content", "messages[9].content"),  # no such internal message: left as it is
    ],
)
def test_an_internal_field_is_named_as_the_client_wrote_it(internal: str, client: str) -> None:
    assert client_path(SHIFTED, internal) == client


def test_a_string_tool_result_with_cache_control_is_named_by_its_content() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x",
                                      "cache_control": {"type": "ephemeral"}}]},
    ]}  # fmt: skip
    assert client_path(body, "messages[1].content[0].text") == "messages[1].content[0].content"


def test_an_injection_refusal_points_at_the_clients_turn(guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    """Before: a client with a system prompt was told its ``messages[1]`` (which it never sent) was
    an injection; a tool result's was named by the internal ``tool`` message's position."""
    gw = guarded()
    sdk = client(gw)
    cases = [
        ({"system": "Be brief.", "messages": [{"role": "user", "content": ATTACK}]}, "messages[0].content", "user"),
        ({"system": "Be brief.", "messages": [
            {"role": "user", "content": "Read my mail."},
            {"role": "assistant", "content": [{"type": "text", "text": "Reading."},
                                              {"type": "tool_use", "id": "t1", "name": "inbox", "input": {}},
                                              {"type": "tool_use", "id": "t2", "name": "inbox", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "fine"},
                                         {"type": "tool_result", "tool_use_id": "t2", "content": "mail: " + ATTACK}]},
        ]}, "messages[2].content[1].content", "tool"),
        ({"messages": [
            {"role": "user", "content": "Read my mail."},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "inbox", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "fine"},
                                         {"type": "text", "text": "Thanks."}, {"type": "text", "text": ATTACK}]},
        ]}, "messages[2].content[2].text", "user"),
    ]  # fmt: skip
    for body, param, source in cases:
        with pytest.raises(anthropic.BadRequestError) as info:
            sdk.messages.create(model="test-model", max_tokens=20, **body)
        error = info.value.body["error"]  # type: ignore[index]
        assert error["code"] == "prompt_injection"
        assert error["param"] == param
        assert error["message"].startswith(f"{param} looks like a prompt injection")
        assert f"source {source}" in error["message"]
    assert upstream.requests == []


def test_a_validation_error_after_translation_names_the_messages_field(gw: RunningGateway) -> None:
    """The chat validation that follows the translation names ``tools[0].function.name``: a
    Messages tool has no ``function``."""
    tools = [{"name": "x" * 65, "input_schema": {"type": "object"}}]
    ask = {"model": "test-model", "tools": tools, "messages": [{"role": "user", "content": "hi"}]}
    sdk = client(gw)
    for call in (lambda: sdk.messages.create(max_tokens=5, **ask), lambda: sdk.messages.count_tokens(**ask)):
        with pytest.raises(anthropic.BadRequestError) as info:
            call()
        assert info.value.body["error"]["param"] == "tools[0].name"  # type: ignore[index]
        assert "at 'tools[0].name'" in info.value.body["error"]["message"]  # type: ignore[index]
    assert gw.rows()[0]["error_message"].endswith("at 'tools[0].name'")


# --- a scripted Anthropic upstream: stop reasons and thinking blocks the stub does not play ---------


class ScriptedAnthropic(StubServer):
    """``POST /v1/messages`` answering the next of ``replies`` (a Messages response), as JSON or as
    Anthropic's stream events. Like Anthropic, it refuses a tool-use loop with thinking on whose
    last assistant turn does not start with the thinking block it answered (signature intact)."""

    thread_name = "scripted-anthropic"

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        refusal = thinking_refusal(body)
        if refusal is not None:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": refusal}}
            return web.json_response(error, status=400)
        reply = {"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"],
                 "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 7},
                 **self.replies.pop(0)}  # fmt: skip
        if not body.get("stream"):
            return web.json_response(reply)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        start = {**reply, "content": [], "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 1}}
        await response.write(sse_event("message_start", message=start))
        for i, block in enumerate(reply["content"]):
            for name, fields in block_events(block):
                await response.write(sse_event(name, index=i, **fields))
        delta = {"stop_reason": reply["stop_reason"], "stop_sequence": None}
        await response.write(sse_event("message_delta", delta=delta, usage={"output_tokens": 7}))
        await response.write(sse_event("message_stop"))
        return response

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)


def sse_event(name: str, **fields: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **fields})}\n\n".encode()


def block_events(block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind = block["type"]
    if kind == "text":
        opened, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": block["text"]}]
    elif kind == "tool_use":
        opened = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
    elif kind == "thinking":
        opened = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                  {"type": "signature_delta", "signature": block["signature"]}]  # fmt: skip
    else:
        opened, deltas = block, []
    return [("content_block_start", {"content_block": opened}),
            *(("content_block_delta", {"delta": d}) for d in deltas), ("content_block_stop", {})]  # fmt: skip


THOUGHT = {"type": "thinking", "thinking": "The user wants the weather: call the tool.", "signature": "c2lnbmVk"}


def thinking_refusal(body: dict[str, Any]) -> str | None:
    """Anthropic's rule: with thinking on, the assistant turn that a tool_result answers must be
    sent back starting with its thinking block, unmodified."""
    if (body.get("thinking") or {}).get("type") not in ("enabled", "adaptive"):
        return None
    turns = body["messages"]
    last = turns[-1]["content"]
    if not (isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)):
        return None
    i, assistant = len(turns) - 2, turns[-2]["content"]
    first = assistant[0] if isinstance(assistant, list) and assistant else {"type": "text"}
    if first != THOUGHT:
        return (f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{first.get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
                "with a thinking block")  # fmt: skip
    return None


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedAnthropic]:
    server = ScriptedAnthropic().start()
    yield server
    server.stop()


@pytest.fixture()
def scripted_gw(make_gateway: Any, scripted: ScriptedAnthropic) -> RunningGateway:
    scripted.requests.clear()
    scripted.replies.clear()
    provider = {"type": "anthropic", "base_url": scripted.base_url, "api_key": "sk-ant-up", "max_retries": 0}
    return make_gateway(
        providers={"claude": provider},
        models={"claude": {"provider": "claude", "upstream_id": "claude-up-1",
                           "capabilities": ["chat", "streaming", "tools"]}},
        routes={"default": {"default_model": "claude"}},
    )  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_answer_cut_at_the_context_window_is_not_a_complete_turn(
    scripted_gw: RunningGateway, scripted: ScriptedAnthropic, stream: bool
) -> None:
    """Anthropic's ``model_context_window_exceeded`` was read as a natural end: the client was told
    ``end_turn`` about an answer cut short. It is ``max_tokens``, the cut the Messages API has."""
    cut = {
        "content": [{"type": "text", "text": "The list goes on: 1, 2,"}],
        "stop_reason": "model_context_window_exceeded",
    }
    scripted.replies += [cut, cut]
    ask: dict[str, Any] = {"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "Count"}]}
    if stream:
        with client(scripted_gw).messages.stream(**ask) as events:
            final = events.get_final_message()
    else:
        final = client(scripted_gw).messages.create(**ask)
    assert final.content[0].text == "The list goes on: 1, 2,"  # type: ignore[union-attr]
    assert final.stop_reason == "max_tokens"
    with scripted_gw.admin() as admin:  # a chat client sees the cut too
        completion = admin.post("/v1/chat/completions", json={"model": "claude", "messages": ask["messages"]})
    assert completion.json()["choices"][0]["finish_reason"] == "length"


WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_thinking_blocks_survive_a_tool_loop(
    scripted_gw: RunningGateway, scripted: ScriptedAnthropic, upstream: FakeUpstream, stream: bool
) -> None:
    """What every agent with extended thinking does: send the assistant's content back as it came,
    with the tool's result. Anthropic refuses the second turn unless its thinking block (and
    signature) come back first; llmgw dropped them from the answer and from the history."""
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    scripted.replies += [{"content": [THOUGHT, call], "stop_reason": "tool_use"},
                         {"content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn"}]  # fmt: skip
    sdk = client(scripted_gw)
    ask: dict[str, Any] = {"model": "claude", "max_tokens": 2000, "tools": [WEATHER],
                           "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip

    def create(history: list[dict[str, Any]]) -> Any:
        if not stream:
            return sdk.messages.create(messages=history, **ask)
        with sdk.messages.stream(messages=history, **ask) as events:
            return events.get_final_message()

    history: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = create(history)
    assert [b.to_dict() for b in first.content] == [THOUGHT, call]
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
    history += [{"role": "assistant", "content": [b.to_dict() for b in first.content]},
                {"role": "user", "content": [result]}]  # fmt: skip
    second = create(history)
    assert second.content[0].text == "Sunny."
    assert scripted.requests[-1]["messages"][1]["content"][0] == THOUGHT
    # the same history to an OpenAI-compatible upstream: no thinking there (it would refuse the key)
    client(scripted_gw).messages.create(model="test-model", max_tokens=5, messages=history)
    assert upstream.requests[-1]["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }


# --- service_tier: a Messages field whose name Chat Completions shares -----------------------------


def test_service_tier_is_a_messages_field(gw: RunningGateway, upstream: FakeUpstream) -> None:
    """The SDK's ``service_tier`` was refused as "a Chat Completions parameter" (docs/api.md lists it
    as passed on). Anthropic's ``standard_only`` is OpenAI's ``default``; a tier Anthropic has not
    is a 400 naming it."""
    ask: dict[str, Any] = {"model": "test-model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    client(gw).messages.create(service_tier="standard_only", **ask)
    assert upstream.requests[-1]["service_tier"] == "default"
    client(gw).messages.create(service_tier="auto", **ask)
    assert upstream.requests[-1]["service_tier"] == "auto"
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gw).messages.create(extra_body={"service_tier": "flex"}, **ask)
    assert info.value.body["error"]["param"] == "service_tier"  # type: ignore[index]


def test_service_tier_reaches_an_anthropic_upstream(scripted_gw: RunningGateway, scripted: ScriptedAnthropic) -> None:
    answer = {"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"}
    scripted.replies += [answer, answer, answer]
    ask: dict[str, Any] = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    client(scripted_gw).messages.create(service_tier="standard_only", **ask)
    assert scripted.requests[-1]["service_tier"] == "standard_only"
    client(scripted_gw).messages.create(service_tier="auto", **ask)
    assert scripted.requests[-1]["service_tier"] == "auto"
    with scripted_gw.admin() as admin:  # a chat client's tier Anthropic has no per-request equivalent of
        admin.post("/v1/chat/completions", json={"service_tier": "flex", **ask}).raise_for_status()
    assert "service_tier" not in scripted.requests[-1]


def test_pii_in_a_thinking_block_is_masked_and_its_signature_left_alone(
    guarded: Any,  # noqa: F811
    scripted: ScriptedAnthropic,
) -> None:
    """The reasoning's text is scanned like any text sent upstream (masking it breaks its signature,
    and Anthropic then refuses the turn: PII never leaves); the signature is an opaque token."""
    scripted.requests.clear()
    scripted.replies[:] = [{"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"}]
    provider = {"type": "anthropic", "base_url": scripted.base_url, "api_key": "sk-ant-up", "max_retries": 0}
    model = {"provider": "claude", "upstream_id": "claude-up-1", "capabilities": ["chat"]}
    gw = guarded(providers={"claude": provider}, models={"claude": model})
    thought = {"type": "thinking", "thinking": "Write to jane.doe@example.com about it.", "signature": "c2lnbmVk"}
    history = [{"role": "user", "content": "Remind me."},
               {"role": "assistant", "content": [thought, {"type": "text", "text": "Noted."}]},
               {"role": "user", "content": "Thanks."}]  # fmt: skip
    client(gw).messages.create(model="claude", max_tokens=5, messages=history)
    sent = scripted.requests[-1]["messages"][1]["content"][0]
    assert sent == {**thought, "thinking": "Write to <EMAIL_ADDRESS_1> about it."}


def test_a_cached_answer_keeps_its_thinking_blocks(
    make_gateway: Any, scripted: ScriptedAnthropic, tmp_path: Path
) -> None:
    """A hit is the stored answer: without its thinking block (a streamed answer is put back
    together for the cache) the client's next turn of the tool loop would be refused."""
    scripted.requests.clear()
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    scripted.replies[:] = [{"content": [THOUGHT, call], "stop_reason": "tool_use"}]
    provider = {"type": "anthropic", "base_url": scripted.base_url, "api_key": "sk-ant-up", "max_retries": 0}
    model = {"provider": "claude", "upstream_id": "claude-up-1", "capabilities": ["chat", "streaming", "tools"]}
    gw = make_gateway(cache={"enabled": True, "persist_path": str(tmp_path / "cache.sqlite")},
                      providers={"claude": provider}, models={"claude": model})  # fmt: skip
    ask: dict[str, Any] = {"model": "claude", "max_tokens": 2000, "tools": [WEATHER],
                           "thinking": {"type": "enabled", "budget_tokens": 1024},
                           "messages": [{"role": "user", "content": "Weather in Paris?"}]}  # fmt: skip
    for expected in ("miss", "hit"):
        with client(gw).messages.stream(**ask) as events:
            final = events.get_final_message()
            assert events.response.headers["x-llmgw-cache"] == expected
        assert [b.to_dict() for b in final.content] == [THOUGHT, call]
    raw = client(gw).messages.with_raw_response.create(**ask)
    assert raw.headers["x-llmgw-cache"] == "hit"
    assert [b.to_dict() for b in raw.parse().content] == [THOUGHT, call]
    assert len(scripted.requests) == 1


def test_a_tool_use_input_that_is_no_object_is_refused(gw: RunningGateway, upstream: FakeUpstream) -> None:
    """Anthropic refuses it; llmgw passed it on as arguments the model never wrote."""
    result = {"type": "tool_result", "tool_use_id": "t", "content": "sunny"}
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": "Paris"}]},
               {"role": "user", "content": [result]}]  # fmt: skip
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gw).messages.create(model="test-model", max_tokens=5, messages=history)  # type: ignore[arg-type]
    assert info.value.body["error"]["param"] == "messages[1].content[0].input"  # type: ignore[index]
    assert upstream.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_redacted_and_plain_thinking_come_back_in_order(
    scripted_gw: RunningGateway, scripted: ScriptedAnthropic, stream: bool
) -> None:
    redacted = {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"}
    blocks = [redacted, THOUGHT, {"type": "text", "text": "Done.", "citations": None}]
    scripted.replies.append({"content": blocks, "stop_reason": "end_turn"})
    ask: dict[str, Any] = {"model": "claude", "max_tokens": 2000, "messages": [{"role": "user", "content": "Think."}],
                           "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    if stream:
        with client(scripted_gw).messages.stream(**ask) as events:
            final = events.get_final_message()
    else:
        final = client(scripted_gw).messages.create(**ask)
    assert [b.to_dict() for b in final.content] == [redacted, THOUGHT, {"type": "text", "text": "Done."}]
