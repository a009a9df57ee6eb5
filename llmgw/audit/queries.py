"""Reading guard events: filters, keyset pages, batched iteration, a request's trail, exports."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from llmgw.audit.chain import EVENTS, as_utc, iso_utc
from llmgw.errors import InvalidRequest, clip
from llmgw.schemas import decode_json
from llmgw.storage.models import RequestRow, table

VERDICTS = ("allow", "mask", "redact", "block", "flag", "strip", "error")
EXPORT_COLUMNS = (
    "id", "created_at", "request_id", "key_id", "team", "user", "route", "stage", "guard", "policy", "verdict",
    "source", "entity_types", "entities", "value_hashes", "scores", "masked_text", "detail", "chain", "seq",
    "prev_hash", "hash",
)  # fmt: skip
MAX_LIMIT = 1000
_PLUS_AS_SPACE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+) (\d\d(?::?\d\d)?)$")
MAX_FILTER_CHARS = 200  # the widest filtered column (team, guard...): a longer value matches nothing


@dataclass(frozen=True)
class EventFilter:
    """The filters shared by the API, the review page, the CLI export. ``until`` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    key_id: str | None = None
    team: str | None = None
    guard: str | None = None
    verdict: str | None = None
    entity_type: str | None = None
    value_hash: str | None = None
    request_id: str | None = None
    stage: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EventFilter:
        """Parse query parameters (empty values are ignored); bad ones are a 400 naming the parameter."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if raw is None or str(raw).strip() == "":
                continue
            raw = str(raw).strip()
            if len(raw) > MAX_FILTER_CHARS or "\x00" in raw:
                raise InvalidRequest(f"{f.name}: at most {MAX_FILTER_CHARS} characters and no NUL bytes", param=f.name)
            if f.name in ("since", "until"):
                # `+01:00` typed into a URL unencoded arrives as ` 01:00` (a `+` in a query is a space)
                raw = _PLUS_AS_SPACE.sub(r"\1+\2", raw)
                try:
                    values[f.name] = as_utc(raw)
                except (ValueError, OverflowError):  # 9999-12-31T23:00-05:00 is past datetime.max in UTC
                    message = f"{f.name}: not an ISO 8601 time in range: {clip(raw)}"
                    raise InvalidRequest(message, param=f.name) from None
            elif f.name == "verdict" and raw not in VERDICTS:
                raise InvalidRequest(f"verdict must be one of {', '.join(VERDICTS)}", param="verdict")
            else:
                values[f.name] = raw
        return cls(**values)

    def params(self) -> dict[str, str]:
        """Back to query parameters (for links that keep the filters)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = iso_utc(value) if isinstance(value, datetime) else value
        return out

    def apply(self, query: Select[Any]) -> Select[Any]:
        c = EVENTS.c
        if self.since:
            query = query.where(c.created_at >= self.since)
        if self.until:
            query = query.where(c.created_at < self.until)
        for name in ("key_id", "team", "guard", "verdict", "request_id", "stage"):
            value = getattr(self, name)
            if value is not None:
                query = query.where(c[name] == value)
        if self.entity_type:  # the denormalised ",A,B," column: portable across SQLite and PostgreSQL
            query = query.where(c.entity_types.contains(f",{self.entity_type},", autoescape=True))
        if self.value_hash:
            query = query.where(c.value_hashes.contains(f",{self.value_hash},", autoescape=True))
        return query


def encode_cursor(row: Mapping[str, Any]) -> str:
    raw = json.dumps([iso_utc(row["created_at"]), row["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, ident = decode_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), 2, "cursor")
        return as_utc(created), str(ident)
    except (ValueError, TypeError, OverflowError, InvalidRequest):
        raise InvalidRequest("invalid cursor", param="cursor") from None


def page(
    engine: Engine, flt: EventFilter, limit: int = 100, cursor: str | None = None, newest_first: bool = True
) -> tuple[list[dict[str, Any]], str | None]:
    """One page in (created_at, id) order and the cursor of the next page (``None`` at the end).

    Keyset pagination: a cursor is the last row's (created_at, id), so pages never repeat or skip a
    row when new events arrive in between.
    """
    limit = min(max(limit, 1), MAX_LIMIT)
    c = EVENTS.c
    query = flt.apply(select(EVENTS))
    order = (c.created_at.desc(), c.id.desc()) if newest_first else (c.created_at, c.id)
    query = query.order_by(*order)
    if cursor:
        at, ident = decode_cursor(cursor)
        if newest_first:
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < ident)))
        else:
            query = query.where(or_(c.created_at > at, and_(c.created_at == at, c.id > ident)))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query.limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more else None


def iter_events(engine: Engine, flt: EventFilter, batch: int = 500) -> Iterator[list[dict[str, Any]]]:
    """Every matching event, oldest first, in batches; each batch is its own short query."""
    cursor: str | None = None
    while True:
        rows, cursor = page(engine, flt, batch, cursor, newest_first=False)
        if rows:
            yield rows
        if cursor is None:
            return


def tag_list(tags: str | None) -> list[str]:
    """``",A,B,"`` → ``["A", "B"]`` (the denormalised filter columns)."""
    return [t for t in (tags or "").split(",") if t]


def entity_counts(row: Mapping[str, Any]) -> dict[str, int]:
    return dict(Counter(str(e.get("type")) for e in row.get("entities") or []))


def event_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event as the API and the exports show it (entity counts added, internals dropped)."""
    out = {name: row.get(name) for name in EXPORT_COLUMNS}
    out["created_at"] = iso_utc(row["created_at"])
    out["entity_types"] = tag_list(row.get("entity_types"))
    out["value_hashes"] = tag_list(row.get("value_hashes"))
    out["entity_counts"] = entity_counts(row)
    return out


def trail(engine: Engine, request_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The request row (if it was logged) and every guard event of the request, in order."""
    requests = table(RequestRow)
    query = select(EVENTS).where(EVENTS.c.request_id == request_id)
    query = query.order_by(EVENTS.c.created_at, EVENTS.c.chain, EVENTS.c.seq)
    with engine.connect() as conn:
        request = conn.execute(select(requests).where(requests.c.id == request_id)).mappings().first()
        events = [dict(r) for r in conn.execute(query).mappings()]
    return (dict(request) if request else None), events


def request_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in row.items()}


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(EXPORT_COLUMNS)
    return buffer.getvalue()


def csv_lines(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        view = event_view(row)
        view["entity_types"] = ",".join(view["entity_types"])
        view["value_hashes"] = ",".join(view["value_hashes"])
        writer.writerow([_cell(view[name]) for name in EXPORT_COLUMNS])
    return buffer.getvalue()


#: line breaks to Unicode (and so to Python's ``str.splitlines``) that JSON leaves raw: escaped, so
#: one event is one line whichever way a reviewer's script splits the export
_UNICODE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def jsonl_lines(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(event_view(row), ensure_ascii=False).translate(_UNICODE_BREAKS) + "\n" for row in rows)


def stored_from_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """A JSONL export line back to the stored row, to re-check its hashes (``llmgw audit verify --file``)."""
    row = dict(view)
    row.pop("entity_counts", None)
    row["created_at"] = as_utc(row["created_at"])
    for name in ("entity_types", "value_hashes"):
        tags = row.get(name) or []
        row[name] = "," + ",".join(tags) + "," if tags else None
    return row
