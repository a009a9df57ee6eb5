"""Shared parts of the fault-injection tests: a private PostgreSQL, the gateway as a subprocess (so it
can be signalled), a load of openai-SDK clients, and the ledger (every answered request has a row).

The private servers run on their own port and data directory, never the shared ones (see
/work/shared/notes/recipes.md, "Fault tests without disturbing others").
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
import yaml

from llmgw.cli import main
from llmgw.storage.deadletter import DeadLetters
from tests.conftest import ADMIN_KEY, base_config, free_port
from tests.upstream import FakeUpstream

FLUSH_S = 0.2
# the outage lasts at least this long (and until 20 requests were answered during it); the report in
# docs/benchmarks.md ran with LLMGW_FAULT_OUTAGE_S=120
OUTAGE_S = float(os.environ.get("LLMGW_FAULT_OUTAGE_S", "0"))
POLICY = """
pii:
  default: {action: allow}
  entities:
    EMAIL_ADDRESS: {action: mask, threshold: 0.5}
injection: {enabled: false}
moderation: {enabled: false}
"""


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port and data directory, stopped and started at will."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins or os.geteuid() != 0 or shutil.which("runuser") is None:
            pytest.skip("needs PostgreSQL's binaries and root (runuser) for a private cluster")
        self.bin = bins[-1]
        self.root = Path(tempfile.mkdtemp(prefix="llmgw-faults-pg-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.port = free_port()
        self._as_postgres(f"{self.bin}/initdb", "-D", f"{self.root}/data", "-A", "trust", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._as_postgres(f"{self.bin}/pg_ctl", "-D", f"{self.root}/data", "-o", options, "-l",
                          f"{self.root}/log", "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(f"{self.bin}/pg_ctl", "-D", f"{self.root}/data", "-m", "fast", "-w", "stop")

    def reset(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.close()


class Served:
    """``python -m llmgw serve`` in a subprocess, with its config, dead-letter folder and log."""

    #: Presidio loads at start-up, on a busy machine (several gateways starting together: longer)
    start_s = 120.0

    def __init__(
        self, tmp: Path, upstream: FakeUpstream, db_url: str, guarded: bool = True,
        extra: dict[str, Any] | None = None, **storage: Any,
    ) -> None:  # fmt: skip
        policies = tmp / "guardrails"
        policies.mkdir()
        (policies / "default.yaml").write_text(POLICY)
        self.dead_letters = DeadLetters(tmp / "dead-letter")
        storage = {"url": db_url, "flush_interval_s": FLUSH_S, "dead_letter_dir": str(self.dead_letters.dir),
                   **storage}  # fmt: skip
        guards = {"enabled": guarded, "policy_dir": str(policies), "hash_salt": "salt"}
        self.config = tmp / "gw.yaml"
        self.config.write_text(
            yaml.safe_dump(base_config(upstream.base_url, db_url, storage=storage, guards=guards, **(extra or {})))
        )
        self.port = free_port()
        self.log = (tmp / "gateway.log").open("wb")
        cmd = [sys.executable, "-m", "llmgw", "serve", "--config", str(self.config), "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp)
        deadline = time.monotonic() + self.start_s
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError((tmp / "gateway.log").read_text()[-3000:])
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=ADMIN_KEY, max_retries=0,
                             timeout=30)  # fmt: skip

    def ask(self, text: str, **extra: Any) -> str:
        """One answered request's id (raises if it was not answered)."""
        raw = self.client().chat.completions.with_raw_response.create(
            model=extra.pop("model", "test-model"), messages=[{"role": "user", "content": text}], **extra
        )
        raw.parse()
        return str(raw.headers["x-llmgw-request-id"])

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(90)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()


class Load:
    """Clients sending requests until stopped; records the id of every answered request."""

    def __init__(self, served: Served, clients: int = 3) -> None:
        self.served = served
        self.answered: list[str] = []
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)]
        for thread in self._threads:
            thread.start()

    def _run(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                request_id = self.served.ask(f"client {n} question {i}: mail me at c{n}@example.com")
            except (openai.APIError, httpx.HTTPError):
                self.errors += 1
                time.sleep(0.05)
                continue
            with self._lock:
                self.answered.append(request_id)

    def count(self) -> int:
        with self._lock:
            return len(self.answered)

    def wait_for(self, n: int, bound_s: float = 60) -> None:
        deadline = time.monotonic() + bound_s
        while self.count() < n:
            assert time.monotonic() < deadline, f"only {self.count()} answered (errors: {self.errors})"
            time.sleep(0.05)

    def stop(self) -> list[str]:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return list(self.answered)


def stored_ids(db_url: str, table: str, column: str = "id") -> list[str]:
    if db_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
            return [r[0] for r in conn.execute(f"select {column} from {table}")]
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute(f"select {column} from {table}")]


def ledger(answered: list[str], db_url: str, letters: DeadLetters) -> tuple[set[str], set[str]]:
    """Every answered request is a row in exactly one place: (ids in the database, ids dead-lettered)."""
    in_db = stored_ids(db_url, "requests")
    kept = [row["id"] for row in letters.rows("requests")]
    assert len(set(in_db)) == len(in_db) and len(set(kept)) == len(kept), "a row stored twice"
    assert not set(in_db) & set(kept), "a row both in the database and in the dead-letter file"
    missing = set(answered) - set(in_db) - set(kept)
    assert not missing, f"{len(missing)} answered request(s) left no row anywhere"
    return set(in_db), set(kept)


def verify(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["audit", "--config", str(config), "verify"])
    return status, capsys.readouterr().err


def replay(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["storage", "replay", "--config", str(config)]) == 0
    return capsys.readouterr().out


class PrivateRedis:
    """A throwaway ``redis-server`` on its own port (never the shared 6379): stopped, hung (SIGSTOP) at will."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("needs redis-server for a private Redis")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llmgw-faults-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.dir)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.answers():
            assert self.proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot handle its SIGTERM
            self.proc.terminate()
            self.proc.wait(30)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def request_rows(db_url: str) -> dict[str, tuple[int, str | None]]:
    """id → (http status, error code) of every request row."""
    query = "select id, http_status, error_code from requests"
    if db_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
            return {r[0]: (r[1], r[2]) for r in conn.execute(query)}
    with psycopg.connect(db_url) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(query)}


def guard_events_with_the_second_batch_lost(
    engine: Any, letters: DeadLetters, batches: list[list[dict[str, Any]]]
) -> None:
    """Write ``batches`` of guard events through a real :class:`RowWriter` (one flush each) while the
    database refuses the second batch only: its events go to the dead-letter file with their chain
    positions, the first and third are stored."""
    from sqlalchemy.exc import OperationalError

    from llmgw.storage.writer import RowWriter

    writer = RowWriter(engine, flush_interval_s=0.01, max_attempts=1, dead_letter_dir=letters.dir)
    chained = writer.handlers["guard_events"]

    class Outage:
        """The database is away for the second batch only."""

        calls = 0
        prepare = staticmethod(chained.prepare)  # type: ignore[attr-defined]

        def __call__(self, conn: Any, rows: list[dict[str, Any]]) -> int | None:
            Outage.calls += 1
            if Outage.calls == 2:
                raise OperationalError("INSERT", {}, Exception("connection refused"))
            return chained(conn, rows)

    writer.register("guard_events", Outage())
    writer.start()
    for batch in batches:
        for row in batch:
            writer.put("guard_events", row)
        writer.flush()
    writer.close()
