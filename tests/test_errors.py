"""Bad input and upstream failures: OpenAI-shaped errors with the right status, never a 500."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import event

from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.limits.auth_failures import AuthFailures
from llmgw.providers import shape
from tests.conftest import ADMIN_KEY, RunningGateway, free_port
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

    monkeypatch.setattr(gw.pipeline, "set_response_headers", broken)
    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "internal_error" and "a bug" not in info.value.message
    [row] = gw.rows()
    assert row["status"] == "error" and row["http_status"] == 500 and row["error_code"] == "internal_error"


@pytest.mark.parametrize(
    ("upstream_says", "client_gets"),
    [
        ("-5", "0"),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("2.5", "3"),
        ("99999999", "3600"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "0"),  # a date in the past
        (None, "120"),  # a date two minutes ahead, filled in below
    ],
)
def test_upstream_retry_after_is_made_sane(
    make_gateway,
    upstream: FakeUpstream,
    upstream_says: str | None,
    client_gets: str | None,  # type: ignore[no-untyped-def]
) -> None:
    gw = make_gateway(providers={"up": {"type": "openai", "base_url": upstream.base_url, "max_retries": 0}})
    if upstream_says is None:
        upstream_says = format_datetime(datetime.now(UTC) + timedelta(seconds=121), usegmt=True)
    upstream.retry_after = upstream_says
    response = post(gw, '{"model": "test-model", "messages": [{"role": "user", "content": "#status:429"}]}')
    assert_error(response, 429, "upstream_rate_limited")
    if client_gets is None:
        assert "retry-after" not in response.headers
    elif upstream_says.endswith("GMT") and client_gets == "120":
        assert 110 <= int(response.headers["retry-after"]) <= 121
    else:
        assert response.headers["retry-after"] == client_gets


# --- hostile input: malformed bodies and headers are the client's fault (400), never a 500 ----

CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "x"}]}
DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture()
def no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A client's fault is answered, not logged as a server error with a traceback."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/v1/feedback", "/admin/keys"])
@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"model": "\xff\xfe", "name": "\xc3\x28"}', "not valid UTF-8"),
        (b'{"model": "test-model", "name": "k", "x": ' + DEEP.encode() + b"}", "deeper than 64"),
        (b'{"model": ' + b"[" * 100_000 + b"}", "deeper than 64"),
    ],
)
def test_undecodable_bodies_are_400(
    gw: RunningGateway, no_error_logs: None, path: str, body: bytes, words: str
) -> None:
    response = httpx.post(f"{gw.url}{path}", content=body, headers={"content-type": "application/json", **AUTH})
    error = assert_error(response, 400, "invalid_json")
    assert words in error["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_option_header_holding_deep_json_is_400(gw: RunningGateway, no_error_logs: None, path: str) -> None:
    body = {**CHAT, "model": "up-embed", "input": "x"} if "embeddings" in path else CHAT
    response = httpx.post(f"{gw.url}{path}", json=body, headers={**AUTH, "x-llmgw-route": DEEP}, timeout=10)
    assert_error(response, 400, "invalid_json", param="x-llmgw-route")
    # a header that is not JSON at all is still just a string (here: an unknown route)
    response = httpx.post(f"{gw.url}{path}", json=body, headers={**AUTH, "x-llmgw-route": "[nope"}, timeout=10)
    assert_error(response, 400, "unknown_route")


def test_json_depth_is_configurable(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(server={"max_json_depth": 4})
    nested = {**CHAT, "metadata_like": {"a": {"b": {"c": 1}}}}  # depth 4: allowed
    assert post(gw, json.dumps(nested)).status_code == 200
    nested["metadata_like"]["a"]["b"]["c"] = [1]  # depth 5
    assert_error(post(gw, json.dumps(nested)), 400, "invalid_json")


# --- header limits -------------------------------------------------------------------------


def test_oversized_and_too_many_headers_are_431(gw: RunningGateway, no_error_logs: None) -> None:
    big = post(gw, json.dumps(CHAT), headers={"x-big": "a" * 1_000_000})
    error = assert_error(big, 431, "request_headers_too_large")
    assert "server.max_header_bytes" in error["message"] and len(big.content) < 1000
    many = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=CHAT,
        headers=[*AUTH.items(), *((f"x-h{i}", "v") for i in range(5000))],
        timeout=10,
    )
    assert "server.max_headers" in assert_error(many, 431, "request_headers_too_large")["message"]
    assert post(gw, json.dumps(CHAT), headers={"x-fine": "a" * 8000}).status_code == 200


def test_header_limits_are_configurable(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(server={"max_headers": 20, "max_header_bytes": 2000})
    ok = {f"x-h{i}": "v" for i in range(8)}
    assert post(gw, json.dumps(CHAT), headers=ok).status_code == 200
    many = {f"x-h{i}": "v" for i in range(20)}
    assert_error(post(gw, json.dumps(CHAT), headers=many), 431, "request_headers_too_large")
    assert_error(post(gw, json.dumps(CHAT), headers={"x-big": "a" * 2000}), 431, "request_headers_too_large")


def test_an_invalid_option_value_is_not_echoed_in_full(gw: RunningGateway, no_error_logs: None) -> None:
    route = "r" * 20_000
    response = post(gw, json.dumps(CHAT), headers={"x-llmgw-route": route})
    error = assert_error(response, 400, "unknown_route", param="llmgw.route")
    assert "rrrr" in error["message"] and len(error["message"]) < 200
    response = post(gw, json.dumps({**CHAT, "model": "m" * 50_000}))
    assert len(assert_error(response, 404, "model_not_found")["message"]) < 200


# --- admin input and the database (PostgreSQL refuses NUL in text and over-long varchar) ------

NUL = "a\x00b"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "param"),
    [
        ("POST", "/admin/keys", {"json": {"name": NUL}}, "name"),
        ("POST", "/admin/keys", {"json": {"name": "x" * 201}}, "name"),
        ("POST", "/admin/keys", {"json": {"name": "k", "team": NUL}}, "team"),
        ("POST", "/admin/keys", {"json": {"name": "k", "user": "u" * 5000}}, "user"),
        ("POST", "/v1/feedback", {"json": {"request_id": "r", "label": NUL}}, "label"),
        ("POST", "/v1/feedback", {"json": {"request_id": NUL, "score": 1}}, "request_id"),
        ("DELETE", "/admin/keys/a%00b", {}, None),
        ("GET", "/admin/requests", {"params": {"key_id": NUL}}, None),
        ("GET", "/admin/requests", {"params": {"key_id": "k" * 41}}, "key_id"),
        ("GET", "/admin/usage", {"params": {"day": NUL}}, None),
        ("GET", "/admin/usage", {"params": {"day": "d" * 300}}, "day"),
        ("GET", "/admin/guard-events", {"params": {"team": NUL}}, None),
        ("GET", "/admin/guard-events", {"params": {"guard": "g" * 300}}, "guard"),
        ("GET", "/admin/guard-events/export", {"params": {"key_id": NUL}}, None),
        ("GET", "/admin/requests/a%00b/trail", {}, None),
        ("GET", "/admin/review", {"params": {"team": NUL}}, None),
    ],
)
def test_nul_bytes_and_overlong_values_are_400_on_postgres(
    make_gateway,
    pg_url: str,
    no_error_logs: None,
    method: str,
    path: str,
    kwargs: dict,
    param: str | None,  # type: ignore[no-untyped-def]
) -> None:
    gw = make_gateway(pg_url)
    with gw.admin() as admin:
        response = admin.request(method, path, **kwargs)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error


@pytest.fixture()
def private_postgres() -> Iterator[Callable[[str], None]]:
    """A PostgreSQL of this test's own (never the shared one), to stop and start at will."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries or not shutil.which("runuser"):
        pytest.skip("no PostgreSQL server binaries")
    bin_dir, port = binaries[-1], free_port()
    root = Path(tempfile.mkdtemp(prefix="llmgw-pg-"))  # pytest's tmp_path is closed to other users
    shutil.chown(root, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", f"{root}/data", "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"

    def pg_ctl(action: str) -> None:
        args = [str(bin_dir / "pg_ctl"), "-D", f"{root}/data", "-w", "-l", f"{root}/log", action]
        if action == "start":
            args[1:1] = ["-o", options]
        subprocess.run([*as_postgres, *args], check=True, capture_output=True)

    pg_ctl("start")
    pg_ctl.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"  # type: ignore[attr-defined]
    yield pg_ctl
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", f"{root}/data", "-m", "immediate", "stop"],
                   capture_output=True)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def test_admin_api_while_the_database_is_down_is_503(make_gateway, private_postgres, caplog) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(private_postgres.url)
    assert gw.create_key(name="before")["key"]
    private_postgres("stop")
    caplog.set_level(logging.WARNING)
    with gw.admin() as admin:
        for method, path, body in [("POST", "/admin/keys", {"name": "during"}), ("GET", "/admin/requests", None),
                                   ("GET", "/admin/keys", None)]:  # fmt: skip
            error = assert_error(admin.request(method, path, json=body), 503, "storage_unavailable")
            assert error["type"] == "server_error"
    # an unknown llmgw key cannot be checked either: 503, not 500 (and not a silent 401)
    response = post(gw, json.dumps(CHAT), headers={"authorization": "Bearer sk-llmgw-not-a-real-key"})
    assert_error(response, 503, "storage_unavailable")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    private_postgres("start")
    assert gw.create_key(name="after")["key"]


# --- authentication: one rule for every way a key is presented; unknown keys cost bounded reads ---


def test_other_authorization_schemes_are_refused_not_anonymous(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "allow_anonymous": True})
    key = gw.create_key()
    with gw.admin() as admin:
        assert admin.delete(f"/admin/keys/{key['id']}").status_code == 200
    for value in (f"Basic {key['key']}", f"Token {key['key']}", "Basic dXNlcjpwYXNz", "Bearer"):
        response = post(gw, json.dumps(CHAT), headers={"authorization": value})
        error = assert_error(response, 401, "invalid_api_key")
        assert "Bearer" in error["message"], error
    assert post(gw, json.dumps(CHAT), headers={"authorization": f"Bearer {key['key']}"}).status_code == 401
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT).status_code == 200, "no key at all: anonymous"


def key_reads(gw: RunningGateway) -> list[str]:
    """Every read of one key by its hash the gateway runs from now on (not the periodic refresh)."""
    reads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "api_keys.sha256 =" in statement:
            reads.append(statement)

    event.listen(gw.gateway.engine, "before_cursor_execute", count)
    return reads


def test_distinct_unknown_keys_cost_bounded_database_reads(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "max_failed_auth_per_minute": 5})
    good = gw.create_key()["key"]
    reads = key_reads(gw)
    for i in range(5):
        assert_error(post(gw, json.dumps(CHAT), headers={"authorization": f"Bearer sk-llmgw-made-up-{i}"}), 401,
                     "invalid_api_key")  # fmt: skip
    assert len(reads) == 5
    assert_error(post(gw, json.dumps(CHAT), headers={"authorization": "Bearer sk-llmgw-made-up-0"}), 401,
                 "invalid_api_key")  # fmt: skip
    assert len(reads) == 5, "a key just found unknown is remembered (negative cache)"
    for i in range(5, 50):
        response = post(gw, json.dumps(CHAT), headers={"authorization": f"Bearer sk-llmgw-made-up-{i}"})
        assert_error(response, 429, "too_many_failed_authentications")
        assert 0 < int(response.headers["retry-after"]) <= 60
    assert len(reads) == 5, "past the limit, unknown keys from this client never reach the database"
    assert post(gw, json.dumps(CHAT), headers={"authorization": f"Bearer {good}"}).status_code == 200
    # past the limit any key this replica does not know is refused, not only sk-llmgw- ones: else the
    # admin key could be guessed at full speed (tests/test_authsec_audit.py)
    assert_error(post(gw, json.dumps(CHAT), headers={"authorization": "Bearer not-an-llmgw-key"}), 429,
                 "too_many_failed_authentications")  # fmt: skip
    assert len(reads) == 5, "only sk-llmgw- keys live in the database: other keys never cost a read"


def test_anonymous_callers_with_made_up_keys_cost_no_database_reads(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "allow_anonymous": True})
    reads = key_reads(gw)
    for i in range(30):
        assert post(gw, json.dumps(CHAT), headers={"authorization": f"Bearer unused-{i}"}).status_code == 200
    assert reads == []


def test_failed_authentications_are_counted_per_client_and_ipv6_block() -> None:
    now = [0.0]
    failures = AuthFailures(per_minute=2, max_clients=3, clock=lambda: now[0])
    for _ in range(2):
        failures.record("2001:db8::1")
    assert failures.wait_s("2001:db8::ffff") == 60.0, "the same /64"
    assert failures.wait_s("2001:db8:0:1::1") == 0.0, "another /64"
    assert failures.wait_s("10.0.0.1") == 0.0
    now[0] = 61.0
    assert failures.wait_s("2001:db8::1") == 0.0, "a new minute"
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        failures.record(address)
    assert len(failures._windows) == 3, "bounded: the oldest client is forgotten"


def test_a_request_refused_for_a_malformed_user_still_gets_its_row(make_gateway, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """Found by schemathesis: ``"user": {...}`` reached the row's varchar column and failed its whole batch."""
    gw = make_gateway(pg_url)
    assert_error(post(gw, json.dumps({**CHAT, "user": {"email": "x@example.com"}})), 400, "invalid_value", "user")
    assert post(gw, json.dumps({**CHAT, "user": "u-1"})).status_code == 200
    rows = gw.rows()
    assert sorted((r["http_status"], r["user"]) for r in rows) == [(200, "u-1"), (400, None)]


def test_an_upstream_error_of_an_unknown_kind_fails_loudly() -> None:
    """A misspelt kind used to become a 502 ``upstream_server_error`` that retried and fell back."""
    with pytest.raises(ValueError, match="rate_limit"):
        UpstreamError("rate_limit", "upstream said slow down")
    err = UpstreamError("rate_limited", "upstream said slow down", retry_after=2)
    assert err.kind is UpstreamKind.RATE_LIMITED and (err.status, err.code) == (429, "upstream_rate_limited")
    assert err.retryable and err.headers == {"retry-after": "2"}


@pytest.mark.parametrize(
    ("content", "stream"),
    [("#sleep:3", False), ("#sleep:3", True), ("#slow:3 #chunks:3", True)],
    ids=["plain", "streamed-before-the-first-byte", "streamed-mid-stream"],
)
def test_a_stalled_upstream_is_a_timeout_with_a_row(make_gateway, content: str, stream: bool) -> None:  # type: ignore[no-untyped-def]
    """An upstream that stops sending (before its answer, or between two chunks) is cut at the
    request's deadline: the client gets upstream_timeout (504, or the error event once the stream
    has started), never a hang, and the request has its row."""
    gw = make_gateway(server={"request_timeout_s": 0.5})
    messages = [{"role": "user", "content": content}]
    if stream:
        with pytest.raises(openai.APIError) as info:
            list(gw.client().chat.completions.create(model="test-model", messages=messages, stream=True))
    else:
        with pytest.raises(openai.APIStatusError) as info:
            gw.client().chat.completions.create(model="test-model", messages=messages)
        assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"
    [row] = gw.rows()
    assert row["error_code"] == "upstream_timeout" and row["status"] == "error"
