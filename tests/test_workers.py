"""``llmgw serve --workers 2``: both workers serve one port, one scrape reports both, a killed worker
is replaced (and the rows it held reach the database), SIGTERM drains every worker; each worker has
its own SO_REUSEPORT socket, so a burst of connections is spread over both, and one shared socket
remains as the fallback (``server.reuse_port: false``).

The gateway runs as a real subprocess with a real SQLite file; the writer holds rows for a minute
(``flush_interval_s: 60``), so rows reach the database only through the journal of a killed worker
and the drain on SIGTERM, which is what is tested.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from llmgw.cli import main, per_process_warnings
from llmgw.config import parse_config
from llmgw.storage.deadletter import DeadLetters
from llmgw.workers import reserve, worker_count, worker_socket
from tests.conftest import ADMIN_KEY, base_config, free_port
from tests.faults import stored_ids
from tests.upstream import FakeUpstream

WORKER_UP = re.compile(r'^llmgw_worker_up\{pid="(\d+)",worker="(\d+)"\} 1\.0$', re.M)
SERVING = re.compile(r"llmgw on http://127\.0\.0\.1:(\d+) with 2 workers")


def listening_sockets(port: int) -> int:
    """The sockets in LISTEN state on ``port``, from the kernel's tables (one shared by several
    processes counts once; a bound socket that does not listen is not listed)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            count += fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
    return count


class Workers:
    """``llmgw serve --port 0 --workers 2``: the parent picks the port, which the test reads from its log."""

    def __init__(self, tmp: Path, upstream: FakeUpstream, server: dict[str, object] | None = None,
                 **storage: object) -> None:  # fmt: skip
        self.db_url = f"sqlite:///{tmp}/gw.db"
        self.dead_letters = DeadLetters(tmp / "dead-letter")
        storage = {"url": self.db_url, "dead_letter_dir": str(self.dead_letters.dir), **storage}
        self.config = tmp / "gw.yaml"
        overrides = {"storage": storage, **({"server": server} if server else {})}
        self.config.write_text(yaml.safe_dump(base_config(upstream.base_url, self.db_url, **overrides)))
        self.log_path = tmp / "gateway.log"
        self.log = self.log_path.open("wb")
        cmd = [sys.executable, "-m", "llmgw", "serve", "--config", str(self.config), "--port", "0", "--workers", "2"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp)
        self.port = 0
        self.wait_for(lambda: bool(SERVING.search(self.log_path.read_text())), 60, "the parent's port")
        self.port = int(SERVING.findall(self.log_path.read_text())[0])
        self.wait_for(lambda: len(self.workers()) == 2, 300, "two workers up")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, check: Callable[[], bool], bound_s: float, what: str) -> None:
        deadline = time.monotonic() + bound_s
        while not check():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def workers(self) -> dict[str, int]:
        """Worker index → pid of every live worker, from one scrape of /metrics."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        return {index: int(pid) for pid, index in WORKER_UP.findall(text)}

    def burst(self, count: int) -> Counter[int]:
        """Which worker serves each of ``count`` connections opened while every worker is stopped
        (SIGSTOP): a load generator's connections arriving between two wake-ups of the workers."""
        pids = list(self.workers().values())
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:  # the kernel completes the handshakes and queues the connections until a worker accepts
            conns = [socket.create_connection(("127.0.0.1", self.port), timeout=60) for _ in range(count)]
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        served: Counter[int] = Counter()
        for conn in conns:
            with conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
            served[json.loads(answer.split(b"\r\n\r\n", 1)[1])["worker"]] += 1
        return served

    def ask(self, text: str) -> str:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=ADMIN_KEY, max_retries=3, timeout=30)
        raw = client.chat.completions.with_raw_response.create(
            model="test-model", messages=[{"role": "user", "content": text}]
        )
        raw.parse()
        return str(raw.headers["x-llmgw-request-id"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()


@pytest.fixture()
def workers(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Workers]:
    served = Workers(tmp_path, upstream, flush_interval_s=60)
    yield served
    served.stop()


@pytest.mark.slow  # two worker start-ups, and a third after the kill
def test_two_workers_serve_are_restarted_and_drain(workers: Workers, capsys: pytest.CaptureFixture[str]) -> None:
    before = workers.workers()
    assert set(before) == {"0", "1"} and len(set(before.values())) == 2, before
    assert workers.proc.pid not in before.values(), "the parent serves no request"
    # each worker listens on its own SO_REUSEPORT socket (the parent's holds the port without listening)
    assert listening_sockets(workers.port) == 2
    seen = {httpx.get(f"{workers.url}/healthz", timeout=5).json()["worker"] for _ in range(200)}
    assert seen == {0, 1}
    # 32 connections queued at once are spread by the kernel's hash, not taken by whichever worker
    # wakes first (binomial(32, 1/2): fewer than 4 on one worker has probability 3e-6)
    spread = workers.burst(32)
    assert set(spread) == {0, 1} and min(spread.values()) >= 4, spread
    # the port is held: another gateway on it fails at start instead of joining the group
    assert main(["serve", "--config", str(workers.config), "--port", str(workers.port), "--workers", "2"]) == 1
    assert "cannot listen on" in capsys.readouterr().err
    answered = [workers.ask(f"before {i}") for i in range(20)]
    metrics = httpx.get(f"{workers.url}/metrics", timeout=5).text
    total = sum(float(v) for v in re.findall(r"^llmgw_requests_total\{[^}]*\} (\S+)$", metrics, re.M))
    assert total == 20, "one scrape counts the requests of both workers"
    frozen = re.findall(r"^llmgw_gc_frozen_objects\{[^}]*\} (\S+)$", metrics, re.M)
    assert len(frozen) == 2 and min(float(v) for v in frozen) > 10_000, "each worker froze its start-up heap"

    # a worker killed outright (its rows only in its journal) is replaced; the other keeps serving
    os.kill(before["0"], signal.SIGKILL)
    during = [workers.ask(f"during {i}") for i in range(5)]
    workers.wait_for(lambda: workers.workers().get("0") not in (None, before["0"]), 300, "worker 0 restarted")
    after = workers.workers()
    assert after["1"] == before["1"] and after["0"] != before["0"]

    # SIGTERM with requests in flight: they are answered, and every row is written before exit
    load_ids: list[str] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                load_ids.append(workers.ask(f"load {threading.get_ident()} {i} #sleep:0.2"))
            except (openai.APIError, httpx.HTTPError):
                return  # the port closed: the gateway is stopping

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    workers.wait_for(lambda: len(load_ids) >= 8, 60, "load before SIGTERM")
    workers.proc.send_signal(signal.SIGTERM)
    assert workers.proc.wait(120) == 0
    stop.set()
    for thread in threads:
        thread.join(60)
    everything = answered + during + load_ids
    in_db = stored_ids(workers.db_url, "requests")
    assert len(in_db) == len(set(in_db)), "a row stored twice"
    assert not set(everything) - set(in_db), "every answered request's row is in the database"
    assert not workers.dead_letters.rows("requests")
    assert not list(workers.dead_letters.dir.glob("journal-*")), "the journals were emptied"
    with capsys.disabled():
        print(f"\n[workers 2] {len(everything)} answered, worker 0 SIGKILLed and replaced; after SIGTERM all stored;"
              f" a burst of 32 connections served {dict(spread)} by worker")  # fmt: skip


@pytest.mark.slow  # two worker start-ups
def test_one_shared_socket_without_reuse_port(upstream: FakeUpstream, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    served = Workers(tmp_path, upstream, server={"reuse_port": False})
    try:
        assert "(one shared socket)" in served.log_path.read_text()
        assert listening_sockets(served.port) == 1, "the parent's socket, passed to both workers"
        seen = {httpx.get(f"{served.url}/healthz", timeout=5).json()["worker"] for _ in range(200)}
        assert seen == {0, 1}
        spread = served.burst(32)  # whoever wakes first accepts what is queued: often all on one
        assert sum(spread.values()) == 32
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(120) == 0
    finally:
        served.stop()
    with capsys.disabled():
        print(f"\n[workers 2, one shared socket] a burst of 32 connections served {dict(spread)} by worker")


def test_memory_limits_are_refused_with_several_workers(upstream: FakeUpstream, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    config = tmp_path / "gw.yaml"
    limits = {"enabled": True, "default_key": {"requests_per_minute": 5}}
    config.write_text(yaml.safe_dump(base_config(upstream.base_url, f"sqlite:///{tmp_path}/gw.db", limits=limits)))
    assert main(["serve", "--config", str(config), "--port", str(free_port()), "--workers", "2"]) == 2
    assert "limits.store: memory counts per process" in capsys.readouterr().err
    assert main(["serve", "--config", str(config), "--workers", "0"]) == 2


def test_worker_count_and_what_is_per_process(upstream: FakeUpstream, tmp_path: Path) -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0)) and worker_count("3") == 3
    with pytest.raises(ValueError):
        worker_count("0")
    shared = base_config(upstream.base_url, "sqlite:///x.db", limits={"enabled": True, "store": "redis"},
                         cache={"enabled": True, "exact_store": "redis"})  # fmt: skip
    assert per_process_warnings(parse_config(shared)) == ([], [])
    local = base_config(upstream.base_url, "sqlite:///x.db", limits={"enabled": True}, cache={"enabled": True})
    refused, warned = per_process_warnings(parse_config(local))
    assert len(refused) == 1 and "limits.store" in refused[0]
    assert len(warned) == 1 and "cache.exact_store" in warned[0]


def test_the_parent_holds_the_port_and_worker_sockets_share_it() -> None:
    """In-process, the sockets of ``--workers N`` on Linux: the parent's reservation takes port 0's
    ephemeral port, lets worker sockets bind beside it, refuses a second gateway (its probe) and any
    other listener's port; connections go to the listening worker sockets, never to the reservation."""
    hold = reserve("127.0.0.1", 0)
    port = hold.getsockname()[1]
    sockets = [worker_socket("127.0.0.1", port) for _ in range(2)]
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()  # bound, nobody listens yet
        with pytest.raises(OSError):
            reserve("127.0.0.1", port)  # a second gateway while the workers start: the hold alone refuses it
        for sock in sockets:
            sock.listen(64)
            sock.setblocking(False)
        with pytest.raises(OSError):
            reserve("127.0.0.1", port)  # and once they listen
        with socket.create_server(("127.0.0.1", 0)) as plain, pytest.raises(OSError):
            reserve("127.0.0.1", plain.getsockname()[1])  # a port another server listens on
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        accepted = [0, 0]
        deadline = time.monotonic() + 30  # a bound on the wait, not a timing: the queues fill at once
        while sum(accepted) < 20 and time.monotonic() < deadline:
            for index, sock in enumerate(sockets):
                with contextlib.suppress(BlockingIOError):
                    sock.accept()[0].close()
                    accepted[index] += 1
        # every connection reached a worker socket; all 20 on one has probability 2e-6
        assert sum(accepted) == 20 and min(accepted) >= 1, accepted
        for client in clients:
            client.close()
    finally:
        for sock in [hold, *sockets]:
            sock.close()
