"""An audit of ``POST /v1/messages`` against what an Anthropic SDK client relies on, through a real
gateway driven by the official ``anthropic`` SDK (the local upstreams of ``tests.upstream`` and
``tests.anthropic_upstream``, or a scripted one below).
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from llmgw.anthropic.inbound import client_path
from tests.conftest import RunningGateway
from tests.test_guards_e2e import ATTACK, guarded  # noqa: F401  (the fixture)
from tests.test_messages import client
from tests.upstream import FakeUpstream

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
