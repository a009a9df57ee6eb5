"""``llmgw serve --workers N``: N worker processes on one port, a small supervising parent.

One Python process uses one core for requests. The parent starts N workers (``python -m llmgw
serve --worker-reuse-port ...`` or ``--worker-fd FD``, each a fresh interpreter: no fork of threads
or open connections). Each worker runs its own event loop, gateway, providers and storage writer.
How connections reach the workers (``server.reuse_port``):

* **One socket per worker** (Linux, the default): each worker binds its own ``SO_REUSEPORT``
  socket on the address and listens once its application has started; the kernel picks the socket
  of each new connection by a hash of its addresses and ports, so a burst of connections is spread
  over the workers. With one shared socket, whichever worker woke first accepted every pending
  connection (libuv accepts until the queue is empty), so 32 keep-alive connections opened at once
  could all land on one worker and leave the other idle for the whole run. The parent checks the
  address is free (a bind without ``SO_REUSEPORT``, which fails on any listener, also another
  llmgw's) and then holds it with a bound, never-listening ``SO_REUSEPORT`` socket: that socket
  takes no connection, keeps the port (also port 0's ephemeral one) while workers start and
  restart, and makes a second llmgw on the same port fail at start instead of joining the group.
  A worker that dies drops the connections still waiting in its own accept queue (the kernel
  resets them; a client retries); new connections go to the live workers.
* **One shared socket** (``server.reuse_port: false``, or no ``SO_REUSEPORT`` load balancing:
  BSD and macOS accept several binds but send every connection to one socket): the parent binds
  and listens once and passes the fd; every worker accepts on it.

The parent serves no request: it

* restarts a worker that exits while the gateway is not stopping (a crash, the OOM killer, a
  SIGKILL), and gives up when workers keep dying right after start (a broken config or port),
* on SIGTERM or SIGINT sends one SIGTERM to every worker and waits: each worker stops accepting,
  finishes its requests (``server.request_timeout_s``), and its writer drains every queued row to
  the database or the dead-letter file before it exits. Workers run in their own process group,
  so a Ctrl-C in a terminal reaches them once, through the parent,
* keeps the Prometheus multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``), so one scrape of
  ``/metrics`` on any worker reports every worker (see :mod:`llmgw.metrics`).

What is shared between workers and what is per process is listed in docs/deploy.md ("One machine").
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("llmgw.workers")

#: a worker that dies before it listens, or sooner than this after its start, failed to start: a
#: worker whose start-up (imports, models) takes longer than this and then fails (a broken config,
#: an unwritable database path) is still a failed start, else the parent would restart it forever
EARLY_DEATH_S = 10.0
#: workers dying early this many times in a row: the parent gives up (exit 1) instead of looping
MAX_EARLY_DEATHS = 5
#: the worker's index (0..N-1) in its environment; ``/healthz`` reports it
WORKER_ENV = "LLMGW_WORKER"
#: the parent's pid in each worker's environment: a worker whose parent died exits
PARENT_ENV = "LLMGW_WORKER_PARENT"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_count(value: int | str) -> int:
    """``auto`` is the number of cores this process may run on; otherwise a positive integer."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    count = int(value)
    if count < 1:
        raise ValueError("workers must be at least 1")
    return count


def reuse_port_supported() -> bool:
    """Whether several ``SO_REUSEPORT`` sockets share out connections: Linux (3.9+) only; BSD and
    macOS let them bind but hand every connection to one of them."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The one listening socket every worker accepts on when workers share it (``SO_REUSEADDR``: a
    restart does not wait for TIME_WAIT)."""
    sock = _socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """The parent's hold on the address when each worker has its own ``SO_REUSEPORT`` socket.

    First a probe without ``SO_REUSEPORT`` (``SO_REUSEADDR`` only, so TIME_WAIT leftovers pass):
    it fails on any socket listening there, including another llmgw's workers, which a
    ``SO_REUSEPORT`` bind would silently join. Then, on the probe's port (port 0: the ephemeral port
    it got), a socket with ``SO_REUSEPORT`` and without ``SO_REUSEADDR`` that never listens: it
    takes no connection, lets the workers bind beside it, and fails a later llmgw's probe.
    """
    with _socket(host) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    hold = _socket(host)
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        hold.bind((host, port))
    except OSError as exc:
        hold.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        # the probe passed, so nothing listens: TIME_WAIT connections of an earlier run that did not
        # use SO_REUSEPORT block a bind without SO_REUSEADDR
        hold = _socket(host)
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind((host, port))
    return hold


def worker_socket(host: str, port: int) -> socket.socket:
    """In a worker: its own ``SO_REUSEPORT`` socket, bound but not listening. uvicorn listens after
    the application has started, so the kernel sends this worker connections only once it serves
    (a socket listening during a slow start-up would hold its share of the connections)."""
    sock = _socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def listening_marker(metrics_dir: str, pid: int) -> Path:
    """The file a worker leaves in the parent's metrics directory once it listens."""
    return Path(metrics_dir) / f"listening-{pid}"


def mark_listening() -> None:
    """In a worker of ``--workers N``: tell the parent this worker serves (:data:`EARLY_DEATH_S`)."""
    metrics_dir = os.environ.get(METRICS_ENV)
    if os.environ.get(PARENT_ENV) and metrics_dir:
        with contextlib.suppress(OSError):
            listening_marker(metrics_dir, os.getpid()).touch()


def exit_with_parent() -> None:
    """In a worker: receive SIGTERM when the parent dies (Linux), and exit now if it already has."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        sys.exit(0)


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Start ``count`` workers, restart the ones that die, stop them all on a signal.

    ``sock`` is the shared listening socket passed to every worker, or with ``reuse_port`` the
    parent's reservation (:func:`reserve`): each worker then binds its own socket on its address.
    """

    def __init__(self, count: int, sock: socket.socket, worker_args: list[str], grace_s: float,
                 reuse_port: bool = False) -> None:  # fmt: skip
        self.count = count
        self.sock = sock
        self.reuse_port = reuse_port
        self.worker_args = worker_args
        self.grace_s = grace_s
        self.workers: dict[int, Worker] = {}
        self.stopping = False
        self.early_deaths = 0
        self.restarts = 0
        self._own_metrics_dir: str | None = None
        self.metrics_dir = ""

    def _metrics_dir(self) -> str:
        """The multiprocess metrics directory: the operator's (emptied of old files) or a private one."""
        given = os.environ.get(METRICS_ENV)
        if given:
            Path(given).mkdir(parents=True, exist_ok=True)
            for old in Path(given).glob("*.db"):  # values of a previous run would be added to this one's
                old.unlink(missing_ok=True)
            return given
        self._own_metrics_dir = tempfile.mkdtemp(prefix="llmgw-metrics-")
        return self._own_metrics_dir

    def spawn(self, index: int) -> Worker:
        cmd = [sys.executable, "-m", "llmgw", "serve", *self.worker_args]
        if self.reuse_port:
            cmd.append("--worker-reuse-port")
            fds: tuple[int, ...] = ()
        else:
            fds = (self.sock.fileno(),)
            cmd += ["--worker-fd", str(fds[0])]
        env = {**os.environ, WORKER_ENV: str(index), PARENT_ENV: str(os.getpid()), METRICS_ENV: self.metrics_dir}
        # its own process group: a terminal's Ctrl-C reaches the parent only, which forwards one SIGTERM
        proc = subprocess.Popen(cmd, pass_fds=fds, env=env, process_group=0)
        log.info("worker %d started (pid %d)", index, proc.pid)
        worker = Worker(index, proc)
        self.workers[index] = worker
        return worker

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if not self.stopping:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.workers))
        self.stopping = True

    def run(self) -> int:
        self.metrics_dir = self._metrics_dir()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self.spawn(index)
            status = self._watch()
            self._stop_all()
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.sock.close()
            if self._own_metrics_dir:
                shutil.rmtree(self._own_metrics_dir, ignore_errors=True)

    def _watch(self) -> int:
        """Restart dead workers until a signal asks to stop; 1 when workers cannot start."""
        while not self.stopping:
            time.sleep(0.1)  # signals interrupt nothing here: the flag is read every tick
            for index, worker in list(self.workers.items()):
                code = worker.proc.poll()
                if code is None or self.stopping:
                    continue
                lived = time.monotonic() - worker.started
                served = listening_marker(self.metrics_dir, worker.proc.pid).exists()
                self._forget(worker)
                early = not served or lived < EARLY_DEATH_S
                self.early_deaths = self.early_deaths + 1 if early else 0
                if self.early_deaths >= MAX_EARLY_DEATHS:
                    log.error("workers keep exiting right after start (last: status %s); giving up", code)
                    return 1
                log.warning("worker %d (pid %d) exited with status %s after %.1f s; starting another",
                            index, worker.proc.pid, code, lived)  # fmt: skip
                self.restarts += 1
                if self.early_deaths:
                    time.sleep(min(2.0, 0.2 * 2**self.early_deaths))  # back off a worker that fails at start
                self.spawn(index)
        return 0

    def _forget(self, worker: Worker) -> None:
        """A dead worker's live gauges leave the scrape (its counters stay: totals never go back)."""
        with contextlib.suppress(Exception):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.proc.pid, self.metrics_dir)
        listening_marker(self.metrics_dir, worker.proc.pid).unlink(missing_ok=True)

    def _stop_all(self) -> None:
        """One SIGTERM each; wait for requests to finish and rows to drain; SIGKILL only past the grace."""
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for worker in self.workers.values():
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d (pid %d) did not stop in %.0f s: killed", worker.index, worker.proc.pid,
                          self.grace_s)  # fmt: skip
                worker.proc.kill()
                worker.proc.wait()
            self._forget(worker)
