"""Audit of model selection, fallbacks, circuit breakers and experiments, through a real gateway.

The upstream is the tests' local server (``tests/upstream.py``); clients are the official SDK or
plain HTTP. ``#only:MODEL`` makes only that upstream model fail, so a fallback can answer.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from llmgw.config import ConfigError, parse_config
from tests.conftest import ADMIN_KEY, PromptRepo, RunningGateway, base_config
from tests.upstream import FakeUpstream

#: primary is cheapest and good enough, so ``auto`` picks it first; backup is next in the ranking
PAIR = {
    "primary": {
        "provider": "up",
        "upstream_id": "fake_primary",
        "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.1},
        "quality": {"default": 0.9},
    },
    "backup": {
        "provider": "up",
        "upstream_id": "fake_backup",
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
        "quality": {"default": 0.9},
    },
}

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


def ask(gw: RunningGateway, content: str, model: str = "auto", key: str = ADMIN_KEY, **body: Any) -> httpx.Response:
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        return http.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": content}], **body},
            headers={"authorization": f"Bearer {key}"},
        )


def hits(upstream: FakeUpstream) -> Counter[str]:
    return Counter(body["model"] for body in upstream.requests)


# --- circuit breaker ------------------------------------------------------------------------------


def test_an_open_circuit_is_skipped_for_the_next_model_instead_of_called_again(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """docs/routing.md: deployments whose circuit is open are *skipped*. A model whose only deployment
    failed ``breaker_failures`` times was still called first on every request (its open circuit only
    put it last among its own deployments), so each request paid its retries before the fallback."""
    gw = make_gateway(
        models=PAIR,
        routes={"default": {"models": list(PAIR)}},
        routing={"enabled": True, "breaker_failures": 1, "breaker_cooldown_s": 600},
    )
    failing = "#status:500 #only:fake_primary"
    first = ask(gw, failing, llmgw={"task": "chat"})
    assert first.status_code == 200 and first.headers["x-llmgw-model"] == "backup"
    assert hits(upstream) == {"fake_primary": 3, "fake_backup": 1}  # max_retries 2, then the fallback
    upstream.reset()
    for _ in range(3):
        again = ask(gw, failing, llmgw={"task": "chat"})
        assert again.status_code == 200 and again.headers["x-llmgw-model"] == "backup"
        assert again.json()["model"] == "backup"
    assert hits(upstream) == {"fake_backup": 3}, "the open circuit is not called while another model can answer"
    row = gw.rows()[0]
    assert row["model_used"] == "backup"
    assert row["meta"]["fallbacks"] == [{"from": "primary", "to": "backup", "error": "circuit_open"}]


def test_an_open_circuit_is_still_tried_when_nothing_else_can_answer(make_gateway: Any, upstream: FakeUpstream) -> None:
    """With no fallback left, a model whose circuits are all open is tried rather than refused
    unheard: a recovered upstream answers, a dead one fails with its own error."""
    gw = make_gateway(
        models={"primary": PAIR["primary"]},
        routes={"default": {"models": ["primary"], "selection": {"max_fallbacks": 0}}},
        routing={"breaker_failures": 1, "breaker_cooldown_s": 600},
    )
    assert ask(gw, "#status:500", model="primary").status_code == 502
    upstream.reset()
    recovered = ask(gw, "hello", model="primary")
    assert recovered.status_code == 200 and hits(upstream) == {"fake_primary": 1}


def test_a_half_open_circuit_lets_one_probe_through_while_the_others_fall_back(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """After the cooldown, one request probes the deployment; the requests arriving while the probe
    runs go to the next model in line. Before, every request after the cooldown called the upstream
    that might still be down (here: four slow calls instead of one)."""
    gw = make_gateway(
        models=PAIR,
        routes={"default": {"models": list(PAIR)}},
        routing={"enabled": True, "breaker_failures": 1, "breaker_cooldown_s": 60},
    )
    assert ask(gw, "#status:500 #only:fake_primary", llmgw={"task": "chat"}).headers["x-llmgw-model"] == "backup"
    # the cooldown is over: half-open. Ended here rather than waited for, so that the cooldown can be
    # long: the probe holds the circuit open for one cooldown, and with 1 s the other requests had to
    # arrive within 1 s of it (on a busy machine, a second probe)
    [primary] = gw.gateway.balancer.deployments("primary", gw.config.models["primary"])
    assert primary.open_until > time.monotonic(), "the failure did not open the circuit"
    primary.open_until = time.monotonic() - 0.001
    upstream.reset()
    # the probe is held at the upstream until every request is decided (answered by the fallback, or
    # at the primary), so the others arrive while it runs however slowly the threads start (a 3 s
    # upstream sleep assumed they would)
    slow_primary = "#hold #only:fake_primary"
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, gw, f"{slow_primary} ({i})", llmgw={"task": "chat"}) for i in range(4)]
        try:
            deadline = time.monotonic() + 60  # a bound: they are decided at once
            while sum(f.done() for f in futures) + hits(upstream)["fake_primary"] < len(futures):
                assert time.monotonic() < deadline, f"not all decided: {hits(upstream)}"
                time.sleep(0.02)
        finally:
            upstream.release.set()
        answers = [f.result() for f in futures]
    assert all(a.status_code == 200 for a in answers)
    assert hits(upstream) == {"fake_primary": 1, "fake_backup": 3}, "one probe, the others fall back"
    assert sorted(a.headers["x-llmgw-model"] for a in answers) == ["backup", "backup", "backup", "primary"]
    upstream.reset()  # the probe succeeded: the circuit is closed
    assert ask(gw, "hello", llmgw={"task": "chat"}).headers["x-llmgw-model"] == "primary"


def test_half_open_one_success_closes_and_one_failure_reopens() -> None:
    """After the cooldown the deployment is tried again; one success closes it, one failure reopens it."""
    from llmgw.config import ModelConfig, RoutingConfig
    from llmgw.routing.balance import Balancer

    model = ModelConfig(provider="a", upstream_id="m")
    balancer = Balancer(RoutingConfig(breaker_failures=2, breaker_cooldown_s=30))
    (a,) = balancer.deployments("m", model)
    balancer.failed(a)
    assert not balancer.is_open(a)
    balancer.failed(a)
    assert balancer.is_open(a)
    a.open_until = 0.0  # the cooldown has passed: half-open
    assert not balancer.is_open(a)
    balancer.failed(a)  # one failure while half-open reopens it
    assert balancer.is_open(a)
    a.open_until = 0.0
    balancer.succeeded(a, 10.0)
    assert not balancer.is_open(a) and a.failures == 0
    balancer.failed(a)
    assert not balancer.is_open(a), "closed again: it takes breaker_failures failures to open"


# --- configuration ------------------------------------------------------------------------------


def test_an_unknown_fallback_model_is_a_config_error() -> None:
    """A misspelt ``selection.fallbacks`` name was dropped silently: the route then had no fallback."""
    config = base_config("http://127.0.0.1:9/v1", "sqlite:///:memory:")
    config["routes"]["default"]["selection"] = {"fallbacks": ["test-model", "tset-model"]}
    with pytest.raises(ConfigError) as info:
        parse_config(config)
    assert "routes.default.selection.fallbacks[1]" in str(info.value) and "tset-model" in str(info.value)


def test_an_arm_model_that_is_not_a_chat_model_is_a_config_error() -> None:
    config = base_config("http://127.0.0.1:9/v1", "sqlite:///:memory:")
    config["experiments"] = {
        "e": {"template": "t", "arms": [{"name": "a", "version": "HEAD"}, {"name": "b", "version": "HEAD",
                                                                             "model": "up-embed"}]}
    }  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(config)
    assert "experiments.e.arms[1].model" in str(info.value)


# --- keys and their models ------------------------------------------------------------------------


def test_auto_and_its_fallbacks_never_use_a_model_the_key_may_not(make_gateway: Any, upstream: FakeUpstream) -> None:
    three = {**PAIR, "third": {**PAIR["backup"], "upstream_id": "fake_third",
                               "price": {"input_per_mtok": 5, "output_per_mtok": 5}}}  # fmt: skip
    gw = make_gateway(models=three, routes={"default": {"models": list(three)}}, routing={"enabled": True})
    key = gw.create_key(name="narrow", models=["backup", "third"])["key"]
    response = ask(gw, "#status:500 #only:fake_backup", key=key, llmgw={"task": "chat"})
    assert response.status_code == 200 and response.headers["x-llmgw-model"] == "third"
    assert "fake_primary" not in hits(upstream)
    decision = gw.rows()[0]["meta"]["route_decision"]
    assert {c["model"] for c in decision["candidates"]} == {"backup", "third"}


# --- experiments ----------------------------------------------------------------------------------


def test_an_arm_whose_model_the_key_may_not_use_is_not_drawn_for_that_key(
    tgw: Any, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """The candidate arm switches to ``other-model``. A key allowed only ``test-model`` asking for
    ``test-model`` was refused (403 ``model_not_allowed``) whenever it drew that arm, about half its
    requests, and each refusal was recorded against the arm. It now takes the arms it may use."""
    from tests.test_experiments import experiment_gateway

    gw, _, _ = experiment_gateway(tgw, repo)
    created = gw.create_key(name="narrow", models=["test-model"])
    narrow, wide = gw.client(api_key=created["key"]), gw.client()
    for i in range(12):
        for client in (narrow, wide):
            raw = client.chat.completions.with_raw_response.create(
                model="test-model", messages=[{"role": "user", "content": "hi"}], user=f"user-{i}",
                extra_body={"llmgw": {"prompt": "greeter"}},
            )  # fmt: skip
            assert raw.http_response.status_code == 200
    drawn: dict[bool, set[tuple[str, str, str]]] = {True: set(), False: set()}
    for r in gw.rows():
        drawn[r["key_id"] == created["id"]].add((r["experiment_arm"], r["model_used"], r["status"]))
    assert drawn[True] == {("control", "test-model", "ok")}, "only the arm the key may use"
    assert {arm for arm, _, _ in drawn[False]} == {"control", "candidate"}, "other keys draw both"
    rules = {(r["experiment_arm"], r["meta"]["route_decision"]["rule"]) for r in gw.rows()}
    assert rules == {("control", "explicit"), ("candidate", "experiment")}, "the row says why the model answered"
    assert hits(upstream)["fake-2"] > 0  # the candidate arm answered other keys with its model


# --- fallbacks ------------------------------------------------------------------------------------


def test_an_explicit_models_fallbacks_skip_models_that_cannot_serve_the_request(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """``selection.fallbacks`` of a named model: a tools request fell back to ``other-model``, which
    has no ``tools`` capability (and could have fallen back to an embedding model); it now skips
    to the first fallback that can serve it, as ``auto``'s ranking does."""
    tooled = {"provider": "up", "upstream_id": "fake_tooled", "capabilities": ["chat", "streaming", "tools"]}
    gw = make_gateway(
        models={"tooled": tooled, "prim": {**tooled, "upstream_id": "fake_prim"}},
        routes={"default": {"selection": {"fallbacks": ["up-embed", "other-model", "tooled"]}}},
    )
    raw = gw.client().chat.completions.with_raw_response.create(
        model="prim", messages=[{"role": "user", "content": "#status:500 #only:fake_prim"}], tools=[TOOL]
    )
    assert raw.headers["x-llmgw-model"] == "tooled" and raw.parse().model == "tooled"
    assert hits(upstream) == {"fake_prim": 3, "fake_tooled": 1}
    assert gw.rows()[0]["meta"]["fallbacks"] == [{"from": "prim", "to": "tooled", "error": "upstream_server_error"}]
    upstream.reset()
    plain = ask(gw, "#status:500 #only:fake_prim", model="prim")  # no tools: other-model serves it
    assert plain.status_code == 200 and plain.headers["x-llmgw-model"] == "other-model"
    assert "fake-embed" not in hits(upstream)


# --- context windows ------------------------------------------------------------------------------


def test_a_prompt_too_long_goes_to_a_larger_model_or_is_a_clear_context_length_400(make_gateway: Any) -> None:
    small = {**PAIR["primary"], "context_window": 1024}
    large = {**PAIR["backup"], "context_window": 16384}
    gw = make_gateway(
        models={"small": small, "large": large},
        routes={"default": {"models": ["small", "large"]}},
        routing={"enabled": True},
    )
    client = gw.client()
    fits_large = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "word " * 4000}], extra_body={"llmgw": {"task": "chat"}}
    )
    assert fits_large.headers["x-llmgw-model"] == "large" and fits_large.parse().model == "large"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "word " * 40000}],
            extra_body={"llmgw": {"task": "chat"}},
        )
    assert info.value.code == "context_length_exceeded" and info.value.param == "messages"
    assert "large: context 16384" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:  # another reason than length: not a length error
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            tools=[TOOL],
            extra_body={"llmgw": {"task": "chat"}},
        )
    assert info.value.code == "no_model_available"


#: the primary's failure → the code recorded in ``meta.fallbacks`` (None: no fallback, the client's error)
FAILURES = {
    "#status:429": "upstream_rate_limited",
    "#status:500": "upstream_server_error",
    "#status:503": "upstream_unavailable",
    "#sleep:3": "upstream_timeout",
    "refused": "upstream_unavailable",
    "#status:400": None,
    "#status:422": None,
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_auto_falls_back_on_upstream_failures_and_never_on_a_request_the_client_got_wrong(
    make_gateway: Any, upstream: FakeUpstream, failure: str
) -> None:
    fast = {"type": "openai", "base_url": upstream.base_url, "max_retries": 0, "read_timeout_s": 1}
    primary = {**PAIR["primary"], "provider": "down" if failure == "refused" else "fast"}
    models = {"primary": primary, "backup": {**PAIR["backup"], "provider": "fast"}}
    gw = make_gateway(
        providers={"fast": fast}, models=models, routes={"default": {"models": list(models)}}, routing={"enabled": True}
    )
    upstream.retry_after = "1"
    content = "hi" if failure == "refused" else f"{failure} #only:fake_primary"
    response = ask(gw, content, llmgw={"task": "chat"})
    row = gw.rows()[0]
    code = FAILURES[failure]
    if code is None:
        assert response.status_code == 400 and response.json()["error"]["code"] == "upstream_bad_request"
        assert hits(upstream) == {"fake_primary": 1} and not row["meta"].get("fallbacks")
        return
    assert response.status_code == 200 and response.headers["x-llmgw-model"] == "backup"
    assert response.json()["model"] == "backup" and row["model_used"] == "backup"
    assert response.headers["x-llmgw-route"].endswith("model=backup; fallbacks=1")
    assert row["meta"]["fallbacks"] == [{"from": "primary", "to": "backup", "error": code}]
    assert hits(upstream)["fake_backup"] == 1


def test_an_open_circuit_shows_in_metrics_and_closes_after_a_success(make_gateway: Any, upstream: FakeUpstream) -> None:
    """``llmgw_deployment_circuit_open``: an operator sees which deployment the breaker keeps out."""
    gw = make_gateway(
        models={"primary": PAIR["primary"]},
        routes={"default": {"models": ["primary"]}},
        routing={"breaker_failures": 2, "breaker_cooldown_s": 600},
    )
    series = 'llmgw_deployment_circuit_open{deployment="up/fake_primary",model="primary"}'

    def scraped() -> str:
        with httpx.Client(base_url=gw.url, timeout=30) as http:
            return http.get("/metrics").text

    assert ask(gw, "#status:500", model="primary").status_code == 502
    assert f"{series} 0.0" in scraped(), "one failure of two: still closed"
    assert ask(gw, "#status:500", model="primary").status_code == 502
    assert f"{series} 1.0" in scraped()
    assert ask(gw, "hello", model="primary").status_code == 200  # the last resort is tried, and answers
    assert f"{series} 0.0" in scraped()


def test_experiment_shares_hold_through_the_gateway_and_stick_to_the_keys_user(
    tgw: Any, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """``sticky: request``, weights 3:1: over 240 requests the candidate gets a quarter (binomial sd
    6.7; 4 sd allowed). ``sticky: user``: a key's own ``user`` holds its callers to one arm."""
    from tests.test_experiments import experiment_gateway

    arms = [{"name": "control", "version": "v1", "weight": 3}, {"name": "candidate", "version": "v2", "weight": 1}]
    gw, _, _ = experiment_gateway(tgw, repo, sticky="request", arms=arms)
    client = gw.client()
    for _ in range(240):
        client.chat.completions.create(
            model="test-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"llmgw": {"prompt": "greeter"}},
        )
    drawn = Counter(r["experiment_arm"] for r in gw.rows())
    assert sum(drawn.values()) == 240 and abs(drawn["candidate"] - 60) <= 27, drawn

    sticky, _, _ = experiment_gateway(tgw, repo, arms=arms)
    for n in range(4):
        key = sticky.create_key(name=f"k{n}", user=f"person-{n}")["key"]
        mine = set()
        for _ in range(6):
            raw = sticky.client(api_key=key).chat.completions.with_raw_response.create(
                model="test-model",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"llmgw": {"prompt": "greeter"}},
            )
            mine.add(raw.headers["x-llmgw-experiment"])
        assert len(mine) == 1, "the key's user sticks to one arm"


def test_a_deployment_refusing_the_gateways_credentials_fails_over_and_is_kept_out(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """A deployment whose key is wrong (upstream 401) is a configuration fault of that deployment:
    it failed its share of requests with 502 ``upstream_auth_failed`` while the other deployment was
    healthy. It now fails over, and its breaker keeps it out."""
    multi = {
        "provider": "up",
        "upstream_id": "fake_badkey",
        "deployments": [{"provider": "up", "upstream_id": "fake_goodkey", "weight": 0.01}],  # the bad one first
    }
    gw = make_gateway(models={"multi": multi}, routing={"breaker_failures": 1, "breaker_cooldown_s": 600})
    for _ in range(12):  # the bad deployment comes first (99 %) until its circuit opens
        response = ask(gw, "#status:401 #only:fake_badkey", model="multi")
        assert response.status_code == 200 and response.json()["model"] == "multi"
    assert hits(upstream)["fake_goodkey"] == 12 and hits(upstream)["fake_badkey"] <= 1
    failovers = [f for r in gw.rows() for f in r["meta"].get("failovers", [])]
    assert failovers in ([], [{"deployment": "multi@up/fake_badkey", "error": "upstream_auth_failed"}])


def test_count_tokens_takes_auto_where_messages_does(make_gateway: Any) -> None:
    """``/v1/messages/count_tokens`` resolves the model as the request would be: with routing on,
    ``auto`` on a route without ``default_model`` is routed by ``/v1/messages`` but was 404 here."""
    import anthropic

    gw = make_gateway(models=PAIR, routes={"default": {"models": list(PAIR)}}, routing={"enabled": True})
    client = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY)
    messages: Any = [{"role": "user", "content": "hello there"}]
    answer = client.messages.create(
        model="auto", max_tokens=16, messages=messages, extra_body={"llmgw": {"task": "chat"}}
    )
    assert answer.model == "primary"
    counted = client.messages.count_tokens(model="auto", messages=messages)
    assert counted.input_tokens > 0
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nope", messages=messages)


def test_an_upstreams_context_length_refusal_keeps_its_code(make_gateway: Any, upstream: FakeUpstream) -> None:
    """A named model whose upstream says the prompt is too long: OpenAI's ``context_length_exceeded``
    reaches the client (it was ``upstream_bad_request``), never a 5xx and no fallback."""
    gw = make_gateway(routes={"default": {"default_model": "test-model", "selection": {"fallbacks": ["other-model"]}}})
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "#status:400 #code:context_length_exceeded"}]
        )
    assert info.value.code == "context_length_exceeded" and info.value.param == "messages"
    assert hits(upstream) == {"fake-1": 1}
    assert gw.rows()[0]["error_code"] == "context_length_exceeded"


def test_a_task_name_the_gateway_does_not_know_is_a_400_not_default_qualities(
    make_gateway: Any, upstream: FakeUpstream
) -> None:
    """Before: ``"task": "cod"`` was routed as a task no model has a quality for (every model at
    its default), silently. Known: the shipped tasks, ``routing.tasks`` and the models' quality maps."""
    models = {name: {**spec, "quality": {**spec["quality"], "legal": 0.8}} for name, spec in PAIR.items()}
    gw = make_gateway(
        models=models,
        routes={"default": {"models": list(models)}},
        routing={"enabled": True, "tasks": {"poetry": ["Write a sonnet about the sea"]}},
    )
    typo = ask(gw, "Write a function that adds two numbers", llmgw={"task": "cod"})
    assert typo.status_code == 400, typo.text
    error = typo.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "llmgw.task") and "code" in error["message"]
    for task in ("code", "chat", "legal", "poetry"):  # shipped, shipped, a quality map's, routing.tasks'
        answer = ask(gw, "hello", llmgw={"task": task})
        assert answer.status_code == 200, (task, answer.text)
        assert f"task={task} (request" in answer.headers["x-llmgw-route"], answer.headers["x-llmgw-route"]
