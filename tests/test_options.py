"""The gateway options decoded once (``llmgw.options``) and the message walker (``llmgw.messages``).

The server tests send options through the SDK and check the answers; these check the decoding
itself: what each spelling means, and that every malformed option is a 400 naming its field.
"""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.errors import InvalidRequest
from llmgw.messages import insert_before_last_user, last_user_text, only_text, text_of
from llmgw.options import GatewayOptions, PromptOption, RetrievalOption, decode_options, read_options


def test_headers_are_options_and_the_body_wins() -> None:
    body: dict[str, Any] = {"model": "m", "llmgw": {"cache": "off", "route": "batch"}}
    headers = {"x-llmgw-route": "other", "x-llmgw-retrieval": '{"collection": "kb", "k": 3}', "x-llmgw-task": "code"}
    options = read_options(body, headers, max_depth=32)
    assert "llmgw" not in body, "the option object is not sent upstream"
    assert options == GatewayOptions(route="batch", task="code", cache="off",
                                     retrieval=RetrievalOption(collection="kb", k=3))  # fmt: skip


def test_spellings_and_defaults() -> None:
    assert decode_options({}) == GatewayOptions()
    assert decode_options({"route": 123}).route == "123"
    assert decode_options({"something_new": {"x": 1}}) == GatewayOptions(), "unknown options are left out"
    assert decode_options({"retrieval": False}).retrieval == RetrievalOption(off=True)
    assert decode_options({"retrieval": "kb"}).retrieval == RetrievalOption(collection="kb")
    assert decode_options({"retrieval": ""}).retrieval == RetrievalOption(), "empty: the route's collection"
    assert decode_options({"retrieval": {"min_score": 1}}).retrieval == RetrievalOption(min_score=1.0)
    assert decode_options({"prompt": "greeter@v2"}).prompt == PromptOption("greeter@v2")
    given = decode_options({"prompt": {"id": "greeter", "variables": {"name": "Ada"}}, "prompt_variables": {"x": 1}})
    assert given.prompt == PromptOption("greeter", None, {"name": "Ada"}) and given.prompt_variables == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "param", "message"),
    [
        ({"cache": "sometimes"}, "llmgw.cache", "llmgw.cache must be one of force, off, refresh, no-store"),
        ({"task": ""}, "llmgw.task", "llmgw.task must be a task name"),
        ({"task": 3}, "llmgw.task", "llmgw.task must be a task name"),
        ({"retrieval": 3}, "llmgw.retrieval", "llmgw.retrieval must be an object or a collection name"),
        ({"retrieval": {"k": 0}}, "llmgw.retrieval.k", "llmgw.retrieval.k must be an integer from 1 to 50"),
        ({"retrieval": {"k": True}}, "llmgw.retrieval.k", "llmgw.retrieval.k must be an integer from 1 to 50"),
        ({"retrieval": {"min_score": -1}}, "llmgw.retrieval.min_score", "llmgw.retrieval.min_score must be"),
        ({"retrieval": {"filters": {"a": {"$ne": 1}}}}, "llmgw.retrieval.filters", "llmgw.retrieval.filters must"),
        ({"retrieval": {"mode": "fuzzy"}}, "llmgw.retrieval.mode", "llmgw.retrieval.mode must be hybrid"),
        ({"retrieval": {"colection": "kb"}}, "llmgw.retrieval.colection", "unknown field llmgw.retrieval.colection"),
        ({"retrieval": "../etc"}, "llmgw.retrieval.collection", "invalid collection name"),
        ({"prompt": 3}, "llmgw.prompt", "llmgw.prompt must be an object or 'id@version'"),
        ({"prompt": {"version": "v1"}}, "llmgw.prompt.id", "llmgw.prompt.id must be a template id"),
        ({"prompt": {"id": "g", "version": 2}}, "llmgw.prompt.version", "llmgw.prompt.version must be a string"),
        ({"prompt": {"id": "g", "variables": ["x"]}}, "llmgw.prompt.variables", "prompt variables must be an object"),
        ({"prompt_variables": "x"}, "llmgw.prompt.variables", "prompt variables must be an object"),
    ],
)
def test_a_malformed_option_is_a_400_naming_it(raw: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_options(raw)
    assert info.value.status == 400 and info.value.param == param and info.value.message.startswith(message)


def test_the_message_walker() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "b"}]
    assert text_of(parts) == "ab" and text_of("x") == "x" and text_of(None) == ""
    assert only_text(parts) is None, "an image cannot be compared as text"
    assert only_text([{"type": "text", "text": "a"}, {"text": "b"}]) == "ab"
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"}, {"role": "user", "content": parts}]  # fmt: skip
    assert last_user_text({"messages": messages}) == "ab" and last_user_text({"messages": messages[:1]}) == ""
    added = [{"role": "system", "content": "passages"}]
    assert insert_before_last_user(messages, added)[3] == added[0]
    assert insert_before_last_user(messages[:1], added) == [messages[0], added[0]], "no user turn: at the end"
