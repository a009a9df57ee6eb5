"""The guardrail log as a compliance reviewer and an attacker meet it: every kind of tampering named
by its row on SQLite and PostgreSQL, the `llmgw audit` commands failing with a reason (never a
traceback), filters out of range answered 400, and a decision for every API and mode."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from llmgw.audit.chain import EVENTS, GuardEventWriter, verify
from llmgw.storage.db import make_engine
from tests.conftest import RunningGateway
from tests.faults import guard_events_with_the_second_batch_lost
from tests.test_audit import simple_event, sql, write

ROOT = Path(__file__).resolve().parents[1]


def rows_of(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = "select id, chain, seq, hash from guard_events order by chain, seq"
        return [dict(r) for r in conn.execute(text(query)).mappings()]


# --- tampering the existing tests do not cover --------------------------------------------------


@pytest.mark.parametrize("tamper", ["inserted_forged", "inserted_shifted", "moved_between_chains"])
def test_verify_names_inserted_and_moved_rows(db_url: str, tamper: str) -> None:
    engine = make_engine(db_url)
    first, second = GuardEventWriter(), GuardEventWriter()
    with engine.begin() as conn:
        first(conn, [simple_event(i) for i in range(6)])
        second(conn, [simple_event(10 + i) for i in range(3)])
    assert verify(engine).ok
    a, b = first.chain, second.chain
    before = {(r["chain"], r["seq"]): r for r in rows_of(engine)}
    if tamper == "inserted_forged":  # a made-up decision appended after the head, prev_hash right, hash guessed
        sql(engine, "insert into guard_events (id, chain, seq, request_id, created_at, stage, guard, policy, "
                    "verdict, scores, entities, prev_hash, hash) values ('ge_forged', :c, 7, 'req_x', "
                    "'2025-01-01 00:00:00.000000', 'input', 'pii', 'p', 'allow', '{}', '[]', :prev, :h)",
            c=a, prev=before[(a, 6)]["hash"], h="f" * 64)  # fmt: skip
        expected = [f"chain {a} seq 7 (ge_forged): hash mismatch (row edited or reordered)"]
    elif tamper == "inserted_shifted":  # room made at seq 3 for a row that was never decided
        for seq in range(6, 2, -1):
            sql(engine, "update guard_events set seq = :n where chain = :c and seq = :s", n=seq + 1, c=a, s=seq)
        sql(engine, "insert into guard_events (id, chain, seq, request_id, created_at, stage, guard, policy, "
                    "verdict, scores, entities, prev_hash, hash) values ('ge_forged', :c, 3, 'req_x', "
                    "'2025-01-01 00:00:00.000000', 'input', 'pii', 'p', 'allow', '{}', '[]', :prev, :h)",
            c=a, prev=before[(a, 2)]["hash"], h="f" * 64)  # fmt: skip
        problems = verify(engine).problems
        assert problems[0] == f"chain {a} seq 3 (ge_forged): hash mismatch (row edited or reordered)", problems
        # every shifted row's seq is hashed: each is named, none passes
        for seq in range(3, 7):
            assert any(f"({before[(a, seq)]['id']}): hash mismatch" in p for p in problems), problems
        return
    else:  # a decision moved into the other writer's chain, at a seq that chain has free
        moved = before[(a, 4)]["id"]
        sql(engine, "update guard_events set chain = :b, seq = 4 where id = :i", b=b, i=moved)
        expected = [
            f"chain {a} seq 5 ({before[(a, 5)]['id']}): seq 4 missing (row deleted)",
            f"chain {b} seq 4 ({moved}): prev_hash does not match the previous row (row deleted or reordered)",
            f"chain {b} seq 4 ({moved}): hash mismatch (row edited or reordered)",
        ]
    result = verify(engine)
    assert sorted(result.problems) == sorted(expected), result.problems
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("update guard_events set scores = 'not json' where seq = 3", "scores is not JSON"),
        ("update guard_events set entities = '[{' where seq = 3", "entities is not JSON"),
        ("update guard_events set created_at = 'yesterday' where seq = 3", "created_at is not a time"),
        ("update guard_events set seq = 'three' where seq = 3", "seq is not an integer"),
    ],
)
def test_verify_reports_an_unreadable_row_and_walks_on(tmp_path: Path, statement: str, why: str) -> None:
    """SQLite stores any text in a JSON or time column: before, one such row ended `verify` with a
    traceback and a reviewer learnt nothing about the rest of the table."""
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    write(engine, [simple_event(i) for i in range(6)])
    rows = rows_of(engine)
    sql(engine, "update guard_events set detail = 'edited' where seq = 5")  # a second edit, after it
    sql(engine, statement)
    result = verify(engine)
    chain, edited = rows[0]["chain"], rows[2]["id"]
    assert not result.ok and result.checked == 6, result.problems
    assert any(p.startswith(f"chain {chain} seq ") and f"({edited}): unreadable row, {why}" in p
               for p in result.problems), result.problems  # fmt: skip
    assert f"chain {chain} seq 5 ({rows[4]['id']}): hash mismatch (row edited or reordered)" in result.problems
    engine.dispose()


# --- the CLI: a reason and an exit code, never a traceback ---------------------------------------


def audit(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmgw", "audit", "--config", str(config), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip


@pytest.fixture()
def cli_db(tmp_path: Path) -> tuple[Path, Engine]:
    url = f"sqlite:///{tmp_path}/cli.db"
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": url, "dead_letter_dir": str(tmp_path / "dl")}}))
    engine = make_engine(url)
    write(engine, [simple_event(i) for i in range(4)])
    return config, engine


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["prune", "--days", "nan"], 2, "--days must be 0 or more, and a number of days up to"),
        (["prune", "--days", "inf"], 2, "--days must be 0 or more, and a number of days up to"),
        (["prune", "--days", "1e12"], 2, "--days must be 0 or more, and a number of days up to"),
        (["export", "--since", "9999-12-31T23:00:00-05:00"], 2, "since: not an ISO 8601 time in range"),
        (["export", "--until", "0001-01-01T00:00:00+05:00"], 2, "until: not an ISO 8601 time in range"),
        (["export", "-o", "/nonexistent-dir/out.jsonl"], 2, "cannot write /nonexistent-dir/out.jsonl"),
        (["prune", "--days", "0", "--export", "/nonexistent-dir/a.jsonl"], 2, "cannot write /nonexistent-dir"),
        (["verify", "--file", "/nonexistent-dir/a.jsonl"], 2, "cannot read /nonexistent-dir/a.jsonl"),
    ],
)
def test_cli_bad_arguments_are_a_reason_not_a_traceback(
    cli_db: tuple[Path, Engine], args: list[str], code: int, message: str
) -> None:
    config, engine = cli_db
    done = audit(config, *args)
    assert done.returncode == code and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert verify(engine).checked == 4, "a refused prune deletes nothing"


def test_cli_database_unreachable_is_a_reason(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": "postgresql://nobody@127.0.0.1:1/none",
                                                  "dead_letter_dir": str(tmp_path / "dl")}}))  # fmt: skip
    for args in (["verify"], ["export"], ["prune", "--days", "1"]):
        done = audit(config, *args)
        assert done.returncode == 1 and "llmgw: the database failed (OperationalError" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_cli_verify_file_names_each_broken_line(cli_db: tuple[Path, Engine], tmp_path: Path) -> None:
    config, _ = cli_db
    export = audit(config, "export")
    assert export.returncode == 0
    lines = export.stdout.splitlines()
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(lines) + "\n")
    assert audit(config, "verify", "--file", str(good)).returncode == 0
    broken = tmp_path / "broken.jsonl"
    missing = {k: v for k, v in json.loads(lines[2]).items() if k != "chain"}
    broken.write_text("\n".join([lines[0], "{not json", "[1, 2]", json.dumps(missing), lines[3]]) + "\n")
    done = audit(config, "verify", "--file", str(broken))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    for number, why in ((2, "Expecting property name"), (3, "not a JSON object"), (4, "missing chain")):
        assert f"{broken} line {number}: not a guard event ({why}" in done.stderr, done.stderr
    assert "seq 2..3 missing (row deleted)" in done.stderr


# --- the admin API: a filter out of range is a 400 -------------------------------------------------


def test_api_times_out_of_range_are_400(make_gateway: Callable[..., RunningGateway]) -> None:
    import base64

    gw = make_gateway()
    far = base64.urlsafe_b64encode(json.dumps(["9999-12-31T23:00:00-05:00", "ge_x"]).encode()).decode()
    with gw.admin() as admin:
        for path in ("/admin/guard-events", "/admin/guard-events/export"):
            for params, param in (({"since": "9999-12-31T23:00:00-05:00"}, "since"),
                                  ({"until": "0001-01-01T00:00:00+05:00"}, "until")):  # fmt: skip
                bad = admin.get(path, params=params)
                assert bad.status_code == 400 and bad.json()["error"]["param"] == param, bad.text
        bad = admin.get("/admin/guard-events", params={"cursor": far.rstrip("=")})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor", bad.text
        page = admin.get("/admin/review", params={"since": "9999-12-31T23:00:00-05:00"})
        assert page.status_code == 400 and "not an ISO 8601 time in range" in page.text


# --- every API and mode leaves the same decisions in the log ---------------------------------------

EMAIL = "carol.private@example.org"


def _ask(gw: RunningGateway, key: str, api: str, stream: bool, prompt: str) -> str:
    """One request through an official SDK; the text the client received (the answer is stopped)."""
    import anthropic
    import openai

    got: list[str] = []
    if api == "chat":
        client = gw.client(api_key=key)
        messages: Any = [{"role": "user", "content": prompt}]
        if not stream:
            done = client.chat.completions.create(model="test-model", messages=messages)
            assert done.choices[0].finish_reason == "content_filter"
            return done.choices[0].message.content or ""
        with pytest.raises(openai.APIError):
            for chunk in client.chat.completions.create(model="test-model", messages=messages, stream=True):
                got.extend(c.delta.content or "" for c in chunk.choices)
        return "".join(got)
    if api == "messages":
        native = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
        messages = [{"role": "user", "content": prompt}]
        if not stream:
            message = native.messages.create(model="test-model", max_tokens=200, messages=messages)
            return "".join(getattr(b, "text", "") for b in message.content)
        with (
            pytest.raises(anthropic.APIError),
            native.messages.stream(model="test-model", max_tokens=200, messages=messages) as events,
        ):
            got.extend(events.text_stream)
        return "".join(got)
    client = gw.client(api_key=key)
    if not stream:
        try:
            return client.responses.create(model="test-model", input=prompt).output_text
        except openai.APIError:
            return ""
    with pytest.raises(openai.APIError):
        for event in client.responses.create(model="test-model", input=prompt, stream=True):
            if event.type == "response.output_text.delta":
                got.append(event.delta)
            if event.type in ("response.failed", "response.incomplete", "error"):
                raise openai.APIError("stopped", None, body=None)  # type: ignore[arg-type]
    return "".join(got)


CALM = "Tomatoes like sun , water in the morning and a little patience every single day ."


def _ask_clean(gw: RunningGateway, key: str, api: str, stream: bool) -> str:
    import anthropic

    prompt = "garden tips #say:calm"
    if api == "chat":
        client = gw.client(api_key=key)
        messages: Any = [{"role": "user", "content": prompt}]
        if not stream:
            return (
                client.chat.completions.create(model="test-model", messages=messages).choices[0].message.content or ""
            )
        chunks = client.chat.completions.create(model="test-model", messages=messages, stream=True)
        return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)
    if api == "messages":
        native = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
        messages = [{"role": "user", "content": prompt}]
        if not stream:
            message = native.messages.create(model="test-model", max_tokens=200, messages=messages)
            return "".join(getattr(b, "text", "") for b in message.content)
        with native.messages.stream(model="test-model", max_tokens=200, messages=messages) as events:
            return "".join(events.text_stream)
    client = gw.client(api_key=key)
    if not stream:
        return client.responses.create(model="test-model", input=prompt).output_text
    return "".join(e.delta for e in client.responses.create(model="test-model", input=prompt, stream=True)
                   if e.type == "response.output_text.delta")  # fmt: skip


def test_every_api_and_mode_logs_input_and_output_decisions(make_gateway: Any, upstream: Any, tmp_path: Path) -> None:
    from tests.test_guards_e2e import POLICY, SECRET, WITH_SECRET

    folder = tmp_path / "guardrails"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY.format(injection="action: block", threshold=0.5))
    gw = make_gateway(guards={"enabled": True, "policy_dir": str(folder), "hash_salt": "salt"})
    upstream.scripts["key"] = WITH_SECRET
    upstream.scripts["calm"] = CALM
    for api in ("chat", "messages", "responses"):
        for stream in (False, True):
            key = gw.create_key()
            sent = _ask(gw, key["key"], api, stream, f"Mail {EMAIL} the deploy story please #say:key")
            assert SECRET not in sent and "sk-" not in sent, (api, stream, sent)
            gw.flush()
            with gw.admin() as admin:
                logged = admin.get("/admin/guard-events", params={"key_id": key["id"], "limit": 100}).json()["data"]
            decided = {(e["stage"], e["guard"], e["verdict"]) for e in logged}
            assert {("input", "pii", "mask"), ("input", "injection", "allow"),
                    ("output", "moderation", "block")} <= decided, (api, stream, decided)  # fmt: skip
            pii = next(e for e in logged if e["guard"] == "pii")
            assert pii["entity_counts"] == {"EMAIL_ADDRESS": 1} and EMAIL not in json.dumps(logged)
            stopped = next(e for e in logged if e["guard"] == "moderation")
            assert stopped["detail"] == "secret" and SECRET not in json.dumps(stopped)
            assert len({e["request_id"] for e in logged}) == 1, "one request, one id in every event"
            assert ("output", "moderation", "allow") not in decided, "a stopped answer did not pass"
            # an answer that passes moderation says so: before, it left no output event at all
            calm = gw.create_key()
            sent = _ask_clean(gw, calm["key"], api, stream)
            assert sent == CALM, (api, stream, sent)
            gw.flush()
            with gw.admin() as admin:
                logged = admin.get("/admin/guard-events", params={"key_id": calm["id"], "limit": 100}).json()["data"]
            final = [e for e in logged if e["stage"] == "output"]
            assert [(e["guard"], e["verdict"]) for e in final] == [("moderation", "allow")], (api, stream, logged)
            assert final[0]["detail"].startswith("answer passed (")
    gw.stop()
    assert verify(make_engine(gw.config.storage.url)).ok


# --- the tail of a chain: caught against recorded heads ---------------------------------------------


def test_verify_against_recorded_heads_catches_a_cut_or_rewritten_tail(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chain alone cannot tell a deleted tail from a chain that ended (docs/audit.md, limits);
    ``verify --against`` checks the heads recorded earlier with ``--heads``: before, a reviewer had
    to compare them by hand and a cut tail passed ``verify``."""
    from datetime import UTC, datetime, timedelta

    from llmgw.audit.chain import row_hash
    from llmgw.cli import main

    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": db_url, "dead_letter_dir": str(tmp_path / "dl")}}))
    engine = make_engine(db_url)
    rows = [simple_event(i) for i in range(8)]
    for row in rows[:3]:
        row["created_at"] = datetime.now(UTC) - timedelta(days=30)
    write(engine, rows)
    assert main(["audit", "--config", str(config), "verify", "--heads"]) == 0
    heads = tmp_path / "heads.tsv"
    heads.write_text(capsys.readouterr().out)
    chain = heads.read_text().split("\t")[0]
    check = ["audit", "--config", str(config), "verify", "--against", str(heads)]
    writer = GuardEventWriter(chain)  # the chain grows after the heads were recorded: still fine
    with engine.begin() as conn:
        writer(conn, [simple_event(20)])
    assert main(["audit", "--config", str(config), "prune", "--days", "10"]) == 0  # and is pruned: fine
    capsys.readouterr()
    assert main(check) == 0, capsys.readouterr().err
    # history rewritten from seq 6 on with fresh, self-consistent hashes: verify alone is fooled
    query = select(EVENTS).where(EVENTS.c.chain == chain, EVENTS.c.seq >= 5).order_by(EVENTS.c.seq)
    with engine.connect() as conn:
        tail = [dict(r) for r in conn.execute(query).mappings()]
    for before, row in itertools.pairwise(tail):
        if row["seq"] >= 6:
            row["detail"] = "nothing happened"
            row["prev_hash"] = before["hash"]
            row["hash"] = row_hash(row["prev_hash"], row)
            sql(engine, "update guard_events set detail = :d, prev_hash = :p, hash = :h where id = :i",
                d=row["detail"], p=row["prev_hash"], h=row["hash"], i=row["id"])  # fmt: skip
    assert verify(engine).ok, "the limit this option exists for"
    assert main(check) == 1
    assert f"chain {chain} seq 8: hash differs from the recorded head (history rewritten)" in capsys.readouterr().err
    # the newest rows cut: verify alone is fooled again
    sql(engine, "delete from guard_events where chain = :c and seq >= 7", c=chain)
    assert verify(engine).ok
    assert main(check) == 1
    err = capsys.readouterr().err
    assert f"chain {chain}: recorded head seq 8 is gone, the chain now ends at seq 6 (rows deleted)" in err, err
    heads.write_text("not a head\n")
    assert main(check) == 2 and "line 1: not a head" in capsys.readouterr().err
    engine.dispose()


def test_a_prune_committing_during_verify_is_no_false_alarm(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """verify reads the checkpoints, then the rows: a prune (another cron job) committing in
    between made the pruned prefix read as `seq 1..4 missing (row deleted)`."""
    from datetime import UTC, datetime, timedelta

    from llmgw.audit import chain as chain_module
    from llmgw.audit.retention import prune

    engine, pruner = make_engine(db_url), make_engine(db_url)
    rows = [simple_event(i) for i in range(8)]
    for row in rows[:4]:
        row["created_at"] = datetime.now(UTC) - timedelta(days=40)
    write(engine, rows)
    pruned: list[int] = []

    class PrunedMeanwhile(chain_module.ChainChecker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not pruned:  # between the checkpoints' query and the rows' query of the first walk
                pruned.append(prune(pruner, 30).deleted)

    monkeypatch.setattr(chain_module, "ChainChecker", PrunedMeanwhile)
    result = verify(engine)
    assert pruned == [4]
    assert result.ok and result.checked == 4, result.problems
    sql(engine, "delete from guard_events where seq = 6")  # a real deletion is still reported, once
    result = verify(engine)
    assert len(result.problems) == 1 and "seq 6 missing (row deleted)" in result.problems[0], result.problems
    engine.dispose()
    pruner.dispose()


# --- retention never launders tampering, nor jumps dead-lettered events -------------------------------


def _old_rows(n: int) -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    rows = [simple_event(i) for i in range(n)]
    for i, row in enumerate(rows):
        row["created_at"] = datetime.now(UTC) - timedelta(days=40, seconds=n - i)
    return rows


@pytest.mark.parametrize("tamper", ["delete", "edit"])
def test_prune_stops_before_tampering_so_verify_still_reports_it(
    db_url: str, tmp_path: Path, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a row deleted (or edited) by hand, then a routine `prune --days 30`, and the prune
    deleted the whole old prefix and anchored the checkpoint past the evidence: `verify` said ok."""
    from llmgw.cli import main

    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": db_url, "dead_letter_dir": str(tmp_path / "dl")}}))
    engine = make_engine(db_url)
    write(engine, _old_rows(10))
    chain = rows_of(engine)[0]["chain"]
    if tamper == "delete":
        sql(engine, "delete from guard_events where seq = 5")
        problem = "seq 5 missing (row deleted)"
    else:
        sql(engine, "update guard_events set verdict = 'allow', detail = 'fine' where seq = 5")
        problem = "seq 5 (ge_"
    archive = tmp_path / "archive.jsonl"
    assert main(["audit", "--config", str(config), "prune", "--days", "30", "--export", str(archive)]) == 1
    err = capsys.readouterr().err
    assert "deleted 4 event(s)" in err and f"chain {chain}: kept from seq 5 on: seq 5" in err, err
    assert audit(config, "verify", "--file", str(archive)).returncode == 0, "the archive holds the good prefix"
    result = verify(engine)
    assert not result.ok and any(problem in p for p in result.problems), result.problems
    engine.dispose()


def test_prune_never_jumps_events_waiting_in_the_dead_letter_file(db_url: str, tmp_path: Path) -> None:
    """Before: a prune past a gap of dead-lettered events anchored the chain after them; `verify`
    then skipped them as stored, and `storage replay` put them below the checkpoint (reported as
    rows out of order)."""
    from llmgw.audit.retention import prune
    from llmgw.storage.deadletter import DeadLetters
    from llmgw.storage.replay import replay

    engine = make_engine(db_url)
    letters = DeadLetters(tmp_path / "dl")
    rows = _old_rows(8)
    guard_events_with_the_second_batch_lost(engine, letters, [rows[:3], rows[3:6], rows[6:]])
    held, where = letters.rows("guard_events"), str(letters.path("guard_events"))
    assert sorted(e["seq"] for e in held) == [4, 5, 6]
    result = prune(engine, 30)
    assert result.deleted == 3 and list(result.held_back.values()) == [
        "kept from seq 4 on: seq 4 missing (row deleted, or in the dead-letter file)"
    ], result
    waiting = verify(engine, held=held, held_in=where)
    assert any("3 event(s) (seq 4..6) are not in the database" in p for p in waiting.problems), waiting.problems
    assert {c.table: c.replayed for c in replay(engine, letters)} == {"guard_events": 3}
    after = verify(engine, held=letters.rows("guard_events"), held_in=where)
    assert after.ok and after.checked == 5, after.problems
    assert prune(engine, 30).deleted == 5 and verify(engine).ok
    engine.dispose()


def test_api_a_misspelt_filter_is_400_not_every_event(make_gateway: Callable[..., RunningGateway]) -> None:
    """Before, ``verdicts=block`` was ignored and the answer held every event: a reviewer took the
    whole log for the blocked decisions."""
    gw = make_gateway()
    for i in range(3):
        gw.gateway.writer.put("guard_events", simple_event(i, verdict="block" if i == 0 else "allow"))
    gw.flush()
    with gw.admin() as admin:
        assert len(admin.get("/admin/guard-events", params={"verdict": "block"}).json()["data"]) == 1
        for path, extra in (("/admin/guard-events", {}), ("/admin/guard-events/export", {"format": "csv"})):
            bad = admin.get(path, params={"verdicts": "block", **extra})
            assert bad.status_code == 400, bad.text
            error = bad.json()["error"]
            assert error["param"] == "verdicts" and "unknown parameter" in error["message"]
            assert "verdict" in error["message"], "the message lists the filters there are"
        assert admin.get("/admin/guard-events", params={"limit": 2, "cursor": ""}).status_code == 200
        assert admin.get("/admin/guard-events/export", params={"format": "jsonl", "team": ""}).status_code == 200


def test_verify_names_a_dead_letter_event_that_differs_from_the_stored_one(db_url: str) -> None:
    """A dead-lettered event whose write did commit is a copy (same hash) and was rightly skipped;
    before, a *different* event at the same position was skipped the same way, unreported."""
    engine = make_engine(db_url)
    write(engine, [simple_event(i) for i in range(5)])
    query = select(EVENTS).where(EVENTS.c.seq == 3)
    with engine.connect() as conn:
        stored = dict(conn.execute(query).mappings().one())
    copy = dict(stored)
    assert verify(engine, held=[copy], held_in="dl/guard_events.jsonl").ok, "a copy of a committed write is fine"
    other = dict(stored, id="ge_other", verdict="allow", detail="nothing to see")
    result = verify(engine, held=[other], held_in="dl/guard_events.jsonl")
    assert result.problems == [
        f"chain {stored['chain']} seq 3 ({stored['id']}): the dead-letter file dl/guard_events.jsonl holds a "
        "different event (ge_other) at this position (one of them edited)"
    ]
    edited = dict(stored, verdict="block")  # same id and stored hash, a field changed in the file
    result = verify(engine, held=[edited], held_in="dl/guard_events.jsonl")
    assert len(result.problems) == 1 and "holds a different event" in result.problems[0], result.problems
    engine.dispose()


def test_jsonl_export_is_one_event_a_line_however_it_is_split(
    make_gateway: Callable[..., RunningGateway], tmp_path: Path
) -> None:
    """Masked text may hold U+2028, U+2029 or NEL, which JSON leaves raw and Python's
    ``str.splitlines`` (and other Unicode-aware readers) break lines at: before, such an event
    came out of the export as two unparseable lines."""
    from llmgw.audit.chain import verify_rows
    from llmgw.audit.queries import stored_from_view

    gw = make_gateway()
    odd = "line\u2028separator\u2029paragraph\x85next"
    for i in range(3):
        gw.gateway.writer.put("guard_events", simple_event(i, masked_text=odd if i == 1 else "plain"))
    gw.flush()
    with gw.admin() as admin:
        body = admin.get("/admin/guard-events/export", params={"format": "jsonl"}).text
    lines = body.splitlines()
    assert len(lines) == 3, lines
    events = [json.loads(line) for line in lines]
    assert [e["masked_text"] for e in events].count(odd) == 1, "the text itself is unchanged"
    assert verify_rows([stored_from_view(e) for e in events]).ok


def test_api_an_offset_typed_unencoded_in_the_url_is_read_as_written(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    """docs/audit.md lists `2025-03-01T11:00+01:00`; typed into a URL (curl, a browser) its `+`
    arrives as a space, and before the filter was a 400."""
    from datetime import UTC, datetime

    gw = make_gateway()
    for i, hour in enumerate((9, 10, 11)):
        row = simple_event(i)
        row["created_at"] = datetime(2025, 3, 1, hour, 30, tzinfo=UTC)
        gw.gateway.writer.put("guard_events", row)
    gw.flush()
    with gw.admin() as admin:
        raw = admin.get("/admin/guard-events?since=2025-03-01T11:00+01:00&until=2025-03-01T12:00+01:00")
        assert raw.status_code == 200, raw.text
        assert [e["request_id"] for e in raw.json()["data"]] == ["req_1"]  # 10:30 UTC is 11:30 at +01:00
        encoded = admin.get("/admin/guard-events", params={"since": "2025-03-01T11:00+01:00"})
        assert [e["request_id"] for e in encoded.json()["data"]] == ["req_2", "req_1"]
