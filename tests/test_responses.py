"""``POST /v1/responses`` through a real gateway server, with the official openai SDK as the client.

The stub upstream speaks Chat Completions: what it received shows the translation, what the
client got shows the rendering back into the Responses API.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pydantic
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import FakeUpstream

TOOLS = [{"type": "function", "name": "get_weather", "description": "weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]  # fmt: skip


def row_of(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    return next(r for r in gw.rows() if r["id"] == request_id)


def test_non_streamed_response(gw: RunningGateway, upstream: FakeUpstream) -> None:
    raw = gw.client().responses.with_raw_response.create(
        model="test-model", instructions="Be brief.", input="Hello there", max_output_tokens=40, temperature=0.5,
        metadata={"ticket": "T-1"}, user="u-7",
    )  # fmt: skip
    response = raw.parse()
    request_id = raw.headers["x-llmgw-request-id"]
    assert response.id == f"resp_{request_id}" and response.object == "response"
    assert response.status == "completed" and response.model == "test-model"
    assert response.output_text == "echo: 2 messages"
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None and response.usage.output_tokens == 4
    assert response.usage.total_tokens == response.usage.input_tokens + 4
    assert response.instructions == "Be brief." and response.metadata == {"ticket": "T-1"}
    sent = upstream.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    assert sent["max_completion_tokens"] == 40 and sent["temperature"] == 0.5 and sent["model"] == "fake-1"
    assert "input" not in sent and "instructions" not in sent and "max_output_tokens" not in sent
    row = row_of(gw, request_id)
    assert row["api"] == "responses" and row["endpoint"] == "responses" and row["status"] == "ok"
    assert row["user"] == "u-7" and row["completion_tokens"] == 4
    assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] * 1.0 + 4 * 2.0) / 1e6)
    assert float(raw.headers["x-llmgw-cost-usd"]) == pytest.approx(row["cost_usd"])


def test_native_is_refused_with_azure() -> None:
    from llmgw.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="responses: native is not supported with azure"):
        parse_config({"providers": {"az": {"type": "openai", "base_url": "https://x", "azure": True,
                                           "responses": "native"}}}, env={})  # fmt: skip


def test_chat_rows_say_chat(gw: RunningGateway) -> None:
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert row_of(gw, raw.headers["x-llmgw-request-id"])["api"] == "chat"


def test_streamed_events_in_order(gw: RunningGateway, upstream: FakeUpstream) -> None:
    events = list(gw.client().responses.create(model="test-model", input="count #chunks:4", stream=True))
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "tok0 tok1 tok2 tok3 "
    done = events[-1].response
    assert done.status == "completed" and done.output_text == "tok0 tok1 tok2 tok3 "
    assert done.usage.output_tokens == 4 and done.usage.input_tokens > 0
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}


def test_the_sdks_stream_helper_assembles_the_answer(gw: RunningGateway) -> None:
    with gw.client().responses.stream(model="test-model", input="count #chunks:3") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "tok0 tok1 tok2 "


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip(gw: RunningGateway, upstream: FakeUpstream, stream: bool) -> None:
    client = gw.client()
    first_input: list[Any] = [{"role": "user", "content": "Weather in Paris? #tool #chunks:1"}]
    if stream:
        with client.responses.stream(model="test-model", input=first_input, tools=TOOLS) as s:
            kinds = [e.type for e in s]
            first = s.get_final_response()
        assert "response.function_call_arguments.done" in kinds
    else:
        first = client.responses.create(model="test-model", input=first_input, tools=TOOLS, tool_choice="auto")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    assert calls[0].call_id == "call_1"
    assert upstream.requests[-1]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "weather in a city", "parameters": TOOLS[0]["parameters"]}}]  # fmt: skip
    # the second turn: the call and its output go back as items
    second = client.responses.create(
        model="test-model", tools=TOOLS,
        input=[*first_input, *[item.model_dump(exclude_none=True) for item in first.output],
               {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp_c": 21}'},
               {"role": "user", "content": "Thanks!"}],
    )  # fmt: skip
    assert second.output_text == "echo: 4 messages"
    messages = upstream.requests[-1]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'}


def test_text_before_a_call_is_one_assistant_turn(gw: RunningGateway, upstream: FakeUpstream) -> None:
    gw.client().responses.create(model="test-model", input=[
        {"role": "user", "content": "hi"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
        {"type": "function_call", "call_id": "c9", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c9", "output": [{"type": "input_text", "text": "done"}]},
    ])  # fmt: skip
    messages = upstream.requests[-1]["messages"]
    assert messages[1]["content"] == "Let me look." and messages[1]["tool_calls"][0]["id"] == "c9"
    assert messages[2] == {"role": "tool", "tool_call_id": "c9", "content": "done"}


class Weather(pydantic.BaseModel):
    city: str
    temp_c: int


def test_structured_output(gw: RunningGateway, upstream: FakeUpstream) -> None:
    upstream.scripts["json"] = '{"city": "Paris", "temp_c": 21}'
    parsed = gw.client().responses.parse(model="test-model", input="weather as JSON #say:json", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", temp_c=21)
    sent = upstream.requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Weather"
    assert sent["json_schema"]["strict"] is True and sent["json_schema"]["schema"]["properties"]["city"]
    streamed = list(gw.client().responses.create(
        model="test-model", input="weather as JSON #say:json", stream=True,
        text={"format": {"type": "json_schema", "name": "w", "schema": Weather.model_json_schema()}},
    ))  # fmt: skip
    assert json.loads(streamed[-1].response.output_text) == {"city": "Paris", "temp_c": 21}


def test_length_cut_is_incomplete() -> None:
    """A chat answer cut by its length is an incomplete response (the embedded-model test sees it live)."""
    from llmgw.responses_api.response import to_response

    completion = {"model": "m", "created": 1, "choices": [{"message": {"content": "cut"}, "finish_reason": "length"}]}
    response = to_response(completion, {"model": "test-model", "input": "x"}, "r1")
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_previous_response_id_is_refused(gw: RunningGateway, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().responses.create(model="test-model", input="and then?", previous_response_id="resp_123")
    body = info.value.body
    assert body["code"] == "unsupported_parameter" and body["param"] == "previous_response_id"
    assert "no conversation state" in body["message"] and body["type"] == "invalid_request_error"
    assert upstream.requests == []
    rows = gw.rows()
    assert rows[0]["http_status"] == 400 and rows[0]["api"] == "responses", "a refused request still has its row"


def test_store_is_accepted_and_nothing_is_kept(gw: RunningGateway, upstream: FakeUpstream) -> None:
    response = gw.client().responses.create(model="test-model", input="hi", store=True)
    assert response.status == "completed" and response.to_dict()["store"] is False
    assert "store" not in upstream.requests[-1]


def test_authentication_comes_before_the_body(gw: RunningGateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        gw.client(api_key="sk-llmgw-nope").responses.create(model="test-model", input="hi",
                                                            previous_response_id="resp_1")  # fmt: skip


BAD_BODIES: list[tuple[dict[str, Any], str | None]] = [
    ({"input": "hi"}, "model"),  # no model
    ({"model": "test-model", "input": 5}, "input"),
    ({"model": "test-model", "input": [5]}, "input[0]"),
    ({"model": "test-model", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "test-model", "input": [{"role": "user", "content": 7}]}, "input[0].content"),
    ({"model": "test-model", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "input[0].content[0].type"),
    ({"model": "test-model", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
    ({"model": "test-model", "input": [{"type": "web_search_call"}]}, "input[0].type"),
    ({"model": "test-model", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"model": "test-model", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
     "input[0].call_id"),
    ({"model": "test-model", "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
     "input[0].output"),
    ({"model": "test-model", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "test-model", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "test-model", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "test-model", "input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
    ({"model": "test-model", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"model": "test-model", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
     "text.format.schema"),
    ({"model": "test-model", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "test-model", "input": "x", "temperature": 3}, "temperature"),
    ({"model": "test-model", "input": "x", "conversation": "conv_1"}, "conversation"),
    ({"model": "test-model", "input": "x", "background": True}, "background"),
    ({"model": "test-model", "input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
]  # fmt: skip


def test_bad_input_is_a_400_naming_the_parameter(gw: RunningGateway, upstream: FakeUpstream) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=gw.url, headers=headers, timeout=10) as http:
        for body, param in BAD_BODIES:
            response = http.post("/v1/responses", json=body)
            assert response.status_code == 400, (body, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"], body
            assert error["param"] == param, (body, error)
        for raw in (b"", b"[1, 2]", b"{not json", b'{"model": "test-model", "input": "\xff"}'):
            response = http.post("/v1/responses", content=raw, headers={"content-type": "application/json"})
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json", raw
    assert upstream.requests == []


WEIRD = [None, 0, -1, 1.5, True, "", "x", [], [None], [1], ["x"], {}, {"type": None}, {"type": 1},
         [{"type": "message"}], [{"type": "message", "role": "user", "content": [None]}], {"format": 1}]  # fmt: skip


def test_no_value_in_any_field_is_a_500(gw: RunningGateway) -> None:
    """Every field of the request, each value of a zoo of wrong types: an answer or a 4xx, never a 5xx."""
    from llmgw.responses_api.request import RESPONSES_FIELDS

    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=gw.url, headers=headers, timeout=10) as http:
        for field in sorted(RESPONSES_FIELDS - {"model", "llmgw", "stream"}):
            for value in WEIRD:
                body = {"model": "test-model", "input": "hello", field: value}
                response = http.post("/v1/responses", json=body)
                assert response.status_code < 500, (field, value, response.text)
                if response.status_code >= 400:
                    assert response.json()["error"]["message"], (field, value)


def test_translated_fields_pass_the_strict_unknown_fields_rule(make_gateway, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(server={"unknown_fields": "reject"})
    gw.client().responses.create(
        model="test-model", input="hi", text={"verbosity": "low"}, reasoning={"effort": "low"},
        safety_identifier="s-1", prompt_cache_key="k", service_tier="auto",
    )  # fmt: skip
    sent = upstream.requests[-1]
    assert sent["verbosity"] == "low" and sent["reasoning_effort"] == "low" and sent["safety_identifier"] == "s-1"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().responses.create(model="test-model", input="hi", extra_body={"top_k": 5})
    assert info.value.body["code"] == "unknown_parameter" and info.value.body["param"] == "top_k"


def test_text_after_a_tool_call_is_a_message_of_its_own() -> None:
    """Rare upstreams write text after a call: it opens a second message, never touches a closed item."""
    from llmgw.responses_api.stream import ResponsesEvents

    events = ResponsesEvents({"model": "m", "input": "x"}, "r")
    delta = [{"index": 0, "delta": {"content": "A"}}]
    call = [
        {"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}}
    ]
    out = b"".join(events.chunk({"choices": c}) for c in (delta, call, [{"index": 0, "delta": {"content": "B"}}]))
    out += events.end()
    parsed = [json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: ")]
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    final = parsed[-1]["response"]
    assert [(i["type"], i["id"]) for i in final["output"]] == [("message", "msg_r"), ("function_call", "fc_r_0"),
                                                             ("message", "msg_r_2")]  # fmt: skip
    assert [i["content"][0]["text"] for i in final["output"] if i["type"] == "message"] == ["A", "B"]
    done = [e["item"]["id"] for e in parsed if e["type"] == "response.output_item.done"]
    assert sorted(done) == ["fc_r_0", "msg_r", "msg_r_2"]


def test_gateway_options_in_the_body_and_headers(gw: RunningGateway, upstream: FakeUpstream) -> None:
    client = gw.client()
    with pytest.raises(openai.PermissionDeniedError):  # the narrow route allows only other-model
        client.responses.create(model="test-model", input="hi", extra_body={"llmgw": {"route": "narrow"}})
    raw = client.responses.with_raw_response.create(
        model="other-model", input="hi", extra_headers={"x-llmgw-route": "narrow"}
    )
    assert raw.headers["x-llmgw-route"] == "narrow" and raw.parse().model == "other-model"
    assert "llmgw" not in upstream.requests[-1]


def test_ignored_fields_never_reach_the_upstream(gw: RunningGateway, upstream: FakeUpstream) -> None:
    from llmgw.responses_api.request import IGNORED

    body = {"store": True, "include": ["reasoning.encrypted_content"], "truncation": "auto", "max_tool_calls": 3,
            "stream_options": {"include_obfuscation": False}, "top_logprobs": 2}  # fmt: skip
    assert set(body) == IGNORED
    gw.client().responses.create(model="test-model", input="hi", extra_body=body)
    assert not IGNORED & set(upstream.requests[-1])
