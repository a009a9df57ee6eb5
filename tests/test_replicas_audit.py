"""Audit of running past one process: limits and budgets settled exactly across gateways sharing one
Redis (refusals, upstream errors, streams cut short, a store failing half-way), the budget's edge under
concurrent requests split over two gateways, and the CLI's worker count.

Real parts: gateways served by uvicorn on free ports (two of them on one Redis namespace where it
matters), the shared Redis under a unique prefix (deleted afterwards), the openai SDK as the client.
Only the upstream is the local stub (tests/upstream.py).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
import redis

from llmgw.usage import estimate_tokens, prompt_chars
from tests.conftest import RunningGateway
from tests.upstream import FakeUpstream

PRICE_IN, PRICE_OUT = 1.0, 2.0  # test-model's catalog prices per million tokens (tests.conftest)


def static_key(name: str, team: str | None = None) -> tuple[str, dict[str, Any]]:
    """A key declared in the config (its id, ``static:<name>``, is known before the gateway starts)."""
    secret = "sk-llmgw-" + uuid.uuid4().hex
    entry: dict[str, Any] = {"name": name, "sha256": hashlib.sha256(secret.encode()).hexdigest()}
    if team is not None:
        entry["team"] = team
    return secret, entry


class Store:
    """The shared Redis seen under one test's namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.redis = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)

    def value(self, pattern: str) -> float:
        """The counter matching ``pattern`` (0 when absent); at most one may match."""
        names = list(self.redis.scan_iter(f"{self.namespace}*{pattern}"))
        assert len(names) <= 1, names
        return float(self.redis.get(names[0]) or 0) if names else 0.0

    def names(self, pattern: str) -> list[bytes]:
        return list(self.redis.scan_iter(f"{self.namespace}*{pattern}"))

    def settles_to(self, pattern: str, expected: Callable[[], float], bound_s: float = 20) -> float:
        """The counter once it equals ``expected()`` (both re-read: the settle is a background task),
        or its last value after ``bound_s``: the caller asserts on it."""
        deadline = time.monotonic() + bound_s
        while True:
            got, want = self.value(pattern), expected()
            if got == pytest.approx(want, abs=1e-12) or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def cleanup(self) -> None:
        for name in self.redis.scan_iter(f"{self.namespace}*"):
            self.redis.delete(name)


@pytest.fixture()
def store() -> Iterator[Store]:
    probe = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        probe.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    shared = Store(f"audit-{uuid.uuid4().hex[:8]}")
    yield shared
    shared.cleanup()


def limits(store: Store, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "store": "redis", "namespace": store.namespace, "store_timeout_s": 10.0, **extra}


def fresh_minute() -> None:
    """Token and request counts are per calendar minute: don't start in a minute's last seconds."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.1)


def code_of(call: Callable[[], Any]) -> str:
    """``ok``, or the error code the gateway answered with."""
    try:
        call()
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return str(body.get("code") or exc.status_code)
    return "ok"


def row_tokens(gw: RunningGateway, key_id: str | None = None) -> float:
    """Prompt plus completion tokens of every answered request (of ``key_id``)."""
    rows = gw.rows(**({"key_id": key_id} if key_id else {}))
    return float(sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows if r["http_status"] == 200))


def row_cost(gw: RunningGateway, key_id: str | None = None) -> float:
    rows = gw.rows(**({"key_id": key_id} if key_id else {}))
    return float(sum(r["cost_usd"] or 0 for r in rows))


# --- refusals must not take back what was never counted ---------------------------------------


@pytest.mark.parametrize("refusal", ["rate_limit_exceeded", "budget_exceeded"])
def test_a_refused_key_does_not_lower_its_teams_token_count(
    make_gateway: Any, store: Store, refusal: str
) -> None:  # fmt: skip
    """Before: a request refused on its key's own limit (before its team's tokens were counted) still
    took its token estimate off the team's count when it ended, so one key hammering its limit drove
    the team's tokens-per-minute count down, below zero, and the team's other keys past the limit."""
    secret_a, key_a = static_key("a", team="t")
    secret_b, key_b = static_key("b", team="t")
    own = {"requests_per_minute": 1} if refusal == "rate_limit_exceeded" else {"daily_budget_usd": 0}
    gw = make_gateway(
        keys=[key_a, key_b],
        limits=limits(store, keys={"static:a": own}, teams={"t": {"tokens_per_minute": 100_000}}),
    )
    fresh_minute()
    ask = {"model": "test-model", "messages": [{"role": "user", "content": "hello there, how are you today?"}]}
    a, b = gw.client(secret_a), gw.client(secret_b)
    if refusal == "rate_limit_exceeded":
        assert code_of(lambda: a.chat.completions.create(**ask)) == "ok"
    codes = [code_of(lambda: a.chat.completions.create(**ask)) for _ in range(10)]
    assert codes == [refusal] * 10
    assert code_of(lambda: b.chat.completions.create(**ask)) == "ok"
    counted = store.settles_to("tpm:team:t:*", lambda: row_tokens(gw))
    assert counted == row_tokens(gw) > 0  # the team counted exactly the tokens of its answered requests


# --- budgets: reservations settled however the request ends ---------------------------------------


def reserved_for(body: dict[str, Any], max_tokens: int) -> float:
    """What ReserveBudget holds for ``body``: its prompt estimate plus ``max_tokens``, at test-model's prices."""
    return (estimate_tokens(prompt_chars(body)) * PRICE_IN + max_tokens * PRICE_OUT) / 1e6


def test_an_upstream_error_refunds_the_reservation(make_gateway: Any, store: Store) -> None:
    secret, key = static_key("spender")
    gw = make_gateway(keys=[key], limits=limits(store, default_key={"daily_budget_usd": 1.0}))
    ask = {"model": "test-model", "max_tokens": 50, "messages": [{"role": "user", "content": "fail me #status:500"}]}
    assert code_of(lambda: gw.client(secret).chat.completions.create(**ask)) != "ok"
    [row] = gw.rows()
    assert row["http_status"] >= 500 and not row["cost_usd"]
    assert store.names("spend:key:static:spender:*"), "nothing was reserved: the test proves nothing"
    assert store.settles_to("spend:key:static:spender:*", lambda: 0.0) == pytest.approx(0.0, abs=1e-12)


def test_a_stream_left_before_its_first_chunk_settles_its_reservation(
    make_gateway: Any, store: Store, upstream: FakeUpstream
) -> None:  # fmt: skip
    """The client gives up while the upstream has not sent a byte: the reservation (1,024 completion
    tokens) becomes the row's cost and the token estimate the row's tokens, nothing held."""
    secret, key = static_key("leaver")
    spec = {"daily_budget_usd": 1.0, "tokens_per_minute": 1_000_000}
    gw = make_gateway(keys=[key], limits=limits(store, default_key=spec))
    fresh_minute()
    body = {"model": "test-model", "stream": True, "messages": [{"role": "user", "content": "slow start #sleep:3"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"},
                   timeout=httpx.Timeout(10, read=1.0))  # fmt: skip
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not rows and time.monotonic() < deadline:
        rows = gw.rows()
        time.sleep(0.05)
    [row] = rows
    assert row["http_status"] == 499, row
    spent = store.settles_to("spend:key:static:leaver:*", lambda: row_cost(gw))
    assert spent == pytest.approx(row["cost_usd"] or 0.0, abs=1e-12)
    assert spent < reserved_for(body, 1024) / 2  # the reservation is not what stayed


def redis_acl_user(server: Any, namespace: str, team_writable: bool) -> str:
    """A user of the private Redis that may write the key scope's counters; the team's only when
    ``team_writable`` (a real store error, NOPERM, between the key's reservation and the team's)."""
    import redis as redis_py

    admin = redis_py.Redis(port=server.port, socket_timeout=5)
    write = "~*" if team_writable else f"~{namespace}:*:key:*"
    admin.execute_command("ACL", "SETUSER", "gw", "reset", "on", ">pw", "+@all", "%R~*", write)
    return f"redis://gw:pw@127.0.0.1:{server.port}/0"


def test_a_store_failing_between_two_budgets_leaves_no_reservation_behind(
    make_gateway: Any, tmp_path: Any
) -> None:  # fmt: skip
    """Before: the key's budget was reserved, the team's reservation then failed (503), and the key's
    reservation stayed in its spend for the rest of the day: a budget spent on nothing."""
    from tests.faults import PrivateRedis

    server = PrivateRedis()
    server.start()
    try:
        namespace = f"audit-{uuid.uuid4().hex[:8]}"
        url = redis_acl_user(server, namespace, team_writable=False)
        secret, key = static_key("k", team="t")
        gw = make_gateway(keys=[key], limits={
            "enabled": True, "store": "redis", "redis_url": url, "namespace": namespace,
            "default_key": {"daily_budget_usd": 1.0}, "teams": {"t": {"daily_budget_usd": 1.0}}})  # fmt: skip
        ask = {"model": "test-model", "max_tokens": 100, "messages": [{"role": "user", "content": "half way"}]}
        assert code_of(lambda: gw.client(secret).chat.completions.create(**ask)) == "limits_unavailable"
        reader = redis.Redis(port=server.port, socket_timeout=5)
        [spend] = list(reader.scan_iter(f"{namespace}:spend:key:static:k:*"))  # the key's reservation was taken
        deadline = time.monotonic() + 20
        while float(reader.get(spend) or 0) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert float(reader.get(spend) or 0) == pytest.approx(0.0, abs=1e-12)
        redis_acl_user(server, namespace, team_writable=True)  # the store works again: so do requests
        assert code_of(lambda: gw.client(secret).chat.completions.create(**ask)) == "ok"
        cost = row_cost(gw)
        assert cost > 0
        deadline = time.monotonic() + 20
        while float(reader.get(spend) or 0) != pytest.approx(cost) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert float(reader.get(spend) or 0) == pytest.approx(cost)
    finally:
        server.close()


def test_the_budgets_edge_under_twenty_requests_split_over_two_gateways(
    make_gateway: Any, store: Store, upstream: FakeUpstream
) -> None:  # fmt: skip
    """A budget of exactly five reservations: twenty requests at once, half on each gateway, admit
    five (at five reservations the spend *is* the budget: "at or past it requests are refused"); the
    spend then settles to what the five cost."""
    secret, key = static_key("edge")

    def body(i: int) -> dict[str, Any]:  # distinct questions of one length: the same reservation each
        return {"model": "test-model", "max_tokens": 7,
                "messages": [{"role": "user", "content": f"edge {i:02d} #sleep:1.5"}]}  # fmt: skip

    one = reserved_for(body(0), 7)
    budget = 5 * one
    gateways = [make_gateway(keys=[key], limits=limits(store, default_key={"daily_budget_usd": budget}))
                for _ in range(2)]  # fmt: skip
    clients = [gw.client(secret, timeout=30) for gw in gateways]
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda i: code_of(lambda: clients[i % 2].chat.completions.create(**body(i))), range(20)))
    assert sorted(codes) == ["budget_exceeded"] * 15 + ["ok"] * 5, codes
    spent = store.settles_to("spend:key:static:edge:*", lambda: sum(row_cost(gw) for gw in gateways))
    assert spent == pytest.approx(sum(row_cost(gw) for gw in gateways), abs=1e-12)
    assert spent <= budget


# --- the CLI's worker count ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "abc", "2.5", "", "0"])
def test_a_bad_worker_count_is_a_clear_cli_error(value: str) -> None:
    done = subprocess.run([sys.executable, "-m", "llmgw", "serve", "--workers", value, "--port", "0"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done
    assert f"--workers must be a positive integer or auto, not {value!r}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# --- embeddings count against the key's limits too -----------------------------------------------


def test_embeddings_count_against_the_keys_limits(make_gateway: Any, store: Store) -> None:
    """Before: ``/v1/embeddings`` skipped the rate-limit stage, so a key at its requests-per-minute
    limit (or past its budget) kept embedding without bound, and nothing it embedded was counted."""
    secret, key = static_key("embedder")
    spec = {"requests_per_minute": 2, "tokens_per_minute": 1_000_000}
    gw = make_gateway(keys=[key], limits=limits(store, default_key=spec))
    fresh_minute()
    client = gw.client(secret)
    codes = [code_of(lambda: client.embeddings.create(model="up-embed", input=["one two three"])) for _ in range(4)]
    assert codes == ["ok", "ok", "rate_limit_exceeded", "rate_limit_exceeded"]
    assert store.value("rpm:key:static:embedder:*") == 4
    counted = store.settles_to("tpm:key:static:embedder:*", lambda: row_tokens(gw))
    assert counted == row_tokens(gw) > 0
    rows = gw.rows()
    assert sorted(r["http_status"] for r in rows) == [200, 200, 429, 429]


# --- the limits' Redis restarted under load ------------------------------------------------------


def test_limits_redis_restarted_under_load(make_gateway: Any) -> None:
    """Clients keep sending while the limits' Redis (a private one) stops and starts again: every
    request is answered or refused with 503 ``limits_unavailable`` (never another error, never a
    hang), each has its row, and once Redis is back requests are counted and served again."""
    import threading

    from tests.faults import PrivateRedis

    server = PrivateRedis()
    server.start()
    try:
        secret, key = static_key("loaded")
        gw = make_gateway(keys=[key], limits={
            "enabled": True, "store": "redis", "redis_url": server.url, "namespace": "restart",
            "default_key": {"requests_per_minute": 100_000, "daily_budget_usd": 100.0}})  # fmt: skip
        codes: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(n: int) -> None:
            client = gw.client(secret, timeout=30)
            i = 0
            while not stop.is_set():
                i += 1
                ask = {"model": "test-model", "messages": [{"role": "user", "content": f"load {n}.{i} #sleep:0.05"}]}
                code = code_of(lambda a=ask: client.chat.completions.create(**a))  # type: ignore[misc]
                with lock:
                    codes.append(code)

        def wait_for(what: str, check: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 60
            while not check():
                assert time.monotonic() < deadline, f"{what}: {codes[-10:]}"
                time.sleep(0.05)

        threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(3)]
        for thread in threads:
            thread.start()
        wait_for("answered before", lambda: codes.count("ok") >= 10)
        server.stop()
        before = len(codes)
        wait_for("refused while Redis is away", lambda: "limits_unavailable" in codes[before:])
        server.start()
        back = len(codes)
        wait_for("answered again", lambda: codes[back:].count("ok") >= 10)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert set(codes) == {"ok", "limits_unavailable"}, sorted(set(codes))
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while len(rows) < len(codes) and time.monotonic() < deadline:
            rows = gw.rows()
        assert len(rows) == len(codes)
        assert {r["error_code"] for r in rows} == {None, "limits_unavailable"}
        reader = redis.Redis(port=server.port, socket_timeout=5)
        counted = sum(float(reader.get(n) or 0) for n in reader.scan_iter("restart:rpm:key:static:loaded:*"))
        assert counted >= 10  # counted again since Redis came back (it kept no data)
    finally:
        server.close()


def test_a_cache_hit_is_charged_as_its_row_says(make_gateway: Any, store: Store) -> None:
    """The spend is the sum of the rows' costs, a cache hit included (what it cost is what its row says)."""
    secret, key = static_key("cached")
    spec = {"daily_budget_usd": 1.0, "tokens_per_minute": 1_000_000}
    gw = make_gateway(keys=[key], limits=limits(store, default_key=spec),
                      cache={"enabled": True, "semantic": False, "persist_path": None, "preload": False})  # fmt: skip
    fresh_minute()
    ask = {"model": "test-model", "temperature": 0, "messages": [{"role": "user", "content": "cache me please"}]}
    seen = [gw.client(secret).chat.completions.with_raw_response.create(**ask).headers["x-llmgw-cache"] for _ in "ab"]
    assert seen == ["miss", "hit"]
    spent = store.settles_to("spend:key:static:cached:*", lambda: row_cost(gw))
    assert spent == pytest.approx(row_cost(gw), abs=1e-12)
    assert store.settles_to("tpm:key:static:cached:*", lambda: row_tokens(gw)) == row_tokens(gw)


# --- workers that never come up -------------------------------------------------------------------


@pytest.mark.slow  # five worker start-ups that fail
def test_workers_that_fail_before_serving_make_the_parent_give_up(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    """Before: a worker counted as failing to start only when it died within 10 s of its start; on a
    busy machine the imports alone take about that long, so workers of a broken config (here an
    unwritable database path) were restarted forever (51 starts in 5 minutes) instead of the parent
    exiting 1. A worker that dies before it listens now counts however long it took (the bound is
    shrunk here so that only that rule can end the loop)."""
    import threading

    import yaml

    from llmgw import workers

    monkeypatch.setattr(workers, "EARLY_DEATH_S", 0.001)
    config = tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump({
        "storage": {"url": "sqlite:////proc/llmgw-no-such-dir/gw.db"},
        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": {"provider": "up", "upstream_id": "m"}}, "routes": {"default": {"default_model": "m"}},
    }))  # fmt: skip
    sock = workers.reserve("127.0.0.1", 0)
    port = sock.getsockname()[1]
    args = ["--log-level", "warning", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    supervisor = workers.Supervisor(2, sock, args, grace_s=30, reuse_port=True)
    guard = threading.Timer(200, lambda: setattr(supervisor, "stopping", True))  # the old endless loop ends
    guard.start()
    try:
        status = supervisor.run()
    finally:
        guard.cancel()
    assert status == 1 and supervisor.early_deaths == workers.MAX_EARLY_DEATHS, (status, supervisor.restarts)


def test_a_request_for_several_choices_reserves_each_of_them(make_gateway: Any, store: Store) -> None:
    """Before: ``n`` choices reserved the completion tokens of one, so concurrent requests asking for
    eight choices each were admitted at an eighth of their highest cost and overspent the budget by
    several requests (doc: it is passed by at most the last admitted request)."""
    secret, key = static_key("choices")

    def body(i: int) -> dict[str, Any]:  # distinct questions of one length: the same reservation each
        return {"model": "test-model", "max_tokens": 4, "n": 8,
                "messages": [{"role": "user", "content": f"pick {i:02d} #sleep:1"}]}  # fmt: skip

    one = reserved_for(body(0), 4 * 8)  # each choice may use max_tokens
    budget = 2.5 * one
    gw = make_gateway(keys=[key], limits=limits(store, default_key={"daily_budget_usd": budget}))
    client = gw.client(secret, timeout=30)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: code_of(lambda: client.chat.completions.create(**body(i))), range(8)))
    assert sorted(codes) == ["budget_exceeded"] * 5 + ["ok"] * 3, codes
    spent = store.settles_to("spend:key:static:choices:*", lambda: row_cost(gw))
    most = max(r["cost_usd"] for r in gw.rows())
    assert spent == pytest.approx(row_cost(gw), abs=1e-12) and spent <= budget + most


def test_tool_definitions_count_in_the_reservation(make_gateway: Any, store: Store, upstream: FakeUpstream) -> None:
    """Before: the prompt estimate counted the messages only, so a request carrying large tool
    definitions (billed by the provider as prompt tokens) reserved a fraction of its cost and
    concurrent ones overspent the budget several times over."""
    import json

    secret, key = static_key("tooled")
    parameters = {"type": "object", "properties": {"x": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "does a thing. " * 150,
              "parameters": parameters}} for i in range(4)]  # fmt: skip
    prompt_tokens = len(json.dumps(tools)) // 4  # what a provider bills for the definitions, roughly
    upstream.usages["tooled"] = {"prompt_tokens": prompt_tokens, "completion_tokens": 4,
                                 "total_tokens": prompt_tokens + 4}  # fmt: skip

    def body(i: int) -> dict[str, Any]:
        return {"model": "test-model", "max_tokens": 4, "tools": tools,
                "messages": [{"role": "user", "content": f"use {i:02d} #sleep:1 #usage:tooled"}]}  # fmt: skip

    cost = (prompt_tokens * PRICE_IN + 4 * PRICE_OUT) / 1e6  # what each answered request costs
    budget = 2.5 * cost
    gw = make_gateway(keys=[key], limits=limits(store, default_key={"daily_budget_usd": budget}))
    client = gw.client(secret, timeout=30)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: code_of(lambda: client.chat.completions.create(**body(i))), range(8)))
    spent = store.settles_to("spend:key:static:tooled:*", lambda: row_cost(gw))
    assert spent == pytest.approx(row_cost(gw), abs=1e-12)
    assert codes.count("ok") <= 3, codes  # the third still starts below the budget
    assert spent <= budget + cost  # passed by at most the last admitted request


def test_a_pricier_fallback_is_reserved_for(make_gateway: Any, store: Store, upstream: FakeUpstream) -> None:
    """Before: the reservation was priced at the first model only; when it failed and the route fell
    back to a model a hundred times dearer, concurrent requests had reserved a hundredth of what they
    then cost and overspent the budget by all of them."""
    secret, key = static_key("fallen")

    def model(upstream_id: str, price: float) -> dict[str, Any]:
        return {"provider": "up", "upstream_id": upstream_id, "context_window": 4096,
                "price": {"input_per_mtok": price, "output_per_mtok": 2 * price}}  # fmt: skip

    def body(i: int) -> dict[str, Any]:  # the first model fails, the fallback answers
        text = f"fall {i:02d} #sleep:1 #status:500 #only:fake_cheap"
        return {"model": "cheap", "max_tokens": 4, "messages": [{"role": "user", "content": text}]}

    highest = 100 * reserved_for(body(0), 4)  # at the fallback's prices
    budget = 2.5 * highest
    gw = make_gateway(
        keys=[key], limits=limits(store, default_key={"daily_budget_usd": budget}),
        models={"cheap": model("fake_cheap", 1.0), "pricey": model("fake_pricey", 100.0)},
        routes={"default": {"default_model": "cheap", "selection": {"fallbacks": ["pricey"]}}},
    )  # fmt: skip
    client = gw.client(secret, timeout=30)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: code_of(lambda: client.chat.completions.create(**body(i))), range(8)))
    rows = gw.rows()
    assert {r["model_used"] for r in rows if r["http_status"] == 200} == {"pricey"}, rows
    spent = store.settles_to("spend:key:static:fallen:*", lambda: row_cost(gw))
    assert spent == pytest.approx(row_cost(gw), abs=1e-12)
    assert sorted(codes) == ["budget_exceeded"] * 5 + ["ok"] * 3, codes
    assert spent <= budget + highest


# --- shutdown -----------------------------------------------------------------------------------------


def test_shutdown_waits_for_the_last_requests_settling(make_gateway: Any, upstream: FakeUpstream) -> None:
    """Before: stopping closed the limits' Redis connection under the settling writes still in flight,
    so the last requests answered before a SIGTERM kept their reservation (their highest cost) in the
    budget. Here Redis is held (SIGSTOP) while the answer goes out, so the settling waits on it when the
    gateway stops; it is released once the stop has begun."""
    import sqlite3
    import threading

    from tests.faults import PrivateRedis

    server = PrivateRedis()
    server.start()
    try:
        secret, key = static_key("last", team="t")
        gw = make_gateway(keys=[key], limits={
            "enabled": True, "store": "redis", "redis_url": server.url, "namespace": "stop", "store_timeout_s": 30,
            "default_key": {"daily_budget_usd": 1.0}, "teams": {"t": {"daily_budget_usd": 1.0}}})  # fmt: skip
        marker = f"last one {uuid.uuid4().hex[:6]}"
        ask = {
            "model": "test-model",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": f"{marker} #sleep:1"}],
        }
        codes: list[str] = []
        asking = threading.Thread(
            target=lambda: codes.append(code_of(lambda: gw.client(secret).chat.completions.create(**ask)))
        )
        asking.start()
        deadline = time.monotonic() + 30
        while not any(marker in str(body.get("messages")) for body in upstream.requests):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        server.pause()  # the request is at the upstream: its reservation is taken, its settling is to come
        asking.join(30)
        assert codes == ["ok"]
        stopping = threading.Thread(target=gw.stop)
        stopping.start()
        time.sleep(1.5)  # not asserted on: lets the stop reach the store before Redis answers again
        server.resume()
        stopping.join(60)
        db = gw.config.storage.url.removeprefix("sqlite:///")
        with sqlite3.connect(db) as conn:
            [(cost,)] = conn.execute("select cost_usd from requests").fetchall()
        reader = redis.Redis(port=server.port, socket_timeout=5)
        spent = {name.decode().split(":")[2]: float(reader.get(name) or 0) for name in reader.scan_iter("stop:spend:*")}
        assert spent == {"key": pytest.approx(cost), "team": pytest.approx(cost)}, (spent, cost)
    finally:
        server.close()
