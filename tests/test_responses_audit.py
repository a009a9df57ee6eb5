"""``POST /v1/responses`` API-surface audit: shapes the official openai SDK relies on, through a
real gateway server (tests/conftest.py) in front of the local stub upstream (tests/upstream.py)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import RunningGateway
from tests.test_pii import MESSAGE, RAW, pgw  # noqa: F401 (a fixture)
from tests.test_responses_stages import native  # noqa: F401 (a fixture)
from tests.upstream import REFUSAL, FakeUpstream


def test_a_streamed_refusal_reaches_the_client_as_refusal_events(gw: RunningGateway, upstream: FakeUpstream) -> None:
    """A chat upstream's ``delta.refusal`` (OpenAI's structured outputs refusing) becomes the message's
    ``refusal`` part with ``response.refusal.delta``/``.done`` events, as the non-streamed answer has it;
    it used to be dropped, leaving an empty answer."""
    events = list(gw.client().responses.create(model="test-model", input="tell me #refuse", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]  # fmt: skip
    assert kinds[-4:] == ["response.refusal.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.refusal.delta") == REFUSAL
    assert events[3].part.type == "refusal"
    final = events[-1].response
    assert final.status == "completed" and final.output[0].content[0].type == "refusal"
    assert final.output[0].content[0].refusal == REFUSAL


def test_a_refusal_is_the_same_streamed_or_not(gw: RunningGateway) -> None:
    client = gw.client()
    plain = client.responses.create(model="test-model", input="plain #refuse")
    with client.responses.stream(model="test-model", input="streamed #refuse") as stream:
        final = stream.get_final_response()
    assert plain.output[0].model_dump()["content"] == final.output[0].model_dump()["content"]
    assert plain.output[0].content[0].refusal == REFUSAL


def test_a_native_upstreams_streamed_refusal_is_kept(native: Any) -> None:  # noqa: F811
    """A ``responses: native`` upstream's ``response.refusal.delta`` events reach the client, through
    the Responses API and chat alike (they used to be dropped: an empty answer)."""
    gw = native()
    client = gw.client()
    with client.responses.stream(model="native-model", input="hi #refuse") as stream:
        final = stream.get_final_response()
    assert final.output[0].content[0].type == "refusal" and final.output[0].content[0].refusal == REFUSAL
    chunks = list(client.chat.completions.create(
        model="native-model", messages=[{"role": "user", "content": "hi #refuse"}], stream=True))  # fmt: skip
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == REFUSAL
    plain = client.responses.create(model="native-model", input="hi #refuse")
    assert plain.output[0].content[0].refusal == REFUSAL


@pytest.mark.parametrize("body", [{}, {"input": []}, {"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]}])
def test_an_empty_input_is_a_400_naming_input(gw: RunningGateway, upstream: FakeUpstream, body: dict[str, Any]) -> None:
    """The client's field is ``input``; the error used to name the internal ``messages``."""
    with pytest.raises(openai.BadRequestError) as raised:
        gw.client().responses.create(model="test-model", **body)
    assert raised.value.code == "invalid_value" and raised.value.param == "input"
    assert upstream.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_length_cut_is_incomplete_on_the_wire(gw: RunningGateway, upstream: FakeUpstream, stream: bool) -> None:
    client = gw.client()
    if stream:
        events = list(client.responses.create(model="test-model", input="long #length", max_output_tokens=5,
                                              stream=True))  # fmt: skip
        assert events[-1].type == "response.incomplete"
        assert [e.sequence_number for e in events] == list(range(len(events)))
        response = events[-1].response
    else:
        response = client.responses.create(model="test-model", input="long #length", max_output_tokens=5)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text and response.usage is not None and response.usage.output_tokens > 0
    assert response.max_output_tokens == 5 and upstream.requests[-1]["max_completion_tokens"] == 5


@pytest.mark.parametrize("stream", [False, True])
def test_pii_in_a_refusal_is_restored(pgw: Any, upstream: FakeUpstream, stream: bool) -> None:  # noqa: F811
    """A refusal quoting the question's masked values reaches the client with the values, not the
    placeholders the upstream saw (only ``content`` and tool arguments used to be restored)."""
    gw = pgw()
    client = gw.client()
    question = MESSAGE + " #refuse #echo"
    if stream:
        with client.responses.stream(model="test-model", input=question) as events:
            deltas = [e.delta for e in events if e.type == "response.refusal.delta"]
            final = events.get_final_response()
        assert "".join(deltas) == question
        assert not any("<" in d and "_" in d for d in deltas), "no placeholder fragment reaches the client"
    else:
        final = client.responses.create(model="test-model", input=question)
    sent = json.dumps(upstream.requests[-1])
    assert not [value for value in RAW.values() if value in sent], "raw PII reached the upstream"
    assert final.output[0].content[0].type == "refusal" and final.output[0].content[0].refusal == question


@pytest.mark.parametrize("stream", [False, True])
def test_text_and_reasoning_settings_are_echoed(gw: RunningGateway, upstream: FakeUpstream, stream: bool) -> None:
    """The response echoes what was asked (OpenAI does): ``text.verbosity`` and ``reasoning.summary``
    were dropped from the echo while ``text.format`` and ``reasoning.effort`` were kept."""
    params: dict[str, Any] = {"model": "test-model", "input": "hi", "text": {"format": {"type": "text"},
                              "verbosity": "low"}, "reasoning": {"effort": "low", "summary": "auto"}}  # fmt: skip
    if stream:
        events = list(gw.client().responses.create(stream=True, **params))
        responses = [events[0].response, events[-1].response]
    else:
        responses = [gw.client().responses.create(**params)]
    for response in responses:
        assert response.text is not None and response.text.verbosity == "low"
        assert response.reasoning is not None and response.reasoning.summary == "auto"
        assert response.reasoning.effort == "low"
    assert upstream.requests[-1]["verbosity"] == "low" and upstream.requests[-1]["reasoning_effort"] == "low"


@pytest.mark.parametrize("stream", [False, True])
def test_metadata_is_echoed_and_not_sent_to_a_chat_upstream(
    gw: RunningGateway, upstream: FakeUpstream, stream: bool
) -> None:
    """OpenAI's Chat Completions refuses ``metadata`` without ``store: true`` (400 "The 'metadata'
    parameter is only allowed when 'store' is enabled"), and a Responses request never carries
    ``store``: forwarding the Responses ``metadata`` failed every such request on OpenAI."""
    client = gw.client()
    if stream:
        response = list(client.responses.create(model="test-model", input="hi", metadata={"ticket": "T-1"},
                                                stream=True))[-1].response  # fmt: skip
    else:
        response = client.responses.create(model="test-model", input="hi", metadata={"ticket": "T-1"})
    assert response.metadata == {"ticket": "T-1"}
    assert "metadata" not in upstream.requests[-1] and "store" not in upstream.requests[-1]


def test_parallel_tool_calls_reaches_a_chat_upstream_only_with_tools(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    """OpenAI's Chat Completions refuses ``parallel_tool_calls`` without ``tools`` (400 "only allowed
    when 'tools' are specified"); the Responses API accepts it, and agents send it on every turn."""
    client = gw.client()
    response = client.responses.create(model="test-model", input="hi", parallel_tool_calls=False)
    assert response.parallel_tool_calls is False and "parallel_tool_calls" not in upstream.requests[-1]
    tools: Any = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    client.responses.create(model="test-model", input="hi", parallel_tool_calls=False, tools=tools)
    assert upstream.requests[-1]["parallel_tool_calls"] is False
