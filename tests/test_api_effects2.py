"""More documented HTTP API behaviours that had no end-to-end test (docs/experiments/apitests-results.md,
"Still untested"), each through a real gateway with the official SDKs as clients:

- 400 ``unsupported_model``: embeddings from a model whose provider does not serve them (Bedrock, Anthropic);
- 400 ``upstream_content_filter``: the upstream's content filter refused the request (an OpenAI error body
  with ``code: content_filter``); not retried on the same model, but falls back to the route's next model;
- 400 ``invalid_image_url``: Bedrock takes images only as base64 ``data:`` URLs of png/jpeg/gif/webp;
- ``/v1/responses`` streamed: a failure after the stream began ends it with an ``error`` event and then
  ``response.failed`` (its ``error`` set), items still open closed ``incomplete`` first; and a ``responses:
  native`` upstream that ends its own stream with ``response.failed`` reaches the client the same way
  (``upstream_server_error``), on chat as a mid-stream error.

``tests/upstream.py`` got two markers for these: ``#code:NAME`` (with ``#status``, the error body's code) and
``#fail`` on its ``/v1/responses`` endpoint.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway
from tests.test_bedrock import Raw, on_send
from tests.upstream import FakeUpstream

BEDROCK = {
    "type": "bedrock",
    "region": "us-east-1",
    "access_key_id": "AKIATEST",
    "secret_access_key": "secret",
    "backoff_base_s": 0.001,
}


def row_of(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    return next(r for r in gw.rows() if r["id"] == request_id)


# --- unsupported_model --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["bedrock", "anthropic"])
def test_embeddings_from_a_provider_that_does_not_serve_them_is_unsupported_model(
    make_gateway: Any, upstream: FakeUpstream, provider: str
) -> None:
    """docs/api.md, ``POST /v1/embeddings``: other provider types than ``openai`` / ``sentence_transformers``
    answer 400 ``unsupported_model``, and nothing is sent anywhere."""
    config = BEDROCK if provider == "bedrock" else {"type": "anthropic", "base_url": upstream.base_url, "api_key": "k"}
    gw = make_gateway(
        providers={"other": config},
        models={
            "other-embed": {
                "provider": "other",
                "upstream_id": "emb-1",
                "kind": "embedding",
                "capabilities": ["embeddings"],
            },
            "test-model": {"provider": "up", "upstream_id": "fake-1"},
        },
    )
    sent = on_send(gw.gateway.providers["other"], "InvokeModel", [(500, {}, None)]) if provider == "bedrock" else []
    raw = httpx.post(
        f"{gw.url}/v1/embeddings",
        json={"model": "other-embed", "input": "hello"},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().embeddings.create(model="other-embed", input=["hello", "world"])
    assert info.value.status_code == 400 and info.value.code == "unsupported_model"
    assert raw.status_code == 400, raw.text
    error = raw.json()["error"]
    assert error["code"] == "unsupported_model" and error["type"] == "invalid_request_error"
    assert "does not serve embeddings" in error["message"]
    assert sent == [] and upstream.requests == [], "nothing was sent upstream"
    row = row_of(gw, raw.headers["x-llmgw-request-id"])
    assert (row["http_status"], row["error_code"]) == (400, "unsupported_model")


# --- upstream_content_filter ----------------------------------------------------------------------------

FILTERED = [{"role": "user", "content": "something nasty #status:400 #code:content_filter"}]


def test_an_upstream_content_filter_is_upstream_content_filter_and_not_retried(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    """docs/api.md, errors: 400 ``invalid_request_error`` ``upstream_content_filter`` when the upstream's content
    filter refused it (a plain upstream 400 is ``upstream_bad_request``); the same model is not tried again."""
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=FILTERED)
    assert info.value.status_code == 400 and info.value.code == "upstream_content_filter"
    assert info.value.type == "invalid_request_error"
    assert len(upstream.requests) == 1, "a content filter is not retried"
    row = row_of(gw, info.value.response.headers["x-llmgw-request-id"])
    assert (row["http_status"], row["error_code"]) == (400, "upstream_content_filter")
    # streamed: the error comes before the first chunk, so it is an ordinary HTTP error
    with pytest.raises(openai.BadRequestError) as streamed:
        gw.client().chat.completions.create(model="test-model", messages=FILTERED, stream=True)
    assert streamed.value.code == "upstream_content_filter"
    # the Responses API: the same HTTP error
    with pytest.raises(openai.BadRequestError) as responses:
        gw.client().responses.create(model="test-model", input="something nasty #status:400 #code:content_filter")
    assert responses.value.code == "upstream_content_filter"
    # the Anthropic Messages API: the same code, Anthropic's error type
    with pytest.raises(anthropic.BadRequestError) as messages:
        anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0).messages.create(
            model="test-model", max_tokens=20, messages=FILTERED
        )
    body: Any = messages.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "upstream_content_filter" in str(body)


def test_an_upstream_content_filter_falls_back_to_the_routes_next_model(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """llmgw/pipeline.py ``fall_back``: an upstream content filter is worth another model (unlike a bad request);
    the last model's filter is what the client sees."""
    gw = make_gateway(routes={"default": {"default_model": "test-model", "selection": {"fallbacks": ["other-model"]}}})
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=FILTERED)
    assert info.value.code == "upstream_content_filter"
    assert [r["model"] for r in upstream.requests] == ["fake-1", "fake-2"]
    row = row_of(gw, info.value.response.headers["x-llmgw-request-id"])
    assert row["meta"]["fallbacks"] == [{"from": "test-model", "to": "other-model", "error": "upstream_content_filter"}]
    # a plain upstream 400 does not fall back, and is upstream_bad_request
    upstream.reset()
    with pytest.raises(openai.BadRequestError) as plain:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#status:400"}])
    assert plain.value.code == "upstream_bad_request" and len(upstream.requests) == 1


# --- invalid_image_url -------------------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def bedrock_gateway(make_gateway: Any) -> RunningGateway:
    """A gateway whose default route serves one Bedrock model with vision."""
    return make_gateway(  # type: ignore[no-any-return]
        providers={"aws": BEDROCK},
        models={"claude": {"provider": "aws", "upstream_id": "anthropic.claude-3-haiku",
                           "capabilities": ["chat", "streaming", "vision"]}},
        routes={"default": {}},
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",  # not a data: URL
        f"data:image/bmp;base64,{PNG}",  # not png/jpeg/gif/webp
        f"data:image/png,{PNG}",  # not base64
        "data:image/png;base64,iVBO*Rw0K",  # not strict base64 (a lax decoder would drop the "*")
    ],
)
def test_a_bedrock_image_that_is_not_a_base64_data_url_is_invalid_image_url(make_gateway: Any, url: str) -> None:
    """docs/api.md, errors: 400 ``invalid_image_url`` on Bedrock for an image that is not a base64 ``data:`` URL
    of png/jpeg/gif/webp; ``param`` names the message; nothing reaches Bedrock."""
    gw = bedrock_gateway(make_gateway)
    sent = on_send(gw.gateway.providers["aws"], "Converse", [(500, {}, None)])
    content: Any = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    messages: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="claude", messages=messages)
    assert info.value.status_code == 400 and info.value.code == "invalid_image_url"
    assert info.value.type == "invalid_request_error"
    assert info.value.param is not None and info.value.param.startswith("messages[1].content")
    assert sent == [], "nothing was sent to Bedrock"
    row = row_of(gw, info.value.response.headers["x-llmgw-request-id"])
    assert (row["http_status"], row["error_code"]) == (400, "invalid_image_url")


def test_a_valid_bedrock_data_url_image_is_sent(make_gateway: Any) -> None:
    """The counterpart: a base64 png ``data:`` URL is accepted and sent as Converse image bytes."""
    gw = bedrock_gateway(make_gateway)
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "A cat"}]}}, "stopReason": "end_turn",
              "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}}  # fmt: skip
    sent = on_send(gw.gateway.providers["aws"], "Converse", [(200, {"content-type": "application/json"},
                                                              Raw([json.dumps(answer).encode()]))])  # fmt: skip
    content: Any = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    completion = gw.client().chat.completions.create(model="claude", messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == "A cat"
    block = json.loads(sent[0].body)["messages"][0]["content"][0]
    assert block["image"]["format"] == "png"


# --- Responses API: response.failed mid-stream -------------------------------------------------------------


def test_a_responses_stream_that_fails_midway_ends_with_error_then_response_failed(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    """docs/api.md, ``/v1/responses`` "Streaming": a failure after the stream began ends it with an ``error``
    event (``code``, ``message``, ``param``, ``request_id``) followed by ``response.failed`` (its ``error`` set);
    items still open are closed with status ``incomplete`` first."""
    client = gw.client()
    raw = client.responses.with_raw_response.create(model="test-model", input="tell me #drop:3 #slow:0.01", stream=True)
    request_id = raw.headers["x-llmgw-request-id"]
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds.count("response.output_text.delta") >= 1, kinds
    assert kinds[-2:] == ["error", "response.failed"], kinds
    assert "response.completed" not in kinds and "response.incomplete" not in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    error, failed = events[-2], events[-1]
    assert isinstance(error, openai.types.responses.ResponseErrorEvent)
    assert error.code and error.code.startswith("upstream_") and error.message
    assert error.model_extra is not None and error.model_extra.get("request_id") == request_id
    assert isinstance(failed, openai.types.responses.ResponseFailedEvent)
    assert failed.response.status == "failed" and failed.response.id == f"resp_{request_id}"
    assert failed.response.error is not None and failed.response.error.code == error.code
    assert failed.response.error.message == error.message
    # the message item that was open is closed incomplete before the error
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done and done[-1].item.status == "incomplete"
    assert kinds.index("response.output_item.done") < kinds.index("error")
    assert [i.status for i in failed.response.output] == ["incomplete"]
    row = row_of(gw, request_id)
    assert row["status"] == "error" and row["error_code"] == error.code


def test_the_responses_stream_helper_sees_response_failed(gw: RunningGateway) -> None:
    """The same through the SDK's ``client.responses.stream(...)`` helper: the events are typed, the text that
    arrived before the failure is there, and the last event is ``response.failed``."""
    with gw.client().responses.stream(model="test-model", input="tell me #drop:2") as stream:
        events = list(stream)
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "tok0 tok1 "
    assert events[-1].response.status == "failed"  # type: ignore[union-attr]


# --- a native Responses upstream whose stream fails -------------------------------------------------------


def test_a_native_responses_upstream_failing_midway_reaches_the_client_as_response_failed(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """A ``responses: native`` upstream that ends its stream with ``response.failed`` (docs/api.md errors: an
    error event mid-stream is 502 ``upstream_server_error``): a Responses client gets the text so far, then
    ``error`` and ``response.failed``; a chat client gets its chunks, then the stream's error."""
    provider = {"type": "openai", "base_url": upstream.base_url, "responses": "native", "max_retries": 0}
    model = {"provider": "resp", "upstream_id": "fake-r", "capabilities": ["chat", "streaming"]}
    gw = make_gateway(providers={"resp": provider}, models={"native-model": model}, routes={"default": {}})
    raw = gw.client().responses.with_raw_response.create(model="native-model", input="Hello #fail", stream=True)
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert upstream.paths == ["/v1/responses"]
    assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.failed"], kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "native: 1 items", "the text that came before the failure"
    error, failed = events[-2], events[-1]
    assert isinstance(error, openai.types.responses.ResponseErrorEvent)
    assert error.code == "upstream_server_error" and "scripted stream failure" in error.message
    assert isinstance(failed, openai.types.responses.ResponseFailedEvent)
    assert failed.response.error is not None and failed.response.error.code == "upstream_server_error"
    row = row_of(gw, raw.headers["x-llmgw-request-id"])
    assert row["status"] == "error" and row["error_code"] == "upstream_server_error"
    # the same upstream failure through Chat Completions: chunks, then an APIError mid-stream, no [DONE]
    stream = gw.client().chat.completions.create(
        model="native-model", messages=[{"role": "user", "content": "Hello #fail"}], stream=True
    )
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(got) and "upstream_server_error" in str(info.value.body)
