"""Make a row storable before it is written, and say what was changed.

PostgreSQL refuses a whole transaction over one value (a NUL in text, 201 characters in a
``varchar(200)``, an integer past 32 bits) while SQLite stores the same value as given. The
writer runs every row through :func:`sanitise` first, so both databases store the same thing and
one client's odd value never takes the rows of other clients with it. What can be kept "losslessly
enough" is kept: NUL becomes U+FFFD, text is cut to its column's length, numbers are clamped, and
the row's ``sanitised`` column lists every change. What cannot (a value of the wrong kind) is left
alone for the writer to isolate.
"""

from __future__ import annotations

import math
import numbers
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Table, TypeDecorator
from sqlalchemy.sql.schema import ScalarElementColumnDefault

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
NOTE_COLUMN = "sanitised"


def as_utc(value: datetime | str) -> datetime:
    """A timestamp (or ISO 8601 text) as an aware UTC datetime; a naive one is taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def plain(value: Any) -> Any:
    """JSON-safe data that reads back identically from SQLite and PostgreSQL."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    # containers before the numbers ABCs: an ABC's isinstance is a slow subclass check, and a
    # request row's meta is mostly dicts and lists (this ran on every row the writer stores)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return plain(float(value))
    return plain(str(value))


def clean_text(value: str) -> str:
    """NUL (refused by PostgreSQL) and lone surrogates (not UTF-8) as U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


@lru_cache(maxsize=16)
def _plan(table: Table) -> tuple[tuple[str, str, Any], ...]:
    """(column, kind, limit) for every column a value can be wrong for."""
    plan: list[tuple[str, str, Any]] = []
    for column in table.columns:
        kind = column.type
        if isinstance(kind, TypeDecorator):  # sqlmodel's AutoString: a String underneath
            kind = kind.impl_instance
        if isinstance(kind, JSON):
            plan.append((column.name, "json", None))
        elif isinstance(kind, String):
            plan.append((column.name, "text", kind.length))
        elif isinstance(kind, Boolean):
            continue
        elif isinstance(kind, BigInteger):
            plan.append((column.name, "int", INT64))
        elif isinstance(kind, Integer):
            plan.append((column.name, "int", INT32))
        elif isinstance(kind, Float):
            plan.append((column.name, "float", None))
        elif isinstance(kind, DateTime):
            plan.append((column.name, "datetime", None))
    return tuple(plan)


@lru_cache(maxsize=16)
def _fill(table: Table) -> tuple[tuple[str, Any], ...]:
    """The value of each column a row may leave out: its scalar default, else NULL where allowed."""
    fill: list[tuple[str, Any]] = []
    for column in table.columns:
        default = column.default
        if isinstance(default, ScalarElementColumnDefault):
            fill.append((column.name, default.arg))
        elif column.nullable and not column.primary_key:
            fill.append((column.name, None))
    return tuple(fill)


def sanitise(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` fit for ``table`` (a new dict); changes are listed in its ``sanitised`` column if it has one.

    A datetime given as ISO text (a row read back from a dead-letter file) becomes a datetime again.
    """
    out = dict(row)
    for name, default in _fill(table):  # one key set for the whole batch (an executemany binds the first row's keys)
        if name not in out:
            out[name] = default
    notes: list[str] = []
    for name, kind, limit in _plan(table):
        value = out.get(name)
        if value is None:
            continue
        if kind == "text":
            plain_text = type(value) is str and value.isascii() and "\x00" not in value
            if plain_text and (limit is None or len(value) <= limit):
                continue  # the common case, checked cheaply
            text = value if isinstance(value, str) else str(value)
            if text is not value:
                notes.append(f"{name}: not text, stored as its string form")
            cleaned = clean_text(text)
            if cleaned != text:
                notes.append(f"{name}: NUL or invalid characters replaced by U+FFFD")
            if limit is not None and len(cleaned) > limit:
                notes.append(f"{name}: cut from {len(cleaned)} to {limit} characters")
                cleaned = cleaned[:limit]
            out[name] = cleaned
        elif kind == "json":
            cleaned = plain(value)
            if cleaned != value:
                notes.append(f"{name}: values that are not JSON (NUL, NaN, objects) stored as text")
            out[name] = cleaned
        elif kind == "int" and not isinstance(value, bool):
            low, high = limit
            if type(value) is int and low <= value <= high:
                continue
            try:
                number = int(value)
            except (TypeError, ValueError, OverflowError):
                continue  # not a number at all: left for the writer to isolate
            clamped = min(max(number, low), high)
            if clamped != value:
                notes.append(f"{name}: {value!r} stored as {clamped}")
            out[name] = clamped
        elif kind == "float" and isinstance(value, numbers.Real) and not math.isfinite(float(value)):
            notes.append(f"{name}: {value!r} stored as 0")
            out[name] = 0.0
        elif kind == "datetime" and isinstance(value, str):
            try:
                out[name] = as_utc(value)
            except ValueError:
                continue  # not a time: left for the writer to isolate
    if notes and NOTE_COLUMN in table.columns:
        earlier = out.get(NOTE_COLUMN)
        out[NOTE_COLUMN] = "; ".join([earlier, *notes] if earlier else notes)[:2000]
    return out
