"""The row says what the client got when the answer itself fails to render.

The pipeline produced a completion; turning it into the client's answer (a Responses ``response``,
a Messages ``message``, chat's JSON) or into a stream's events is the last step, and a bug there is
what the client sees: a 500 in the API's shape, or a stream that ends with the API's error event.
The request's row must say so (``status: error``, the ``http_status`` and ``internal_error``), not
``ok``/200: reviewers and operators read the rows as the record of what clients were answered.

The gateway runs in this process (``RunningGateway``), so the rendering is broken with
``monkeypatch``; the clients are the official ``openai`` and ``anthropic`` SDKs.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from llmgw.anthropic.render import MessagesEvents
from llmgw.api import front
from llmgw.responses_api.stream import ResponsesEvents
from tests.conftest import ADMIN_KEY, RunningGateway

MESSAGE: list[MessageParam] = [{"role": "user", "content": "hi"}]
CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


class RenderingBug(Exception):
    """What the broken rendering raises."""


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RenderingBug("rendering bug")


def messages_client(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)


def only_row(gw: RunningGateway) -> dict[str, Any]:
    rows = gw.rows()
    assert len(rows) == 1, rows
    return rows[0]


def assert_row_says(row: dict[str, Any], http_status: int, request_id: str) -> None:
    assert row["id"] == request_id
    got = {k: row[k] for k in ("status", "http_status", "error_code")}
    assert got == {"status": "error", "http_status": http_status, "error_code": "internal_error"}, row
    assert "RenderingBug" in row["error_message"]


def break_midway(monkeypatch: pytest.MonkeyPatch, events: type[Any]) -> None:
    """The stream's encoder fails on its third chunk (the first deltas are out), and its error event
    fails too: the bug left the encoder's state unusable. (A chunk failing alone already ended with the
    API's error event and an error row; with its error event failing too, the stream was cut.)"""
    chunk = events.chunk
    calls: list[int] = []

    def third_fails(self: Any, data: dict[str, Any]) -> bytes:
        calls.append(1)
        if len(calls) == 3:
            raise RenderingBug("rendering bug")
        return chunk(self, data)

    monkeypatch.setattr(events, "chunk", third_fails)
    monkeypatch.setattr(events, "error", broken)


# --- not streamed: a 500 in the API's shape, and the row says 500 -------------------------------------


def test_a_response_that_fails_to_render_is_a_500_on_its_row(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(front, "to_response", broken)
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().responses.create(model="test-model", input="hi")
    assert info.value.code == "internal_error"
    assert_row_says(only_row(gw), 500, info.value.response.headers["x-llmgw-request-id"])


def test_a_message_that_fails_to_render_is_a_500_on_its_row(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(front, "message", broken)
    with pytest.raises(anthropic.InternalServerError) as info:
        messages_client(gw).messages.create(model="test-model", max_tokens=20, messages=MESSAGE)
    body: Any = info.value.body
    assert body["type"] == "error" and body["error"]["code"] == "internal_error"
    assert_row_says(only_row(gw), 500, body["request_id"])


def test_a_chat_answer_that_fails_to_encode_is_a_500_on_its_row(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chat's answer is the completion as it is: its encoding to JSON is its rendering (here it
    fails on a value JSON cannot hold, as a bug in a stage could leave there)."""
    complete = gw.pipeline.complete

    async def with_a_stray_object(ctx: Any) -> dict[str, Any]:
        completion = await complete(ctx)
        completion["stray"] = RenderingBug("rendering bug")
        return completion

    monkeypatch.setattr(gw.pipeline, "complete", with_a_stray_object)
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="test-model", messages=CHAT)
    assert info.value.code == "internal_error"
    row = only_row(gw)
    assert row["id"] == info.value.response.headers["x-llmgw-request-id"]
    got = {k: row[k] for k in ("status", "http_status", "error_code")}
    assert got == {"status": "error", "http_status": 500, "error_code": "internal_error"}, row


# --- streamed: the stream ends with the API's error event, and the row says so ------------------------


def test_a_responses_stream_that_fails_to_render_midway_ends_with_an_error_event(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_midway(monkeypatch, ResponsesEvents)
    events = list(gw.client(timeout=30).responses.create(model="test-model", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert "response.output_text.delta" in kinds and "response.completed" not in kinds, kinds
    last = events[-1]
    assert last.type == "error" and last.code == "internal_error", last
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert_row_says(only_row(gw), 200, last.model_extra["request_id"])  # type: ignore[index]


def test_a_messages_stream_that_fails_to_render_midway_ends_with_an_error_event(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_midway(monkeypatch, MessagesEvents)
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        messages_client(gw).messages.create(model="test-model", max_tokens=20, messages=MESSAGE, stream=True) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert "content_block_delta" in seen and "message_stop" not in seen, seen
    body: Any = info.value.body
    assert body["type"] == "error" and body["error"] == {
        "type": "api_error",
        "message": "internal error while streaming: RenderingBug",
        "code": "internal_error",
    }
    assert_row_says(only_row(gw), 200, body["request_id"])
