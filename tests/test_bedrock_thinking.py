"""Extended thinking on Bedrock (Claude through Converse): reasoning blocks out and back.

A tool loop with thinking must send the previous turn's thinking blocks back, signature and redacted
bytes unchanged, first in that assistant turn; Claude refuses the next turn otherwise. These tests
run the official SDKs against a real gateway whose Bedrock provider is answered through botocore's
own parsers (``before-send`` handlers return Converse JSON or event-stream bytes).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import pytest

from llmgw.errors import InvalidRequest
from llmgw.providers.bedrock_translate import StreamTranslator, from_converse, to_converse
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.test_bedrock import STREAM_HEADERS, Raw, event, on_send
from tests.test_bedrock_gateway import bedrock_gw  # noqa: F401  (the fixture)

SECRET_BYTES = b"\x00\x01opaque-redacted\xff"
REDACTED_B64 = base64.b64encode(SECRET_BYTES).decode()
THINKING_ANSWER = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "The user wants Paris.", "signature": "sig-1"}}},
                {"reasoningContent": {"redactedContent": REDACTED_B64}},  # a blob: base64 on the wire
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Paris"}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 20, "outputTokens": 30, "totalTokens": 50},
    "metrics": {"latencyMs": 9},
}
THINKING_STREAM = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "The user "}}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "wants Paris."}}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig-1"}}}),
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event("contentBlockDelta",
          {"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": REDACTED_B64}}}),
    event("contentBlockStop", {"contentBlockIndex": 1}),
    event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Checking."}}),
    event("contentBlockStop", {"contentBlockIndex": 2}),
    event("contentBlockStart", {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "tu1", "name": "weather"}}}),
    event("contentBlockDelta", {"contentBlockIndex": 3, "delta": {"toolUse": {"input": '{"city": "Paris"}'}}}),
    event("contentBlockStop", {"contentBlockIndex": 3}),
    event("messageStop", {"stopReason": "tool_use"}),
    event("metadata",
          {"usage": {"inputTokens": 20, "outputTokens": 30, "totalTokens": 50}, "metrics": {"latencyMs": 5}}),
]  # fmt: skip
FINAL_ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "It is sunny in Paris."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 60, "outputTokens": 8, "totalTokens": 68},
    "metrics": {"latencyMs": 9},
}
TOOLS = [{"name": "weather", "description": "Weather of a city", "input_schema": {"type": "object"}}]
THINKING = {"type": "enabled", "budget_tokens": 1024}


def json_answer(body: dict[str, Any]) -> tuple[int, dict[str, str], Raw]:
    return 200, {"content-type": "application/json"}, Raw([json.dumps(body).encode()])


def messages_client(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)


def ask(gw: RunningGateway, messages: list[dict[str, Any]]) -> Any:
    """A non-streamed Messages request with thinking on and the weather tool."""
    return messages_client(gw).messages.create(
        model="claude", max_tokens=2048, thinking=THINKING, tools=TOOLS, messages=messages,  # type: ignore[arg-type]
    )  # fmt: skip


def second_turn(gw: RunningGateway, first: list[dict[str, Any]]) -> dict[str, Any]:
    """The tool loop's next turn (the first turn's content sent back as it came), and the Converse
    request the gateway made of it."""
    provider = gw.gateway.providers["aws"]
    sent = on_send(provider, "Converse", [json_answer(FINAL_ANSWER)])
    reply = ask(gw, [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "sunny"}]},
    ])  # fmt: skip
    assert reply.content[0].type == "text" and reply.content[0].text == "It is sunny in Paris."
    return json.loads(sent[0].body)


def assert_thinking_sent_back(request: dict[str, Any]) -> None:
    assistant = request["messages"][1]
    assert assistant["role"] == "assistant"
    # reasoning first, unchanged: the text with its signature, the redacted block's bytes (base64 on the wire)
    assert assistant["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "The user wants Paris.", "signature": "sig-1"}}
    }
    assert assistant["content"][1] == {"reasoningContent": {"redactedContent": REDACTED_B64}}
    assert assistant["content"][2:] == [
        {"text": "Checking."},
        {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Paris"}}},
    ]
    assert request["additionalModelRequestFields"]["thinking"] == THINKING


def test_messages_tool_loop_with_thinking_non_streamed(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    sent = on_send(provider, "Converse", [json_answer(THINKING_ANSWER)])
    first = ask(bedrock_gw, [{"role": "user", "content": "Weather in Paris?"}])
    assert json.loads(sent[0].body)["additionalModelRequestFields"]["thinking"] == THINKING
    blocks = [b.model_dump(exclude_none=True) for b in first.content]
    assert blocks[0] == {"type": "thinking", "thinking": "The user wants Paris.", "signature": "sig-1"}
    assert blocks[1] == {"type": "redacted_thinking", "data": REDACTED_B64}
    assert [b["type"] for b in blocks[2:]] == ["text", "tool_use"] and first.stop_reason == "tool_use"
    assert_thinking_sent_back(second_turn(bedrock_gw, blocks))


def test_messages_tool_loop_with_thinking_streamed(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    provider = bedrock_gw.gateway.providers["aws"]
    on_send(provider, "ConverseStream", [(200, STREAM_HEADERS, Raw(THINKING_STREAM))])
    with messages_client(bedrock_gw).messages.stream(
        model="claude",
        max_tokens=2048,
        thinking=THINKING,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    blocks = [b.model_dump(exclude_none=True) for b in final.content]
    assert blocks[0] == {"type": "thinking", "thinking": "The user wants Paris.", "signature": "sig-1"}
    assert blocks[1] == {"type": "redacted_thinking", "data": REDACTED_B64}
    assert blocks[2] == {"type": "text", "text": "Checking."}
    assert blocks[3]["type"] == "tool_use" and blocks[3]["input"] == {"city": "Paris"}
    assert_thinking_sent_back(second_turn(bedrock_gw, blocks))


def test_chat_completion_carries_the_thinking_blocks(bedrock_gw: RunningGateway) -> None:  # noqa: F811
    """On chat the blocks are llmgw's ``thinking_blocks`` extension of the assistant message, as
    from an Anthropic upstream, and go back to Converse the same way."""
    provider = bedrock_gw.gateway.providers["aws"]
    on_send(provider, "Converse", [json_answer(THINKING_ANSWER)])
    completion = bedrock_gw.client().chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        extra_body={"thinking": THINKING},
    )
    message = completion.choices[0].message.model_dump(exclude_none=True)
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "The user wants Paris.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": REDACTED_B64},
    ]
    sent = on_send(provider, "Converse", [json_answer(FINAL_ANSWER)])
    bedrock_gw.client().chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            message,  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "tu1", "content": "sunny"},
        ],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        extra_body={"thinking": THINKING},
    )
    assert_thinking_sent_back(json.loads(sent[0].body))


def test_translation_units() -> None:
    kwargs = to_converse(
        {"messages": [{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "ok", "thinking_blocks": [
                          {"type": "thinking", "thinking": "t", "signature": "s"},
                          {"type": "redacted_thinking", "data": REDACTED_B64}]}]},
        "m",
    )  # fmt: skip
    assert kwargs["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
        {"reasoningContent": {"redactedContent": SECRET_BYTES}},  # bytes: botocore base64-encodes a blob
        {"text": "ok"},
    ]
    for bad, param in (
        ("nope", "messages[1].thinking_blocks"),
        ([{"type": "other"}], "messages[1].thinking_blocks[0].type"),
        ([{"type": "redacted_thinking", "data": "not base64!"}], "messages[1].thinking_blocks[0].data"),
    ):
        body = {"messages": [{"role": "user", "content": "hi"},
                             {"role": "assistant", "content": "ok", "thinking_blocks": bad}]}  # fmt: skip
        with pytest.raises(InvalidRequest) as info:
            to_converse(body, "m")
        assert info.value.param == param
    # botocore hands a redacted block over as bytes
    answer = json.loads(json.dumps(THINKING_ANSWER))
    answer["output"]["message"]["content"][1] = {"reasoningContent": {"redactedContent": SECRET_BYTES}}
    message = from_converse(answer, "m", "r1")["choices"][0]["message"]
    assert message["thinking_blocks"][1] == {"type": "redacted_thinking", "data": REDACTED_B64}
    translator = StreamTranslator("m", "r1")
    empty = {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": ""}}}}
    assert translator.feed(empty) == []
