"""Models, embeddings, health, readiness, metrics and admin endpoints."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from llmgw.cli import main
from tests.conftest import ADMIN_KEY, RunningGateway


def test_models_listing_follows_the_key(gw: RunningGateway) -> None:
    ids = {m.id for m in gw.client().models.list()}
    assert {"test-model", "other-model", "dead-model", "up-embed"} <= ids
    key = gw.create_key(models=["other-model"])
    assert [m.id for m in gw.client(key["key"]).models.list()] == ["other-model"]
    assert gw.client(key["key"]).models.retrieve("other-model").id == "other-model"
    with pytest.raises(openai.NotFoundError):
        gw.client(key["key"]).models.retrieve("test-model")


def test_provider_embeddings(gw: RunningGateway) -> None:
    result = gw.client().embeddings.create(model="up-embed", input=["a", "b"])
    assert [d.embedding for d in result.data] == [[0.1, 0.2, 0.3]] * 2
    assert result.model == "up-embed"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().embeddings.create(model="test-model", input="x")
    assert info.value.body["code"] == "wrong_model_kind"


def test_embeddings_leave_a_row_once_the_caller_is_known(gw: RunningGateway) -> None:
    """The embeddings stages (pipeline.EMBEDDINGS) run after authentication: an answer, a refused
    model and an unreadable body each leave a row; an unknown key is refused before the body is
    read and leaves none."""
    gw.client().embeddings.create(model="up-embed", input="a")
    with pytest.raises(openai.BadRequestError):
        gw.client().embeddings.create(model="test-model", input="x")
    url, auth = f"{gw.url}/v1/embeddings", {"authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.post(url, content=b"{", headers=auth).json()["error"]["code"] == "invalid_json"
    unknown = httpx.post(url, content=b"{", headers={"authorization": "Bearer sk-llmgw-nobody"})
    assert unknown.status_code == 401
    rows = sorted(gw.rows(), key=lambda r: r["created_at"])
    assert [(r["endpoint"], r["status"], r["error_code"]) for r in rows] == [
        ("embeddings", "ok", None),
        ("embeddings", "error", "wrong_model_kind"),
        ("embeddings", "error", "invalid_json"),
    ]
    assert rows[0]["model_used"] == "up-embed" and rows[0]["route"] == "default"
    assert rows[1]["http_status"] == 400 and rows[1]["model_requested"] == "test-model"


def test_local_sentence_transformers_embeddings(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(
        providers={
            "st": {"type": "sentence_transformers"},
            "up": {"type": "openai", "base_url": "http://x/v1"},
        },
        models={
            "minilm": {"provider": "st", "upstream_id": "all-MiniLM-L6-v2", "kind": "embedding"},
            "test-model": {"provider": "up", "upstream_id": "x"},
        },
        routes={"default": {}},
    )
    result = gw.client().embeddings.create(
        model="minilm", input=["How do I reset my password?", "I forgot my password", "Paris is in France"]
    )
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384)
    assert result.usage.prompt_tokens == 9 + 6 + 6, "counted with the model's own tokenizer"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 > sims[0, 2], "paraphrases are closer than unrelated text"
    as_b64 = gw.client().embeddings.create(model="minilm", input="I forgot my password", encoding_format="base64")
    decoded = np.frombuffer(base64.b64decode(as_b64.data[0].embedding), dtype=np.float32)
    assert np.allclose(decoded, vectors[1], atol=1e-6)


def test_health_readiness_and_metrics(gw: RunningGateway) -> None:
    assert httpx.get(f"{gw.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["up"] is True
    gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    text = httpx.get(f"{gw.url}/metrics").text
    assert 'llmgw_requests_total{endpoint="chat",model="test-model",route="default",status="ok"} 1.0' in text
    assert 'llmgw_errors_total{code="model_not_found"} 1.0' in text
    assert "llmgw_tokens_total" in text and "llmgw_cost_usd_total" in text


def test_admin_api_needs_the_admin_key(gw: RunningGateway) -> None:
    key = gw.create_key(team="t")
    for method, path in [("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/admin/requests")]:
        response = httpx.request(method, f"{gw.url}{path}", headers={"authorization": f"Bearer {key['key']}"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "admin_required"
        assert httpx.request(method, f"{gw.url}{path}").status_code == 401
    with gw.admin() as admin:
        listed = admin.get("/admin/keys").json()["data"]
        assert [k["id"] for k in listed] == [key["id"]]
        assert "sha256" not in listed[0] and "key" not in listed[0]
        assert admin.post("/admin/keys", json={"name": "x", "models": ["nope"]}).status_code == 400
        assert admin.post("/admin/keys", json={"nam": "x"}).status_code == 400
        for field in ("models", "routes"):  # an empty list is refused, never read as "every model (route)"
            empty = admin.post("/admin/keys", json={"name": "x", field: []})
            assert empty.status_code == 400 and empty.json()["error"]["param"] == field, empty.text
        assert admin.delete("/admin/keys/key_missing").status_code == 404


def test_anonymous_mode(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "allow_anonymous": True})
    anon = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert anon.status_code == 200
    # SDKs always send some key: one that is not an llmgw key counts as none here...
    assert gw.client("unused-on-loopback").chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "x"}]
    )
    # ...but a wrong or revoked llmgw key is still refused, so its owner notices
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-llmgw-bad").chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "x"}]
        )
    assert gw.rows()[0]["team"] == "anonymous"


def test_serve_refuses_anonymous_on_public_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing anonymous access" in capsys.readouterr().err


def test_the_escape_hatch_for_anonymous_access_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--insecure-allow-anonymous" in capsys.readouterr().out


def test_openapi_schema_has_bodies_and_shows_admin_routes_only_to_the_admin(gw: RunningGateway) -> None:
    public = httpx.get(f"{gw.url}/schema/openapi.json").json()
    assert public["paths"] and not [p for p in public["paths"] if p.startswith("/admin")]
    chat = public["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatRequest"}
    assert chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    assert chat["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    schemas = public["components"]["schemas"]
    assert {"ChatRequest", "Message", "EmbeddingsRequest", "Feedback", "ErrorResponse"} <= set(schemas)
    assert "test-model" in schemas["ChatRequest"]["properties"]["model"]["enum"]
    assert schemas["EmbeddingsRequest"]["properties"]["model"]["enum"] == ["up-embed"]
    assert schemas["ChatRequest"]["properties"]["messages"]["minItems"] == 1, "no templates: messages are required"
    messages = public["paths"]["/v1/messages"]["post"]
    assert messages["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MessagesRequest")
    assert messages["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AnthropicMessage")
    assert messages["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("/AnthropicError")
    assert "max_tokens" in schemas["MessagesRequest"]["required"]
    assert "NewKey" not in schemas
    key = gw.create_key()
    as_user = httpx.get(f"{gw.url}/schema/openapi.json", headers={"authorization": f"Bearer {key['key']}"}).json()
    assert as_user == public
    with gw.admin() as admin:
        full = admin.get("/schema/openapi.json").json()
    assert {"/admin/keys", "/admin/requests", "/admin/guard-events"} <= set(full["paths"])
    new_key = full["paths"]["/admin/keys"]["post"]
    assert new_key["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/NewKey")
    assert "201" in new_key["responses"] and "NewKey" in full["components"]["schemas"]


def test_method_not_allowed_says_what_is(gw: RunningGateway) -> None:
    response = httpx.put(f"{gw.url}/v1/chat/completions", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in [m.strip() for m in response.headers["allow"].split(",")]
