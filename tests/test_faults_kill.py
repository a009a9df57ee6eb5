"""Fault injection: the gateway killed outright (SIGKILL) with answered requests' rows still queued.

The rows wait in memory for ``flush_interval_s`` (batching); the writer's journal
(:mod:`llmgw.storage.journal`) keeps them in the page cache, which outlives the process. The ledger
after the kill: every answered request's row is in the database, once the next gateway started or
``llmgw storage replay`` ran.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from llmgw.storage.deadletter import DeadLetters
from tests.faults import PrivatePostgres, Served, ledger, private_pg, replay  # noqa: F401 - the fixture
from tests.upstream import FakeUpstream

HELD_S = 60  # longer than the test: the rows are still queued in memory when the gateway is killed
N = 12


@pytest.mark.slow  # two gateway start-ups
@pytest.mark.parametrize("recovery", ["restart", "replay"])
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_sigkill_loses_no_answered_request(
    backend: str, recovery: str, request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Before: the rows of the requests answered in the last ``flush_interval_s`` were lost (here all N)."""
    if backend == "postgres":
        pg: PrivatePostgres = request.getfixturevalue("private_pg")
        pg.reset()
        db_url = pg.url
    else:
        db_url = f"sqlite:///{tmp_path}/gw.db"
    dead_letter_dir = str(tmp_path / "dead-letter")
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    served = Served(
        first_dir, upstream, db_url, guarded=False, flush_interval_s=HELD_S, dead_letter_dir=dead_letter_dir
    )
    try:
        answered = [served.ask(f"question {i}") for i in range(N)]
    finally:
        assert served.terminate(signal.SIGKILL) == -signal.SIGKILL

    if recovery == "replay":
        out = replay(served.config, capsys)
        assert f"requests: {N} replayed" in out, out
    else:  # the next gateway writes them; its SIGTERM writes whatever it still holds
        again = Served(second_dir, upstream, db_url, guarded=False, dead_letter_dir=dead_letter_dir)
        assert again.terminate() in (0, -signal.SIGTERM)
    in_db, kept = ledger(answered, db_url, DeadLetters(dead_letter_dir))
    assert set(answered) <= in_db and not kept
    assert not list(Path(dead_letter_dir).glob("journal-*")), "the journals were emptied"
    with capsys.disabled():
        print(f"\n[{backend}, {recovery}] answered {N}; SIGKILL; {len(in_db & set(answered))} in the database")
