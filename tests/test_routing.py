"""Model selection by task and cost, fallbacks, and cost parity, through the real server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway
from tests.upstream import FakeUpstream

CATALOG = {
    "cheap": {
        "provider": "up",
        "upstream_id": "fake-cheap",
        "context_window": 2048,
        "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
        "quality": {"chat": 0.9, "code": 0.5, "summarize": 0.75, "math": 0.3},
    },
    "mid": {
        "provider": "up",
        "upstream_id": "fake-mid",
        "context_window": 8192,
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "capabilities": ["chat", "streaming", "tools"],
        "quality": {"chat": 0.9, "code": 0.8, "math": 0.6},
    },
    "big": {
        "provider": "up",
        "upstream_id": "fake-big",
        "context_window": 128000,
        "price": {"input_per_mtok": 10.0, "output_per_mtok": 30.0},
        "capabilities": ["chat", "streaming", "tools", "json_mode"],
        "quality": {"chat": 0.95, "code": 0.95, "math": 0.95},
    },
}
BROKEN = {
    "provider": "down",
    "upstream_id": "nothing",
    "price": {"input_per_mtok": 0.01, "output_per_mtok": 0.01},
    "quality": {"chat": 0.99, "code": 0.99},
}


@pytest.fixture()
def router(make_gateway: Any) -> Any:
    def make(models: dict[str, Any] | None = None, **selection: Any) -> RunningGateway:
        catalog = models or CATALOG
        return make_gateway(
            models=catalog,  # added to the base catalog; the route allows only these
            routes={"default": {"models": list(catalog), "selection": selection}},
            routing={"enabled": True},
        )

    return make


def rows_when(gw: RunningGateway, n: int) -> list[dict[str, Any]]:
    """The request rows once there are ``n`` (a stream's row is queued just after its last byte)."""
    for _ in range(100):
        rows = gw.rows()
        if len(rows) >= n:
            return rows
        time.sleep(0.02)
    raise AssertionError(f"expected {n} rows, got {len(rows)}")


def ask(gw: RunningGateway, content: str = "hello", model: str = "auto", **body: Any) -> httpx.Response:
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        return http.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": content}], **body},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )


def test_cheapest_model_good_enough_for_the_given_task(router: Any, upstream: FakeUpstream) -> None:
    gw = router()
    code = ask(gw, "reverse a list", llmgw={"task": "code"})
    assert code.status_code == 200 and code.headers["x-llmgw-model"] == "mid"
    assert upstream.requests[-1]["model"] == "fake-mid"
    assert code.headers["x-llmgw-route"].startswith("default; task=code (request, 1.00); cheapest with quality >= 0.7")
    chat = ask(gw, "hi", llmgw={"task": "chat"})
    assert chat.headers["x-llmgw-model"] == "cheap"
    decision = next(r for r in gw.rows() if r["model_used"] == "mid")["meta"]["route_decision"]
    assert decision["chosen"] == "mid" and decision["task"] == "code" and decision["task_source"] == "request"
    assert {c["model"] for c in decision["candidates"]} == {"cheap", "mid", "big"}


def test_capabilities_and_context_window_exclude_models(router: Any) -> None:
    gw = router()
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    assert ask(gw, "hi", tools=[tool], llmgw={"task": "chat"}).headers["x-llmgw-model"] == "mid"
    assert (
        ask(gw, "hi", response_format={"type": "json_object"}, llmgw={"task": "chat"}).headers["x-llmgw-model"] == "big"
    )
    long = ask(gw, "word " * 2000, llmgw={"task": "chat"})  # ~2500 tokens with the output: past cheap's 2048
    assert long.headers["x-llmgw-model"] == "mid"
    excluded = next(c for c in gw.rows()[0]["meta"]["route_decision"]["candidates"] if c["model"] == "cheap")
    assert excluded["excluded"].startswith("context 2048")


def test_best_fast_and_cost_cap(router: Any) -> None:
    gw = router()
    assert ask(gw, "x", model="best", llmgw={"task": "code"}).headers["x-llmgw-model"] == "big"
    assert ask(gw, "x", model="fast", llmgw={"task": "code"}).headers["x-llmgw-model"] == "cheap"
    capped = router(policy="best", cost_cap_usd=0.005)  # big would cost ~0.015 for 512 output tokens
    assert ask(capped, "x", llmgw={"task": "code"}).headers["x-llmgw-model"] == "mid"


def test_an_unsure_classifier_routes_to_the_safest_plausible_task_not_to_chat(make_gateway: Any) -> None:
    """Threshold 1.0: the classifier is always unsure. A code request then went to chat's model (cheap,
    quality 0.5 at code); with ``default_task: safest`` it goes to a model that serves code."""

    def gateway(default_task: str) -> RunningGateway:
        return make_gateway(
            models=CATALOG,
            routes={"default": {"models": list(CATALOG), "selection": {"default_task": default_task}}},
            routing={"enabled": True, "task_threshold": 1.0},
        )

    text = "Write a Go function that returns the nth Fibonacci number."
    safest = ask(gateway("safest"), text)
    route = safest.headers["x-llmgw-route"]
    assert "(safest of code" in route and "classifier unsure" in route, route
    assert safest.headers["x-llmgw-model"] in ("mid", "big")  # both reach the 0.7 floor for code
    chat = ask(gateway("chat"), text)
    assert (
        chat.headers["x-llmgw-model"] == "cheap"
        and "task=chat (default (classifier said code)" in chat.headers["x-llmgw-route"]
    )


def test_task_is_inferred_from_the_last_user_turn(router: Any) -> None:
    gw = router()
    response = ask(gw, "Write a Python function that merges two sorted lists and add unit tests.")
    assert "task=code (classifier" in response.headers["x-llmgw-route"]
    assert response.headers["x-llmgw-model"] == "mid"


def test_failing_model_falls_back_to_the_next(router: Any) -> None:
    gw = router(models={**CATALOG, "broken": BROKEN})
    response = ask(gw, "hi", llmgw={"task": "chat"})  # broken is cheapest and best, but down
    assert response.status_code == 200 and response.headers["x-llmgw-model"] == "cheap"
    assert response.headers["x-llmgw-route"].endswith("fallbacks=1")
    row = gw.rows()[0]
    assert row["meta"]["fallbacks"] == [{"from": "broken", "to": "cheap", "error": "upstream_unavailable"}]
    streamed = gw.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], stream=True, extra_body={"llmgw": {"task": "chat"}}
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)


def test_explicit_model_uses_the_route_fallbacks(make_gateway: Any) -> None:
    gw = make_gateway(routes={"default": {"default_model": "test-model", "selection": {"fallbacks": ["test-model"]}}})
    response = ask(gw, "hi", model="dead-model")
    assert response.status_code == 200 and response.headers["x-llmgw-model"] == "test-model"
    bad = ask(gw, "#status:400", model="test-model")
    assert bad.status_code == 400  # a bad request is not retried elsewhere


def test_no_eligible_model_is_a_clear_400(router: Any) -> None:
    gw = router(models={"cheap": CATALOG["cheap"]})
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    response = ask(gw, "hi", tools=[tool], llmgw={"task": "chat"})
    assert response.status_code == 400
    assert (
        response.json()["error"]["code"] == "no_model_available"
        and "lacks tools" in response.json()["error"]["message"]
    )


def test_streamed_and_plain_requests_cost_the_same(make_gateway: Any) -> None:
    gw = make_gateway()
    messages = [{"role": "user", "content": "#chunks:4 the same question, twice"}]  # 4 completion tokens both ways
    gw.client().chat.completions.create(model="test-model", messages=messages)
    list(gw.client().chat.completions.create(model="test-model", messages=messages, stream=True))
    rows = rows_when(gw, 2)
    assert len(rows) == 2 and rows[0]["cost_usd"] == rows[1]["cost_usd"] > 0
    assert rows[0]["prompt_tokens"] == rows[1]["prompt_tokens"] and not rows[0]["usage_estimated"]
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model="nope", messages=messages)


def test_deployments_fail_over_and_the_breaker_keeps_a_dead_one_out(make_gateway: Any, upstream: FakeUpstream) -> None:
    multi = {"provider": "down", "upstream_id": "nothing", "deployments": [{"provider": "up", "upstream_id": "fake-b"}]}
    gw = make_gateway(models={"multi": multi}, routing={"breaker_failures": 2, "breaker_cooldown_s": 600})
    for _ in range(20):  # the dead deployment comes first about half the time until its circuit opens
        response = ask(gw, "hi", model="multi")
        assert response.status_code == 200 and upstream.requests[-1]["model"] == "fake-b"
    rows = gw.rows()
    failovers = [f for r in rows for f in r["meta"].get("failovers", [])]
    assert len(failovers) == 2 and failovers[0] == {"deployment": "multi@down/nothing", "error": "upstream_unavailable"}
    assert {r["provider"] for r in rows} == {"up"}


def test_latency_balancing_prefers_the_fastest_healthy_deployment() -> None:
    from llmgw.config import ModelConfig, RoutingConfig
    from llmgw.routing.balance import Balancer

    model = ModelConfig(
        provider="a",
        upstream_id="m",
        balance="latency",
        deployments=[{"provider": "b", "upstream_id": "m"}, {"provider": "c", "upstream_id": "m"}],
    )
    balancer = Balancer(RoutingConfig(breaker_failures=2, ewma_alpha=0.5))
    a, b, c = balancer.deployments("m", model)
    assert [d.provider for d in balancer.order("m", model)] == ["a", "b", "c"]  # each tried once first
    balancer.succeeded(a, 50)
    balancer.succeeded(b, 10)
    balancer.failed(c)
    assert [d.provider for d in balancer.order("m", model)] == ["b", "a", "c"]
    balancer.succeeded(b, 200)  # EWMA: 0.5 * 200 + 0.5 * 10 = 105
    assert b.ewma_ms == 105 and next(d.provider for d in balancer.order("m", model)) == "a"
    balancer.failed(a)
    balancer.failed(a)  # the breaker opens: a goes last, whatever its latency
    assert [d.provider for d in balancer.order("m", model)] == ["b", "c", "a"]


def test_missing_usage_is_counted_locally_and_marked_estimated(make_gateway: Any) -> None:
    from llmgw import tokens

    gw = make_gateway()
    messages = [{"role": "user", "content": "#no-usage #chunks:4 how many tokens is this, roughly?"}]
    plain = gw.client().chat.completions.create(model="test-model", messages=messages)
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in gw.client().chat.completions.create(model="test-model", messages=messages, stream=True)
        if c.choices
    )
    rows = sorted(rows_when(gw, 2), key=lambda r: r["stream"])
    assert all(r["usage_estimated"] for r in rows)
    expected_prompt = tokens.count(messages[0]["content"])
    assert [r["prompt_tokens"] for r in rows] == [expected_prompt, expected_prompt]
    assert rows[0]["completion_tokens"] == tokens.count(plain.choices[0].message.content or "") > 0
    assert rows[1]["completion_tokens"] == tokens.count(streamed) > 0
    assert plain.usage is not None and plain.usage.prompt_tokens == expected_prompt  # the client sees the estimate


def test_cached_prompt_tokens_cost_the_cached_price(make_gateway: Any) -> None:
    priced = {
        "provider": "up",
        "upstream_id": "fake-c",
        "price": {"input_per_mtok": 1.0, "cached_input_per_mtok": 0.1, "output_per_mtok": 2.0},
    }
    gw = make_gateway(models={"priced": priced})
    content = "#cached:8 " + "x" * 60  # 18 prompt tokens at the fake, 8 of them from the provider's cache
    for stream in (False, True):
        response = gw.client().chat.completions.create(
            model="priced", messages=[{"role": "user", "content": content}], stream=stream
        )
        if stream:
            list(response)
    rows = rows_when(gw, 2)
    expected = (10 * 1.0 + 8 * 0.1 + rows[0]["completion_tokens"] * 2.0) / 1_000_000
    assert rows[0]["prompt_tokens"] == 18 and rows[0]["cost_usd"] == pytest.approx(expected)
    assert (
        rows[1]["cost_usd"] == pytest.approx(rows[0]["cost_usd"])
        or rows[1]["completion_tokens"] != rows[0]["completion_tokens"]
    )


def test_auto_requests_routed_to_different_models_never_share_a_cache_entry(
    make_gateway: Any, upstream: FakeUpstream, tmp_path: Any
) -> None:
    """The cache keys on the model the plan chose for ``auto``, not on the route's default model."""
    gw = make_gateway(
        models=CATALOG,
        routes={"default": {"models": list(CATALOG), "default_model": "cheap"}},
        routing={"enabled": True},
        cache={"enabled": True, "persist_path": str(tmp_path / "cache.sqlite")},
    )
    chat = ask(gw, "Tell me about sorted lists", llmgw={"task": "chat"})
    assert chat.headers["x-llmgw-model"] == "cheap" and chat.headers["x-llmgw-cache"] == "miss"
    code = ask(gw, "Tell me about sorted lists", llmgw={"task": "code"})
    assert code.headers["x-llmgw-model"] == "mid", "routed elsewhere"
    assert code.headers["x-llmgw-cache"] == "miss", "another model's answer is not this one's"
    assert [r["model"] for r in upstream.requests] == ["fake-cheap", "fake-mid"]
    again = ask(gw, "Tell me about sorted lists", llmgw={"task": "code"})
    assert again.headers["x-llmgw-cache"] == "hit" and again.headers["x-llmgw-model"] == "mid"
    assert again.json()["model"] == "mid" and len(upstream.requests) == 2


def test_an_instruction_after_a_long_paste_routes_by_the_instruction(make_gateway: Any) -> None:
    """The instruction after a text longer than MiniLM's window is cut off from one embedding of the
    turn (``task_view: full``, the old behaviour); the instruction view reads it."""
    from tests.test_routing_views import ARTICLE

    def gateway(view: str) -> RunningGateway:
        return make_gateway(
            models=CATALOG,
            routes={"default": {"models": list(CATALOG)}},
            routing={"enabled": True, "task_view": view},
        )

    text = f"{ARTICLE}\n\nWrite a Python function that counts how often each year appears in a text like this."
    shipped = ask(gateway("default"), text)
    assert "task=code" in shipped.headers["x-llmgw-route"], shipped.headers["x-llmgw-route"]
    assert shipped.headers["x-llmgw-model"] == "mid"  # the cheapest with quality >= 0.7 for code
    whole = ask(gateway("full"), text)
    assert "task=code" not in whole.headers["x-llmgw-route"], whole.headers["x-llmgw-route"]
