"""Configuration keys whose effect no other test asserted, each through a real gateway driven by the openai SDK.

- ``limits.keys.<key id>``: a key's own limits replace ``limits.default_key`` (stricter or looser), and a
  daily budget set only there turns the before-the-call budget reservation on (``ReserveBudget.enabled``);
- ``limits.reserve_output_tokens``: what a request without ``max_tokens`` reserves in a daily budget;
- ``keys[].models`` / ``keys[].routes`` on static keys (config ``keys:``);
- ``auth.anonymous_team``: the team of anonymous callers, on their rows and for ``limits.teams``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from llmgw.usage import estimate_tokens, prompt_chars
from tests.conftest import ADMIN_KEY
from tests.upstream import FakeUpstream

ASK = [{"role": "user", "content": "hello there"}]


def fresh_minute() -> None:
    """Request counts are per calendar minute: don't start in a minute's last seconds."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.1)


def static_key(name: str, **spec: Any) -> tuple[str, dict[str, Any]]:
    """A clear key and its ``keys:`` entry; its id is ``static:<name>`` (``llmgw.keys.KeyStore``)."""
    secret = f"sk-test-static-{name}-0123456789abcdef"
    return secret, {"name": name, "sha256": hashlib.sha256(secret.encode()).hexdigest(), **spec}


def admitted(client: openai.OpenAI, limit: int = 10, **body: Any) -> int:
    """How many requests in a row are served before the first 429 (at most ``limit``)."""
    for served in range(limit):
        try:
            client.chat.completions.create(**{"model": "test-model", "messages": ASK, **body})
        except openai.RateLimitError as exc:
            assert exc.status_code == 429 and exc.body["code"] == "rate_limit_exceeded"
            return served
    return limit


def race(client: openai.OpenAI, bodies: list[dict[str, Any]], upstream: FakeUpstream) -> list[int]:
    """Send ``bodies`` (each with ``#hold``) at once; the statuses, sorted (429 only as ``budget_exceeded``).

    The admitted ones are held at the upstream until every request is decided (refused, or at the
    upstream), so all are in flight together however slowly the threads start (an upstream sleep of
    0.8 s assumed they would overlap: one answered before the last arrived frees budget)."""

    def status(body: dict[str, Any]) -> int:
        try:
            client.chat.completions.create(**body)
        except openai.RateLimitError as exc:
            assert exc.body["code"] == "budget_exceeded"
            return 429
        return 200

    upstream.release = threading.Event()
    before = len(upstream.requests)
    with ThreadPoolExecutor(len(bodies)) as pool:
        futures = [pool.submit(status, body) for body in bodies]
        try:
            deadline = time.monotonic() + 60  # a bound: they are decided at once
            while sum(f.done() for f in futures) + len(upstream.requests) - before < len(bodies):
                assert time.monotonic() < deadline, "the requests were never all decided"
                time.sleep(0.02)
        finally:
            upstream.release.set()
        return sorted(f.result() for f in futures)


# --- limits.keys.<key id> ---------------------------------------------------------------------


def test_a_keys_own_limits_replace_the_default_key_limits(make_gateway: Any) -> None:
    tight, tight_entry = static_key("tight")
    roomy, roomy_entry = static_key("roomy")
    plain, plain_entry = static_key("plain")
    gw = make_gateway(
        keys=[tight_entry, roomy_entry, plain_entry],
        limits={
            "enabled": True,
            "default_key": {"requests_per_minute": 2},
            "keys": {"static:tight": {"requests_per_minute": 1}, "static:roomy": {"requests_per_minute": 3}},
        },
    )
    fresh_minute()
    first = gw.client(tight).chat.completions.with_raw_response.create(model="test-model", messages=ASK)
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as info:  # its second request: its own limit of 1, not the default 2
        gw.client(tight).chat.completions.create(model="test-model", messages=ASK)
    assert info.value.status_code == 429
    error = info.value.response.json()["error"]  # OpenAI's error shape
    assert error["code"] == "rate_limit_exceeded" and error["type"]
    assert "key:static:tight is over 1 requests per minute" in error["message"]
    assert admitted(gw.client(plain)) == 2  # no entry of its own: default_key
    assert admitted(gw.client(roomy)) == 3  # its own looser limit replaces the default too


def test_a_budget_only_in_limits_keys_is_reserved_before_the_call(make_gateway: Any, upstream: FakeUpstream) -> None:
    """``ReserveBudget`` is on when any budget is set, ``limits.keys`` included: with no budget in
    ``default_key`` or ``teams``, concurrent requests of the key are still admitted one after another.
    Each reserves its prompt estimate + max_tokens (4) at test-model's prices ($1/$2 per Mtok); a
    reservation is taken while spend + reservations < budget, so with 2.5 reservations of budget the
    3rd starts at 2 < 2.5 and the 4th at 3 >= 2.5: 3 served, 5 refused. Without the reservation every
    request in flight would read a spend of 0 and all 8 would be served."""
    capped, capped_entry = static_key("capped")
    free, free_entry = static_key("free")

    def body(i: int) -> dict[str, Any]:  # distinct questions of one length: the same reservation each
        return {
            "model": "test-model",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": f"q{i:02d} wait #hold"}],
        }

    reserved = (estimate_tokens(prompt_chars(body(0))) * 1.0 + 4 * 2.0) / 1e6
    gw = make_gateway(
        keys=[capped_entry, free_entry],
        limits={"enabled": True, "keys": {"static:capped": {"daily_budget_usd": 2.5 * reserved}}},
    )
    assert race(gw.client(capped), [body(i) for i in range(8)], upstream) == [200] * 3 + [429] * 5
    assert race(gw.client(free), [body(i) for i in range(8, 12)], upstream) == [200] * 4  # no budget of its own


# --- limits.reserve_output_tokens -------------------------------------------------------------


def test_requests_without_max_tokens_reserve_reserve_output_tokens(make_gateway: Any, upstream: FakeUpstream) -> None:
    """Without max_tokens a request reserves its prompt estimate + ``reserve_output_tokens`` (100)
    completion tokens at test-model's prices ($1/$2 per Mtok): here ceil(18 chars / 4) = 5 prompt
    tokens, so 5 * 1 + 100 * 2 = 205 micro-dollars. A reservation is taken while spend + reservations
    < budget; with a budget of 2.5 reservations the 3rd starts at 2 < 2.5 and the 4th at 3 >= 2.5: of 8
    concurrent requests exactly 3 are served and 5 refused. Were the setting ignored, the default 1024
    would let only the first in (2053 > 512.5), and no output reservation (0) would let all 8 in."""
    reserve = 100

    def body(i: int) -> dict[str, Any]:  # no max_tokens; distinct questions of one length
        return {"model": "test-model", "messages": [{"role": "user", "content": f"q{i:02d} wait #hold"}]}

    estimate = estimate_tokens(prompt_chars(body(0)))
    assert estimate == 5  # "q00 wait #hold" (14 chars) + 4 for the role
    reserved = (estimate * 1.0 + reserve * 2.0) / 1e6
    gw = make_gateway(
        limits={"enabled": True, "reserve_output_tokens": reserve, "default_key": {"daily_budget_usd": 2.5 * reserved}}
    )
    client = gw.client(gw.create_key(name="racer")["key"])
    assert race(client, [body(i) for i in range(8)], upstream) == [200] * 3 + [429] * 5


# --- keys[].models / keys[].routes on static keys ---------------------------------------------


def test_a_static_keys_models_are_enforced(make_gateway: Any) -> None:
    secret, entry = static_key("only-other", models=["other-model"])
    gw = make_gateway(keys=[entry])
    client = gw.client(secret)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="test-model", messages=ASK)
    assert info.value.status_code == 403 and info.value.body["code"] == "model_not_allowed"
    assert "may not use model 'test-model'" in info.value.message
    assert client.chat.completions.create(model="other-model", messages=ASK).choices[0].message.content
    assert [m.id for m in client.models.list()] == ["other-model"]


def test_a_static_keys_routes_are_enforced(make_gateway: Any) -> None:
    secret, entry = static_key("narrow-only", routes=["narrow"])
    gw = make_gateway(keys=[entry])
    client = gw.client(secret)
    with pytest.raises(openai.PermissionDeniedError) as info:  # no route option: the route `default`
        client.chat.completions.create(model="other-model", messages=ASK)
    assert info.value.status_code == 403 and info.value.body["code"] == "route_not_allowed"
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="other-model", messages=ASK, extra_headers={"x-llmgw-route": "default"})
    assert info.value.body["code"] == "route_not_allowed"
    served = client.chat.completions.with_raw_response.create(
        model="other-model", messages=ASK, extra_headers={"x-llmgw-route": "narrow"}
    )
    assert served.status_code == 200 and served.headers["x-llmgw-route"].startswith("narrow")


# --- auth.anonymous_team ----------------------------------------------------------------------


def test_anonymous_callers_get_the_anonymous_team_and_its_limits(make_gateway: Any) -> None:
    gw = make_gateway(
        auth={"admin_key": ADMIN_KEY, "allow_anonymous": True, "anonymous_team": "public"},
        limits={"enabled": True, "teams": {"public": {"requests_per_minute": 2}}},
    )
    anonymous = gw.client("unused")  # SDKs send some key; one that is not an llmgw key counts as none
    fresh_minute()
    anonymous.chat.completions.create(model="test-model", messages=ASK)
    anonymous.chat.completions.create(model="test-model", messages=ASK)
    with pytest.raises(openai.RateLimitError) as info:  # default_key is unlimited: only the team's limit refuses
        anonymous.chat.completions.create(model="test-model", messages=ASK)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert "team:public is over 2 requests per minute" in info.value.message
    rows = gw.rows()
    assert len(rows) == 3
    assert {row["team"] for row in rows} == {"public"}
    assert {row["key_id"] for row in rows} == {"anonymous"}
    assert sorted(row["http_status"] for row in rows) == [200, 200, 429]
