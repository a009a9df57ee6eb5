"""More configuration keys whose effect no other test asserted, each through a real gateway (a sibling of
``test_config_effects.py`` and ``test_config_effects2.py``):

- ``retrieval.timeout_s``: a search that hangs is cut at it; the answer comes without passages
  (``x-llmgw-retrieval: error``), or, on a route with ``retrieval.required``, as a 503;
- ``routes.<r>.selection.max_fallbacks``: how many other models are tried after a failure, for an
  explicitly named model (``selection.fallbacks``) and for ``auto`` with ``routing.enabled``;
- ``storage.max_attempts`` / ``storage.dead_letter_dir``: a batch the database cannot take (it is away)
  is tried that many times, then kept in the dead-letter file, never dropped;
- ``cache.share: user``: exact-cache entries are shared by the same key *and* ``user`` field only.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import text

from llmgw.retrieval.local import LocalStore
from llmgw.retrieval.store import Hit, Query
from llmgw.storage.deadletter import DeadLetters
from tests.conftest import ADMIN_KEY, RunningGateway
from tests.test_retrieval_server import ROOT, make_collection
from tests.upstream import FakeUpstream

UP = {"type": "openai", "api_key": "sk-upstream-secret", "backoff_base_s": 0.01}


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def row_of(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    return next(r for r in gw.rows() if r["id"] == request_id)


# --- retrieval.timeout_s ----------------------------------------------------------------------

HANG = re.compile(r"#hang\b")


@pytest.fixture()
def hanging_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local store's search hangs when the question holds ``#hang`` (a stalled store): held at a
    gate for up to 30 s, released when the test ends so the abandoned search thread does not linger."""
    search = LocalStore.search
    release = threading.Event()

    def slow_search(self: LocalStore, query: Query) -> list[Hit]:
        if HANG.search(query.text):
            release.wait(30)
        return search(self, query)

    monkeypatch.setattr(LocalStore, "search", slow_search)
    yield
    release.set()


def chat(gw: RunningGateway, content: str, route: str) -> tuple[httpx.Response, float]:
    body = {"model": "test-model", "messages": [{"role": "user", "content": content}]}
    headers = {"authorization": f"Bearer {ADMIN_KEY}", "x-llmgw-route": route}
    started = time.monotonic()
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        response = http.post("/v1/chat/completions", json=body, headers=headers)
    return response, time.monotonic() - started


def test_retrieval_timeout_s_cuts_a_hanging_search(
    make_gateway: Any, tmp_path: Path, upstream: FakeUpstream, hanging_store: None
) -> None:
    folder = make_collection(tmp_path)
    gw = make_gateway(
        retrieval={"enabled": True, "collections_dir": str(folder), "timeout_s": 1.0},
        templates={"repo": str(ROOT)},
        routes={
            "grounded": {"default_model": "test-model", "retrieval": {"collection": "kb"}},
            "strict": {"default_model": "test-model", "retrieval": {"collection": "kb", "required": True}},
        },
    )
    gw.gateway.retrieval.collection("kb").search("warm up")  # loads the store and the embedder, off the clock
    # A bound, as this is a timeout: the hanging search is held for 30 s, timeout_s is 1 s, and the
    # default timeout_s is 5 s, so 4 s leaves a busy machine room (a 1.0 s bound against a 0.3 s
    # timeout_s was too close) and still fails when the search is not cut or timeout_s is not read.
    bound_s = 4.0

    # within timeout_s: grounded as usual (the store works, the hang is what fails it below)
    quick, _ = chat(gw, "Which volcano is the most active?", "grounded")
    assert quick.status_code == 200 and "x-llmgw-retrieval" not in quick.headers
    assert quick.headers["x-llmgw-sources"].startswith("docs%2Fvolcanoes.md")
    assert "<passage" in str(upstream.requests[-1]["messages"])

    # past timeout_s, not required: answered without passages, long before the search would end
    lenient, elapsed = chat(gw, "Which volcano is the most active? #hang", "grounded")
    assert lenient.status_code == 200 and lenient.headers["x-llmgw-retrieval"] == "error"
    assert elapsed < bound_s, f"took {elapsed:.2f}s: the search was not cut at retrieval.timeout_s (1 s)"
    assert "x-llmgw-sources" not in lenient.headers
    assert "<passage" not in str(upstream.requests[-1]["messages"])
    row = row_of(gw, lenient.headers["x-llmgw-request-id"])
    assert row["meta"]["retrieval"] == {"collection": "kb", "error": "timed out"}

    # past timeout_s on a route with required: true: 503 in OpenAI's error shape, never sent upstream
    sent = len(upstream.requests)
    strict, elapsed = chat(gw, "Which volcano is the most active? #hang", "strict")
    assert strict.status_code == 503
    error = strict.json()["error"]
    assert error["code"] == "retrieval_unavailable" and error["type"] == "server_error"
    assert "collection 'kb' failed (timed out)" in error["message"]
    assert elapsed < bound_s, f"took {elapsed:.2f}s: the search was not cut at retrieval.timeout_s (1 s)"
    assert len(upstream.requests) == sent


# --- routes.<r>.selection.max_fallbacks -------------------------------------------------------

THREE = {  # three models on one upstream; a `#status:503` question fails on each of them
    "first": {"provider": "up", "upstream_id": "fake-first", "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.1},
              "quality": {"chat": 0.9}},
    "second": {"provider": "up", "upstream_id": "fake-second", "price": {"input_per_mtok": 1, "output_per_mtok": 1},
               "quality": {"chat": 0.9}},
    "third": {"provider": "up", "upstream_id": "fake-third", "price": {"input_per_mtok": 9, "output_per_mtok": 9},
              "quality": {"chat": 0.9}},
}  # fmt: skip


@pytest.mark.parametrize("requested", ["first", "auto"], ids=["explicit-model", "routed-auto"])
def test_max_fallbacks_bounds_the_models_tried(make_gateway: Any, upstream: FakeUpstream, requested: str) -> None:
    """``first`` named explicitly falls back along ``selection.fallbacks``; ``auto`` along the ranking
    (cheapest first: first, second, third). Routes ``f0``/``f1``/``f2`` differ only in ``max_fallbacks``."""
    selection = {"fallbacks": ["second", "third"]}
    routes = {
        f"f{n}": {"models": list(THREE), "default_model": "first", "selection": {**selection, "max_fallbacks": n}}
        for n in (0, 1, 2)
    }
    gw = make_gateway(
        providers={"up": {**UP, "base_url": upstream.base_url, "max_retries": 0}},
        models=THREE,
        routes=routes,
        routing={"enabled": requested == "auto"},
    )
    client = gw.client()
    tried: dict[int, tuple[Counter[str], dict[str, Any]]] = {}
    for n in (0, 1, 2):
        upstream.reset()
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(
                model=requested,
                messages=[{"role": "user", "content": f"route f{n} #status:503"}],
                extra_headers={"x-llmgw-route": f"f{n}"},
                extra_body={"llmgw": {"task": "chat"}},
            )
        assert info.value.status_code == 503  # the last model's failure, classified
        error = info.value.response.json()["error"]
        assert error["code"] == "upstream_unavailable" and error["type"] == "upstream_error"
        request_id = info.value.response.headers["x-llmgw-request-id"]
        tried[n] = Counter(body["model"] for body in upstream.requests), row_of(gw, request_id)

    hits, row = tried[1]
    assert hits == {"fake-first": 1, "fake-second": 1}, "max_fallbacks: 1 tries exactly two models"
    assert row["meta"]["fallbacks"] == [{"from": "first", "to": "second", "error": "upstream_unavailable"}]
    assert row["status"] == "error" and row["error_code"] == "upstream_unavailable"
    assert row["model_used"] == "second"

    hits, row = tried[0]
    assert hits == {"fake-first": 1} and not row["meta"].get("fallbacks")
    hits, row = tried[2]
    assert hits == {"fake-first": 1, "fake-second": 1, "fake-third": 1}
    assert [f["to"] for f in row["meta"]["fallbacks"]] == ["second", "third"]


# --- storage.max_attempts / storage.dead_letter_dir -------------------------------------------


def test_rows_the_database_cannot_take_are_tried_max_attempts_times_then_dead_lettered(
    make_gateway: Any, tmp_path: Path
) -> None:
    """The ``requests`` table is renamed away under the running gateway: every write fails as a database
    fault (not a refused row), is retried ``max_attempts`` (3) times, and the row lands in
    ``dead_letter_dir/requests.jsonl``. Back with its table, the next row is written again."""
    url = f"sqlite:///{tmp_path}/gw.db"
    letters = DeadLetters(tmp_path / "dl")
    gw = make_gateway(
        db_url=url,
        storage={"url": url, "flush_interval_s": 0.05, "max_attempts": 3, "dead_letter_dir": str(letters.dir)},
    )
    writer = gw.gateway.writer
    client = gw.client()
    kept = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "a"}]
    )
    gw.flush()
    assert writer.failures == 0 and writer.written == 1
    with gw.gateway.engine.begin() as conn:
        conn.execute(text("alter table requests rename to requests_away"))

    lost = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "b"}]
    )
    assert lost.status_code == 200  # the answer never waits for its row
    lost_id = lost.headers["x-llmgw-request-id"]
    assert wait_for(lambda: letters.path("requests").exists() and letters.count("requests") == 1, 10)
    assert wait_for(lambda: writer.pending() == 0, 10)
    assert writer.failures == 3, f"{writer.failures} tries, storage.max_attempts is 3"
    assert writer.dead_lettered == 1 and writer.written == 1
    [letter] = DeadLetters.read(letters.path("requests"))[0]
    assert letter.row["id"] == lost_id and letter.table == "requests"
    assert "no such table: requests" in letter.error

    with gw.gateway.engine.begin() as conn:
        conn.execute(text("alter table requests_away rename to requests"))
    back = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "c"}]
    )
    gw.flush()
    assert writer.written == 2 and writer.dead_lettered == 1
    stored = {r["id"] for r in gw.rows()}
    assert stored == {kept.headers["x-llmgw-request-id"], back.headers["x-llmgw-request-id"]}
    assert lost_id not in stored and letters.count("requests") == 1  # kept on disk until `llmgw storage replay`


# --- cache.share: user ------------------------------------------------------------------------


def cached(client: openai.OpenAI, question: str, user: str | None = None) -> str:
    extra = {"user": user} if user is not None else {}
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": question}], **extra
    )
    assert raw.status_code == 200
    return str(raw.headers["x-llmgw-cache"])


def test_cache_share_key_ignores_the_user_field(make_gateway: Any, upstream: FakeUpstream) -> None:
    """The default scope (``share: key``): one key's entries serve it whatever ``user`` it names, and
    never another key, not even one of the same team."""
    gw = make_gateway(cache={"enabled": True, "semantic": False, "persist_path": None})
    ann = gw.client(gw.create_key(name="ann", team="red")["key"])
    bob = gw.client(gw.create_key(name="bob", team="red")["key"])
    assert cached(ann, "What is community spread?", user="u1") == "miss"
    assert cached(ann, "What is community spread?", user="u2") == "hit"
    assert cached(ann, "What is community spread?") == "hit"
    assert cached(bob, "What is community spread?", user="u1") == "miss"
    assert len(upstream.requests) == 2


def test_cache_share_user_splits_entries_by_the_user_field(make_gateway: Any, upstream: FakeUpstream) -> None:
    """``share: user``: the tenant is the key and the request's ``user`` (else the key's own ``user``):
    a hit needs both equal (``llmgw.cache.keys.tenant_of``)."""
    gw = make_gateway(cache={"enabled": True, "semantic": False, "persist_path": None, "share": "user"})
    ann = gw.client(gw.create_key(name="ann", team="red")["key"])
    bob = gw.client(gw.create_key(name="bob", team="red")["key"])
    carol = gw.client(gw.create_key(name="carol", team="red", user="u9")["key"])
    question = "What is community spread?"
    assert cached(ann, question, user="u1") == "miss"
    assert cached(ann, question, user="u1") == "hit"  # the same key and user
    assert cached(ann, question, user="u2") == "miss"  # the same key, another user
    assert cached(ann, question, user="u2") == "hit"
    assert cached(ann, question) == "miss"  # no user: its own tenant
    assert cached(bob, question, user="u1") == "miss"  # the same user through another key of the team
    assert len(upstream.requests) == 4
    assert cached(carol, question) == "miss"  # a key's own user stands in for a request naming none
    assert cached(carol, question, user="u9") == "hit"
    assert cached(carol, question, user="u1") == "miss"
    assert len(upstream.requests) == 6
