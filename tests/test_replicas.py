"""Three gateway processes on one PostgreSQL and one Redis, behind a round-robin proxy, as a load
balancer would run them: limits and budgets hold across replicas, a key revoked on one is refused by
all, an answer cached by one is a hit on the others, each writer's audit chain verifies, a moved
template label reaches every replica, and SIGKILLing a replica under load loses no answered row.

Real parts throughout: ``python -m llmgw serve`` subprocesses (so one can be killed), the shared
PostgreSQL in a fresh schema, the shared Redis under a unique key prefix (deleted afterwards), the
openai SDK as the client. Only the upstream is the local stub.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from aiohttp import ClientSession, ClientTimeout, web

from llmgw.cli import main
from llmgw.storage.deadletter import DeadLetters
from llmgw.usage import estimate_tokens, prompt_chars
from tests.conftest import ADMIN_KEY, PromptRepo
from tests.faults import Served, stored_ids
from tests.test_retrieval_server import make_collection
from tests.upstream import FakeUpstream

pytestmark = pytest.mark.slow  # three gateway start-ups
REPLICAS = 3
KEY_REFRESH_S = 1.0
RPM = 5
PRICE_IN, PRICE_OUT = 1.0, 2.0  # test-model's catalog prices per million tokens (tests.conftest)


class Replica(Served):
    start_s = 400.0  # three gateways loading Presidio at once on a shared 2-core machine


class RoundRobin:
    """A tiny HTTP load balancer: each request to the next backend; a backend that does not answer
    gives 502 (the client retries it), as a real balancer would."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.alive = [True] * len(backends)
        self._next = itertools.count()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True, name="round-robin")
        self._thread.start()
        assert self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.session = ClientSession(timeout=ClientTimeout(total=60))
        app = web.Application(client_max_size=8 << 20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _forward(self, request: web.Request) -> web.Response:
        index = next(self._next) % len(self.backends)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        try:
            async with self.session.request(
                request.method, self.backends[index] + request.path_qs, headers=headers, data=await request.read()
            ) as answer:
                body = await answer.read()
                dropped = ("content-length", "transfer-encoding", "connection", "content-encoding")
                out = {k: v for k, v in answer.headers.items() if k.lower() not in dropped}
                out["x-test-replica"] = str(index)
                return web.Response(status=answer.status, body=body, headers=out)
        except Exception as exc:  # noqa: BLE001 - the backend is gone: a balancer answers 502
            return web.json_response({"error": {"message": f"replica {index}: {exc!r}"}}, status=502)

    def stop(self) -> None:
        async def close() -> None:
            await self.session.close()
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


class Cluster:
    def __init__(
        self, replicas: list[Served], proxy: RoundRobin, db_url: str, namespace: str, repo: PromptRepo, root: Path
    ) -> None:
        self.root = root
        self.replicas = replicas
        self.proxy = proxy
        self.db_url = db_url
        self.namespace = namespace
        self.repo = repo

    def client(self, key: str = ADMIN_KEY, url: str | None = None, retries: int = 0) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{url or self.proxy.url}/v1", api_key=key, max_retries=retries, timeout=30)

    def admin(self, url: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=url or self.proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"},
                            timeout=30)  # fmt: skip

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{r.port}" for r in self.replicas]

    def create_key(self, **spec: Any) -> dict[str, Any]:
        with self.admin() as admin:
            response = admin.post("/admin/keys", json={"name": f"k-{uuid.uuid4().hex[:6]}", **spec})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


def redis_or_skip() -> redis.Redis:
    store = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        store.ping()
    except redis.RedisError:
        if os.environ.get("LLMGW_REQUIRE_REDIS"):
            raise
        pytest.skip("no Redis on 127.0.0.1:6379")
    return store


def reservation(body: dict[str, Any]) -> float:
    """What the gateway reserves in a budget for ``body`` (llmgw.stages.ratelimit.ReserveBudget)."""
    return (estimate_tokens(prompt_chars(body)) * PRICE_IN + body["max_tokens"] * PRICE_OUT) / 1e6


BUDGET_BODY = {"model": "test-model", "max_tokens": 4, "messages": [{"role": "user", "content": "spend 00 #sleep:1"}]}
#: room for two and a half reservations: the third request still starts below the budget, the rest do not
BUDGET_USD = 2.5 * reservation(BUDGET_BODY)


@pytest.fixture(scope="module")
def cluster(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    store = redis_or_skip()
    import psycopg

    from tests.conftest import PG_BASE

    schema = f"llmgw_replicas_{uuid.uuid4().hex[:8]}"
    try:
        conn = psycopg.connect(PG_BASE, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("LLMGW_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    conn.execute(f"CREATE SCHEMA {schema}")
    db_url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    namespace = f"llmgw-test-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("replicas")
    repo_dir = root / "prompts-repo"
    repo_dir.mkdir()
    repo = PromptRepo(repo_dir)
    repo.greeter("one {{ name }}")
    rag = Path(__file__).parents[1] / "prompts" / "rag" / "passages.yaml"
    repo.write("rag/passages.yaml", rag.read_text())  # how retrieval inserts passages, from the project's own
    repo.tag("release", repo.commit("one"))
    collections = make_collection(root)  # ingested here, searched by the replicas (opened on first use)
    extra = {
        "auth": {"admin_key": ADMIN_KEY, "key_refresh_s": KEY_REFRESH_S},
        # the shared Redis of a CI machine that also runs three replicas can take over a second to
        # answer; the default (1 s) then fails requests closed with 503 limits_unavailable, which is
        # what production should do, but this suite checks exact counts, not Redis latency
        "limits": {"enabled": True, "store": "redis", "namespace": namespace, "store_timeout_s": 10.0,
                   "teams": {"rpm": {"requests_per_minute": RPM}, "budget": {"daily_budget_usd": BUDGET_USD}}},
        "cache": {"enabled": True, "exact_store": "redis", "redis_prefix": f"{namespace}:cache:", "semantic": False,
                  "persist_path": None, "preload": False},
        "templates": {"enabled": True, "repo": str(repo_dir), "refresh_s": 0.2, "labels": {"production": "release"}},
        "retrieval": {"enabled": True, "collections_dir": str(collections), "refresh_s": 0.2},
        "routes": {"default": {"default_model": "test-model", "retrieval": {"collections": ["kb"]}}},
    }  # fmt: skip
    replicas: list[Served] = []
    proxy: RoundRobin | None = None
    try:
        with concurrent.futures.ThreadPoolExecutor(REPLICAS) as pool:  # they start together, as replicas do
            dirs = [root / f"replica-{i}" for i in range(REPLICAS)]
            for d in dirs:
                d.mkdir()
            futures = [pool.submit(Replica, d, upstream, db_url, True, extra) for d in dirs]
            for future in futures:
                replicas.append(future.result())
        proxy = RoundRobin([f"http://127.0.0.1:{r.port}" for r in replicas])
        yield Cluster(replicas, proxy, db_url, namespace, repo, root)
    finally:
        if proxy is not None:
            proxy.stop()
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.terminate()
        for name in store.scan_iter(f"{namespace}*"):
            store.delete(name)
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def fresh_minute() -> None:
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.1)


def wait_for(check: Callable[[], bool], bound_s: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound_s, f"{what}: not within {bound_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def parallel(n: int, call: Callable[[int], Any]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


def status_of(call: Callable[[], Any]) -> int:
    try:
        call()
    except openai.APIStatusError as exc:
        if exc.status_code not in (401, 403, 429):
            print(f"status {exc.status_code}: {exc.body}")  # pytest shows it with a failure
        return exc.status_code
    return 200


def test_requests_per_minute_exact_across_replicas(cluster: Cluster) -> None:
    key = cluster.create_key(team="rpm")["key"]
    fresh_minute()
    client = cluster.client(key)
    ask = {"model": "test-model", "messages": [{"role": "user", "content": "count me"}]}
    statuses = parallel(3 * RPM, lambda i: status_of(lambda: client.chat.completions.create(**ask)))
    assert sorted(statuses) == [200] * RPM + [429] * (2 * RPM)  # not RPM per replica


def test_concurrent_budget_is_reserved_across_replicas(cluster: Cluster) -> None:
    """Before the reservation: all twelve requests read a spend of 0 and went ahead (12× the budget)."""
    key = cluster.create_key(team="budget")
    client = cluster.client(key["key"])

    def spend(i: int) -> int:  # distinct questions of one length: no cache hit, the same reservation
        ask = {**BUDGET_BODY, "messages": [{"role": "user", "content": f"spend {i:02d} #sleep:1"}]}
        return status_of(lambda: client.chat.completions.create(**ask))

    statuses = parallel(12, spend)
    assert statuses.count(200) == math.ceil(BUDGET_USD / reservation(BUDGET_BODY)) == 3, statuses
    assert statuses.count(429) == 9
    store = redis_or_skip()
    [spend_key] = store.scan_iter(f"{cluster.namespace}*spend:team:budget:*")

    def settled() -> bool:  # the reservations become the real costs once the answers are out
        with cluster.admin() as admin:
            rows = admin.get("/admin/requests", params={"key_id": key["id"]}).json()["data"]
        costs = [r["cost_usd"] for r in rows if r["cost_usd"]]
        return len(costs) == 3 and float(store.get(spend_key)) == pytest.approx(sum(costs))

    wait_for(settled, 20, "the spend settled to the three requests' cost")
    assert float(store.get(spend_key)) <= BUDGET_USD + reservation(BUDGET_BODY)


def test_key_revoked_on_one_replica_is_refused_by_all(cluster: Cluster) -> None:
    created = cluster.create_key()
    urls = cluster.urls()
    ask = {"model": "test-model", "messages": [{"role": "user", "content": "who am i"}]}
    for url in urls:  # every replica knows the key (and caches it)
        cluster.client(created["key"], url).chat.completions.create(**ask)
    with cluster.admin(urls[0]) as admin:
        assert admin.delete(f"/admin/keys/{created['id']}").status_code == 200
    for url in urls:
        client = cluster.client(created["key"], url)
        wait_for(lambda c=client: status_of(lambda: c.chat.completions.create(**ask)) == 401,
                 3 * KEY_REFRESH_S + 2, f"revoked key refused by {url}")  # fmt: skip


def test_exact_cache_hit_on_every_replica(cluster: Cluster, upstream: FakeUpstream) -> None:
    question = f"what is cached {uuid.uuid4().hex[:6]}?"
    ask = {"model": "test-model", "temperature": 0, "messages": [{"role": "user", "content": question}]}
    results = []
    for url in cluster.urls():
        raw = cluster.client(url=url).chat.completions.with_raw_response.create(**ask)
        results.append(raw.headers["x-llmgw-cache"])
    assert results == ["miss", "hit", "hit"]
    assert sum(question in str(body.get("messages")) for body in upstream.requests) == 1


def test_one_verified_audit_chain_per_writer(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    client = cluster.client()
    for i in range(2 * REPLICAS):  # round robin: every replica masks some e-mail addresses
        client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": f"mail a{i}@example.com"}]
        )
    pids = {str(r.proc.pid) for r in cluster.replicas}

    def chains() -> set[str]:
        return set(stored_ids(cluster.db_url, "guard_events", "chain"))

    wait_for(lambda: {c.split("-")[-3] for c in chains()} >= pids, 20, "each replica's events stored")
    capsys.readouterr()
    assert main(["audit", "--config", str(cluster.replicas[0].config), "verify", "--heads"]) == 0
    out = capsys.readouterr()
    assert "problem" not in out.err.lower() or "0 problem" in out.err.lower()
    assert len(chains()) == len({c.split("-")[-3] for c in chains()}), "one chain per writer process"


def test_moved_template_label_reaches_every_replica(cluster: Cluster) -> None:
    cluster.repo.greeter("two {{ name }}")
    second = cluster.repo.commit("two")
    cluster.repo.tag("release", second)
    for url in cluster.urls():
        client = cluster.client(url=url)

        def moved(c: openai.OpenAI = client) -> bool:
            raw = c.chat.completions.with_raw_response.create(
                model="test-model", messages=[{"role": "user", "content": "hi"}],
                extra_body={"llmgw": {"prompt": {"id": "greeter@production", "variables": {"name": "x"}}}},
            )  # fmt: skip
            return str(raw.headers["x-llmgw-prompt"]) == f"greeter@{second}"

        wait_for(moved, 10, f"{url} renders the moved label")


def test_reingested_collection_reaches_every_replica(cluster: Cluster) -> None:
    ask = {"model": "test-model", "messages": [{"role": "user", "content": "What do axolotls regrow?"}],
           "llmgw": {"retrieval": {"collection": "kb", "k": 1}}}  # fmt: skip

    def top_source(url: str) -> str:
        with cluster.admin(url) as http:
            response = http.post("/v1/chat/completions", json=ask)
        assert response.status_code == 200, response.text
        return str(response.json()["llmgw"]["sources"][0]["doc_id"])

    for url in cluster.urls():  # every replica opens the collection as it is
        assert top_source(url) != "docs/axolotl.md"
    make_collection(
        cluster.root, docs={"axolotl.md": "# Axolotl\n\nAxolotls regrow lost limbs and parts of the heart."}
    )
    for url in cluster.urls():
        wait_for(lambda u=url: top_source(u) == "docs/axolotl.md", 20, f"{url} searches the re-ingested collection")


def test_sigkill_of_one_replica_under_load_loses_no_answered_row(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:  # fmt: skip
    """Runs last: a replica is gone afterwards. Clients retry what failed (the SDK's own retries on 502)."""
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def load(n: int) -> None:
        client = cluster.client(retries=5)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="test-model", messages=[{"role": "user", "content": f"load {n}.{i} #sleep:0.05"}]
                )
            except openai.APIError as exc:
                failures.append(repr(exc))
                continue
            with lock:
                answered.append(str(raw.headers["x-llmgw-request-id"]))

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(6)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= 30, 60, "load before the kill")
    victim = cluster.replicas[-1]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    at_kill = len(answered)
    wait_for(lambda: len(answered) >= at_kill + 30, 60, "load after the kill")
    stop.set()
    for thread in threads:
        thread.join(60)
    victim.log.close()
    assert not failures, failures[:3]
    # the killed replica's queued rows are in its journal; `llmgw storage replay` writes them
    capsys.readouterr()
    assert main(["storage", "replay", "--config", str(victim.config)]) == 0
    for replica in cluster.replicas[:-1]:
        replica.terminate()  # the survivors drain what they hold
    in_db = set(stored_ids(cluster.db_url, "requests"))
    kept = {row["id"] for r in cluster.replicas for row in DeadLetters(r.dead_letters.dir).rows("requests")}
    missing = set(answered) - in_db - kept
    assert not missing, f"{len(missing)} of {len(answered)} answered requests left no row"
    with capsys.disabled():
        print(f"\n[replicas] {len(answered)} answered ({at_kill} before the SIGKILL); all in the database")
