"""Rate limits and budgets through the real server: memory store, and Redis shared by two processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from llmgw import tokens
from tests.conftest import ADMIN_KEY, free_port
from tests.upstream import FakeUpstream

ASK = [{"role": "user", "content": "hello there"}]  # FakeUpstream usage: 3 prompt + 4 completion tokens


def fresh_minute() -> None:
    """Counts are per calendar minute: don't start a test in a minute's last seconds."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.1)


def limited(make_gateway: Any, **limits: Any) -> Any:
    return make_gateway(limits={"enabled": True, **limits})


def test_requests_per_minute_per_key(make_gateway: Any) -> None:
    gw = limited(make_gateway, default_key={"requests_per_minute": 2})
    key = gw.create_key(name="a")["key"]
    other = gw.create_key(name="b")["key"]
    fresh_minute()
    first = gw.client(key).chat.completions.with_raw_response.create(model="test-model", messages=ASK)
    assert first.headers["x-ratelimit-limit-requests"] == "2" and first.headers["x-ratelimit-remaining-requests"] == "1"
    gw.client(key).chat.completions.create(model="test-model", messages=ASK)
    with pytest.raises(openai.RateLimitError) as info:
        gw.client(key).chat.completions.create(model="test-model", messages=ASK)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert 0 < int(info.value.response.headers["retry-after"]) <= 60
    gw.client(other).chat.completions.create(model="test-model", messages=ASK)  # another key has its own count


def test_team_limit_is_shared_by_its_keys(make_gateway: Any) -> None:
    gw = limited(make_gateway, teams={"blue": {"requests_per_minute": 3}})
    keys = [gw.create_key(name=f"k{i}", team="blue")["key"] for i in range(2)]
    fresh_minute()
    for key in keys + keys[:1]:
        gw.client(key).chat.completions.create(model="test-model", messages=ASK)
    with pytest.raises(openai.RateLimitError):
        gw.client(keys[1]).chat.completions.create(model="test-model", messages=ASK)


def test_tokens_per_minute(make_gateway: Any) -> None:
    gw = limited(make_gateway, default_key={"tokens_per_minute": 100})
    key = gw.create_key(name="t")["key"]
    fresh_minute()
    with pytest.raises(openai.RateLimitError) as info:
        gw.client(key).chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x" * 800}])
    assert info.value.body["code"] == "tokens_rate_limit_exceeded"


def spend_of_one_request(make_gateway: Any) -> float:
    gw = make_gateway()
    gw.client().chat.completions.create(model="test-model", messages=ASK)
    return float(gw.rows()[0]["cost_usd"])


def test_daily_budget_warns_then_stops(make_gateway: Any) -> None:
    cost = spend_of_one_request(make_gateway)
    assert cost > 0
    gw = limited(make_gateway, default_key={"daily_budget_usd": cost / 0.9})
    key = gw.create_key(name="spender")["key"]
    gw.client(key).chat.completions.create(model="test-model", messages=ASK)  # spends 0.9 of the budget
    for _ in range(100):  # the spend is settled in the background once the answer is out
        second = gw.client(key).chat.completions.with_raw_response.create(model="test-model", messages=ASK)
        if "x-llmgw-budget" in second.headers:
            break
        time.sleep(0.05)
    assert second.headers["x-llmgw-budget"].startswith("warning;")
    for _ in range(100):
        try:
            gw.client(key).chat.completions.create(model="test-model", messages=ASK)
        except openai.RateLimitError as exc:
            assert exc.body["code"] == "budget_exceeded"
            break
        time.sleep(0.05)
    else:
        pytest.fail("the budget never stopped the key")


def test_streamed_requests_count_their_tokens_too(make_gateway: Any) -> None:
    gw = limited(make_gateway, default_key={"tokens_per_minute": 40})
    key = gw.create_key(name="s")["key"]
    fresh_minute()
    refused = False
    for _ in range(12):  # each stream settles ~7 tokens after it ends: the fifth or sixth is refused
        try:
            list(gw.client(key).chat.completions.create(model="test-model", messages=ASK, stream=True))
        except openai.RateLimitError:
            refused = True
            break
        time.sleep(0.05)
    assert refused


def test_unreachable_store_fails_closed(make_gateway: Any) -> None:
    gw = limited(make_gateway, store="redis", redis_url="redis://127.0.0.1:9/0", default_key={"requests_per_minute": 5})
    key = gw.create_key(name="x")["key"]
    with pytest.raises(openai.InternalServerError) as info:
        gw.client(key).chat.completions.create(model="test-model", messages=ASK)
    assert info.value.status_code == 503 and info.value.body["code"] == "limits_unavailable"


# --- two gateway processes, one Redis ------------------------------------------------------


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure: no Redis here
        return False


@pytest.fixture()
def two_gateways(upstream: FakeUpstream, tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    if not redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis must run in CI (scripts/test.sh starts it)")
        pytest.skip("no Redis on 127.0.0.1:6379")
    key = "sk-llmgw-" + uuid.uuid4().hex
    config = {
        "auth": {"admin_key": ADMIN_KEY, "allow_anonymous": False},
        "providers": {"up": {"type": "openai", "base_url": upstream.base_url}},
        "models": {"test-model": {"provider": "up", "upstream_id": "fake-1"}},
        "keys": [{"name": "shared", "sha256": hashlib.sha256(key.encode()).hexdigest()}],
        "limits": {
            "enabled": True,
            "store": "redis",
            "namespace": f"test-{uuid.uuid4().hex[:8]}",
            "default_key": {"requests_per_minute": 4},
        },
    }
    procs, urls = [], []
    for i in range(2):
        path = tmp_path / f"config-{i}.yaml"  # a database each: only the Redis counters are shared
        path.write_text(yaml.safe_dump({**config, "storage": {"url": f"sqlite:///{tmp_path}/gw-{i}.db"}}))
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "llmgw",
                    "serve",
                    "--config",
                    str(path),
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            for _ in range(900):  # importing torch and friends takes a while on a busy machine
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                pytest.fail(f"{url} did not start")
        yield urls, key
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def test_two_processes_share_one_limit_in_redis(two_gateways: tuple[list[str], str]) -> None:
    (a, b), key = two_gateways
    fresh_minute()
    statuses = []
    for url in (a, b, a, b, a, b):
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "test-model", "messages": ASK},
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]  # four per minute in total, not four per process


# --- streams that end early are billed for what was relayed ------------------------------------


@pytest.mark.parametrize("ending", ["client_disconnect", "upstream_cut"])
def test_a_stream_that_ends_early_is_billed_and_charged(make_gateway: Any, ending: str) -> None:
    """Before: 0 tokens and $0 on the row, and the token estimate refunded to the limiter."""
    if not redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis must run in CI (scripts/test.sh starts it)")
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    namespace = f"test-{uuid.uuid4().hex[:8]}"
    gw = limited(
        make_gateway,
        store="redis",
        redis_url="redis://127.0.0.1:6379/0",
        namespace=namespace,
        default_key={"tokens_per_minute": 1_000_000, "daily_budget_usd": 100.0},
    )
    created = gw.create_key(name="early")
    fresh_minute()
    body = {"model": "test-model", "stream": True, "messages": [{"role": "user", "content": "long #chunks:400"}]}
    headers = {"authorization": f"Bearer {created['key']}"}
    if ending == "client_disconnect":
        body["messages"][0]["content"] += " #slow:0.02"
    else:
        body["messages"][0]["content"] += " #drop:40"
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=headers) as response,
    ):
        request_id = response.headers["x-llmgw-request-id"]
        lines = response.iter_lines()
        seen = [line for _, line in zip(range(20 if ending == "client_disconnect" else 10_000), lines, strict=False)]
    relayed = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in seen
        if line.startswith("data: {") and '"choices"' in line
    )
    assert relayed.startswith("tok0 tok1 ")
    store = redis.Redis(host="127.0.0.1", port=6379)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the row is queued and the limits settled once the stream has ended
        rows = [r for r in gw.rows() if r["id"] == request_id]
        spend_keys = list(store.scan_iter(f"{namespace}*spend:key:{created['id']}:*"))
        if rows and spend_keys:
            break
    row = rows[0]
    assert row["status"] == ("client_disconnected" if ending == "client_disconnect" else "error")
    assert row["http_status"] == (499 if ending == "client_disconnect" else 200)  # a stream's status was 200
    assert row["usage_estimated"] is True
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] >= tokens.count(relayed) > 0
    assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] * 1.0 + row["completion_tokens"] * 2.0) / 1e6)
    [tpm_key] = store.scan_iter(f"{namespace}*tpm:key:{created['id']}:*")
    assert float(store.get(tpm_key)) == row["prompt_tokens"] + row["completion_tokens"]
    assert float(store.get(spend_keys[0])) == pytest.approx(row["cost_usd"])


def test_concurrent_requests_reserve_the_budget_before_the_call(make_gateway: Any, upstream: FakeUpstream) -> None:
    """Before: every request in flight read the same spend (0) and went ahead; now each reserves its
    highest cost (prompt estimate + max_tokens) first, so they are admitted as if one after another.
    All eight are in flight together: race() holds the admitted ones at the upstream until every
    request is decided."""
    from llmgw.usage import estimate_tokens, prompt_chars
    from tests.test_config_effects import race

    def body(i: int) -> dict[str, Any]:  # distinct questions of one length: the same reservation each
        return {
            "model": "test-model",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": f"q{i:02d} wait #hold"}],
        }

    reserved = (estimate_tokens(prompt_chars(body(0))) * 1.0 + 4 * 2.0) / 1e6  # test-model's prices
    gw = limited(make_gateway, default_key={"daily_budget_usd": 2.5 * reserved})
    client = gw.client(gw.create_key(name="racer")["key"])
    statuses = race(client, [body(i) for i in range(8)], upstream)
    assert statuses == [200] * 3 + [429] * 5  # the third still starts below 2.5 reservations


def test_store_timeout_reaches_the_redis_client() -> None:
    """``limits.store_timeout_s`` is the Redis client's connect and command timeout (fail closed after it)."""
    from llmgw.config import LimitsConfig
    from llmgw.limits.counters import RedisCounters, counters_for

    counters = counters_for(LimitsConfig(store="redis", store_timeout_s=2.5))
    assert isinstance(counters, RedisCounters)
    kwargs = counters.store._redis.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 2.5 and kwargs["socket_connect_timeout"] == 2.5
    default = counters_for(LimitsConfig(store="redis"))
    assert isinstance(default, RedisCounters)
    assert default.store._redis.connection_pool.connection_kwargs["socket_timeout"] == 1.0
