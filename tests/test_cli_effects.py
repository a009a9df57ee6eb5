"""The CLI's documented effects that no other test exercised (README.md, docs/api.md, docs/audit.md,
docs/config.md, docs/deploy.md, docs/evals.md): each test runs ``llmgw.cli.main`` on a real
database (SQLite and PostgreSQL) and checks what an operator relies on, not only the exit status."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from llmgw.cli import main
from llmgw.guards.events import value_hash
from llmgw.keys import KeyStore
from llmgw.storage.db import make_engine
from llmgw.storage.deadletter import DeadLetters
from tests.conftest import ADMIN_KEY, RunningGateway, free_port
from tests.test_audit import RAW_EMAIL, pii_event, simple_event, sql, write
from tests.test_evals import write_suite
from tests.test_storage import count, event, row


def run(*argv: str) -> int:
    """``main(argv)``; a config that does not load exits through SystemExit(2): that status too."""
    try:
        return main(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)


def gw_config(tmp_path: Path, url: str, name: str = "gw.yaml", **extra: Any) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"storage": {"url": url, "dead_letter_dir": str(tmp_path / "dl")}, **extra}))
    return str(path)


def at(event: dict[str, Any], when: datetime | None) -> dict[str, Any]:
    """``event`` with its created_at set to ``when`` (None: as made)."""
    return {**event, "created_at": when} if when is not None else event


def db_rows(url: str, query: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)).all())
    finally:
        engine.dispose()


# --- llmgw keys (docs/api.md, "The llmgw keys command") ------------------------------------------


def test_keys_list_hides_revoked_keys_all_shows_them_and_an_unknown_id_exits_1(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = gw_config(tmp_path, db_url)
    assert run("keys", "--config", config, "create", "keep", "--team", "a") == 0
    kept = json.loads(capsys.readouterr().out)
    assert run("keys", "--config", config, "create", "drop", "--models", "*") == 0
    dropped = json.loads(capsys.readouterr().out)
    assert run("keys", "--config", config, "revoke", dropped["id"]) == 0
    assert capsys.readouterr().out.strip() == f"revoked {dropped['id']}"
    # the revocation is in the database: a fresh key store (another replica) refuses the secret
    engine = make_engine(db_url)
    store = KeyStore(engine)
    assert asyncio.run(store.load(dropped["key"])) is None
    assert asyncio.run(store.load(kept["key"])) is not None
    engine.dispose()
    # `list`: active keys only, tab-separated id, prefix, state, name, team, ...
    assert run("keys", "--config", config, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:5] for line in lines] == [[kept["id"], kept["prefix"] + "…", "active", "keep", "team=a"]]
    # `list --all` includes the revoked one, marked so
    assert run("keys", "--config", config, "list", "--all") == 0
    states = {line.split("\t")[0]: line.split("\t")[2] for line in capsys.readouterr().out.splitlines()}
    assert states == {kept["id"]: "active", dropped["id"]: "revoked"}
    # revoking an id that does not exist: exit 1 and the message the docs give
    assert run("keys", "--config", config, "revoke", "key_0000000000000000") == 1
    assert "llmgw: no key key_0000000000000000" in capsys.readouterr().err
    # no --config: $LLMGW_CONFIG (docs/config.md, "Which file is used"), the same database
    monkeypatch.setenv("LLMGW_CONFIG", config)
    assert run("keys", "list") == 0
    assert kept["id"] in capsys.readouterr().out


def test_an_empty_list_option_never_grants_everything(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script passing an unset variable (``--models "$MODELS"``) must not get an unrestricted key:
    an empty ``--models`` or ``--routes`` is refused; an empty ``--tools`` means no tool, as ``tools: []``
    does in the admin API."""
    config = gw_config(tmp_path, db_url, models={"m": {"provider": "p", "upstream_id": "u"}},
                       providers={"p": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}})  # fmt: skip
    for option in ("--models", "--routes"):
        assert run("keys", "--config", config, "create", "scripted", option, "") == 2
        assert "invalid key" in capsys.readouterr().err
    assert run("keys", "--config", config, "list", "--all") == 0
    assert capsys.readouterr().out == ""  # nothing was created
    assert run("keys", "--config", config, "create", "no-tools", "--tools", "") == 0
    assert json.loads(capsys.readouterr().out)["tools"] == []
    assert run("keys", "--config", config, "create", "any-tool") == 0
    assert json.loads(capsys.readouterr().out)["tools"] == ["*"]


# --- llmgw audit (docs/audit.md, docs/deploy.md) --------------------------------------------------


def test_export_pages_past_its_batches_without_losing_or_repeating_a_row(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export` reads in batches of 500 (keyset pages on created_at, id): 1203 events, most with the same
    created_at (ties at the page boundaries), in two chains, all come out once, oldest first."""
    config = gw_config(tmp_path, db_url)
    engine = make_engine(db_url)
    same = datetime.now(UTC) - timedelta(hours=1)
    rows = [at(simple_event(i), same if i % 10 else same + timedelta(seconds=i)) for i in range(1203)]
    write(engine, rows[:700])
    write(engine, rows[700:])  # a second writer: a second chain
    engine.dispose()
    stored = {r[0] for r in db_rows(db_url, "select id from guard_events")}
    assert len(stored) == 1203
    assert run("audit", "--config", config, "export") == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    ids = [line["id"] for line in lines]
    assert len(ids) == 1203 and set(ids) == stored, "every event exactly once"
    keys = [(line["created_at"], line["id"]) for line in lines]
    assert keys == sorted(keys), "oldest first"
    assert "exported 1203 event(s)" in err
    csv_file = tmp_path / "all.csv"
    assert run("audit", "export", "--config", config, "--format", "csv", "-o", str(csv_file)) == 0
    assert len(csv_file.read_text().splitlines()) == 1 + 1203  # the header, then one line per event


def test_nightly_export_of_a_window_verifies_and_a_tampered_export_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/deploy.md's nightly job: export --since/--until -o FILE, then verify --file FILE (exit 1: alert)."""
    url = f"sqlite:///{tmp_path}/gw.db"
    config = gw_config(tmp_path, url)
    engine = make_engine(url)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    rows = [at(simple_event(i), day + timedelta(hours=8 * i)) for i in range(12)]  # 4 days, 3 a day
    write(engine, rows)
    engine.dispose()
    since, until = (day + timedelta(days=1)).date().isoformat(), (day + timedelta(days=3)).date().isoformat()
    export = tmp_path / "window.jsonl"
    assert run("audit", "--config", config, "export", "--since", since, "--until", until, "-o", str(export)) == 0
    lines = export.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [4, 5, 6, 7, 8, 9], "until is exclusive"
    assert "exported 6 event(s)" in capsys.readouterr().err
    assert run("audit", "verify", "--config", config, "--file", str(export)) == 0
    assert f"{export}: ok; 6 event(s) in 1 chain(s)" in capsys.readouterr().err
    # an edited line: exit 1, naming the row
    edited = json.loads(lines[2])
    edited["verdict"] = "block"
    tampered = tmp_path / "edited.jsonl"
    tampered.write_text("\n".join([*lines[:2], json.dumps(edited), *lines[3:]]) + "\n")
    assert run("audit", "verify", "--config", config, "--file", str(tampered)) == 1
    err = capsys.readouterr().err
    assert f"seq 6 ({edited['id']}): hash mismatch" in err and "FAILED: 1 problem(s)" in err
    # a line removed from the middle: exit 1
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([*lines[:3], *lines[4:]]) + "\n")
    assert run("audit", "verify", "--config", config, "--file", str(cut)) == 1
    assert "seq 7 missing (row deleted)" in capsys.readouterr().err


def test_verify_heads_names_each_chains_last_row_and_a_deleted_row_fails(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = gw_config(tmp_path, db_url)
    engine = make_engine(db_url)
    write(engine, [simple_event(i) for i in range(5)])
    write(engine, [simple_event(i) for i in range(5, 12)])
    assert run("audit", "--config", config, "verify", "--heads") == 0
    out, err = capsys.readouterr()
    heads = sorted(tuple(line.split("\t")) for line in out.splitlines())
    last = (
        "select chain, seq, hash from guard_events g"
        " where seq = (select max(seq) from guard_events where chain = g.chain)"
    )
    expected = sorted((chain, str(seq), hash_) for chain, seq, hash_ in db_rows(db_url, last))
    assert heads == expected and sorted(h[1] for h in heads) == ["5", "7"]
    assert "guard_events: ok; 12 event(s) in 2 chain(s)" in err
    sql(engine, "delete from guard_events where seq = 3 and chain = :chain", chain=heads[0][0])
    engine.dispose()
    assert run("audit", "--config", config, "verify") == 1
    err = capsys.readouterr().err
    assert f"chain {heads[0][0]} seq 4" in err and "seq 3 missing (row deleted)" in err


def test_prune_without_export_keeps_every_chain_verifiable_and_negative_days_delete_nothing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = gw_config(tmp_path, db_url)
    engine = make_engine(db_url)
    old = datetime.now(UTC) - timedelta(days=10)
    for first in (0, 10):  # two chains, each 4 old events then 3 new ones
        write(engine, [at(simple_event(first + i), old if i < 4 else None) for i in range(7)])
    assert run("audit", "--config", config, "prune", "--days", "-1") == 2
    assert "--days must be 0 or more" in capsys.readouterr().err
    assert count(engine, "guard_events") == 14
    assert run("audit", "--config", config, "prune", "--days", "5") == 0
    err = capsys.readouterr().err
    assert err.startswith("deleted 8 event(s) older than") and err.rstrip().endswith(" from 2 chain(s)")
    assert count(engine, "guard_events") == 6
    assert sorted(r[0] for r in db_rows(db_url, "select seq from audit_checkpoints")) == [4, 4]
    engine.dispose()
    assert run("audit", "--config", config, "verify") == 0
    assert "ok; 6 event(s) in 2 chain(s)" in capsys.readouterr().err


def test_audit_hash_from_stdin_finds_the_events_and_no_salt_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    salted = gw_config(tmp_path, url, guards={"hash_salt": "test-salt"})
    engine = make_engine(url)
    write(engine, [pii_event("req_a"), simple_event(1), pii_event("req_b")])
    engine.dispose()
    monkeypatch.setattr("sys.stdin", io.StringIO(RAW_EMAIL + "\n"))
    assert run("audit", "--config", salted, "hash") == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed == value_hash(b"test-salt", RAW_EMAIL)
    assert run("audit", "--config", salted, "export", "--value-hash", hashed) == 0
    assert [json.loads(line)["request_id"] for line in capsys.readouterr().out.splitlines()] == ["req_a", "req_b"]
    unsalted = gw_config(tmp_path, url, name="nosalt.yaml")
    assert run("audit", "--config", unsalted, "hash", RAW_EMAIL) == 2
    out, err = capsys.readouterr()
    assert out == "" and "guards.hash_salt is not set" in err


# --- llmgw storage (docs/config.md, "When rows cannot be written") --------------------------------


def test_replay_with_the_database_away_exits_1_and_keeps_every_row_then_replays_them_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    letters = DeadLetters(tmp_path / "dl")
    letters.append("requests", [row(i) for i in range(7)], "outage")
    away = gw_config(tmp_path, f"postgresql://llmgw@127.0.0.1:{free_port()}/gone", name="away.yaml")
    assert run("storage", "--config", away, "replay") == 1
    assert "llmgw: the database is not reachable (OperationalError); nothing replayed" in capsys.readouterr().err
    assert sorted(r["id"] for r in letters.rows("requests")) == [f"req{i:06d}" for i in range(7)]
    assert run("storage", "--config", away, "status") == 0
    assert capsys.readouterr().out.startswith("requests\t7\t")
    url = f"sqlite:///{tmp_path}/gw.db"
    here = gw_config(tmp_path, url)
    assert run("storage", "replay", "--config", here) == 0
    assert "requests: 7 replayed, 0 already in the database, 0 still failing" in capsys.readouterr().out
    assert sorted(r[0] for r in db_rows(url, "select id from requests")) == [f"req{i:06d}" for i in range(7)]
    assert run("storage", "replay", "--config", here) == 0
    assert capsys.readouterr().out.startswith("nothing to replay in ")
    assert run("storage", "status", "--config", here) == 0
    assert capsys.readouterr().out.startswith("no dead-lettered rows in ")
    assert len(db_rows(url, "select id from requests")) == 7


def test_replay_with_the_database_going_away_midway_keeps_the_unwritten_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that answers the engine's start-up but fails the writes: exit 1, nothing lost."""
    from llmgw.storage import replay as replay_module

    url = f"sqlite:///{tmp_path}/gw.db"
    config = gw_config(tmp_path, url)
    letters = DeadLetters(tmp_path / "dl")
    letters.append("requests", [row(i) for i in range(5)], "outage")
    letters.append("guard_events", [event(i) for i in range(3)], "outage")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("server closed the connection")

    monkeypatch.setattr(replay_module, "write_isolating", refuse)
    assert run("storage", "replay", "--config", config) == 1
    assert "llmgw: replay stopped" in capsys.readouterr().err
    kept = letters.rows("requests") + letters.rows("guard_events")
    assert len(kept) == 8 and not list(letters.dir.glob("*.replaying-*"))
    monkeypatch.undo()
    assert run("storage", "replay", "--config", config) == 0
    assert count_rows(url) == (5, 3) and letters.tables() == []
    assert run("audit", "--config", config, "verify") == 0


def count_rows(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        return count(engine, "requests"), count(engine, "guard_events")
    finally:
        engine.dispose()


def test_migrate_creates_the_tables_and_gives_up_after_wait(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    assert run("storage", "migrate", "--config", gw_config(tmp_path, url)) == 0
    assert capsys.readouterr().out.strip() == "storage: tables up to date"
    names = {r[0] for r in db_rows(url, "select name from sqlite_master where type = 'table'")}
    assert {"api_keys", "requests", "usage", "guard_events", "audit_checkpoints"} <= names
    away = gw_config(tmp_path, f"postgresql://llmgw@127.0.0.1:{free_port()}/gone", name="away.yaml")
    assert run("storage", "migrate", "--config", away, "--wait", "0.5") == 1
    assert "the database is not reachable" in capsys.readouterr().err


# --- every command: the config it reads -----------------------------------------------------------

COMMANDS = [
    ["keys", "list"],
    ["audit", "verify"],
    ["audit", "export"],
    ["audit", "prune", "--days", "1"],
    ["storage", "replay"],
    ["storage", "status"],
    ["storage", "migrate"],
    ["experiments", "report", "x"],
    ["retrieval", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_config_that_does_not_load_exits_2_whichever_command(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/api.md: "A bad config makes any of them exit 2" (a CI step must not read it as 0 or 1)."""
    monkeypatch.delenv("CLI_EFFECTS_UNSET", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage:\n  url: ${CLI_EFFECTS_UNSET}\n")
    assert run(command[0], "--config", str(bad), *command[1:]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "CLI_EFFECTS_UNSET is not set" in err
    # and from the environment, as in the container (docs/deploy.md): the same refusal
    monkeypatch.setenv("LLMGW_CONFIG", str(bad))
    assert run(*command) == 2


def test_audit_and_storage_follow_LLMGW_CONFIG_without_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`podman run IMAGE llmgw audit verify` (docs/deploy.md) names no --config: $LLMGW_CONFIG's database is
    checked, not the embedded defaults' (an empty database there would pass)."""
    url = f"sqlite:///{tmp_path}/gw.db"
    monkeypatch.setenv("LLMGW_CONFIG", gw_config(tmp_path, url))
    monkeypatch.chdir(tmp_path)
    engine = make_engine(url)
    write(engine, [simple_event(i) for i in range(4)])
    sql(engine, "update guard_events set verdict = 'block' where seq = 2")
    engine.dispose()
    assert run("audit", "verify") == 1
    assert "seq 2" in capsys.readouterr().err
    DeadLetters(tmp_path / "dl").append("requests", [row(1)], "outage")
    assert run("storage", "status") == 0
    assert capsys.readouterr().out.startswith("requests\t1\t")


# --- llmgw eval gate (docs/evals.md) -----------------------------------------------------------------


def test_gate_fails_a_real_quality_regression_that_has_no_errors(
    make_gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other gate tests fail a candidate through its errors ("not comparable"); here every call is
    answered, but the candidate's answers are cut short (stop) and fail the check: exit 1 on either metric."""
    gw: RunningGateway = make_gateway()
    suite = write_suite(
        tmp_path,
        [
            {"name": "base", "model": "test-model"},
            {"name": "same", "model": "test-model", "params": {"temperature": 0}},
            {"name": "cut", "model": "test-model", "params": {"stop": ["answer"]}},
        ],
    )
    report = tmp_path / "report.json"
    args = ["eval", "run", str(suite), "--url", gw.url, "--key", ADMIN_KEY, "--out", str(tmp_path / "o")]
    assert run(*args, "-o", str(report), "--quiet") == 0, capsys.readouterr().err
    summary = json.loads(report.read_text())
    assert summary["errors"] == 0 and summary["variants"]["cut"]["pass_rate"] == 0.0
    assert summary["variants"]["base"]["pass_rate"] == 1.0
    capsys.readouterr()
    assert run("eval", "gate", str(report), "--candidate", "cut") == 1
    assert capsys.readouterr().out.startswith("FAIL cut vs base: pass_rate difference -1.000")
    assert run("eval", "gate", str(report), "--candidate", "cut", "--metric", "score") == 1
    assert capsys.readouterr().out.startswith("FAIL cut vs base: score difference -1.000")
    assert run("eval", "gate", str(report), "--candidate", "same", "--metric", "score") == 0
    # --alpha is the bar: p (Holm) = 2 × 2·0.5^24 ≈ 2.4e-7 is not below 1e-9
    assert run("eval", "gate", str(report), "--candidate", "cut", "--alpha", "1e-9") == 0
    assert capsys.readouterr().out.count("ok   ") == 2


# --- found by these tests: real bugs, fixed since ---------------------------------------------------


def orphaned_journal(directory: Path, rows: list[dict[str, Any]]) -> Path:
    """The journal a SIGKILLed gateway leaves: no process holds its flock any more."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "journal-999999-deadbeef-1.rows"
    path.write_text("".join(json.dumps({"table": "requests", "row": r}, default=str) + "\n" for r in rows))
    return path


def test_replay_writes_the_rows_of_a_killed_gateways_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    config = gw_config(tmp_path, url)
    journal = orphaned_journal(tmp_path / "dl", [row(i) for i in range(4)])
    assert run("storage", "replay", "--config", config) == 0
    assert "requests: 4 replayed, 0 already in the database, 0 still failing" in capsys.readouterr().out
    assert count_rows(url) == (4, 0) and not journal.exists()


def test_status_counts_the_rows_waiting_in_a_killed_gateways_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = gw_config(tmp_path, f"sqlite:///{tmp_path}/gw.db")
    orphaned_journal(tmp_path / "dl", [row(i) for i in range(4)])
    assert run("storage", "status", "--config", config) == 0
    out = capsys.readouterr().out
    assert "no dead-lettered rows" not in out, "4 rows are waiting for `storage replay`"
    assert "requests\t4\tjournal of a process that died" in out
    assert run("storage", "replay", "--config", config) == 0  # status read the journal and left it there
    assert "requests: 4 replayed" in capsys.readouterr().out


def test_prune_reports_its_cutoff_as_an_iso_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gw_config(tmp_path, f"sqlite:///{tmp_path}/gw.db")
    assert run("audit", "--config", config, "prune", "--days", "1") == 0
    cutoff = capsys.readouterr().err.split(" older than ")[1].split(" from ")[0]
    assert abs(datetime.fromisoformat(cutoff) - (datetime.now(UTC) - timedelta(days=1))) < timedelta(minutes=1)
