"""The writer's journal: queued rows on disk, so a SIGKILL does not lose answered requests' rows.

The writer keeps queued rows in memory for up to ``flush_interval_s`` (the batching that keeps
commits off every request's latency). A process killed outright (SIGKILL, the OOM killer) would
lose them, and those requests were already answered. So each row is also appended to this
process's journal, ``<dead-letter dir>/journal-<pid>-<writer>-<n>.rows`` (JSON lines; not ``.jsonl``, which
would make it a dead-letter file), when it is put: one ``os.write``
on an ``O_APPEND`` file, no fsync, microseconds. The kernel's page cache outlives the process, so
the line survives the death of the process (not a crash of the machine: that would need an fsync
per row, which this does not do; the dead-letter files, written rarely, are fsynced).

Once a row is settled (committed, or in the dead-letter file) it is forgotten; when every row of a
journal file is settled the file is emptied (the current one) or removed (an older one: a file is
rotated after ``max_bytes``, so a gateway that is never idle does not grow one file forever).

The process holds an ``flock`` on its journal files for as long as it runs; the kernel drops it when
the process dies, however it dies. A file nobody holds is an orphan: the next gateway to start puts
its rows on its own queues (so they are written as usual; writes skip ids already stored), and
``llmgw storage replay`` moves them to the dead-letter files first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from llmgw.storage.deadletter import DeadLetters, _encode

log = logging.getLogger("llmgw.storage")

PREFIX = "journal-"
SUFFIX = ".rows"

_fast_encode = msgspec.json.Encoder(enc_hook=_encode).encode


def encode_line(table: str, row: dict[str, Any]) -> bytes:
    """One journal line. msgspec writes a request row in ~3 µs where ``json.dumps`` took ~28 µs,
    and this runs on the request path. What msgspec refuses (a lone surrogate, an integer past
    64 bits) falls back to ``json.dumps``. Two values read back differently, both only in rows
    recovered from the journal of a killed process: a non-finite float is written as ``null``
    (``json.dumps`` wrote ``NaN``), and a timestamp ends in ``Z`` instead of ``+00:00``, which
    :func:`llmgw.storage.sanitise.as_utc` reads as the same instant.
    """
    entry = {"table": table, "row": row}
    try:
        return _fast_encode(entry) + b"\n"
    except (TypeError, ValueError, OverflowError, UnicodeError):
        return (json.dumps(entry, default=_encode) + "\n").encode()


class Journal:
    """This process's journal files: ``add`` rows as they are put, ``settle`` them once stored."""

    def __init__(self, directory: str | Path, max_bytes: int = 8 << 20) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._segment = 0
        self._size = 0
        self._open: dict[int, int] = {}  # segment → rows not settled yet
        self._rows: dict[int, int] = {}  # id(row) → its segment (the row object is alive until settled)
        self._older: dict[int, int] = {}  # rotated-out segment → its descriptor (and flock)
        self._name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"  # several writers may share a process

    def path(self, segment: int) -> Path:
        return self.dir / f"{self._name}-{segment}{SUFFIX}"

    def _rotate(self) -> None:
        old, fd = self._segment, self._fd
        if fd is not None:
            if self._open.get(old):  # still holds rows: keep its flock (it is not an orphan) until settled
                self._older[old] = fd
            else:
                self._open.pop(old, None)
                self.path(old).unlink(missing_ok=True)
                os.close(fd)
        self._segment += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        # locked under a name the orphan scan does not match, then renamed: a gateway starting at this
        # moment (another worker of `--workers N`) must never take a new, live journal for an orphan
        path = self.path(self._segment)
        hidden = path.with_name("." + path.name + ".new")
        self._fd = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(hidden, path)
        self._size = 0
        self._open[self._segment] = 0

    def add(self, table: str, row: dict[str, Any]) -> None:
        """Append the row (never raises: a journal that cannot be written costs only this protection)."""
        line = encode_line(table, row)
        with self._lock:
            try:
                if self._fd is None or self._size > self.max_bytes:
                    self._rotate()
                assert self._fd is not None
                os.write(self._fd, line)
            except OSError:
                log.exception("could not append a %s row to the journal", table)
                return
            self._size += len(line)
            self._open[self._segment] += 1
            self._rows[id(row)] = self._segment

    def settle(self, rows: list[Any]) -> None:
        """These rows are committed or in the dead-letter file: they need no journal any more."""
        with self._lock:
            for row in rows:
                segment = self._rows.pop(id(row), None)
                if segment is None:
                    continue
                self._open[segment] -= 1
                if self._open[segment]:
                    continue
                if segment == self._segment and self._fd is not None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, 0)
                        self._size = 0
                else:
                    del self._open[segment]
                    self.path(segment).unlink(missing_ok=True)
                    older = self._older.pop(segment, None)
                    if older is not None:
                        os.close(older)  # unlinked first: no moment it is a file nobody holds

    def close(self) -> None:
        """After the writer closed (every row settled): remove the journal."""
        with self._lock:
            if self._fd is not None and not any(self._open.values()):
                self.path(self._segment).unlink(missing_ok=True)
            for fd in [*self._older.values(), *([self._fd] if self._fd is not None else [])]:
                os.close(fd)
            self._older.clear()
            self._fd = None


@contextlib.contextmanager
def orphans(directory: str | Path, remove: bool = True) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The rows of journal files no living process holds; with ``remove``, the files are removed when
    the block ends without an error (the caller has put the rows somewhere safe by then)."""
    directory = Path(directory)
    held: list[tuple[int, Path]] = []
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        for path in sorted(directory.glob(f"{PREFIX}*{SUFFIX}")) if directory.is_dir() else []:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                os.close(fd)
                continue
            held.append((fd, path))
            with open(fd, "rb", closefd=False) as data:
                for line in data:
                    with contextlib.suppress(ValueError):
                        entry = json.loads(line)
                        if isinstance(entry, dict) and isinstance(entry.get("row"), dict):
                            rows.append((str(entry.get("table")), entry["row"]))
        yield rows
        for _, path in held if remove else ():
            path.unlink(missing_ok=True)
    finally:
        for fd, _ in held:
            os.close(fd)


def orphaned_counts(directory: str | Path) -> dict[str, int]:
    """Rows per table in the journals of processes that died (read, not moved: ``storage status``)."""
    counts: dict[str, int] = {}
    with orphans(directory, remove=False) as found:
        for table, _ in found:
            counts[table] = counts.get(table, 0) + 1
    return counts


def orphans_to_dead_letters(letters: DeadLetters) -> int:
    """Move orphaned journal rows to the dead-letter files (``llmgw storage replay`` then writes them)."""
    with orphans(letters.dir) as found:
        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, row in found:
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            letters.append(table, rows, "journal of a process that died")
    return len(found)
