"""The request id as the official SDKs read it: ``x-request-id`` (openai) and ``request-id``
(anthropic), the same id as ``x-llmgw-request-id`` and the row's, on answers and on errors.

A client that logs "the request id" from its SDK (``completion._request_id``,
``APIStatusError.request_id``) gets the id an operator finds in ``/admin/requests`` and that
``POST /v1/feedback`` takes; before, the SDKs read None."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway

USER = [{"role": "user", "content": "hi"}]


def test_openai_sdk_reads_the_rows_id(gw: RunningGateway) -> None:
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(model="test-model", messages=USER)
    completion = raw.parse()
    assert completion._request_id == raw.headers["x-llmgw-request-id"]
    response = client.responses.create(model="test-model", input="hi")
    stream = client.chat.completions.create(model="test-model", messages=USER, stream=True)
    streamed_id = stream.response.headers["x-request-id"]
    list(stream)
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="no-such-model", messages=USER)
    ids = {row["id"] for row in gw.rows()}
    assert {completion._request_id, response._request_id, streamed_id, refused.value.request_id} <= ids, ids
    assert None not in (completion._request_id, response._request_id, refused.value.request_id)


def test_anthropic_sdk_reads_the_rows_id(gw: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    message = client.messages.create(model="test-model", max_tokens=20, messages=USER)  # type: ignore[arg-type]
    with pytest.raises(anthropic.NotFoundError) as refused:
        client.messages.create(model="no-such-model", max_tokens=20, messages=USER)  # type: ignore[arg-type]
    ids = {row["id"] for row in gw.rows()}
    assert message._request_id is not None and refused.value.request_id is not None
    assert {message._request_id, refused.value.request_id} <= ids, ids
