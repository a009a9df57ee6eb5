"""Bad input and upstream failures: OpenAI-shaped errors with the right status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.providers import shape
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import FakeUpstream

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


def post(gw: RunningGateway, content: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json", **AUTH, **(headers or {})},
        timeout=10,
    )


def assert_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"}
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    assert error["message"]
    return error


def test_bad_json(gw: RunningGateway) -> None:
    assert_error(post(gw, b'{"model": "test-model", "messages": ['), 400, "invalid_json")
    assert_error(post(gw, b"[1, 2]"), 400, "invalid_json")
    assert_error(post(gw, b""), 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "test-model"}, None),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "test-model", "messages": []}, "messages"),
        ({"model": "test-model", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "test-model", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "test-model", "messages": [{"role": "user", "content": "x"}], "temperature": 7},
            "temperature",
        ),
        ({"model": "test-model", "messages": [{"role": "user", "content": "x"}], "n": "two"}, "n"),
        ({"model": "test-model", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "test-model", "messages": [{"role": "user", "content": "x"}], "llmgw": 3}, "llmgw"),
    ],
)
def test_wrong_types_name_the_parameter(gw: RunningGateway, body: dict, param: str | None) -> None:
    import json

    response = post(gw, json.dumps(body))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param, error


def test_sdk_raises_bad_request(gw: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError):
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}],
                                            temperature=9)  # fmt: skip


def test_oversized_body(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(server={"max_body_bytes": 2048})
    big = '{"model": "test-model", "messages": [{"role": "user", "content": "' + "x" * 5000 + '"}]}'
    response = post(gw, big)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"


def test_unknown_model_is_404(gw: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        gw.client().chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"


def test_missing_bad_and_revoked_keys(gw: RunningGateway) -> None:
    response = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "test-model", "messages": []})
    assert_error(response, 401, "missing_api_key")
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-llmgw-wrong").chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "x"}]
        )
    key = gw.create_key(team="search", models=["test-model"])
    client = gw.client(key["key"])
    assert client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="other-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_allowed"
    with gw.admin() as admin:
        assert admin.delete(f"/admin/keys/{key['id']}").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])


def test_upstream_500_is_retried_then_reported(gw: RunningGateway, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#status:500"}])
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_server_error"
    assert len(upstream.requests) == 3, "max_retries=2: three attempts before giving up"


def test_transient_failure_recovers(gw: RunningGateway, upstream: FakeUpstream) -> None:
    completion = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "#fail-times:2"}]
    )
    assert completion.choices[0].message.content
    assert len(upstream.requests) == 3
    row = gw.rows()[0]
    assert row["attempts"] == 3 and row["status"] == "ok"


def test_upstream_429(gw: RunningGateway) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#status:429"}])
    assert info.value.body["code"] == "upstream_rate_limited"


def test_upstream_400_is_not_retried(gw: RunningGateway, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#status:400"}])
    assert info.value.body["code"] == "upstream_bad_request"
    assert len(upstream.requests) == 1


def test_upstream_timeout_is_504(make_gateway, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(server={"request_timeout_s": 0.5})
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#sleep:2"}])
    assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"


def test_upstream_unreachable_is_503(gw: RunningGateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    assert info.value.body["code"] == "upstream_unavailable"


def test_stream_error_before_first_byte_has_http_status(gw: RunningGateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "#status:503"}], stream=True
        )
    assert info.value.status_code == 503


def test_mid_stream_drop_ends_with_error_event(gw: RunningGateway) -> None:
    stream = gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "#chunks:10 #drop:3"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3, "the chunks before the drop reach the client"
    assert "upstream" in str(info.value.message)
    row = gw.rows()[0]
    assert row["status"] == "error" and row["error_code"] == "upstream_protocol_error"


def test_mid_stream_drop_raw_sse_has_no_done(gw: RunningGateway) -> None:
    body = {
        "model": "test-model",
        "stream": True,
        "messages": [{"role": "user", "content": "#chunks:10 #drop:2"}],
    }
    response = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=AUTH, timeout=10)
    text = response.text
    assert '"error"' in text.splitlines()[-2]
    assert "[DONE]" not in text


def test_unknown_path_and_method(gw: RunningGateway) -> None:
    response = httpx.get(f"{gw.url}/v1/nothing", headers=AUTH)
    assert response.status_code == 404 and "error" in response.json()
    response = httpx.get(f"{gw.url}/v1/chat/completions", headers=AUTH)
    assert response.status_code == 405 and "error" in response.json()


def test_upstream_retry_after_reaches_the_client(make_gateway, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(providers={"up": {"type": "openai", "base_url": upstream.base_url, "max_retries": 0}})
    response = post(gw, '{"model": "test-model", "messages": [{"role": "user", "content": "#status:429"}]}')
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("shape", ["array", "usage_text", "negative_usage"])
def test_a_malformed_upstream_answer_is_a_502_with_a_row(gw: RunningGateway, shape: str, stream: bool) -> None:
    """Before: 500 internal_error and no row (negative usage also broke the audit stage)."""
    messages = [{"role": "user", "content": f"hello #bad:{shape}"}]
    if stream:
        chunks = gw.client().chat.completions.create(model="test-model", messages=messages, stream=True)
        with pytest.raises(openai.APIError) as info:
            list(chunks)
        assert info.value.body["code"] == "upstream_protocol_error"
    else:
        with pytest.raises(openai.APIStatusError) as info:
            gw.client().chat.completions.create(model="test-model", messages=messages)
        assert info.value.status_code == 502 and info.value.body["code"] == "upstream_protocol_error"
    assert "malformed" in info.value.message
    [row] = gw.rows()
    assert row["status"] == "error" and row["error_code"] == "upstream_protocol_error"
    assert row["http_status"] == (200 if stream else 502)  # a stream's status had gone out before the fault
    assert row["prompt_tokens"] >= 0 and row["completion_tokens"] >= 0 and row["cost_usd"] >= 0
    if stream:  # what was relayed before the fault is billed
        assert row["completion_tokens"] > 0 and row["usage_estimated"] is True


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        (shape.completion, {"choices": "none"}),
        (shape.completion, {"choices": [["a"]]}),
        (shape.completion, {"choices": [{"index": [0], "message": {"content": "x"}}]}),
        (shape.completion, {"choices": [{"message": "x"}]}),
        (shape.completion, {"choices": [{"message": {"content": 3}}]}),
        (shape.completion, {"choices": [{"message": {"tool_calls": [{"function": "f"}]}}]}),
        (shape.completion, {"choices": [{"message": {"tool_calls": [{"function": {"arguments": {}}}]}}]}),
        (shape.chunk, "text"),
        (shape.chunk, {"choices": [{"delta": {"content": ["a"]}}]}),
        (shape.chunk, {"choices": [{"delta": {"tool_calls": {"index": 0}}}]}),
    ],
)
def test_answer_shapes_the_stages_cannot_read_are_upstream_protocol_errors(check: Any, answer: Any) -> None:
    with pytest.raises(UpstreamError) as info:
        check(answer)
    assert info.value.status == 502 and info.value.code == "upstream_protocol_error"


def test_shapes_the_stages_read_pass() -> None:
    shape.completion({"choices": [{"message": {"content": [{"type": "text", "text": "a"}], "tool_calls": None}}]})
    shape.chunk({"choices": [], "usage": {"prompt_tokens": 1}})
    shape.chunk({"usage": {"prompt_tokens": 1}})
    shape.chunk({"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}}]})


def test_a_bug_is_a_500_that_still_leaves_a_row(gw: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gw.gateway.pipeline, "set_response_headers", broken)
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "internal_error" and "a bug" not in info.value.message
    [row] = gw.rows()
    assert row["status"] == "error" and row["http_status"] == 500 and row["error_code"] == "internal_error"


def test_an_upstream_error_of_an_unknown_kind_fails_loudly() -> None:
    """A misspelt kind used to become a 502 ``upstream_server_error`` that retried and fell back."""
    with pytest.raises(ValueError, match="rate_limit"):
        UpstreamError("rate_limit", "upstream said slow down")
    err = UpstreamError("rate_limited", "upstream said slow down", retry_after=2)
    assert err.kind is UpstreamKind.RATE_LIMITED and (err.status, err.code) == (429, "upstream_rate_limited")
    assert err.retryable and err.headers == {"retry-after": "2"}
