"""Storage on real SQLite and PostgreSQL: batched writes, usage totals, keys, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from llmgw.cli import main
from llmgw.guards.events import guard_event
from llmgw.keys import KeyStore
from llmgw.storage.db import make_engine
from llmgw.storage.deadletter import DeadLetters
from llmgw.storage.writer import RowWriter
from tests.conftest import ADMIN_KEY, base_config, free_port
from tests.upstream import FakeUpstream

PG_BASE = os.environ.get("LLMGW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def row(i: int, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": f"req{i:06d}", "created_at": datetime.now(UTC), "endpoint": "chat", "key_id": "k1",
        "team": "t1", "route": "default", "model_requested": "m", "model_used": "m", "status": "ok",
        "http_status": 200, "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001, "meta": {},
    }  # fmt: skip
    base.update(extra)
    return base


def test_writer_batches_and_totals(db_url: str) -> None:
    engine = make_engine(db_url)
    writer = RowWriter(engine, batch_size=100, flush_interval_s=0.01)
    writer.start()
    for i in range(1050):
        writer.put("requests", row(i, status="error" if i % 10 == 0 else "ok"))
    writer.close()
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from requests")).scalar() == 1050
        usage = conn.execute(
            text("select requests, errors, prompt_tokens, completion_tokens, cost_usd from usage")
        ).one()
    assert usage[:4] == (1050, 105, 10500, 5250)
    assert usage[4] == pytest.approx(1.05)
    engine.dispose()


def test_writer_retries_until_the_table_exists(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    with engine.begin() as conn:
        conn.execute(text("alter table requests rename to requests_away"))
    writer = RowWriter(engine, batch_size=10, flush_interval_s=0.01)
    writer.start()
    writer.put("requests", row(1))
    deadline = time.monotonic() + 5
    while writer.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.failures >= 1 and writer.written == 0
    with engine.begin() as conn:
        conn.execute(text("alter table requests_away rename to requests"))
    writer.close()
    assert writer.written == 1, "a failed batch is kept and written once the database is back"


def test_keys_hashed_and_revocable(db_url: str) -> None:
    engine = make_engine(db_url)
    store = KeyStore(engine)
    secret, created = store.create("ci", team="search", models=["a"])
    with engine.connect() as conn:
        stored = conn.execute(text("select * from api_keys")).mappings().one()
    assert secret not in str(dict(stored)), "the clear key is never stored"
    other = KeyStore(engine)  # another process's view
    import asyncio

    info = asyncio.run(other.lookup(secret))
    assert info is not None and info.team == "search" and info.models == ("a",)
    store.revoke(created.id)
    other.refresh()
    assert asyncio.run(other.lookup(secret)) is None
    engine.dispose()


def test_gateway_on_postgres(make_gateway, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(db_url=pg_url)
    key = gw.create_key(team="blue")
    gw.client(key["key"]).chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
    rows = gw.rows()
    assert len(rows) == 1 and rows[0]["team"] == "blue" and rows[0]["key_id"] == key["id"]
    with gw.admin() as admin:
        usage = admin.get("/admin/usage").json()["data"]
    assert usage[0]["team"] == "blue" and usage[0]["requests"] == 1


def _serve(config_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "llmgw", "serve", "--config", str(config_path), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # a bound: importing torch and friends in a new process on a busy machine
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "gateway did not start")


def test_restart_and_sigterm_keep_every_row(upstream: FakeUpstream, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/gw.db"
    config = base_config(upstream.base_url, db, storage={"url": db, "flush_interval_s": 5.0})
    config_path = tmp_path / "gw.yaml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = _serve(config_path, port)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=ADMIN_KEY, max_retries=0)
    with httpx.Client() as admin:
        created = admin.post(
            f"http://127.0.0.1:{port}/admin/keys",
            json={"name": "survivor"},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ).json()
    for i in range(25):
        client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": f"q{i}"}])
    # flush_interval is 5 s: the rows are still queued when SIGTERM arrives
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    engine = make_engine(db)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from requests")).scalar() == 25
    engine.dispose()

    proc = _serve(config_path, port)
    try:
        survivor = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=created["key"], max_retries=0)
        assert survivor.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "again"}])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    engine = make_engine(db)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from requests")).scalar() == 26
        assert conn.execute(text("select requests from usage where key_id = ''")).scalar() is None
    engine.dispose()


def test_cli_keys_and_revocation_reach_the_running_gateway(make_gateway, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]

    gw = make_gateway(auth={"admin_key": ADMIN_KEY, "key_refresh_s": 0.1})
    config_path = tmp_path / "cli.yaml"
    config_path.write_text(yaml.safe_dump({**base_config("http://x/v1", gw.config.storage.url)}))
    assert main(["keys", "--config", str(config_path), "create", "from-cli", "--team", "ops"]) == 0
    import json

    created = json.loads(capsys.readouterr().out)
    client = gw.client(created["key"])
    assert client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
    assert main(["keys", "--config", str(config_path), "list"]) == 0
    assert created["id"] in capsys.readouterr().out
    assert main(["keys", "--config", str(config_path), "revoke", created["id"]]) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
        except openai.AuthenticationError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a key revoked by the CLI still works after 5 s")


def test_two_gateways_creating_the_same_tables_at_once(tmp_path: Path) -> None:
    """Replicas starting together on one database: "table already exists" is not a start-up failure."""
    import threading

    from llmgw.storage.db import make_engine

    url = f"sqlite:///{tmp_path}/shared.db"
    errors: list[BaseException] = []

    def start() -> None:
        try:
            make_engine(url).dispose()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- losses: refused rows, outages, shutdown, replay (issue 15) --------------------------------


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"select count(*) from {table}")).scalar() or 0)


def event(i: int) -> dict[str, object]:
    return guard_event(request_id=f"req{i:06d}", stage="input", guard="pii", verdict="allow", policy="default@1")


def wait_for(check: Callable[[], bool], bound_s: float) -> bool:
    """Poll ``check`` until it holds or ``bound_s`` has passed (a bound, not a timing assertion)."""
    deadline = time.monotonic() + bound_s
    while not check():
        if time.monotonic() > deadline:
            return check()
        time.sleep(0.02)
    return True


def test_a_refused_row_never_holds_up_its_batch(db_url: str, tmp_path: Path) -> None:
    """Before: one NUL or over-long value failed the whole batch for ~35 s, then dead-lettered all of it."""
    engine = make_engine(db_url)
    letters = DeadLetters(tmp_path / "dl")
    writer = RowWriter(engine, flush_interval_s=0.2, dead_letter_dir=letters.dir)
    writer.start()
    rows = [row(i) for i in range(100)]
    rows[10]["user"] = "eve\x00@example.com"  # PostgreSQL refuses NUL in text
    rows[20]["model_requested"] = "m" * 250  # over varchar(200), as a 404 for an absurd model name records
    rows[30]["created_at"] = "not a time"  # cannot be repaired: isolated, kept aside
    writer.put("feedback", {"id": "fb_1", "request_id": "req000001", "created_at": datetime.now(UTC),
                            "label": "good\x00", "score": 1.0})  # fmt: skip
    for r in rows:
        writer.put("requests", r)
    stored = wait_for(lambda: count(engine, "requests") == 99 and count(engine, "feedback") == 1,
                      writer.flush_interval_s + 1.0)  # fmt: skip
    assert stored, f"{count(engine, 'requests')} of 99 request rows stored in time"
    writer.close()
    with engine.connect() as conn:
        user, note = conn.execute(text("select \"user\", sanitised from requests where id = 'req000010'")).one()
        model, model_note = conn.execute(
            text("select model_requested, sanitised from requests where id = 'req000020'")
        ).one()
        label, label_note = conn.execute(text("select label, sanitised from feedback")).one()
        usage = conn.execute(text("select sum(requests) from usage")).scalar()
        clean = conn.execute(text("select count(*) from requests where sanitised is null")).scalar()
    assert user == "eve\ufffd@example.com" and "user: NUL" in note
    assert model == "m" * 200 and "model_requested: cut from 250 to 200 characters" in model_note
    assert label == "good\ufffd" and "label: NUL" in label_note
    assert usage == 99 and clean == 97
    kept = DeadLetters.read(letters.path("requests"))[0]
    assert [k.row["id"] for k in kept] == ["req000030"] and kept[0].error
    assert writer.refused == 1 and writer.dead_lettered == 1
    engine.dispose()


def test_one_table_never_waits_for_another(tmp_path: Path) -> None:
    """Before: one writer thread retried a failing table's batch for ~35 s while every other table waited."""
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    with engine.begin() as conn:
        conn.execute(text("alter table guard_events rename to guard_events_away"))
    writer = RowWriter(engine, flush_interval_s=0.2, dead_letter_dir=tmp_path / "dl")
    writer.start()
    writer.put("guard_events", event(0))
    assert wait_for(lambda: writer.failures >= 1, 10), "the guard events' table is away: their lane retries"
    for i in range(10):
        writer.put("requests", row(i))
    assert wait_for(lambda: count(engine, "requests") == 10, writer.flush_interval_s + 1.0)
    with engine.begin() as conn:
        conn.execute(text("alter table guard_events_away rename to guard_events"))
    writer.close()
    assert count(engine, "guard_events") == 1 and writer.dead_lettered == 0
    engine.dispose()


def unreachable_engine() -> Engine:
    """A PostgreSQL engine whose server is not there (connections are refused)."""
    return create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing", pool_pre_ping=True)


def test_shutdown_with_the_database_away_keeps_every_row_and_replay_restores_them(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: close(timeout=30) gave up while the writer still retried (~35 s), and the rows were lost."""
    letters = DeadLetters(tmp_path / "dl")
    writer = RowWriter(unreachable_engine(), flush_interval_s=0.05, dead_letter_dir=letters.dir)
    writer.start()
    for i in range(20):
        writer.put("requests", row(i))
        writer.put("guard_events", event(i))
    writer.close()
    assert len(letters.rows("requests")) == 20
    events = letters.rows("guard_events")
    assert sorted(e["seq"] for e in events) == list(range(1, 21)), "each kept event has its place in the chain"

    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": db_url, "dead_letter_dir": str(letters.dir)}}))
    engine = make_engine(db_url)
    assert main(["audit", "--config", str(config), "verify"]) == 1
    err = capsys.readouterr().err
    assert f"20 event(s) (seq 1..20) are not in the database but in the dead-letter file {letters.dir}" in err
    backup = {p.name: p.read_bytes() for p in letters.dir.glob("*.jsonl")}
    assert main(["storage", "--config", str(config), "replay"]) == 0
    out = capsys.readouterr().out
    assert "requests: 20 replayed, 0 already in the database, 0 still failing" in out
    assert "guard_events: 20 replayed" in out
    assert count(engine, "requests") == 20 and letters.tables() == []
    assert main(["audit", "--config", str(config), "verify"]) == 0
    # idempotent by row id: the same rows again (a replay that died half-way) store nothing twice
    for name, data in backup.items():
        (letters.dir / name).write_bytes(data)
    assert main(["storage", "replay", "--config", str(config)]) == 0
    assert "requests: 0 replayed, 20 already in the database" in capsys.readouterr().out
    with engine.connect() as conn:
        assert conn.execute(text("select sum(requests) from usage")).scalar() == 20
    assert count(engine, "guard_events") == 20 and main(["audit", "--config", str(config), "verify"]) == 0
    engine.dispose()


def test_outage_while_running_dead_letters_after_the_retry_budget_then_one_try_per_batch(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path / "dl")
    writer = RowWriter(unreachable_engine(), flush_interval_s=0.05, max_attempts=2, dead_letter_dir=letters.dir)
    writer.start()
    writer.put("requests", row(1))
    assert wait_for(lambda: len(letters.rows("requests")) == 1, 10)
    failures = writer.failures
    writer.put("requests", row(2))
    assert wait_for(lambda: len(letters.rows("requests")) == 2, 10)
    assert writer.failures == failures + 1, "while the database stays away a batch gets one try"
    # the row is in the file a moment before its lane lets go of it (and of its journal line)
    assert wait_for(lambda: writer.pending() == 0, 10) and writer.running
    writer.close()


def test_replay_keeps_what_the_database_still_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    letters = DeadLetters(tmp_path / "dl")
    letters.append("requests", [row(1), row(2, created_at="still not a time")], "earlier outage")
    letters.append_lines("requests", ["{not json\n"])
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": url, "dead_letter_dir": str(letters.dir)}}))
    assert main(["storage", "replay", "--config", str(config)]) == 1
    assert "requests: 1 replayed, 0 already in the database, 2 still failing" in capsys.readouterr().out
    kept, unreadable = DeadLetters.read(letters.path("requests"))
    assert [k.row["id"] for k in kept] == ["req000002"] and unreadable == ["{not json\n"]
    assert main(["storage", "status", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("requests\t2\t")


def test_readyz_and_metrics_show_the_backlog(make_gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/gw.db"
    dl = tmp_path / "dl"
    gw = make_gateway(db_url=url, storage={"url": url, "flush_interval_s": 0.05, "max_pending_rows": 3,
                                           "dead_letter_dir": str(dl)})  # fmt: skip
    DeadLetters(dl).append("feedback", [{"id": "fb_1"}, {"id": "fb_2"}], "earlier outage")
    with httpx.Client(base_url=gw.url) as http:
        assert http.get("/readyz").status_code == 200
        assert 'llmgw_storage_dead_letter_rows{table="feedback"} 2.0' in http.get("/metrics").text
        with gw.gateway.engine.begin() as conn:
            conn.execute(text("alter table requests rename to requests_away"))
        client = gw.client()
        for i in range(5):
            client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": f"q{i}"}])
        assert wait_for(lambda: http.get("/readyz").status_code == 503, 10)
        body = http.get("/readyz").json()
        assert body["checks"]["storage_writer"] is False
        assert "llmgw_storage_pending_rows 5.0" in http.get("/metrics").text
        with gw.gateway.engine.begin() as conn:
            conn.execute(text("alter table requests_away rename to requests"))
        assert wait_for(lambda: http.get("/readyz").status_code == 200, 15)


def test_readyz_not_ready_while_the_limits_redis_is_down(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(limits={"enabled": True, "store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    response = httpx.get(f"{gw.url}/readyz")
    assert response.status_code == 503 and response.json()["checks"]["limits_redis"] is False


def test_a_row_queued_after_shutdown_is_kept(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    letters = DeadLetters(tmp_path / "dl")
    writer = RowWriter(engine, flush_interval_s=0.01, dead_letter_dir=letters.dir)
    writer.start()
    writer.put("requests", row(1))
    writer.close()
    writer.put("requests", row(2))  # e.g. a request that finished while the gateway was stopping
    assert count(engine, "requests") == 1 and [r["id"] for r in letters.rows("requests")] == ["req000002"]
    engine.dispose()
