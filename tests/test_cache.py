"""The response cache through a real gateway: exact and semantic hits, streamed and not, the veto,
scope isolation, template invalidation, Cache-Control, single flight, persistence and Redis."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from llmgw import encoders
from llmgw.cache import embed
from llmgw.cache.bounds import threshold_for
from tests.conftest import ADMIN_KEY, REDIS_URL, PromptRepo, RunningGateway
from tests.upstream import FakeUpstream


def cache_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "persist_path": str(tmp_path / "cache.sqlite"), "persist_interval_s": 0.05, **extra}


@pytest.fixture()
def cgw(make_gateway: Callable[..., RunningGateway], tmp_path: Path) -> Callable[..., RunningGateway]:
    def make(**cache: Any) -> RunningGateway:
        return make_gateway(cache=cache_config(tmp_path, **cache))

    return make


def ask(gw: RunningGateway, content: str, api_key: str | None = None, **kwargs: Any) -> Any:
    client = gw.client(api_key) if api_key else gw.client()
    return client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": content}], **kwargs
    )


def ask_stream(gw: RunningGateway, content: str, **kwargs: Any) -> tuple[Any, list[Any]]:
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": content}], stream=True,
        stream_options={"include_usage": True}, **kwargs,
    )  # fmt: skip
    return raw.headers, list(raw.parse())


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def row_of(gw: RunningGateway, raw: Any) -> dict[str, Any]:
    request_id = raw.headers["x-llmgw-request-id"]
    return next(r for r in gw.rows() if r["id"] == request_id)


# --- hits --------------------------------------------------------------------------------------


def test_exact_hit_plain_and_streamed(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw()
    first = ask(gw, "What is a novel coronavirus? #echo")
    assert first.headers["x-llmgw-cache"] == "miss"
    assert len(upstream.requests) == 1
    second = ask(gw, "What is a novel coronavirus? #echo")
    assert len(upstream.requests) == 1, "the hit costs no upstream call"
    assert second.headers["x-llmgw-cache"] == "hit"
    assert second.headers["x-llmgw-cache-score"] == "1.0000"
    answer = second.parse()
    assert answer.choices[0].message.content == first.parse().choices[0].message.content
    assert answer.id == f"chatcmpl-{second.headers['x-llmgw-request-id']}"
    assert answer.usage is not None and answer.usage.total_tokens == 0, "no upstream tokens were used"
    # the same question streamed: an SSE replay of the stored answer, final usage zero
    headers, chunks = ask_stream(gw, "What is a novel coronavirus? #echo")
    assert len(upstream.requests) == 1
    assert headers["x-llmgw-cache"] == "hit"
    assert text_of(chunks) == "What is a novel coronavirus? #echo"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # the saved tokens and cost are on the request row; the row itself counts no upstream tokens
    row = row_of(gw, second)
    first_usage = first.parse().usage
    assert row["status"] == "cached" and row["prompt_tokens"] == 0 and row["cost_usd"] == 0
    saved = row["meta"]["cache"]["saved"]
    assert saved["prompt_tokens"] == first_usage.prompt_tokens
    assert saved["cost_usd"] == pytest.approx((first_usage.prompt_tokens + 2 * first_usage.completion_tokens) / 1e6)
    assert row["meta"]["cache"]["entry"] == first.headers["x-llmgw-request-id"]
    metrics = gw.admin().get("/metrics").text
    assert 'llmgw_cache_lookups_total{result="hit_exact",route="default"} 2.0' in metrics


def test_streamed_answer_is_stored_and_served_plain(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw()
    headers, chunks = ask_stream(gw, "Tell me a story #chunks:4")
    assert headers["x-llmgw-cache"] == "miss"
    assert text_of(chunks) == "tok0 tok1 tok2 tok3 "
    raw = ask(gw, "Tell me a story #chunks:4")
    assert raw.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert raw.parse().choices[0].message.content == "tok0 tok1 tok2 tok3 "


def test_semantic_hit_plain_and_streamed(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw(threshold=0.9)
    ask(gw, "How can I protect my child from COVID-19?")
    raw = ask(gw, "What can I do to protect my kid from COVID-19?")
    assert raw.headers["x-llmgw-cache"] == "hit"
    assert 0.9 <= float(raw.headers["x-llmgw-cache-score"]) < 1.0
    assert len(upstream.requests) == 1
    assert row_of(gw, raw)["meta"]["cache"]["tier"] == "semantic"
    headers, chunks = ask_stream(gw, "How could I protect my children from COVID-19?")
    assert headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert text_of(chunks) == "echo: 1 messages"
    # an unrelated question is a miss
    assert ask(gw, "Can the virus spread through food?").headers["x-llmgw-cache"] == "miss"
    assert len(upstream.requests) == 2


def feedback(
    gw: RunningGateway, raw: Any, api_key: str | None = None, status: int = 201, **body: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {"authorization": f"Bearer {ADMIN_KEY}"}
    request_id = raw.headers["x-llmgw-request-id"]
    response = httpx.post(f"{gw.url}/v1/feedback", json={"request_id": request_id, **body}, headers=headers)
    assert response.status_code == status, response.text
    return response


def test_negative_feedback_on_a_hit_sends_the_question_upstream_again(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    gw = cgw(threshold=0.9)
    original, reworded = (
        "How can I protect my child from COVID-19?",
        "What can I do to protect my kid from COVID-19?",
    )
    ask(gw, original)
    hit = ask(gw, reworded)
    assert hit.headers["x-llmgw-cache"] == "hit" and row_of(gw, hit)["meta"]["cache"]["tier"] == "semantic"
    feedback(gw, hit, gw.create_key()["key"], status=404, label="wrong")  # another key's request: refused, no effect
    feedback(gw, hit, score=0.9)  # positive: no effect
    still = ask(gw, reworded)
    assert still.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    feedback(gw, still, label="wrong")
    again = ask(gw, reworded)
    assert again.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2, "answered upstream again"
    exact = ask(gw, original)
    assert exact.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 2, "demoted: still exact"
    ask(gw, "What is community spread?")
    exact = ask(gw, "What is community spread?")
    assert exact.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 3
    feedback(gw, exact, score=0)  # a wrong exact hit: the answer itself is wrong, evicted
    assert ask(gw, "What is community spread?").headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 4
    with gw.admin() as admin:
        estimate = admin.get("/admin/cache").json()["feedback"]
        metrics = admin.get("/metrics").text
    assert estimate["semantic"] == {"hits": 2, "wrong": 1, "wrong_rate": 0.5, "refreshed": 0}
    assert estimate["exact"] == {"hits": 2, "wrong": 1, "wrong_rate": 0.5, "refreshed": 0}
    assert 'llmgw_cache_wrong_hits_total{route="default",tier="semantic",via="feedback"} 1.0' in metrics
    assert 'llmgw_cache_wrong_hits_total{route="default",tier="exact",via="feedback"} 1.0' in metrics


def test_cache_refresh_drops_the_entry_that_would_have_answered(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    gw = cgw(threshold=0.9)
    first = ask(gw, "How can I protect my child from COVID-19?")
    refreshed = ask(gw, "What can I do to protect my kid from COVID-19?", extra_body={"llmgw": {"cache": "refresh"}})
    assert refreshed.headers["x-llmgw-cache"] == "bypass" and len(upstream.requests) == 2, "answered upstream"
    entries = {e.source: e for e in gw.gateway.cache.memory.entries.values()}
    tightened = entries[first.headers["x-llmgw-request-id"]]
    assert tightened.floor > 0.9, "the entry that would have answered now needs a closer question"
    assert entries[refreshed.headers["x-llmgw-request-id"]].vector is not None, "the fresh answer is kept"
    again = ask(gw, "How can I protect my child from COVID-19?", extra_body={"llmgw": {"cache": "refresh"}})
    assert again.headers["x-llmgw-cache"] == "bypass" and len(upstream.requests) == 3
    with gw.admin() as admin:
        estimate = admin.get("/admin/cache").json()["feedback"]
        metrics = admin.get("/metrics").text
    assert estimate["semantic"]["refreshed"] == 1 and estimate["exact"]["refreshed"] == 1
    assert 'llmgw_cache_wrong_hits_total{route="default",tier="semantic",via="refresh"} 1.0' in metrics


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        ("What is the capital of France?", "What is the capital of Germany?", "unmatched"),
        ("How many calories are in 2 eggs?", "How many calories are in 3 eggs?", "number"),
        ("Is it safe to eat eggs during pregnancy?", "Is it not safe to eat eggs during pregnancy?", "negation"),
        ("How do I create a branch in git?", "How do I delete a branch in git?", "opposite"),
        ("Is tea better than coffee for focus?", "Is coffee better than tea for focus?", "order"),
        ("Is Python faster than Java?", "Is Java quicker than Python?", "direction"),
        ("Who won the 2010 World Cup?", "Who will win the 2010 World Cup?", "tense"),
    ],
)
def test_veto_refuses_near_misses(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream, stored: str, asked: str, reason: str
) -> None:
    gw = cgw(threshold=0.6)  # low on purpose: the embedding alone would serve these
    ask(gw, stored)
    raw = ask(gw, asked)
    assert raw.headers["x-llmgw-cache"] == "miss"
    assert len(upstream.requests) == 2
    vetoes = row_of(gw, raw)["meta"]["cache"]["vetoes"]
    assert [v["reason"] for v in vetoes] == [reason]


def test_the_stored_question_is_parsed_once_and_kept(cgw: Callable[..., RunningGateway], tmp_path: Path,
                                                     upstream: FakeUpstream) -> None:  # fmt: skip
    """The role signature is computed at insertion and persisted with the entry (a lookup parses
    only the new question)."""
    from llmgw.cache.roles import signature

    gw = cgw(threshold=0.6)
    ask(gw, "Are there direct flights from Paris to Rome?")
    assert ask(gw, "Are there direct flights to Rome from Paris?").headers["x-llmgw-cache"] == "hit"
    deadline = time.monotonic() + 10
    docs: list[dict[str, Any]] = []
    while not docs and time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(tmp_path / "cache.sqlite") as conn:
            docs = [json.loads(d) for (d,) in conn.execute("SELECT doc FROM cache_entries")]
    assert [d["roles"] for d in docs] == [signature("Are there direct flights from Paris to Rome?").dumps()]


def test_verifier_can_refuse_a_semantic_hit(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw(threshold=0.9, verifier="tests.test_cache:refuse_all")
    ask(gw, "How can I protect my child from COVID-19?")
    raw = ask(gw, "What can I do to protect my kid from COVID-19?")
    assert raw.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2
    assert row_of(gw, raw)["meta"]["cache"]["vetoes"][0]["reason"] == "verifier"


def refuse_all(cached: str, asked: str) -> bool:
    return False


def test_ambiguous_near_duplicates_are_refused(
    make_gateway: Callable[..., RunningGateway], upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Two stored questions of different meaning, both close to the new one: no hit (cache.match margin)."""
    db = f"sqlite:///{tmp_path}/gw.db"
    # stored apart: at 0.9 neither is served the other's answer (they score 0.88 to each other)
    first = make_gateway(db_url=db, cache=cache_config(tmp_path, threshold=0.9))
    ask(first, "How does COVID-19 affect pregnant women? #echo")
    ask(first, "Can COVID-19 cause problems for a pregnancy? #echo")
    first.stop()
    for margin, expected in ((0.06, "miss"), (0.0, "hit")):
        # veto off: the verifier refuses these loose FAQ rewordings itself; the margin is shown alone
        gw = make_gateway(db_url=db, cache=cache_config(tmp_path, threshold=0.75, margin=margin, veto=False))
        upstream.reset()
        # 0.80 and 0.78 to the two; no-store: the miss must not be kept for the next round
        raw = ask(gw, "Is COVID-19 a risk for pregnant women?", extra_headers={"cache-control": "no-store"})
        assert raw.headers["x-llmgw-cache"] == expected, margin
        if expected == "miss":
            vetoes = row_of(gw, raw)["meta"]["cache"]["vetoes"]
            assert [v["reason"] for v in vetoes] == ["ambiguous"]
            assert len(upstream.requests) == 1
        gw.stop()


POOLS = (
    "There is no evidence that COVID-19 spreads to people through swimming pools or hot tubs; chlorine in a "
    "well-kept pool inactivates the virus."
)


def test_answer_aware_matching_serves_a_loose_rewording(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    upstream.scripts["pools"] = POOLS
    # the verifier (on by default) refuses this loose rewording ("hot tubs", "catch" have no equivalent on the
    # other side): answer-aware matching is shown alone, as it works with cache.veto off
    gw = cgw(answer_threshold=0.62, veto=False)
    ask(gw, "Can COVID-19 spread through pools and hot tubs? #say:pools")
    deadline = time.monotonic() + 10
    while gw.admin().get("/admin/cache").json()["answer_vectors"] < 1:  # embedded after the request
        assert time.monotonic() < deadline, "the answer was never embedded"
        time.sleep(0.05)
    raw = ask(gw, "Can I catch COVID-19 from swimming in a pool?")  # cosine 0.75: below the threshold
    assert raw.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert 0.62 <= float(raw.headers["x-llmgw-cache-score"]) < 0.84
    assert raw.parse().choices[0].message.content == POOLS
    assert row_of(gw, raw)["meta"]["cache"]["basis"] == "answer"
    verified = cgw(answer_threshold=0.62)  # the verifier on: the same rewording goes upstream
    ask(verified, "Can COVID-19 spread through pools and hot tubs? #say:pools")
    assert ask(verified, "Can I catch COVID-19 from swimming in a pool?").headers["x-llmgw-cache"] == "miss"


def test_without_answer_matching_a_loose_rewording_misses(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    upstream.scripts["pools"] = POOLS
    gw = cgw()  # answer_threshold is off by default
    ask(gw, "Can COVID-19 spread through pools and hot tubs? #say:pools")
    time.sleep(0.3)
    assert gw.admin().get("/admin/cache").json()["answer_vectors"] == 0, "not embedded when off"
    assert ask(gw, "Can I catch COVID-19 from swimming in a pool?").headers["x-llmgw-cache"] == "miss"


# --- scope --------------------------------------------------------------------------------------


def test_scope_isolation_between_keys_and_sharing_within_a_team(
    make_gateway: Callable[..., RunningGateway], upstream: FakeUpstream, tmp_path: Path
) -> None:
    for share, same_team_hits in (("key", False), ("team", True)):
        gw = make_gateway(cache=cache_config(tmp_path / share, share=share))
        alice = gw.create_key(team="red")["key"]
        bob = gw.create_key(team="red")["key"]
        eve = gw.create_key(team="blue")["key"]
        upstream.reset()
        ask(gw, "What is community spread?", alice)
        assert ask(gw, "What is community spread?", alice).headers["x-llmgw-cache"] == "hit"
        bob_raw = ask(gw, "What is community spread?", bob)
        assert (bob_raw.headers["x-llmgw-cache"] == "hit") is same_team_hits, share
        assert ask(gw, "What does community spread mean?", eve).headers["x-llmgw-cache"] == "miss"
        assert ask(gw, "What does community spread mean?", eve).headers["x-llmgw-cache"] == "hit", "her own entry"
        assert len(upstream.requests) == (2 if same_team_hits else 3)


def test_scope_covers_model_parameters_and_history(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw()
    ask(gw, "What is community spread?")
    assert ask(gw, "What is community spread?", max_tokens=5).headers["x-llmgw-cache"] == "miss"
    assert ask(gw, "What is community spread?", extra_body={"top_p": 0.5}).headers["x-llmgw-cache"] == "miss"
    with_system = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "system", "content": "Answer in French."},
                                      {"role": "user", "content": "What is community spread?"}],
    )  # fmt: skip
    assert with_system.headers["x-llmgw-cache"] == "miss"
    with_history = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "I live in Berlin."},
                                      {"role": "assistant", "content": "Noted."},
                                      {"role": "user", "content": "What is community spread?"}],
    )  # fmt: skip
    assert with_history.headers["x-llmgw-cache"] == "miss"
    assert len(upstream.requests) == 5


def test_new_template_commit_invalidates(
    make_gateway: Callable[..., RunningGateway], repo: PromptRepo, upstream: FakeUpstream, tmp_path: Path
) -> None:
    repo.greeter("v1 hello {{ name }}")
    first = repo.commit("v1")
    templates = {"enabled": True, "repo": str(repo.root), "refresh_s": 0.05}
    gw = make_gateway(templates=templates, cache=cache_config(tmp_path))

    def greet() -> Any:
        return gw.client().chat.completions.with_raw_response.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}],
            extra_body={"llmgw": {"prompt": {"id": "greeter", "variables": {"name": "Ada"}}}},
        )  # fmt: skip

    assert greet().headers["x-llmgw-cache"] == "miss"
    assert greet().headers["x-llmgw-cache"] == "hit"
    repo.greeter("v2 hello {{ name }}")
    second = repo.commit("v2")
    deadline = time.monotonic() + 10
    while True:
        raw = greet()
        if raw.headers["x-llmgw-prompt"] == f"greeter@{second}":
            break
        assert raw.headers["x-llmgw-prompt"] == f"greeter@{first}"
        assert time.monotonic() < deadline, "the new commit was not picked up"
    assert raw.headers["x-llmgw-cache"] == "miss", "an answer to the old template version is not served"
    assert upstream.requests[-1]["messages"][0]["content"] == "v2 hello Ada"
    assert greet().headers["x-llmgw-cache"] == "hit"


# --- policy -------------------------------------------------------------------------------------


def test_cache_control_no_store_and_no_cache(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw()
    raw = ask(gw, "Who is at risk?", extra_headers={"cache-control": "no-store"})
    assert raw.headers["x-llmgw-cache"] == "miss"
    assert ask(gw, "Who is at risk?").headers["x-llmgw-cache"] == "miss", "no-store kept nothing"
    assert ask(gw, "Who is at risk?").headers["x-llmgw-cache"] == "hit"
    raw = ask(gw, "Who is at risk?", extra_headers={"cache-control": "no-cache"})
    assert raw.headers["x-llmgw-cache"] == "bypass"
    assert len(upstream.requests) == 3


def test_errors_are_never_stored(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    gw = cgw()
    for _ in range(2):
        with pytest.raises(Exception, match="scripted 400"):
            ask(gw, "Will this fail? #status:400")
    assert len(upstream.requests) == 2
    for attempt in (1, 2):
        with pytest.raises(openai.APIError, match="upstream connection failed"):
            ask_stream(gw, "Cut short #chunks:6 #drop:2")
        assert len(upstream.requests) == 2 + attempt, "a broken stream is not stored"


def test_temperature_bypass_unless_forced(make_gateway: Callable[..., RunningGateway], tmp_path: Path,
                                          upstream: FakeUpstream) -> None:  # fmt: skip
    routes = {"default": {"default_model": "test-model", "cache": {"max_temperature": 0.5}}}
    gw = make_gateway(cache=cache_config(tmp_path), routes=routes)
    assert ask(gw, "Write a poem", temperature=0.9).headers["x-llmgw-cache"] == "bypass"
    assert ask(gw, "Write a poem", temperature=0.9).headers["x-llmgw-cache"] == "bypass"
    forced = {"extra_body": {"llmgw": {"cache": "force"}}}
    assert ask(gw, "Write a poem", temperature=0.9, **forced).headers["x-llmgw-cache"] == "miss"
    assert ask(gw, "Write a poem", temperature=0.9, **forced).headers["x-llmgw-cache"] == "hit"
    assert ask(gw, "Write a poem", temperature=0.2).headers["x-llmgw-cache"] == "miss", "temperature is scope"
    assert len(upstream.requests) == 4
    as_header = {"extra_headers": {"x-llmgw-cache": "force"}}
    assert ask(gw, "Write a poem", temperature=0.9, **as_header).headers["x-llmgw-cache"] == "hit"
    with pytest.raises(openai.BadRequestError, match=r"llmgw\.cache"):
        ask(gw, "Write a poem", extra_headers={"x-llmgw-cache": "sometimes"})


def test_route_switch_and_exact_only_route(make_gateway: Callable[..., RunningGateway], tmp_path: Path,
                                           upstream: FakeUpstream) -> None:  # fmt: skip
    routes = {"default": {"default_model": "test-model", "cache": {"semantic": False}},
              "nocache": {"default_model": "test-model", "stages": {"cache": False}}}  # fmt: skip
    gw = make_gateway(cache=cache_config(tmp_path), routes=routes)
    ask(gw, "How can I protect my child from COVID-19?")
    assert ask(gw, "What can I do to protect my kid from COVID-19?").headers["x-llmgw-cache"] == "miss"
    assert ask(gw, "How can I protect my child from COVID-19?").headers["x-llmgw-cache"] == "hit"
    off = {"extra_headers": {"x-llmgw-route": "nocache"}}
    ask(gw, "What is community spread?", **off)
    raw = ask(gw, "What is community spread?", **off)
    assert "x-llmgw-cache" not in raw.headers and len(upstream.requests) == 4


# --- concurrency, persistence, Redis --------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_identical_requests_in_flight_make_one_upstream_call(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream, stream: bool
) -> None:
    gw = cgw()
    results: list[tuple[str, str]] = []
    started = threading.Barrier(3)

    def one() -> None:
        started.wait()
        if stream:
            headers, chunks = ask_stream(gw, "Slow question #chunks:3 #slow:0.2")
            results.append((headers["x-llmgw-cache"], text_of(chunks)))
        else:
            raw = ask(gw, "Slow question #sleep:0.5")
            results.append((raw.headers["x-llmgw-cache"], raw.parse().choices[0].message.content))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(upstream.requests) == 1
    assert sorted(outcome for outcome, _ in results) == ["hit", "hit", "miss"]
    assert len({text for _, text in results}) == 1


def test_the_default_bound_embeds_nothing(cgw: Callable[..., RunningGateway], upstream: FakeUpstream) -> None:
    """The shipped bound's threshold is 1.0 (bounds.json): exact hits only, and no question is embedded."""
    if threshold_for(0.01) < 1.0:
        pytest.skip("the shipped table certifies a threshold below 1.0 now")
    gw = cgw()
    before = embed.embed.cache_info()
    ask(gw, "How can I protect my toddler from COVID-19? #default-bound")
    assert ask(gw, "How can I protect my toddler from COVID-19? #default-bound").headers["x-llmgw-cache"] == "hit"
    reworded = ask(gw, "What can I do to protect my toddler from COVID-19? #default-bound")
    assert reworded.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2
    after = embed.embed.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses), "no lookup or store embedded a question"


def test_entries_survive_a_restart(make_gateway: Callable[..., RunningGateway], tmp_path: Path,
                                  upstream: FakeUpstream) -> None:  # fmt: skip
    config = cache_config(tmp_path, threshold=0.9)  # the default bound serves no semantic hit (bounds.json)
    db = f"sqlite:///{tmp_path}/gw.db"
    gw = make_gateway(db_url=db, cache=config)
    ask(gw, "How can I protect my child from COVID-19?")
    gw.stop()
    again = make_gateway(db_url=db, cache=config)
    assert ask(again, "How can I protect my child from COVID-19?").headers["x-llmgw-cache"] == "hit"
    assert ask(again, "What can I do to protect my kid from COVID-19?").headers["x-llmgw-cache"] == "hit"
    assert len(upstream.requests) == 1


def test_redis_exact_tier_is_shared_by_replicas(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream, redis_prefix: str
) -> None:
    shared = {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix, "persist_path": None}
    one = make_gateway(cache=cache_config(tmp_path, **shared))
    two = make_gateway(cache=cache_config(tmp_path, **shared))
    ask(one, "What is community spread? #echo")
    raw = ask(two, "What is community spread? #echo")
    assert raw.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert raw.parse().choices[0].message.content == "What is community spread? #echo"
    client = redis.Redis.from_url(REDIS_URL)
    stored = list(client.scan_iter(f"{redis_prefix}*"))
    assert len(stored) == 1 and 0 < client.pttl(stored[0]) <= 86_400_000, "Redis expires the entry itself"
    client.close()
    assert one.admin().get("/readyz").json()["checks"]["cache_redis"] is True


def test_admin_cache_stats_and_invalidation(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream, redis_prefix: str
) -> None:
    shared = {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    gw = make_gateway(cache=cache_config(tmp_path, **shared))
    ask(gw, "What is community spread?")
    ask(gw, "Who is at risk?")
    with gw.admin() as admin:
        stats = admin.get("/admin/cache").json()
        assert stats["entries"] == 2 and stats["routes"] == {"default": 2} and stats["exact_store"] == "redis"
        assert admin.delete("/admin/cache", params={"route": "elsewhere"}).json() == {"deleted": 0}
        assert admin.delete("/admin/cache", params={"route": "default"}).json() == {"deleted": 4}, "memory + redis"
        assert admin.get("/admin/cache").json()["entries"] == 0
        assert admin.get("/admin/cache", headers={"authorization": "Bearer nope"}).status_code == 401
    assert ask(gw, "What is community spread?").headers["x-llmgw-cache"] == "miss"


# --- with the guards: masked questions, restored answers, filtered answers ------------------------

GUARD_POLICY = """
pii:
  default: {action: allow}
  entities:
    PERSON: {action: mask, threshold: 0.5}
injection: {threshold: 0.5, action: block}
moderation: {threshold: 0.5, hold_back_tokens: 8, window_words: 4, canary: true}
"""
HARM = (
    "Here is a calm answer about gardening . I will find you and kill you , I am going to stab you and your "
    "whole family tonight . Then more words follow here ."
)


@pytest.fixture()
def guarded_cache(make_gateway: Callable[..., RunningGateway], tmp_path: Path) -> RunningGateway:
    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(GUARD_POLICY)
    guards = {"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"}
    return make_gateway(guards=guards, cache=cache_config(tmp_path))


def test_a_hit_never_carries_another_callers_pii(guarded_cache: RunningGateway, upstream: FakeUpstream) -> None:
    gw = guarded_cache
    first = ask(gw, "Please write a short birthday greeting for Ada Lovelace. #echo")
    assert "Ada Lovelace" in first.parse().choices[0].message.content
    assert "Ada" not in upstream.requests[-1]["messages"][-1]["content"], "masked before it left"
    again = ask(gw, "Please write a short birthday greeting for Ada Lovelace. #echo")
    assert again.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    assert "Ada Lovelace" in again.parse().choices[0].message.content, "restored from the placeholders"
    stored = [e.completion for e in gw.gateway.cache.memory.entries.values()]
    assert "Ada" not in json.dumps(stored) and "<PERSON_1>" in json.dumps(stored), "entries keep placeholders"


def test_the_guard_and_the_cache_share_one_embedding(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream
) -> None:
    """The injection guard embeds the user turn and the semantic tier looks the same turn up: one pass."""
    policies = Path(__file__).resolve().parents[1] / "guardrails"
    guards = {"enabled": True, "policy_dir": str(policies)}
    gw = make_gateway(guards=guards, cache=cache_config(tmp_path, threshold=0.9))
    encoder = encoders.encoder("float")
    assert isinstance(encoder, encoders.OnnxEncoder)
    ask(gw, "How long should I steep green tea? #one-pass")
    before = encoder.passes
    reply = ask(gw, "How long should I brew a cup of oolong tea for the best taste? #one-pass")
    assert reply.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2
    assert encoder.passes - before == 1, "the guard's vector of the turn served the cache's lookup and store"


#: Questions that differ only in what the default policy masks as PERSON (issue 18's wrong exact hits)
MASKED_ALIKE = [
    ("How deep is Lake Como?", "How deep is Lake Constance?", "Como", "Constance"),
    ("When was Vassar College founded?", "When was Hunter College founded?", "Vassar", "Hunter"),
    ("What did the Kennedy administration do about Cuba?", "What did the Johnson administration do about Cuba?",
     "Kennedy", "Johnson"),
]  # fmt: skip


def test_masking_never_merges_two_questions(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream, redis_prefix: str
) -> None:
    """The default guard policy masks the names alike; each question still gets its own answer."""
    policies = Path(__file__).resolve().parents[1] / "guardrails"
    shared = {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    gw = make_gateway(guards={"enabled": True, "policy_dir": str(policies)}, cache=cache_config(tmp_path, **shared))
    for one, other, name, other_name in MASKED_ALIKE:
        calls = len(upstream.requests)
        first = ask(gw, f"{one} #echo")
        sent = upstream.requests[-1]["messages"][-1]["content"]
        second = ask(gw, f"{other} #echo")
        assert upstream.requests[-1]["messages"][-1]["content"] == sent, f"masked alike upstream: {sent}"
        assert name not in sent and "<PERSON_" in sent
        assert (first.headers["x-llmgw-cache"], second.headers["x-llmgw-cache"]) == ("miss", "miss")
        assert len(upstream.requests) == calls + 2, "each question got its own upstream answer"
        assert other_name in second.parse().choices[0].message.content
        repeat = ask(gw, f"{one} #echo")
        assert repeat.headers["x-llmgw-cache"] == "hit" and repeat.headers["x-llmgw-cache-score"] == "1.0000"
        assert name in repeat.parse().choices[0].message.content and len(upstream.requests) == calls + 2
    persister = gw.gateway.cache.memory.persister
    assert persister is not None
    persister.flush()
    stored = (tmp_path / "cache.sqlite").read_bytes()
    client = redis.Redis.from_url(REDIS_URL)
    redis_keys = list(client.scan_iter(f"{redis_prefix}*"))
    in_redis = b"".join(redis_keys) + b"".join(client.get(k) or b"" for k in redis_keys)
    client.close()
    assert len(redis_keys) == 2 * len(MASKED_ALIKE)
    for _, _, name, other_name in MASKED_ALIKE:
        for value in (name, other_name):
            assert value.encode() not in stored, f"{value} in the SQLite file"
            assert value.encode() not in in_redis, f"{value} in a Redis key or entry"


@pytest.mark.parametrize("stream", [False, True])
def test_content_filtered_answers_are_not_stored(
    guarded_cache: RunningGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.scripts["harm"] = HARM
    for attempt in (1, 2):
        if stream:
            with pytest.raises(openai.APIError):
                ask_stream(guarded_cache, "Tell me about gardening #say:harm")
        else:
            raw = ask(guarded_cache, "Tell me about gardening #say:harm")
            assert raw.parse().choices[0].finish_reason == "content_filter"
        assert len(upstream.requests) == attempt, "each attempt went upstream: nothing was kept"
    assert len(guarded_cache.gateway.cache.memory) == 0
