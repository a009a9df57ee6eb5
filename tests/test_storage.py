"""Storage on real SQLite and PostgreSQL: batched writes, usage totals, keys, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from sqlalchemy import text

from llmgw.keys import KeyStore
from llmgw.storage.db import make_engine
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
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
    from llmgw.cli import main

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
