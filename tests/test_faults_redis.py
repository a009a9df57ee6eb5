"""Fault injection: the limits' Redis stopped, then hung (SIGSTOP), under a real gateway subprocess.

While Redis is away or hung, requests fail closed with 503 ``limits_unavailable`` (OpenAI-shaped, a
row each) and ``/readyz`` says not ready; a hung Redis costs a request the store's timeout, never a
hang. Once Redis answers again requests are served. Ledger: every answered or refused request has
its row. A private ``redis-server`` on its own port; the shared 6379 is never touched.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.faults import PrivateRedis, Served, request_rows
from tests.upstream import FakeUpstream


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


def readyz(served: Served) -> int:
    return httpx.get(f"http://127.0.0.1:{served.port}/readyz", timeout=30).status_code


def refused(served: Served) -> str:
    """One request refused with 503 ``limits_unavailable``: its id."""
    with pytest.raises(openai.InternalServerError) as caught:
        served.ask("is anyone counting?")
    error = caught.value
    assert error.status_code == 503 and error.code == "limits_unavailable", error
    assert isinstance(error.body, dict) and error.body.get("type") == "server_error", error.body
    return str(error.response.headers["x-llmgw-request-id"])


def until_ready(served: Served, bound_s: float = 30) -> None:
    deadline = time.monotonic() + bound_s
    while readyz(served) != 200:
        assert time.monotonic() < deadline, "not ready again after Redis came back"
        time.sleep(0.1)


@pytest.mark.slow  # a gateway start-up and two Redis faults
def test_limits_redis_stopped_or_hung_fails_closed_then_recovers(
    private_redis: PrivateRedis, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A regression guard: this already held before the store's timeout was made explicit (redis-py's
    own 5 s read timeout bounded the hang; the bound is now 1 s, set by llmgw, for reads and connects)."""
    db_url = f"sqlite:///{tmp_path}/gw.db"
    limits = {"enabled": True, "store": "redis", "redis_url": private_redis.url,
              "default_key": {"requests_per_minute": 100_000}}  # fmt: skip
    served = Served(tmp_path, upstream, db_url, guarded=False, extra={"limits": limits})
    answered, refusals = [], []
    try:
        answered.append(served.ask("before"))

        private_redis.pause()  # hung: the connection is open, nothing answers
        refusals += [refused(served), refused(served)]
        assert readyz(served) == 503
        private_redis.resume()
        until_ready(served)
        answered.append(served.ask("after the hang"))

        private_redis.stop()  # away: connections refused
        refusals += [refused(served), refused(served)]
        assert readyz(served) == 503
        private_redis.start()
        until_ready(served)
        answered.append(served.ask("after the restart"))
    finally:
        assert served.terminate() in (0, -signal.SIGTERM)  # SIGTERM writes every queued row
    rows = request_rows(db_url)
    assert not set(answered + refusals) - set(rows), "an answered or refused request left no row"
    assert all(rows[i][0] == 200 for i in answered), rows
    assert all(rows[i] == (503, "limits_unavailable") for i in refusals), rows
    print(
        f"\n[redis] answered {len(answered)}, refused {len(refusals)} (503 limits_unavailable); "
        f"{len(rows)} rows: {sum(1 for i in answered + refusals if i in rows)} of them for these requests"
    )
