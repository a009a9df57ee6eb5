"""The dead-letter files: rows the writer could not put in the database, kept until replayed.

One file per table, ``<dir>/<table>.jsonl``, one JSON object per line:
``{"table": ..., "at": ..., "error": ..., "row": {...}}`` (a bare row, as older versions wrote, is
read too). Appends and ``llmgw storage replay``'s claim of a file take one lock (``<dir>/.lock``,
``flock``), so a gateway appending while a replay runs never writes into a file being replayed:
the replay renames the file to ``<table>.jsonl.replaying-<pid>`` under the lock, and the next
append starts a new ``<table>.jsonl``. A replay that dies leaves its claimed file, which the next
replay picks up again (replays are idempotent by row id).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SUFFIX = ".jsonl"
CLAIMED = ".replaying-"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass
class Letter:
    """One line of a dead-letter file: the row, and why it is there (empty for a bare legacy row)."""

    table: str
    row: dict[str, Any]
    error: str = ""


class DeadLetters:
    """The dead-letter directory: append rows, list and count them, claim a table's file for replay."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self._counted: dict[str, tuple[tuple[int, int, int], int]] = {}

    def path(self, table: str) -> Path:
        return self.dir / f"{table}{SUFFIX}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, table: str, rows: list[dict[str, Any]], error: str = "") -> Path:
        """Append ``rows`` durably (flushed and fsynced before returning)."""
        at = datetime.now(UTC).isoformat()
        text = "".join(
            json.dumps({"table": table, "at": at, "error": error[:500], "row": row}, default=_encode) + "\n"
            for row in rows
        )
        path = self.path(table)
        with self._locked(), path.open("a", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        return path

    def append_lines(self, table: str, lines: list[str]) -> None:
        """Put lines back verbatim (a replay keeping what it could not read)."""
        if not lines:
            return
        with self._locked(), self.path(table).open("a", encoding="utf-8") as out:
            out.write("".join(line if line.endswith("\n") else line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())

    def files(self, table: str) -> list[Path]:
        """The table's file and any file a replay claimed and did not finish."""
        if not self.dir.is_dir():
            return []
        claimed = sorted(self.dir.glob(f"{table}{SUFFIX}{CLAIMED}*"))
        main = self.path(table)
        return [*claimed, main] if main.exists() else claimed

    def tables(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        names = {p.name.split(SUFFIX)[0] for p in self.dir.iterdir() if SUFFIX in p.name and not p.name.startswith(".")}
        return sorted(names)

    def claim(self, table: str) -> list[Path]:
        """Take the table's file out of the way of appends; returns every file to replay."""
        with self._locked():
            main = self.path(table)
            if main.exists():
                main.rename(main.with_name(f"{main.name}{CLAIMED}{os.getpid()}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"))
        return self.files(table)

    @staticmethod
    def read(path: Path) -> tuple[list[Letter], list[str]]:
        """The letters in a file, and the lines that could not be read (kept, never dropped)."""
        letters: list[Letter] = []
        unreadable: list[str] = []
        table = path.name.split(SUFFIX)[0]
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except ValueError:
                    unreadable.append(line)
                    continue
                if not isinstance(data, dict):
                    unreadable.append(line)
                elif isinstance(data.get("row"), dict) and "table" in data:
                    letters.append(Letter(str(data["table"]), data["row"], str(data.get("error") or "")))
                else:
                    letters.append(Letter(table, data))
        return letters, unreadable

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` kept here (for ``llmgw audit verify``)."""
        return [letter.row for path in self.files(table) for letter in self.read(path)[0]]

    def count(self, table: str) -> int:
        """Lines kept for ``table``; recounted only when a file changed (for the metrics gauge)."""
        total = 0
        for path in self.files(table):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            cached = self._counted.get(str(path))
            if cached is None or cached[0] != key:
                with path.open("rb") as data:
                    cached = (key, sum(chunk.count(b"\n") for chunk in iter(lambda: data.read(1 << 20), b"")))
                self._counted[str(path)] = cached
            total += cached[1]
        return total
