"""Bedrock behind the gateway: the openai SDK talks OpenAI, boto3 talks Converse.

Answers come through botocore's real parser (``before-send`` handlers return event-stream bytes).
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import RunningGateway
from tests.test_bedrock import HAPPY_STREAM, STREAM_HEADERS, Raw, event, exception, on_send

CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Bonjour"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14},
    "metrics": {"latencyMs": 9},
}


@pytest.fixture()
def bedrock_gw(make_gateway) -> RunningGateway:  # type: ignore[no-untyped-def]
    return make_gateway(
        providers={
            "aws": {
                "type": "bedrock",
                "region": "us-east-1",
                "access_key_id": "AKIATEST",
                "secret_access_key": "secret",
                "backoff_base_s": 0.001,
            },
            "up": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
        },
        models={
            "claude": {
                "provider": "aws",
                "upstream_id": "anthropic.claude-3-haiku",
                "capabilities": ["chat", "streaming", "tools"],
                "price": {"input_per_mtok": 0.25, "output_per_mtok": 1.25},
            },
            "test-model": {"provider": "up", "upstream_id": "x"},
        },
        routes={"default": {}},
    )


def test_non_streamed_through_converse(bedrock_gw: RunningGateway) -> None:
    provider = bedrock_gw.gateway.providers["aws"]
    sent = on_send(
        provider,
        "Converse",
        [(200, {"content-type": "application/json"}, Raw([json.dumps(CONVERSE).encode()]))],
    )
    completion = bedrock_gw.client().chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be French."}, {"role": "user", "content": "Hello"}],
        max_tokens=50,
    )
    assert completion.choices[0].message.content == "Bonjour"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 11 and completion.model == "claude"
    request = json.loads(sent[0].body)
    assert request["system"] == [{"text": "Be French."}]
    assert request["inferenceConfig"]["maxTokens"] == 50
    assert "anthropic.claude-3-haiku" in sent[0].url
    row = bedrock_gw.rows()[0]
    assert row["provider"] == "aws" and row["cost_usd"] == pytest.approx((11 * 0.25 + 3 * 1.25) / 1e6)


def test_streamed_tool_call_through_converse_stream(bedrock_gw: RunningGateway) -> None:
    provider = bedrock_gw.gateway.providers["aws"]
    on_send(provider, "ConverseStream", [(200, STREAM_HEADERS, Raw(HAPPY_STREAM))])
    stream = bedrock_gw.client().chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me check."
    args = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
    )
    assert json.loads(args) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.prompt_tokens == 12 and chunks[-1].usage.completion_tokens == 7


def test_bedrock_throttling_mid_stream_reaches_the_client(bedrock_gw: RunningGateway) -> None:
    provider = bedrock_gw.gateway.providers["aws"]
    frames = [event("messageStart", {"role": "assistant"}),
              event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hal"}}),
              exception("throttlingException", "slow down")]  # fmt: skip
    on_send(provider, "ConverseStream", [(200, STREAM_HEADERS, Raw(frames))])
    stream = bedrock_gw.client().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="slow down"):
        list(stream)
    row = bedrock_gw.rows()[0]
    assert row["status"] == "error" and row["error_code"] == "upstream_rate_limited"


def test_bedrock_validation_error_is_400(bedrock_gw: RunningGateway) -> None:
    provider = bedrock_gw.gateway.providers["aws"]
    body = json.dumps({"message": "messages: too long"}).encode()
    headers = {"x-amzn-ErrorType": "ValidationException", "content-type": "application/json"}
    on_send(provider, "Converse", [(400, headers, Raw([body]))])
    with pytest.raises(openai.BadRequestError, match="too long"):
        bedrock_gw.client().chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
