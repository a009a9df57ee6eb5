"""The guardrail log on real SQLite and PostgreSQL: hash chain, tampering, retention, API, exports."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from llmgw.audit.chain import EVENTS, GENESIS, GuardEventWriter, canonical_json, row_hash, verify, verify_rows
from llmgw.audit.queries import stored_from_view
from llmgw.audit.retention import prune
from llmgw.cli import main
from llmgw.guards.events import guard_event, value_hash
from llmgw.storage.db import make_engine
from llmgw.storage.deadletter import DeadLetters
from llmgw.storage.replay import replay
from llmgw.storage.writer import RowWriter
from tests.conftest import RunningGateway
from tests.faults import guard_events_with_the_second_batch_lost

PG_BASE = os.environ.get("LLMGW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SALT = b"test-salt"
RAW_EMAIL = "alice.secret@example.com"
RAW_PHONE = "+1 415 555 0199"


def pii_event(request_id: str = "req_1", **extra: Any) -> dict[str, Any]:
    """An event the way a PII guard builds one: masked text, offsets, and salted hashes of the values."""
    text_in = f"Mail {RAW_EMAIL} or call {RAW_PHONE}"
    start_e = text_in.index(RAW_EMAIL)
    start_p = text_in.index(RAW_PHONE)
    spec: dict[str, Any] = {
        "request_id": request_id, "stage": "input_guards", "guard": "pii", "verdict": "mask", "policy": "default@1",
        "key_id": "k1", "team": "blue", "user": "u1", "route": "default", "source": "messages[0].content",
        "scores": {"EMAIL_ADDRESS": 1.0, "PHONE_NUMBER": 0.75},
        "entities": [
            {"type": "EMAIL_ADDRESS", "start": start_e, "end": start_e + len(RAW_EMAIL), "score": 1.0,
             "action": "mask", "value_hash": value_hash(SALT, RAW_EMAIL)},
            {"type": "PHONE_NUMBER", "start": start_p, "end": start_p + len(RAW_PHONE), "score": 0.75,
             "action": "mask", "value_hash": value_hash(SALT, RAW_PHONE)},
        ],
        "masked_text": "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>",
    }  # fmt: skip
    spec.update(extra)
    return guard_event(**spec)


def simple_event(i: int, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"request_id": f"req_{i}", "stage": "input_guards", "guard": "injection",
                            "verdict": "allow", "policy": "default@1", "scores": {"injection": i / 10}}  # fmt: skip
    spec.update(extra)
    return guard_event(**spec)


def write(engine: Engine, rows: list[dict[str, Any]], batches: int = 3) -> RowWriter:
    writer = RowWriter(engine, batch_size=100, flush_interval_s=0.01)
    writer.start()
    for i, row in enumerate(rows):
        writer.put("guard_events", row)
        if i % max(1, len(rows) // batches) == 0:
            writer.flush()
    writer.close()
    return writer


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


# --- the chain ------------------------------------------------------------------------------


def test_canonical_encoding_is_documented_form() -> None:
    row = {"id": "ge_1", "chain": "c", "seq": 1, "created_at": datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
           "scores": {"b": 0.1, "a": 1.0}, "masked_text": "é"}  # fmt: skip
    encoded = canonical_json(row).decode()
    assert encoded.startswith('{"chain":"c","created_at":"2025-01-02T03:04:05.000006Z","detail":null,')
    assert '"scores":{"a":1.0,"b":0.1}' in encoded and '"masked_text":"é"' in encoded
    assert row_hash(GENESIS, row) == row_hash("0" * 64, dict(row))


@pytest.mark.parametrize("tamper", ["none", "verdict", "masked_text", "delete", "swap", "delete_first"])
def test_verify_detects_tampering(db_url: str, tamper: str) -> None:
    engine = make_engine(db_url)
    write(engine, [simple_event(i) for i in range(10)])
    result = verify(engine)
    assert result.ok and result.checked == 10 and len(result.heads) == 1, result.problems
    chain = next(iter(result.heads))
    if tamper == "verdict":
        sql(engine, "update guard_events set verdict = 'block' where seq = 3")
    elif tamper == "masked_text":
        sql(engine, "update guard_events set masked_text = 'nothing to see' where seq = 4")
    elif tamper == "delete":
        sql(engine, "delete from guard_events where seq = 5")
    elif tamper == "delete_first":
        sql(engine, "delete from guard_events where seq = 1")
    elif tamper == "swap":  # through a free value: (chain, seq) is unique
        sql(engine, "update guard_events set seq = -1 where seq = 7")
        sql(engine, "update guard_events set seq = 7 where seq = 8")
        sql(engine, "update guard_events set seq = 8 where seq = -1")
    result = verify(engine)
    text_ = "\n".join(result.problems)
    if tamper == "none":
        assert result.ok
    elif tamper in ("verdict", "masked_text"):
        seq = 3 if tamper == "verdict" else 4
        assert result.problems == [
            f"chain {chain} seq {seq} ({_id(engine, seq)}): hash mismatch (row edited or reordered)"
        ]
    elif tamper == "delete":
        assert not result.ok and "seq 5 missing (row deleted)" in text_
    elif tamper == "delete_first":
        assert not result.ok and "seq 1 missing (row deleted)" in text_
    else:
        assert not result.ok and "seq 7" in text_ and "seq 8" in text_ and "hash mismatch" in text_
    engine.dispose()


def _id(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("select id from guard_events where seq = :s"), {"s": seq}).scalar())


def test_retried_batches_keep_the_chain_contiguous(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    writer = RowWriter(engine, batch_size=100, flush_interval_s=0.01, dead_letter_dir=tmp_path / "dl")
    chained = writer.handlers["guard_events"]
    assert isinstance(chained, GuardEventWriter)

    class Flaky:
        """The database goes away once, then a commit succeeds but the client never hears of it."""

        calls = 0
        prepare = staticmethod(chained.prepare)

        def __call__(self, conn: Any, rows: list[dict[str, Any]]) -> int:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise OperationalError("INSERT", {}, Exception("server closed the connection"))
            if Flaky.calls == 2:
                with engine.begin() as other:
                    chained(other, rows)
                raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
            return chained(conn, rows)

    writer.register("guard_events", Flaky())
    writer.start()
    for i in range(5):
        writer.put("guard_events", simple_event(i))
    writer.flush()
    for i in range(5, 8):
        writer.put("guard_events", simple_event(i))
    writer.close()
    assert writer.failures == 2 and writer.dead_lettered == 0
    result = verify(engine)
    assert result.ok and result.checked == 8, result.problems
    # a retry of a batch whose commit did succeed (but was reported as failed) inserts nothing twice
    handler = GuardEventWriter()
    rows = [simple_event(i) for i in range(3)]
    with engine.begin() as conn:
        handler(conn, rows)
    with engine.begin() as conn:
        handler(conn, rows)
    with engine.begin() as conn:
        handler(conn, [simple_event(9)])
    result = verify(engine)
    assert result.ok and result.checked == 12 and result.heads[handler.chain][0] == 4, result.problems


def test_events_kept_in_the_dead_letter_file_stay_in_the_chain_until_replayed(db_url: str, tmp_path: Path) -> None:
    """Before: dead-lettered events had no chain position, later events closed the gap, and verify said ok."""
    engine = make_engine(db_url)
    letters = DeadLetters(tmp_path / "dl")
    batches = [[simple_event(i) for i in batch] for batch in ((0, 1, 2), (3, 4, 5), (6, 7))]
    guard_events_with_the_second_batch_lost(engine, letters, batches)
    held, where = letters.rows("guard_events"), str(letters.path("guard_events"))
    assert sorted(e["seq"] for e in held) == [4, 5, 6]
    assert "seq 4..6 missing (row deleted)" in "".join(verify(engine).problems)
    result = verify(engine, held=held, held_in=where)
    chain = next(iter(result.heads))
    assert result.problems == [
        f"chain {chain}: 3 event(s) (seq 4..6) are not in the database but in the dead-letter file {where}: "
        "run `llmgw storage replay`"
    ]
    edited = [dict(e, detail="nothing happened") if e["seq"] == 5 else e for e in held]
    assert "seq 5 (" in "".join(verify(engine, held=edited, held_in=where).problems)
    replayed = {c.table: c.replayed for c in replay(engine, letters)}
    assert replayed == {"guard_events": 3}
    after = verify(engine, held=letters.rows("guard_events"), held_in=where)
    assert after.ok and after.checked == 8, after.problems
    engine.dispose()


def test_odd_values_never_jam_the_writer(db_url: str) -> None:
    engine = make_engine(db_url)
    odd = simple_event(1, scores={"nan": float("nan"), "inf": float("inf"), "n": 3}, masked_text="a\x00b",
                       entities=["oops", {"type": "X,Y", "start": 0, "end": 1, "text": "raw value"}])  # fmt: skip
    odd["created_at"] = "2025-01-02T03:04:05Z"
    odd["unexpected"] = object()
    writer = write(engine, [odd, simple_event(2, detail="ünïcödé ✓")])
    assert writer.failures == 0
    result = verify(engine)
    assert result.ok and result.checked == 2, result.problems
    with engine.connect() as conn:
        row = conn.execute(select(EVENTS).where(EVENTS.c.request_id == "req_1")).mappings().one()
    assert row["scores"] == {"nan": "nan", "inf": "inf", "n": 3} and row["masked_text"] == "a\ufffdb"
    assert row["entities"] == [{"type": "X,Y", "start": 0, "end": 1}] and row["entity_types"] == ",X_Y,"
    assert "raw value" not in str(dict(row))
    engine.dispose()


def test_two_writers_keep_separate_chains(db_url: str) -> None:
    engine = make_engine(db_url)
    first = RowWriter(engine, flush_interval_s=0.01)
    second = RowWriter(engine, flush_interval_s=0.01)
    first.start()
    second.start()
    for i in range(20):
        (first if i % 2 else second).put("guard_events", simple_event(i))
    first.close()
    second.close()
    result = verify(engine)
    assert result.ok and result.checked == 20 and sorted(seq for seq, _ in result.heads.values()) == [10, 10]
    engine.dispose()


def test_prune_writes_checkpoint_and_verify_resumes(db_url: str) -> None:
    engine = make_engine(db_url)
    old = datetime.now(UTC) - timedelta(days=40)
    rows = [simple_event(i) for i in range(10)]
    for i, row in enumerate(rows):
        if i < 6 or i == 7:  # seq 8 is old but follows a new row: it stays (only a prefix goes)
            row["created_at"] = old + timedelta(seconds=i)
    write(engine, rows)
    archive = io.StringIO()
    result = prune(engine, 30, archive)
    assert result.deleted == 6
    lines = [json.loads(line) for line in archive.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert verify_rows([stored_from_view(line) for line in lines]).ok
    after = verify(engine)
    assert after.ok and after.checked == 4, after.problems
    with engine.connect() as conn:
        checkpoint = conn.execute(text("select seq, hash, deleted from audit_checkpoints")).one()
    assert checkpoint[0] == 6 and checkpoint[1] == lines[-1]["hash"] and checkpoint[2] == 6
    # the next prune removes the rest of the old prefix once the newer row ahead of it is old too
    assert prune(engine, 30).deleted == 0
    assert prune(engine, 0, now=datetime.now(UTC) + timedelta(seconds=1)).deleted == 4
    assert verify(engine).ok
    # a writer whose chain was pruned away resumes from the checkpoint
    chain = next(iter(result.chains))
    handler = GuardEventWriter(chain)
    with engine.begin() as conn:
        handler(conn, [simple_event(11)])
    again = verify(engine)
    assert again.ok and again.heads[chain][0] == 11, again.problems
    with engine.begin() as conn:
        handler(conn, [simple_event(12)])
    sql(engine, "delete from guard_events where seq = 11")  # a row after the checkpoint: caught
    assert "seq 11 missing" in "".join(verify(engine).problems)
    sql(engine, "update guard_events set detail = 'x'")
    assert not verify(engine).ok
    engine.dispose()


# --- the CLI --------------------------------------------------------------------------------


def test_cli_verify_export_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": url}}))
    engine = make_engine(url)
    rows = [simple_event(i, verdict="block" if i % 2 else "allow") for i in range(6)]
    for row in rows[:3]:
        row["created_at"] = datetime.now(UTC) - timedelta(days=10)
    write(engine, rows)
    assert main(["audit", "--config", str(config), "verify", "--heads"]) == 0
    out, err = capsys.readouterr()
    assert "guard_events: ok; 6 event(s) in 1 chain(s)" in err and "\t6\t" in out
    csv_file = tmp_path / "e.csv"
    assert main(["audit", "export", "--config", str(config), "--format", "csv", "--verdict", "block",
                 "-o", str(csv_file)]) == 0  # fmt: skip
    exported = list(csv.DictReader(csv_file.open()))
    assert [r["request_id"] for r in exported] == ["req_1", "req_3", "req_5"]
    capsys.readouterr()
    assert main(["audit", "--config", str(config), "export", "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    archive = tmp_path / "old.jsonl"
    assert main(["audit", "--config", str(config), "prune", "--days", "5", "--export", str(archive)]) == 0
    assert "deleted 3 event(s)" in capsys.readouterr().err
    assert len(archive.read_text().splitlines()) == 3
    assert main(["audit", "--config", str(config), "verify", "--file", str(archive)]) == 0
    assert main(["audit", "--config", str(config), "prune", "--days", "5", "--export", str(archive)]) == 2
    assert main(["audit", "--config", str(config), "verify"]) == 0
    sql(engine, "update guard_events set verdict = 'flag' where seq = 5")
    capsys.readouterr()
    assert main(["audit", "--config", str(config), "verify"]) == 1
    err = capsys.readouterr().err
    assert "seq 5" in err and "hash mismatch" in err and "FAILED: 1 problem(s)" in err
    engine.dispose()


# --- the admin API through a real server ----------------------------------------------------


def queue(gw: RunningGateway, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        gw.gateway.writer.put("guard_events", row)
    gw.flush()
    return rows


def fetch_all(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = admin.get("/admin/guard-events", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        out.extend(body["data"])
        cursor = body["next_cursor"]
        if not cursor:
            return out


def test_admin_api_filters_pages_and_exports(make_gateway: Callable[..., RunningGateway], db_url: str) -> None:
    gw = make_gateway(db_url=db_url)
    base = datetime.now(UTC) - timedelta(hours=1)
    rows = []
    for i in range(12):
        extra: dict[str, Any] = {
            "key_id": f"k{i % 3}",
            "team": "red" if i < 6 else "blue",
            "verdict": ("allow", "block", "mask")[i % 3],
            "guard": ("pii", "injection")[i % 2],
        }
        row = pii_event(f"req_{i}", **extra) if i % 4 == 0 else simple_event(i, **extra)
        row["created_at"] = base + timedelta(minutes=i)
        rows.append(row)
    rows.append(simple_event(99, entities=[{"type": "EMAIL_ADDRESS_HOST", "start": 0, "end": 3}]))
    rows[-1]["created_at"] = base + timedelta(minutes=30)
    queue(gw, rows)
    with httpx.Client(base_url=gw.url) as anon:
        assert anon.get("/admin/guard-events").status_code == 401
        key = gw.create_key()["key"]
        denied = anon.get("/admin/guard-events", headers={"authorization": f"Bearer {key}"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_required"
    with gw.admin() as admin:
        everything = fetch_all(admin, limit=5)
        assert len(everything) == 13 and len({e["id"] for e in everything}) == 13
        times = [e["created_at"] for e in everything]
        assert times == sorted(times, reverse=True)

        def ids(**params: Any) -> set[str]:
            return {e["request_id"] for e in fetch_all(admin, **params)}

        assert ids(verdict="block") == {"req_1", "req_4", "req_7", "req_10"}
        assert ids(entity_type="EMAIL_ADDRESS") == {"req_0", "req_4", "req_8"}
        assert ids(entity_type="EMAIL") == set()
        assert ids(entity_type="EMAIL_ADDRESS_HOST") == {"req_99"}
        assert ids(team="red", guard="pii") == {"req_0", "req_2", "req_4"}
        assert ids(key_id="k2", stage="input_guards") == {"req_2", "req_5", "req_8", "req_11"}
        assert ids(request_id="req_3") == {"req_3"}
        since = (base + timedelta(minutes=10)).isoformat()
        until = (base + timedelta(minutes=11, seconds=30)).isoformat()
        assert ids(since=since, until=until) == {"req_10", "req_11"}
        assert ids(value_hash=value_hash(SALT, RAW_PHONE)) == {"req_0", "req_4", "req_8"}
        first = admin.get("/admin/guard-events", params={"limit": 4}).json()
        assert first["has_more"] and [e["request_id"] for e in first["data"]] == ["req_99", "req_11", "req_10", "req_9"]
        queue(gw, [simple_event(100)])  # newer than everything: pages already walked stay stable
        second = admin.get("/admin/guard-events", params={"limit": 4, "cursor": first["next_cursor"]}).json()
        assert [e["request_id"] for e in second["data"]] == ["req_8", "req_7", "req_6", "req_5"]
        pii = next(e for e in everything if e["request_id"] == "req_0")
        assert pii["entity_counts"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
        assert pii["entity_types"] == ["EMAIL_ADDRESS", "PHONE_NUMBER"] and pii["seq"] >= 1
        for params, param in (({"verdict": "maybe"}, "verdict"), ({"since": "yesterday"}, "since"),
                              ({"cursor": "!!"}, "cursor"), ({"limit": "x"}, "limit")):  # fmt: skip
            bad = admin.get("/admin/guard-events", params=params)
            assert bad.status_code == 400 and bad.json()["error"]["param"] == param
        response = admin.get("/admin/guard-events/export", params={"format": "csv", "verdict": "block"})
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        exported = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["request_id"] for r in exported] == ["req_1", "req_4", "req_7", "req_10"]
        assert exported[1]["entity_types"] == "EMAIL_ADDRESS,PHONE_NUMBER"
        assert json.loads(exported[1]["scores"]) == {"EMAIL_ADDRESS": 1.0, "PHONE_NUMBER": 0.75}
        response = admin.get("/admin/guard-events/export", params={"format": "jsonl"})
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert len(lines) == 14 and verify_rows([stored_from_view(line) for line in lines]).ok
        assert admin.get("/admin/guard-events/export", params={"format": "xml"}).status_code == 400


def test_trail_of_a_request(make_gateway: Callable[..., RunningGateway]) -> None:
    gw = make_gateway()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    request_id = raw.headers["x-llmgw-request-id"]
    queue(
        gw, [pii_event(request_id), simple_event(0, request_id=request_id, stage="output_guards", guard="moderation")]
    )
    with gw.admin() as admin:
        body = admin.get(f"/admin/requests/{request_id}/trail").json()
        assert body["request"]["id"] == request_id and body["request"]["status"] == "ok"
        assert [(e["stage"], e["guard"]) for e in body["events"]] == [("input_guards", "pii"),
                                                                     ("output_guards", "moderation")]  # fmt: skip
        missing = admin.get("/admin/requests/req_nope/trail").json()
        assert missing == {"request_id": "req_nope", "request": None, "events": []}


def test_the_log_never_holds_a_raw_value(make_gateway: Callable[..., RunningGateway], tmp_path: Path) -> None:
    gw = make_gateway()
    buggy = pii_event("req_buggy")
    buggy["entities"][0]["text"] = RAW_EMAIL  # a guard that leaked the value into an entity: dropped
    queue(gw, [pii_event("req_pii"), buggy])
    seen: list[str] = []
    with gw.admin() as admin:
        seen.append(admin.get("/admin/guard-events").text)
        seen.append(admin.get("/admin/requests/req_buggy/trail").text)
        for fmt in ("csv", "jsonl"):
            seen.append(admin.get("/admin/guard-events/export", params={"format": fmt}).text)
        seen.append(admin.get("/admin/review").text)
        seen.append(admin.get("/admin/review/requests/req_buggy").text)
        matched = admin.get("/admin/guard-events", params={"value_hash": value_hash(SALT, RAW_EMAIL)}).json()
    assert {e["request_id"] for e in matched["data"]} == {"req_pii", "req_buggy"}, "a reviewer can match a value"
    assert "<EMAIL_ADDRESS>" in seen[0]
    gw.stop()
    files = b"".join(p.read_bytes() for p in tmp_path.glob("gw-0.db*"))
    with make_engine(gw.config.storage.url).connect() as conn:
        rows = [str(dict(r)) for r in conn.execute(text("select * from guard_events")).mappings()]
    assert len(rows) == 2 and files
    for raw in (RAW_EMAIL, RAW_PHONE):
        assert raw.encode() not in files
        assert all(raw not in blob for blob in [*seen, *rows])


def test_writes_survive_shutdown(make_gateway: Callable[..., RunningGateway]) -> None:
    gw = make_gateway()
    for i in range(300):
        gw.gateway.writer.put("guard_events", simple_event(i))
    gw.stop()  # no flush: the writer drains on shutdown
    engine = make_engine(gw.config.storage.url)
    result = verify(engine)
    assert result.ok and result.checked == 300
    engine.dispose()
