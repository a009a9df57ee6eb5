"""The same guard and cache cases on every API a client can speak, each through its official SDK.

Every stage runs on the one internal shape, so what the guards and the cache do must not depend on
the API: an injection is refused before the upstream, PII is masked upstream and restored in the
answer (streamed and not, in tool arguments too), a harmful stream is cut with nothing of its
flagged window sent, the guardrail log and the request row say the same, and a cached answer is
served in the asking API's shape. ``API`` is the list to extend when an API is added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import RunningGateway
from tests.test_guards_e2e import ATTACK, HARM, events, guarded  # noqa: F401  (the fixture)
from tests.upstream import FakeUpstream

EMAIL = "jane.doe@example.com"


@dataclass
class Reply:
    text: str
    tool_arguments: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False  # a stream that ended with the API's error event
    filtered: bool = False  # a non-streamed answer the output guard withheld
    headers: dict[str, str] = field(default_factory=dict)


class Chat:
    name = "chat"
    refused = openai.BadRequestError

    def ask(self, gw: RunningGateway, content: str, stream: bool = False, tools: bool = False) -> Reply:
        kwargs: dict[str, Any] = {
            "model": "test-model",
            "max_tokens": 40,
            "messages": [{"role": "user", "content": content}],
        }
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}]
        client = gw.client()
        if not stream:
            raw = client.chat.completions.with_raw_response.create(**kwargs)
            choice = raw.parse().choices[0]
            calls = [json.loads(c.function.arguments) for c in choice.message.tool_calls or ()]
            return Reply(choice.message.content or "", calls, filtered=choice.finish_reason == "content_filter",
                         headers=dict(raw.headers))  # fmt: skip
        raw = client.chat.completions.with_raw_response.create(stream=True, **kwargs)
        text, arguments, stopped = [], [], False
        try:
            for chunk in raw.parse():
                for choice in chunk.choices:
                    text.append(choice.delta.content or "")
                    arguments += [c.function.arguments or "" for c in choice.delta.tool_calls or ()]
        except openai.APIError:
            stopped = True
        calls = [json.loads("".join(arguments))] if arguments else []
        return Reply("".join(text), calls, stopped=stopped, headers=dict(raw.headers))

    @staticmethod
    def error_code(exc: Exception) -> str:
        return exc.body["code"]  # type: ignore[attr-defined,no-any-return]


class Messages:
    name = "messages"
    refused = anthropic.BadRequestError

    def ask(self, gw: RunningGateway, content: str, stream: bool = False, tools: bool = False) -> Reply:
        client = anthropic.Anthropic(base_url=gw.url, api_key="sk-admin-test-0123456789", max_retries=0)
        kwargs: dict[str, Any] = {
            "model": "test-model",
            "max_tokens": 40,
            "messages": [{"role": "user", "content": content}],
        }
        if tools:
            kwargs["tools"] = [{"name": "save", "input_schema": {"type": "object"}}]
        if not stream:
            raw = client.messages.with_raw_response.create(**kwargs)
            message = raw.parse()
            text = "".join(b.text for b in message.content if b.type == "text")
            calls = [b.input for b in message.content if b.type == "tool_use"]
            return Reply(text, calls, filtered=message.stop_reason == "refusal", headers=dict(raw.headers))
        text: list[str] = []
        stopped, calls = False, []
        with client.messages.stream(**kwargs) as events_:
            try:
                for piece in events_.text_stream:
                    text.append(piece)
                calls = [b.input for b in events_.get_final_message().content if b.type == "tool_use"]
            except anthropic.APIStatusError:
                stopped = True
            headers = dict(events_.response.headers)
        return Reply("".join(text), calls, stopped=stopped, headers=headers)

    @staticmethod
    def error_code(exc: Exception) -> str:
        return exc.body["error"]["code"]  # type: ignore[attr-defined,no-any-return]


class Responses:
    name = "responses"
    refused = openai.BadRequestError

    def ask(self, gw: RunningGateway, content: str, stream: bool = False, tools: bool = False) -> Reply:
        kwargs: dict[str, Any] = {"model": "test-model", "max_output_tokens": 40, "input": content}
        if tools:
            kwargs["tools"] = [{"type": "function", "name": "save", "parameters": {"type": "object"}}]
        client = gw.client()
        if not stream:
            raw = client.responses.with_raw_response.create(**kwargs)
            response = raw.parse()
            calls = [json.loads(item.arguments) for item in response.output if item.type == "function_call"]
            filtered = response.status == "incomplete" and response.incomplete_details.reason == "content_filter"
            return Reply(response.output_text, calls, filtered=filtered, headers=dict(raw.headers))
        raw = client.responses.with_raw_response.create(stream=True, **kwargs)
        text, arguments, stopped = [], [], False
        for event in raw.parse():
            if event.type == "response.output_text.delta":
                text.append(event.delta)
            elif event.type == "response.function_call_arguments.delta":
                arguments.append(event.delta)
            elif event.type == "error":
                stopped = True
        calls = [json.loads("".join(arguments))] if arguments else []
        return Reply("".join(text), calls, stopped=stopped, headers=dict(raw.headers))

    @staticmethod
    def error_code(exc: Exception) -> str:
        return exc.body["code"]  # type: ignore[attr-defined,no-any-return]


API = [Chat(), Messages(), Responses()]
by_name = pytest.mark.parametrize("api", API, ids=lambda a: a.name)


@by_name
def test_injection_is_refused_before_the_upstream(api: Any, guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    with pytest.raises(api.refused) as info:
        api.ask(gw, ATTACK)
    assert api.error_code(info.value) == "prompt_injection" and upstream.requests == []
    (blocked,) = events(gw, guard="injection", verdict="block")
    row = gw.rows()[0]
    assert blocked["request_id"] == row["id"] and row["api"] == api.name and row["error_code"] == "prompt_injection"


@by_name
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_pii_is_masked_upstream_and_restored(api: Any, stream: bool, guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    content = f"Please write to {EMAIL} about the invoice #echo"
    assert api.ask(gw, content, stream=stream).text == content
    assert EMAIL not in json.dumps(upstream.requests[-1]) and "<EMAIL_ADDRESS_1>" in json.dumps(upstream.requests[-1])
    (pii,) = events(gw, guard="pii")
    assert pii["verdict"] == "mask" and EMAIL not in json.dumps(pii)


@by_name
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_pii_is_restored_in_tool_arguments(api: Any, stream: bool, guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    gw = guarded()
    content = f"Save a note for {EMAIL} #tool-echo"
    assert api.ask(gw, content, stream=stream, tools=True).tool_arguments == [{"text": content}]
    assert EMAIL not in json.dumps(upstream.requests[-1])


@by_name
def test_a_harmful_stream_is_cut_before_its_flagged_window(api: Any, guarded: Any, upstream: FakeUpstream) -> None:  # noqa: F811
    upstream.scripts["harm"] = HARM
    gw = guarded()
    reply = api.ask(gw, "tell me a story #say:harm", stream=True)
    assert reply.stopped and reply.text == HARM[: len(reply.text)] and "kill" not in reply.text
    assert reply.text.startswith("Here is a calm answer")
    whole = api.ask(gw, "tell me a story #say:harm")
    assert whole.filtered and whole.text == ""
    rows = gw.rows()
    assert {(r["api"], r["status"]) for r in rows} == {(api.name, "content_filtered")}
    assert len(events(gw, guard="moderation", verdict="block")) == 2


@by_name
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_repeated_question_is_a_cache_hit(api: Any, stream: bool, make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway(cache={"enabled": True, "persist_path": str(tmp_path / "cache.sqlite")})
    first = api.ask(gw, "What is the capital of France?", stream=stream)
    again = api.ask(gw, "What is the capital of France?", stream=stream)
    assert first.headers["x-llmgw-cache"] == "miss" and again.headers["x-llmgw-cache"] == "hit"
    assert again.text == first.text and first.text
    assert sorted(r["status"] for r in gw.rows() if r["api"] == api.name) == ["cached", "ok"]
