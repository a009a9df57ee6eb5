"""The journal's lines read back as the rows that were put (what a SIGKILLed gateway leaves behind)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from llmgw.storage.journal import Journal, encode_line, orphans
from llmgw.storage.models import RequestRow, table
from llmgw.storage.sanitise import as_utc, sanitise


def _row(i: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": f"req-{i}", "created_at": datetime(2026, 12, 4, 21, 30, 1, 123456, tzinfo=UTC),
        "endpoint": "/v1/chat/completions", "api": "chat", "key_id": "k1", "team": "t", "user": None,
        "route": "default", "model_requested": "auto",
        "model_used": "m", "provider": "p", "stream": False, "status": "ok", "http_status": 200, "prompt_tokens": 10,
        "completion_tokens": 20, "cost_usd": 0.0001, "attempts": 1, "total_ms": 1.25, "ttft_ms": None,
        "meta": {"cache": {"status": "miss", "vetoes": ["entity", "number"]}, "route_reason": "café ☕"},
    }  # fmt: skip
    row.update(extra)
    return row


def test_a_killed_writers_rows_read_back_as_stored(tmp_path):
    rows = [
        _row(0),
        _row(1, created_at=datetime(2026, 12, 4, 23, 30, tzinfo=timezone(timedelta(hours=2)))),  # not UTC
        _row(2, created_at=datetime(2026, 12, 4, 21, 30)),  # naive: taken as UTC
        _row(3, user="a\ud800b"),  # a lone surrogate: msgspec refuses it, json.dumps writes it
        _row(4, meta={"big": 2**70, "nested": [{"x": None, "y": [1.5, "z"]}]}),  # past 64 bits: json.dumps again
    ]
    journal = Journal(tmp_path)
    for row in rows:
        journal.add("requests", row)
    journal.close()  # rows not settled: the file stays, held by no one, like a killed process's
    requests = table(RequestRow)
    with orphans(tmp_path) as found:
        assert [t for t, _ in found] == ["requests"] * len(rows)
        for (_, back), row in zip(found, rows, strict=True):
            stored, put = sanitise(requests, back), sanitise(requests, row)
            assert as_utc(stored.pop("created_at")) == as_utc(put.pop("created_at"))  # one instant
            assert stored == put
    assert not list(tmp_path.glob("journal-*")), "the orphan files were removed once read"


def test_journal_lines_are_json_and_fall_back_where_msgspec_cannot_write():
    fast = encode_line("requests", _row(0))
    assert fast.endswith(b"\n") and json.loads(fast)["row"]["created_at"] == "2026-12-04T21:30:01.123456Z"
    slow = encode_line("requests", _row(1, user="x\udfffy"))
    assert json.loads(slow)["row"]["user"] == "x\udfffy"
    # the one value that reads back differently: a non-finite float is null (json.dumps wrote NaN)
    assert json.loads(encode_line("requests", _row(2, total_ms=float("nan"))))["row"]["total_ms"] is None
