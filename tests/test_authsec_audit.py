"""Authentication and the administrative surfaces, probed as an attacker would, through a real gateway.

Each test here failed before the fix it names:

- a bare credential in ``Authorization`` (``Authorization: <key>``, no ``Bearer``) was echoed back as
  the "scheme" (its first 21 characters), into the answer, the request row and so the admin API;
- admin answers (a new key's secret, the key list, requests, usage, the cache) had no
  ``Cache-Control: no-store`` (a browser or proxy could keep them) nor ``X-Content-Type-Options``;
- the sign-in form's ``next`` page went into the Location header as sent: CR/LF dropped the
  connection, a non-Latin-1 character was a 500;
- the admin key could be guessed at full speed: a wrong guess costs no database read, so the
  failed-authentication limit never applied to it, neither as a Bearer header nor on the sign-in form;
  with anonymous access on, a wrong guess was served as anonymous and /v1/feedback on another key's
  request told the admin key (201) from anonymous (404), uncounted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway

CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "test-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def from_address(gw: RunningGateway, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x address reaches the loopback)."""
    return httpx.Client(base_url=gw.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_a_bare_credential_in_authorization_is_never_echoed(
    make_gateway: Callable[..., RunningGateway], db: str, request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    gw = make_gateway(request.getfixturevalue("pg_url") if db == "postgres" else None)
    secret = gw.create_key(name="bare")["key"]
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        answers = []
        for credential in (secret, ADMIN_KEY):
            headers = {"authorization": credential}
            answers += [
                client.post("/v1/chat/completions", json=CHAT, headers=headers),
                client.post("/v1/messages", json=MESSAGES, headers=headers),
                client.get("/v1/models", headers=headers),
                client.get("/admin/keys", headers=headers),
            ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert "Bearer" in answer.text, "the message still says what to send"
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    seen = "\n".join([a.text for a in answers] + [str(r) for r in gw.rows()] + logged)
    for credential in (secret, ADMIN_KEY):
        assert credential[:12] not in seen, f"{credential[:12]}… echoed"
    # a real scheme is still named: it is no secret
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        named = client.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Token {secret}"})
    assert "'Token'" in named.json()["error"]["message"] and secret[:12] not in named.text


def test_admin_answers_are_never_stored_by_a_cache(make_gateway: Callable[..., RunningGateway]) -> None:
    gw = make_gateway(cache={"enabled": True})
    with gw.admin() as admin:
        created = admin.post("/admin/keys", json={"name": "shown-once"})
        assert created.status_code == 201 and created.json()["key"].startswith("sk-llmgw-")
        answers = {
            "POST /admin/keys (the secret)": created,
            "GET /admin/keys": admin.get("/admin/keys"),
            "DELETE /admin/keys/{id}": admin.delete(f"/admin/keys/{created.json()['id']}"),
            "GET /admin/requests": admin.get("/admin/requests"),
            "GET /admin/usage": admin.get("/admin/usage"),
            "GET /admin/cache": admin.get("/admin/cache"),
            "DELETE /admin/cache": admin.delete("/admin/cache"),
        }
    for name, answer in answers.items():
        assert answer.status_code in (200, 201), (name, answer.text)
        assert answer.headers.get("cache-control") == "no-store", name
        assert answer.headers.get("x-content-type-options") == "nosniff", name


@pytest.mark.parametrize("anonymous", [False, True], ids=["anonymous off", "anonymous on"])
def test_the_admin_key_cannot_be_guessed_at_full_speed(
    make_gateway: Callable[..., RunningGateway], anonymous: bool
) -> None:
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "allow_anonymous": anonymous, "max_failed_auth_per_minute": 3})
    known = gw.create_key(name="known")["key"]
    attacker, other = from_address(gw, "127.0.0.2"), from_address(gw, "127.0.0.3")
    with attacker, other:
        for i in range(3):
            wrong = attacker.get("/admin/keys", headers={"authorization": f"Bearer guess-{i}"})
            assert wrong.status_code == 401, wrong.text
        # past the limit a right guess is refused like a wrong one: the attacker learns nothing
        for guess in ("guess-9", ADMIN_KEY):
            refused = attacker.get("/admin/keys", headers={"authorization": f"Bearer {guess}"})
            assert refused.status_code == 429, (guess, refused.text)
            assert refused.json()["error"]["code"] == "too_many_failed_authentications"
            assert 0 < int(refused.headers["retry-after"]) <= 60
        spoofed = attacker.get("/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}",
                                                       "x-forwarded-for": "10.1.2.3"})  # fmt: skip
        assert spoofed.status_code == 429, "X-Forwarded-For from an untrusted peer changes nothing"
        # a key this replica knows keeps working from that address; another address is not locked out
        chat = attacker.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {known}"})
        assert chat.status_code == 200, chat.text
        assert other.get("/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200


def test_the_sign_in_form_cannot_be_used_to_guess_the_admin_key(make_gateway: Callable[..., RunningGateway]) -> None:
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "max_failed_auth_per_minute": 3})
    attacker, other = from_address(gw, "127.0.0.2"), from_address(gw, "127.0.0.3")
    with attacker, other:
        for i in range(3):
            assert attacker.post("/admin/login", data={"admin_key": f"guess-{i}"}).status_code == 401
        for guess in ("guess-9", ADMIN_KEY):
            refused = attacker.post("/admin/login", data={"admin_key": guess})
            assert refused.status_code == 429, (guess, refused.status_code)
            assert "llmgw_review" not in refused.headers.get("set-cookie", ""), "no session past the limit"
            assert 0 < int(refused.headers["retry-after"]) <= 60
            assert refused.headers["cache-control"] == "no-store"
            assert refused.headers["x-content-type-options"] == "nosniff"
        signed_in = other.post("/admin/login", data={"admin_key": ADMIN_KEY})
        assert signed_in.status_code == 303 and "llmgw_review=" in signed_in.headers["set-cookie"]


def test_signing_in_with_a_next_page_that_cannot_be_a_header_lands_on_the_review_page(
    make_gateway: Callable[..., RunningGateway], caplog: pytest.LogCaptureFixture
) -> None:
    """``next`` with CR/LF dropped the connection (uvicorn refused the Location header after the
    response had started, an ERROR with a traceback); a non-Latin-1 one was a 500."""
    gw = make_gateway()
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        for target in ("/admin/review\r\nSet-Cookie: planted=1", "/admin/review\u20ac", "/admin/review\x00"):
            answer = client.post("/admin/login", data={"admin_key": ADMIN_KEY, "next": target})
            assert answer.status_code == 303, (target, answer.text)
            assert answer.headers["location"] == "/admin/review"
            assert "planted" not in answer.headers.get("set-cookie", "")
        kept = client.post("/admin/login", data={"admin_key": ADMIN_KEY, "next": "/admin/review?verdict=block"})
        assert kept.headers["location"] == "/admin/review?verdict=block", "a plain next page is still honoured"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_feedback_is_no_unlimited_oracle_for_the_admin_key_when_anonymous_access_is_on(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "allow_anonymous": True, "max_failed_auth_per_minute": 3})
    owner = gw.create_key(name="owner")["key"]
    made = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {owner}"})
    request_id = made.headers["x-llmgw-request-id"]
    gw.flush()
    with from_address(gw, "127.0.0.2") as attacker:
        answers = [
            attacker.post(
                "/v1/feedback",
                # a guess served as anonymous needs a token to get as far as the lookup (else 400, counted too)
                json={"request_id": request_id, "score": 1, "feedback_token": "0" * 32},
                headers={"authorization": f"Bearer {guess}"},
            ).status_code
            for guess in [f"guess-{i}" for i in range(5)] + [ADMIN_KEY]
        ]
        assert answers == [404, 404, 404, 429, 429, 429], "past the limit the right guess answers like a wrong one"
        assert attacker.post("/v1/chat/completions", json=CHAT).status_code == 200, "no key at all: still anonymous"
    with from_address(gw, "127.0.0.3") as other:
        placeholder = other.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer unused"})
        assert placeholder.status_code == 200, "another address with an SDK's placeholder key is not locked out"
        mine = other.post("/v1/feedback", json={"request_id": request_id, "score": 1},
                          headers={"authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
        assert mine.status_code == 201, mine.text
