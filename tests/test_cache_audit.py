"""The response cache as a user sees it (audit of 2026-12-06): what is stored from a stream, whose answer
a hit is, what ``refresh`` and feedback drop, across replicas sharing Redis."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from llmgw.cache.bounds import threshold_for
from llmgw.stages.cache import Assembler
from tests.conftest import ADMIN_KEY, REDIS_URL, RunningGateway
from tests.test_cache import ask, cache_config
from tests.upstream import FakeUpstream


@pytest.fixture()
def cgw(make_gateway: Callable[..., RunningGateway], tmp_path: Path) -> Callable[..., RunningGateway]:
    def make(**cache: Any) -> RunningGateway:
        return make_gateway(cache=cache_config(tmp_path, **cache))

    return make


def stream(gw: RunningGateway, content: str) -> tuple[Any, list[Any]]:
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": content}], stream=True
    )
    return raw.headers, list(raw.parse())


# --- what a stream leaves in the cache -----------------------------------------------------------


def test_a_streamed_legacy_function_call_is_not_kept_as_an_empty_answer(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    """A streamed answer holding a legacy ``function_call`` was assembled as an empty text and served as
    one: the hit said ``finish_reason: function_call`` with no call and no content."""
    gw = cgw()
    headers, chunks = stream(gw, "Save this note #tool-echo #legacy")
    assert headers["x-llmgw-cache"] == "miss"
    assert "".join(c.choices[0].delta.function_call.arguments or "" for c in chunks if c.choices and
                   c.choices[0].delta.function_call)  # fmt: skip
    again = ask(gw, "Save this note #tool-echo #legacy")
    assert again.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2, "nothing was kept"
    choice = again.parse().choices[0]
    assert choice.finish_reason == "function_call" and choice.message.function_call is not None
    assert choice.message.function_call.name == "save"


def test_the_assembler_keeps_every_text_field_and_refuses_what_it_cannot_rebuild() -> None:
    refusal = Assembler()
    for piece in ("I can't ", "help with that."):
        refusal.feed({"choices": [{"index": 0, "delta": {"refusal": piece, "content": None}, "finish_reason": None}]})
    refusal.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    message = refusal.completion()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    assert not refusal.lossy
    legacy = Assembler()
    legacy.feed({"choices": [{"index": 0, "delta": {"function_call": {"name": "save", "arguments": '{"a"'}}}]})
    legacy.feed({"choices": [{"index": 0, "delta": {"function_call": {"arguments": ": 1}"}},
                              "finish_reason": "function_call"}]})  # fmt: skip
    message = legacy.completion()["choices"][0]["message"]
    assert message["function_call"] == {"name": "save", "arguments": '{"a": 1}'} and message["content"] is None
    logprobs = Assembler()
    scored = {"content": [{"token": "Hi", "logprob": -0.1}]}
    logprobs.feed({"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": scored, "finish_reason": "stop"}]})
    assert logprobs.lossy, "a hit would serve the text without the logprobs the stream carried"
    empty = Assembler()  # what many servers send on every chunk: nothing to lose
    empty.feed({"choices": [{"index": 0, "delta": {"content": "Hi", "annotations": [], "audio": None,
                                                   "refusal": None}, "logprobs": {"content": None},
                             "finish_reason": "stop"}]})  # fmt: skip
    assert not empty.lossy and empty.completion()["choices"][0]["message"] == {"role": "assistant", "content": "Hi"}


# --- whose answer a hit is -----------------------------------------------------------------------


def test_a_fallback_models_answer_is_not_served_as_the_planned_models(
    make_gateway: Callable[..., RunningGateway], upstream: FakeUpstream, tmp_path: Path
) -> None:
    """``dead-model`` fails, ``test-model`` answers: the answer was kept under ``dead-model``'s scope and
    every later hit served it as ``dead-model``'s (``x-llmgw-model: dead-model``), for the whole TTL."""
    routes = {"default": {"default_model": "test-model", "selection": {"fallbacks": ["test-model"]}}}
    gw = make_gateway(cache=cache_config(tmp_path), routes=routes)
    client = gw.client()
    question = [{"role": "user", "content": "Which model answers this?"}]
    for attempt in (1, 2):
        raw = client.chat.completions.with_raw_response.create(model="dead-model", messages=question)
        assert raw.headers["x-llmgw-cache"] == "miss", attempt
        assert raw.headers["x-llmgw-model"] == "test-model" and raw.parse().model == "test-model"
        assert len(upstream.requests) == attempt, "each went to the fallback: nothing was kept"
    assert len(gw.gateway.cache.memory) == 0
    direct = client.chat.completions.with_raw_response.create(model="test-model", messages=question)
    assert direct.headers["x-llmgw-cache"] == "miss"
    assert client.chat.completions.with_raw_response.create(
        model="test-model", messages=question
    ).headers["x-llmgw-cache"] == "hit", "an answer of the model asked for is kept as before"  # fmt: skip


# --- refresh and feedback ------------------------------------------------------------------------


def test_refresh_with_no_store_still_drops_the_entry(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    """``cache: refresh`` drops the entry that would have answered; with ``Cache-Control: no-store`` the
    request was bypassed before the lookup and the entry stayed."""
    gw = cgw()
    ask(gw, "What is community spread?")
    raw = ask(gw, "What is community spread?", extra_body={"llmgw": {"cache": "refresh"}},
              extra_headers={"cache-control": "no-store"})  # fmt: skip
    assert raw.headers["x-llmgw-cache"] == "bypass" and len(upstream.requests) == 2
    assert len(gw.gateway.cache.memory) == 0, "dropped, and the fresh answer not stored"
    assert gw.admin().get("/admin/cache").json()["feedback"]["exact"]["refreshed"] == 1
    assert ask(gw, "What is community spread?").headers["x-llmgw-cache"] == "miss"


def test_feedback_on_one_replica_evicts_the_entry_from_every_replica_sharing_redis(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream, redis_prefix: str
) -> None:
    """Replica one stores (its memory and Redis); replica two serves it from Redis and is told it was
    wrong: the Redis entry went, but replica one kept serving its own copy of the wrong answer."""
    shared = {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix, "persist_path": None}
    one = make_gateway(cache=cache_config(tmp_path, **shared))
    two = make_gateway(cache=cache_config(tmp_path, **shared))
    ask(one, "What is community spread? #echo")
    hit = ask(two, "What is community spread? #echo")
    assert hit.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 1
    response = httpx.post(f"{two.url}/v1/feedback", json={"request_id": hit.parse().id, "label": "wrong"},
                          headers={"authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    assert response.status_code == 201, response.text
    raw = ask(one, "What is community spread? #echo")  # the replica that stored it and still held a copy
    assert raw.headers["x-llmgw-cache"] == "miss", "the answer marked wrong is not served again"
    assert len(upstream.requests) == 2
    fresh = ask(two, "What is community spread? #echo")
    assert fresh.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 2, "the fresh answer is shared"


def test_an_entry_deleted_through_another_replica_is_not_served_by_meaning_either(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream, redis_prefix: str
) -> None:
    """``DELETE /admin/cache`` on replica two empties Redis; replica one's semantic tier still held the
    entry and answered reworded questions from it."""
    shared = {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix, "persist_path": None,
              "threshold": 0.9}  # fmt: skip
    one = make_gateway(cache=cache_config(tmp_path, **shared))
    two = make_gateway(cache=cache_config(tmp_path, **shared))
    ask(one, "How can I protect my child from COVID-19?")
    assert ask(one, "What can I do to protect my kid from COVID-19?").headers["x-llmgw-cache"] == "hit"
    with two.admin() as admin:
        assert admin.delete("/admin/cache").json() == {"deleted": 1}, "Redis's entry (two holds no copy)"
    raw = ask(one, "What can I do to protect my kid from COVID-19?", extra_headers={"cache-control": "no-store"})
    assert raw.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2
    assert len(one.gateway.cache.memory) == 0, "replica one forgot its copy"


# --- the semantic tier's threshold -------------------------------------------------------------------


def test_a_routes_own_error_bound_wins_over_the_sections_threshold(
    make_gateway: Callable[..., RunningGateway], upstream: FakeUpstream, tmp_path: Path
) -> None:
    """``cache.threshold: 0.9`` with ``routes.strict.cache.max_wrong_rate: 0.01``: the route's bound was
    ignored (the section's threshold came first) and the route served a reworded question at 0.93."""
    if threshold_for(0.01) < 0.95:
        pytest.skip("the shipped table certifies a threshold this rewording passes now")
    routes = {"default": {"default_model": "test-model"},
              "strict": {"default_model": "test-model", "cache": {"max_wrong_rate": 0.01}}}  # fmt: skip
    gw = make_gateway(cache=cache_config(tmp_path, threshold=0.9), routes=routes)
    for route, expected in (("default", "hit"), ("strict", "miss")):
        on = {"extra_headers": {"x-llmgw-route": route}}
        ask(gw, "How can I protect my child from COVID-19?", **on)
        raw = ask(gw, "What can I do to protect my kid from COVID-19?", **on)
        assert raw.headers["x-llmgw-cache"] == expected, route
    assert len(upstream.requests) == 3


# --- what the key is made of ---------------------------------------------------------------------------


def test_fields_that_change_no_answer_do_not_split_the_cache_and_share_user_reads_the_end_user(
    make_gateway: Callable[..., RunningGateway], upstream: FakeUpstream, tmp_path: Path
) -> None:
    """``safety_identifier`` (an end user's id), ``prompt_cache_key`` and ``service_tier`` were keyed on as
    decoding parameters: each end user of an application got a cache of their own. With ``share: user``
    the end user is the tenant (``user``, else ``safety_identifier``), so users never share there."""
    question = "What is community spread?"
    for share in ("key", "user"):
        gw = make_gateway(cache=cache_config(tmp_path / share, share=share))
        upstream.reset()
        ask(gw, question, extra_body={"safety_identifier": "end-user-1", "prompt_cache_key": "a"})
        other = ask(gw, question, extra_body={"safety_identifier": "end-user-2", "prompt_cache_key": "b",
                                             "service_tier": "flex"})  # fmt: skip
        assert other.headers["x-llmgw-cache"] == ("hit" if share == "key" else "miss"), share
        same = ask(gw, question, extra_body={"safety_identifier": "end-user-1", "service_tier": "priority"})
        assert same.headers["x-llmgw-cache"] == "hit", share
        assert len(upstream.requests) == (1 if share == "key" else 2)


def test_an_unreadable_redis_entry_is_a_miss_not_a_500(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream, redis_prefix: str
) -> None:
    """An entry Redis holds but this version cannot read (written by another version of llmgw during a
    rolling upgrade, or damaged) failed the request with a 500, and ``DELETE /admin/cache`` with it."""
    shared = {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": redis_prefix, "persist_path": None}
    gw = make_gateway(cache=cache_config(tmp_path, **shared))
    ask(gw, "What is community spread?")
    client = redis.Redis.from_url(REDIS_URL)
    (name,) = list(client.scan_iter(f"{redis_prefix}*"))
    doc = json.loads(client.get(name) or b"{}")
    client.set(name, json.dumps({**doc, "field_of_a_later_version": 1}), keepttl=True)
    client.set(f"{redis_prefix}junk", b"{not json")
    raw = ask(gw, "What is community spread?")
    assert raw.headers["x-llmgw-cache"] == "miss" and len(upstream.requests) == 2, "answered upstream"
    assert ask(gw, "What is community spread?").headers["x-llmgw-cache"] == "hit", "the fresh answer replaced it"
    with gw.admin() as admin:
        response = admin.delete("/admin/cache")
    assert response.status_code == 200, response.text
    assert list(client.scan_iter(f"{redis_prefix}*")) == [], "unreadable entries are dropped with the rest"
    client.close()


def test_an_unreadable_sqlite_entry_is_skipped_at_start_up(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path, upstream: FakeUpstream
) -> None:
    """A row the persister cannot read (another version's entry, after a downgrade) stopped the gateway
    from starting at all."""
    db = f"sqlite:///{tmp_path}/gw.db"
    gw = make_gateway(db_url=db, cache=cache_config(tmp_path))
    ask(gw, "What is community spread?")
    ask(gw, "Who is at risk?")
    gw.stop()
    with sqlite3.connect(tmp_path / "cache.sqlite") as conn:
        (key, doc) = conn.execute("SELECT key, doc FROM cache_entries ORDER BY expires LIMIT 1").fetchone()
        conn.execute("UPDATE cache_entries SET doc = ? WHERE key = ?",
                     (json.dumps({**json.loads(doc), "field_of_a_later_version": 1}), key))  # fmt: skip
    again = make_gateway(db_url=db, cache=cache_config(tmp_path))
    assert len(again.gateway.cache.memory) == 1, "the readable entry loaded, the other skipped"
    assert ask(again, "Who is at risk?").headers["x-llmgw-cache"] == "hit"


def test_delete_admin_cache_also_empties_the_shared_semantic_tier(
    make_gateway: Callable[..., RunningGateway], osmem_url: str, upstream: FakeUpstream
) -> None:
    """``DELETE /admin/cache`` dropped entries in process and in Redis, never in OpenSearch, where every
    replica went on finding them by meaning: a withdrawn answer was still served to reworded questions."""
    from opensearchpy import OpenSearch

    index = f"gw-cache-{uuid.uuid4().hex[:8]}"
    cache = {"enabled": True, "semantic_store": "opensearch", "opensearch_url": osmem_url, "opensearch_index": index,
             "persist_path": None, "threshold": 0.9}  # fmt: skip
    routes = {"default": {"default_model": "test-model"}, "other": {"default_model": "test-model"}}
    gw = make_gateway(cache=cache, routes=routes)
    ask(gw, "What is the capital of France?")
    ask(gw, "What is the capital of Spain?", extra_headers={"x-llmgw-route": "other"})
    client = OpenSearch(hosts=[osmem_url])
    for _ in range(100):  # written off the request path
        if client.count(index=index)["count"] == 2:
            break
        time.sleep(0.05)
    assert client.count(index=index)["count"] == 2
    with gw.admin() as admin:
        assert admin.delete("/admin/cache", params={"route": "default"}).json() == {"deleted": 2}, "memory + shared"
        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == 1, "the other route's entry stays"
        assert admin.delete("/admin/cache").json() == {"deleted": 2}
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 0
    client.indices.delete(index=index)


def test_feedback_on_an_old_hit_leaves_the_answer_that_replaced_it(
    cgw: Callable[..., RunningGateway], upstream: FakeUpstream
) -> None:
    """A hit marked wrong after its entry was replaced (``refresh``, or expiry and a new answer) evicted
    the new answer, which nobody had judged: the next request paid a model call for it."""
    gw = cgw()
    ask(gw, "What is community spread?")
    old_hit = ask(gw, "What is community spread?")
    assert old_hit.headers["x-llmgw-cache"] == "hit"
    ask(gw, "What is community spread?", extra_body={"llmgw": {"cache": "refresh"}})  # a fresh answer replaces it
    response = httpx.post(f"{gw.url}/v1/feedback", json={"request_id": old_hit.parse().id, "label": "wrong"},
                          headers={"authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    assert response.status_code == 201
    assert gw.admin().get("/admin/cache").json()["feedback"]["exact"]["wrong"] == 1, "the old hit still counts"
    again = ask(gw, "What is community spread?")
    assert again.headers["x-llmgw-cache"] == "hit" and len(upstream.requests) == 2, "the fresh answer stays"
