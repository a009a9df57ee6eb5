"""Documented HTTP API behaviours no other test asserted end to end, each through a real gateway with the
official SDKs (``openai``, ``anthropic``) as clients, or httpx where the raw answer is what matters:

- the Azure-style ``api-key`` header authenticates (and attributes the row to the key) on every endpoint;
- streams on every API carry ``cache-control: no-cache`` and ``x-accel-buffering: no`` (docs/api.md,
  "Response headers"), so a proxy does not buffer them;
- every chunk of a chat stream has ``id`` ``chatcmpl-<request id>`` and the catalog ``model``;
- a non-streamed answer always has ``usage``, estimated (and the row marked) when the upstream gave none;
- ``/v1/embeddings`` answers and errors carry ``x-llmgw-request-id`` (and answers ``x-llmgw-model``), with the
  catalog name as ``model``;
- upstream 401/403/404/408/503/504/529 become the documented status and code, retried or not;
- ``GET /v1/models/{id}``: ``owned_by`` / ``created``, 404 ``model_not_found``, and catalog names with a ``/``;
- ``DELETE /admin/keys/{id}`` (404 ``key_not_found``, the revoked key listed only with ``include_revoked``);
- ``GET /admin/requests`` (newest first, ``limit`` clamped to 1-1000, ``key_id``) and ``GET /admin/usage``
  (totals per day, key, team and model that match the request rows; ``day``);
- gateway options over HTTP: the body's ``llmgw`` wins over ``x-llmgw-*`` headers, a header value is a
  string, ``llmgw`` must be an object, unknown options are ignored, a bad ``cache`` is a 400 with the cache off;
- ``/v1/responses``: a hosted tool is 400 ``unsupported_tool`` through the SDK, and nothing is sent upstream;
- ``/v1/messages``: a Chat Completions field is 400 ``unknown_parameter`` through the Anthropic SDK;
- error answers carry ``x-llmgw-request-id`` only, not the headers of a successful answer.

Four tests found where the code and docs/api.md disagreed; the code was fixed (see the results in
docs/experiments/apitests-results.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import FakeUpstream

USER: Any = [{"role": "user", "content": "Hello there"}]
REQUEST_ID = re.compile(r"^[0-9a-f]{24}$")


def http(gw: RunningGateway, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {ADMIN_KEY}", **headers}, timeout=30)


def row_of(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    return next(r for r in gw.rows() if r["id"] == request_id)


# --- authentication: the Azure-style api-key header ------------------------------------------------------


def test_an_azure_style_api_key_header_authenticates_on_every_endpoint(make_gateway: Any) -> None:
    """docs/api.md, "Authentication": ``api-key: KEY`` works like a bearer key on every endpoint; with anonymous
    access on, a key that is read wrongly would silently be served (and billed) as ``anonymous``."""
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "allow_anonymous": True})
    key = gw.create_key(team="blue")
    chat = {"model": "test-model", "messages": USER}
    with httpx.Client(base_url=gw.url, headers={"api-key": key["key"]}, timeout=30) as client:
        answered = client.post("/v1/chat/completions", json=chat)
        message = client.post("/v1/messages", json={**chat, "max_tokens": 20})
        response = client.post("/v1/responses", json={"model": "test-model", "input": "Hello there"})
        models = client.get("/v1/models")
        unknown = client.post("/v1/chat/completions", json=chat, headers={"api-key": "sk-llmgw-not-a-real-key-0000"})
    for result in (answered, message, response, models):
        assert result.status_code == 200, result.text
    ids = [r.headers["x-llmgw-request-id"] for r in (answered, message, response)]
    stored = {r["id"]: r for r in gw.rows()}
    assert [(stored[i]["key_id"], stored[i]["team"]) for i in ids] == [(key["id"], "blue")] * 3
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_api_key"


# --- streams: anti-buffering headers on every API ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "test-model", "messages": USER, "stream": True}),
        ("/v1/responses", {"model": "test-model", "input": "Hello there", "stream": True}),
        ("/v1/messages", {"model": "test-model", "max_tokens": 50, "messages": USER, "stream": True}),
    ],
)
def test_streams_tell_proxies_not_to_buffer(gw: RunningGateway, path: str, body: dict[str, Any]) -> None:
    with http(gw) as client, client.stream("POST", path, json=body) as response:
        text = response.read().decode()
    assert response.status_code == 200, text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers.get("cache-control") == "no-cache"
    assert response.headers.get("x-accel-buffering") == "no"
    assert REQUEST_ID.match(response.headers["x-llmgw-request-id"])
    assert "tok4" in text, "the stream itself went through"


def test_every_chunk_of_a_stream_has_the_gateways_id_and_the_catalog_model(gw: RunningGateway) -> None:
    """docs/api.md: ``id`` is ``chatcmpl-<request id>`` and ``model`` the catalog name, in every chunk of a
    stream too (the upstream says ``up-s`` and ``fake-1``)."""
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model",
        messages=[{"role": "user", "content": "count #chunks:4"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    assert len(chunks) == 6, "4 content chunks, the finish chunk and the usage chunk"
    expected = f"chatcmpl-{raw.headers['x-llmgw-request-id']}"
    assert [c.id for c in chunks] == [expected] * len(chunks)
    assert [c.model for c in chunks] == ["test-model"] * len(chunks)


# --- usage is always there on a non-streamed answer ---------------------------------------------------


def test_a_non_streamed_answer_without_upstream_usage_still_has_estimated_usage(gw: RunningGateway) -> None:
    messages: Any = [{"role": "user", "content": "#no-usage tell me something about rivers and the sea"}]
    raw = gw.client().chat.completions.with_raw_response.create(model="test-model", messages=messages)
    completion = raw.parse()
    assert completion.usage is not None, "docs: a non-streamed answer always has usage"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    stored = row_of(gw, raw.headers["x-llmgw-request-id"])
    assert stored["usage_estimated"] is True
    assert stored["prompt_tokens"] == completion.usage.prompt_tokens
    assert stored["completion_tokens"] == completion.usage.completion_tokens

    # the other APIs render the same estimate in their own shapes
    response = gw.client().responses.create(model="test-model", input=messages[0]["content"])
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    message = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0).messages.create(
        model="test-model", max_tokens=50, messages=messages
    )
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


# --- embeddings: headers on answers and on errors ------------------------------------------------------


def test_embeddings_answers_and_errors_carry_the_documented_headers(gw: RunningGateway, upstream: FakeUpstream) -> None:
    raw = gw.client().embeddings.with_raw_response.create(model="up-embed", input=["a", "b"])
    result = raw.parse()
    assert REQUEST_ID.match(raw.headers["x-llmgw-request-id"])
    assert raw.headers["x-llmgw-model"] == "up-embed"
    assert result.model == "up-embed", "the catalog name, not the upstream's id"
    assert upstream.requests[-1]["model"] == "fake-embed"
    assert len(result.data) == 2 and result.data[1].embedding == pytest.approx([0.1, 0.2, 0.3])
    assert row_of(gw, raw.headers["x-llmgw-request-id"])["endpoint"] == "embeddings"

    with pytest.raises(openai.BadRequestError) as info:
        gw.client().embeddings.create(model="test-model", input="x")
    assert info.value.code == "wrong_model_kind"
    request_id = info.value.response.headers.get("x-llmgw-request-id")
    assert request_id is not None and REQUEST_ID.match(request_id), "errors carry the request id too"
    assert "x-llmgw-model" not in info.value.response.headers
    failed = row_of(gw, request_id)
    assert failed["status"] == "error" and failed["error_code"] == "wrong_model_kind"


# --- what an upstream's refusal becomes for the client ----------------------------------------------------


@pytest.mark.parametrize(
    ("upstream_status", "status", "code", "error_class", "tries"),
    [
        # the upstream refused llmgw's own credentials: a gateway fault, never the client's 401/403
        (401, 502, "upstream_auth_failed", openai.InternalServerError, 1),
        (403, 502, "upstream_auth_failed", openai.InternalServerError, 1),
        (404, 404, "upstream_model_not_found", openai.NotFoundError, 1),
        (408, 504, "upstream_timeout", openai.InternalServerError, 3),
        (503, 503, "upstream_unavailable", openai.InternalServerError, 3),
        (504, 504, "upstream_timeout", openai.InternalServerError, 3),
        (529, 502, "upstream_server_error", openai.InternalServerError, 3),
    ],
)
def test_upstream_statuses_map_to_the_documented_errors(
    gw: RunningGateway,
    upstream: FakeUpstream,
    upstream_status: int,
    status: int,
    code: str,
    error_class: Any,
    tries: int,
) -> None:
    """docs/api.md, "Errors": each upstream failure's status and code, retried (``max_retries: 2``) or not."""
    upstream.requests.clear()
    messages: Any = [{"role": "user", "content": f"#status:{upstream_status}"}]
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="test-model", messages=messages)
    assert type(info.value) is error_class, type(info.value)
    assert (info.value.status_code, info.value.code) == (status, code)
    assert len(upstream.requests) == tries
    stored = row_of(gw, info.value.response.headers["x-llmgw-request-id"])
    assert (stored["http_status"], stored["error_code"], stored["attempts"]) == (status, code, tries)


# --- GET /v1/models/{id} ---------------------------------------------------------------------------------


def test_model_entries_have_the_documented_fields_and_unknown_ids_are_model_not_found(gw: RunningGateway) -> None:
    entry = gw.client().models.retrieve("test-model")
    assert (entry.id, entry.object, entry.owned_by, entry.created) == ("test-model", "model", "up", 1_700_000_000)
    listed = {m.id: m for m in gw.client().models.list()}
    assert listed["dead-model"].owned_by == "down"
    with pytest.raises(openai.NotFoundError) as info:
        gw.client().models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"
    key = gw.create_key(models=["other-model"])
    with pytest.raises(openai.NotFoundError) as info:
        gw.client(key["key"]).models.retrieve("test-model")
    assert info.value.code == "model_not_found", "not allowed for the key: the same 404"


MODEL_WITH_SLASH = "acme/chat-1"


def test_a_catalog_name_with_a_slash_can_be_retrieved(make_gateway: Any) -> None:
    models = {MODEL_WITH_SLASH: {"provider": "up", "upstream_id": "fake-1"}}
    gw = make_gateway(models=models, routes={"default": {"default_model": MODEL_WITH_SLASH}})
    client = gw.client()
    assert client.chat.completions.create(model=MODEL_WITH_SLASH, messages=USER).model == MODEL_WITH_SLASH
    assert MODEL_WITH_SLASH in {m.id for m in client.models.list()}
    assert client.models.retrieve(MODEL_WITH_SLASH).id == MODEL_WITH_SLASH


# --- DELETE /admin/keys/{id}, GET /admin/keys?include_revoked ------------------------------------------


def test_revoking_keys_unknown_ids_and_include_revoked(gw: RunningGateway) -> None:
    made = gw.create_key(name="svc", team="t")
    assert gw.client(made["key"]).chat.completions.create(model="test-model", messages=USER).choices
    with gw.admin() as admin:
        missing = admin.delete("/admin/keys/key_0000000000000000")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "key_not_found"
        revoked = admin.delete(f"/admin/keys/{made['id']}")
        assert revoked.status_code == 200, revoked.text
        body = revoked.json()
        assert body["id"] == made["id"] and body["revoked_at"] is not None and "key" not in body
        active = admin.get("/admin/keys").json()["data"]
        everything = admin.get("/admin/keys", params={"include_revoked": "true"}).json()["data"]
    assert made["id"] not in {k["id"] for k in active}
    listed = {k["id"]: k for k in everything}
    assert listed[made["id"]]["revoked_at"] == body["revoked_at"]
    assert all("key" not in k for k in everything), "the clear key appears only once, at creation"
    with pytest.raises(openai.AuthenticationError) as info:
        gw.client(made["key"]).chat.completions.create(model="test-model", messages=USER)
    assert info.value.code == "invalid_api_key", "refused at once by the gateway that revoked it"


# --- GET /admin/requests and GET /admin/usage --------------------------------------------------------------


def test_admin_requests_limit_is_clamped_newest_first_and_filtered_by_key(gw: RunningGateway) -> None:
    key = gw.create_key(team="blue")
    ids = []
    for api_key in (ADMIN_KEY, ADMIN_KEY, key["key"]):
        raw = gw.client(api_key).chat.completions.with_raw_response.create(model="test-model", messages=USER)
        ids.append(raw.headers["x-llmgw-request-id"])
    gw.flush()
    with gw.admin() as admin:

        def listed(**params: Any) -> list[str]:
            response = admin.get("/admin/requests", params=params)
            assert response.status_code == 200, (params, response.text)
            return [r["id"] for r in response.json()["data"]]

        assert listed() == ids[::-1], "newest first"
        assert listed(limit=0) == ids[-1:] and listed(limit=-5) == ids[-1:], "clamped to at least 1"
        assert listed(limit=2) == ids[:0:-1]
        assert listed(limit=100_000) == ids[::-1], "clamped to at most 1000, not refused"
        assert listed(key_id=key["id"]) == ids[2:]


def test_admin_usage_totals_per_day_key_team_and_model(gw: RunningGateway) -> None:
    key = gw.create_key(team="blue")
    client = gw.client()
    for _ in range(2):
        client.chat.completions.create(model="test-model", messages=USER)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "#status:500"}])
    gw.client(key["key"]).chat.completions.create(model="other-model", messages=USER)
    rows = gw.rows()
    assert len(rows) == 4
    day = rows[0]["created_at"][:10]
    with gw.admin() as admin:
        usage = admin.get("/admin/usage").json()["data"]
        same_day = admin.get("/admin/usage", params={"day": day}).json()["data"]
        assert sorted(same_day, key=lambda u: u["key_id"]) == sorted(usage, key=lambda u: u["key_id"])
        assert admin.get("/admin/usage", params={"day": "2000-01-01"}).json()["data"] == []
        bad = admin.get("/admin/usage", params={"day": "27/11/2026"})
    assert bad.status_code == 400 and (bad.json()["error"]["code"], bad.json()["error"]["param"]) == (
        "invalid_value",
        "day",
    )
    by_key = {(u["key_id"], u["team"], u["model"]): u for u in usage}
    assert set(by_key) == {("admin", "", "test-model"), (key["id"], "blue", "other-model")}
    for (key_id, _team, model), totals in by_key.items():
        mine = [r for r in rows if r["key_id"] == key_id and r["model_requested"] == model]
        assert totals["day"] == day
        assert totals["requests"] == len(mine)
        assert totals["errors"] == sum(r["status"] == "error" for r in mine)
        assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in mine)
        assert totals["completion_tokens"] == sum(r["completion_tokens"] for r in mine)
        assert totals["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in mine))
    assert by_key[("admin", "", "test-model")]["requests"] == 3 and by_key[("admin", "", "test-model")]["errors"] == 1
    assert by_key[("admin", "", "test-model")]["cost_usd"] > 0


# --- gateway options over HTTP -----------------------------------------------------------------------


def test_gateway_options_body_over_headers_and_their_errors(make_gateway: Any, upstream: FakeUpstream) -> None:
    routes = {"default": {"default_model": "test-model"}, "narrow": {"models": ["other-model"]}, "true": {}}
    gw = make_gateway(routes=routes)
    client = gw.client()
    # route "narrow" allows only other-model: if the header won, test-model would be 403
    raw = client.chat.completions.with_raw_response.create(
        model="test-model",
        messages=USER,
        extra_headers={"x-llmgw-route": "narrow"},
        extra_body={"llmgw": {"route": "default"}},
    )
    assert raw.headers["x-llmgw-route"] == "default"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="test-model", messages=USER, extra_headers={"x-llmgw-route": "narrow"})
    assert denied.value.code == "model_not_allowed"

    # a header value that is not a JSON object or array is a string: "true" names route "true"
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=USER, extra_headers={"x-llmgw-route": "true"}
    )
    assert raw.headers["x-llmgw-route"] == "true"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="test-model", messages=USER, extra_headers={"x-llmgw-route": "123"})
    assert (info.value.code, info.value.param) == ("unknown_route", "llmgw.route")

    # a bad cache value is refused even on a gateway without the cache, header form included
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="test-model", messages=USER, extra_headers={"x-llmgw-cache": "sometimes"})
    assert info.value.param == "llmgw.cache"

    # options llmgw does not know are accepted and ignored, and never forwarded
    upstream.requests.clear()
    answer = client.chat.completions.create(
        model="test-model",
        messages=USER,
        extra_headers={"x-llmgw-future-thing": '{"a": 1}'},
        extra_body={"llmgw": {"future_option": [1, 2]}},
    )
    assert answer.choices[0].message.content
    assert len(upstream.requests) == 1 and "llmgw" not in upstream.requests[0]
    assert not any(name.startswith("x-llmgw") for name in upstream.headers[-1]), "options stay in the gateway"


def test_llmgw_that_is_not_an_object_is_invalid_request(gw: RunningGateway, upstream: FakeUpstream) -> None:
    upstream.requests.clear()
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=USER, extra_body={"llmgw": "batch"})
    assert upstream.requests == []
    assert (info.value.code, info.value.param) == ("invalid_request", "llmgw")


# --- /v1/responses: hosted tools ----------------------------------------------------------------------------


def test_responses_hosted_tool_is_unsupported_tool_and_nothing_is_sent(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    upstream.requests.clear()
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().responses.create(model="test-model", input="Find news", tools=[{"type": "web_search"}])
    assert (info.value.code, info.value.param) == ("unsupported_tool", "tools[0].type")
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().responses.create(model="test-model", input="Hi", previous_response_id="resp_0123")
    assert (info.value.code, info.value.param) == ("unsupported_parameter", "previous_response_id")
    assert upstream.requests == []


# --- /v1/messages: Chat Completions fields are refused ------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("n", 2), ("user", "u-1"), ("stop", "END"), ("seed", 7)])
def test_messages_refuses_chat_only_fields(gw: RunningGateway, upstream: FakeUpstream, name: str, value: Any) -> None:
    upstream.requests.clear()
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="test-model", max_tokens=50, messages=USER, extra_body={name: value})
    error = info.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert (error["code"], error["param"]) == ("unknown_parameter", name)
    assert upstream.requests == [], "refused before anything reaches the provider"


# --- error answers carry only the request id ----------------------------------------------------------------


def test_an_error_before_a_model_is_chosen_carries_only_the_request_id(gw: RunningGateway) -> None:
    """docs/api.md, "Response headers": a request refused before a model was chosen carries only
    ``x-llmgw-request-id`` of llmgw's headers (no cost: nothing was answered)."""
    body = {"model": "test-model", "messages": USER}
    with http(gw) as client:
        refused = client.post("/v1/chat/completions", json=body, headers={"x-llmgw-route": "nowhere"})
        unknown = client.post("/v1/chat/completions", json={**body, "model": "nope"})
    for response in (refused, unknown):
        assert response.status_code in (400, 404), response.text
        llmgw_headers = sorted(h for h in response.headers if h.startswith("x-llmgw-"))
        assert llmgw_headers == ["x-llmgw-request-id"], llmgw_headers
        assert row_of(gw, response.headers["x-llmgw-request-id"])["http_status"] == response.status_code


def test_an_upstream_failure_names_the_model_tried_and_no_cost(gw: RunningGateway) -> None:
    """After the model was chosen, an error names the model tried last and the route (what ``llmgw eval``
    attributes the failure to), but no ``x-llmgw-cost-usd``: no answer was priced (the row has the cost)."""
    with http(gw) as client:
        failed = client.post(
            "/v1/chat/completions",
            json={"model": "test-model", "messages": [{"role": "user", "content": "#status:500"}]},
        )
        dead = client.post("/v1/chat/completions", json={"model": "dead-model", "messages": USER})
    assert failed.status_code == 502 and json.loads(failed.text)["error"]["code"] == "upstream_server_error"
    assert dead.status_code == 503
    for response, model in ((failed, "test-model"), (dead, "dead-model")):
        assert REQUEST_ID.match(response.headers["x-llmgw-request-id"])
        assert response.headers["x-llmgw-model"] == model and response.headers["x-llmgw-route"] == "default"
        assert "x-llmgw-cost-usd" not in response.headers
