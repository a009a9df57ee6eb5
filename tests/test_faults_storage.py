"""Fault injection for storage: the real server (a subprocess, so it can be signalled) on a private
PostgreSQL that the tests stop and start, driven by the openai SDK against the fake upstream.

After each fault a ledger is checked: every answered request is a row in the database or in the
dead-letter file (never both, never neither); after ``llmgw storage replay`` all are in the
database, and every guard event is in a chain that ``llmgw audit verify`` accepts.

The private PostgreSQL runs on its own port and data directory (never the shared server): see
docs/notes on fault tests. Tests skip when PostgreSQL's binaries or root (for ``runuser``) are missing.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest

from tests.conftest import ADMIN_KEY
from tests.faults import (
    FLUSH_S,
    OUTAGE_S,
    Load,
    PrivatePostgres,
    Served,
    ledger,
    private_pg,  # noqa: F401 - the fixture
    replay,
    stored_ids,
    verify,
)
from tests.upstream import FakeUpstream


class SqliteLock:
    """The SQLite analogue of an outage: another process holds the write lock."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def stop(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")

    def start(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_outage_sigterm_restart_replay_loses_nothing(
    backend: str, request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Before: SIGTERM during an outage lost every queued row (20 answered requests left no trace), and
    guard events dead-lettered without a chain position went unnoticed by ``verify``."""
    if backend == "postgres":
        pg: PrivatePostgres = request.getfixturevalue("private_pg")
        pg.reset()
        db_url = pg.url
    else:
        db_url = f"sqlite:///{tmp_path}/gw.db"
    served = Served(tmp_path, upstream, db_url)
    outage: Any = pg if backend == "postgres" else SqliteLock(db_url.removeprefix("sqlite:///"))
    try:
        load = Load(served)
        load.wait_for(20)
        outage.stop()  # mid-load
        stopped_at, during = time.monotonic(), load.count()
        load.wait_for(during + 20)  # answered while the database is away: no DB write on the request path
        while time.monotonic() - stopped_at < OUTAGE_S:
            time.sleep(0.5)
        during = load.count() - during
        assert served.terminate() in (0, -signal.SIGTERM)  # inside the outage, with rows still queued
        answered = load.stop()
    finally:
        served.kill()
    outage.start()

    in_db, kept = ledger(answered, db_url, served.dead_letters)
    kept_before = kept & set(answered)
    assert kept, "the outage rows are in the dead-letter file"
    status, err = verify(served.config, capsys)
    assert status == 1 and f"dead-letter file {served.dead_letters.path('guard_events')}" in err, err

    out = replay(served.config, capsys)
    assert f"requests: {len(kept)} replayed" in out, out
    in_db, kept = ledger(answered, db_url, served.dead_letters)
    assert not kept and set(answered) <= in_db
    status, err = verify(served.config, capsys)
    assert status == 0, err
    with_events = set(stored_ids(db_url, "guard_events", "request_id"))
    assert set(answered) <= with_events, "every answered request's guard event is in a verified chain"
    with capsys.disabled():
        print(f"\n[{backend}] answered {len(answered)} ({during} during the outage); before replay "
              f"{len(answered) - len(kept_before)} in the database + {len(kept_before)} dead-lettered; after "
              f"replay {len(in_db & set(answered))} in the database; {err.strip().splitlines()[-1]}")  # fmt: skip


@pytest.mark.slow  # two gateway start-ups and 100 requests: 20-30 s on a busy machine
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_a_poisoned_row_among_100_leaves_the_other_99_on_time(
    backend: str, request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Before: a NUL in ``user`` (or a 250-character model on a 404) failed its whole batch on PostgreSQL,
    the writer stalled ~35 s and then dead-lettered all 100 rows."""
    if backend == "postgres":
        pg: PrivatePostgres = request.getfixturevalue("private_pg")
        pg.reset()
        db_url = pg.url
    else:
        db_url = f"sqlite:///{tmp_path}/gw.db"
    served = Served(tmp_path, upstream, db_url, guarded=False)  # no guard events needed: a quick start
    try:
        client = served.client()
        poisoned: dict[str, str] = {}

        def one(i: int) -> str | None:
            if i == 50:
                try:
                    client.chat.completions.create(model="m" * 250, messages=[{"role": "user", "content": "x"}])
                except openai.NotFoundError as exc:
                    poisoned["model"] = str(exc.response.headers["x-llmgw-request-id"])
                return None
            if i == 51:
                poisoned["user"] = served.ask("hello", user="eve\x00@example.com")
                return None
            return served.ask(f"question {i}")

        with ThreadPoolExecutor(8) as pool:
            good = [r for r in pool.map(one, range(101)) if r is not None]
        with httpx.Client(base_url=f"http://127.0.0.1:{served.port}") as http:
            refused = http.post("/v1/feedback", json={"request_id": good[0], "label": "ok\x00"},
                                headers={"authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
            # a NUL in a feedback label is refused at the door now (400), so it never reaches the writer
            assert refused.status_code == 400 and refused.json()["error"]["param"] == "label", refused.text
            feedback = http.post("/v1/feedback", json={"request_id": good[0], "label": "ok"},
                                 headers={"authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
        assert feedback.status_code == 201, feedback.text
        assert len(good) == 99
        deadline = time.monotonic() + FLUSH_S + 1.0  # the target: the other 99 within flush_interval_s + 1 s
        while not set(good) <= set(stored_ids(db_url, "requests")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(good) <= set(stored_ids(db_url, "requests")), "the other 99 rows were not stored in time"
        deadline = time.monotonic() + 10
        while not set(poisoned.values()) <= set(stored_ids(db_url, "requests")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(poisoned.values()) <= set(stored_ids(db_url, "requests")), "the poisoned rows are stored too"
        deadline = time.monotonic() + 10
        while not stored_ids(db_url, "feedback", "label") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_ids(db_url, "feedback", "label") == ["ok"]
        assert served.dead_letters.tables() == []
    finally:
        served.terminate()
    with psycopg.connect(db_url) if backend == "postgres" else contextlib.closing(
        sqlite3.connect(db_url.removeprefix("sqlite:///"))
    ) as conn:  # fmt: skip
        model, note = conn.execute(
            f"select model_requested, sanitised from requests where id = '{poisoned['model']}'"
        ).fetchone()
    assert model == "m" * 200 and "cut from 250 to 200" in note
