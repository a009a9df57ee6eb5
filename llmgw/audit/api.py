"""Admin API of the guardrail log: filtered pages, streamed CSV/JSONL exports, a request's trail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.response import Stream

from llmgw.api.common import gateway_of, json_response
from llmgw.audit import web
from llmgw.audit.auth import require_reviewer
from llmgw.audit.queries import (
    EventFilter,
    csv_header,
    csv_lines,
    event_view,
    jsonl_lines,
    page,
    request_view,
    trail,
)
from llmgw.errors import InvalidRequest, clip

EXPORT_BATCH = 500


def known_params(request: Request[Any, Any, Any], *others: str) -> None:
    """A parameter that is no filter is a 400 naming it: a reviewer's typo (``verdicts=block``)
    must not answer with every event as if it were the filtered evidence."""
    allowed = {*EventFilter.__dataclass_fields__, *others}
    for name in request.query_params:
        if name not in allowed:
            raise InvalidRequest(
                f"unknown parameter {clip(name)}; filters are {', '.join(EventFilter.__dataclass_fields__)}",
                param=name[:100],
            )


def limit_param(request: Request[Any, Any, Any], default: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest("limit must be an integer", param="limit") from None


@get("/admin/guard-events")
async def list_guard_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Newest first; ``next_cursor`` (opaque) fetches the next page, ``null`` on the last one."""
    await require_reviewer(request)
    known_params(request, "limit", "cursor")
    flt = EventFilter.from_params(request.query_params)
    cursor = request.query_params.get("cursor") or None
    rows, next_cursor = await asyncio.to_thread(page, gateway_of(request).engine, flt, limit_param(request), cursor)
    payload = {
        "object": "list",
        "data": [event_view(r) for r in rows],
        "has_more": next_cursor is not None,
        "next_cursor": next_cursor,
    }
    return json_response(payload, {"cache-control": "no-store"})


async def export_chunks(engine: Any, flt: EventFilter, fmt: str) -> AsyncIterator[str]:
    """Oldest first, one short keyset query per batch (run in a thread), never the whole table in memory."""
    if fmt == "csv":
        yield csv_header()
    cursor: str | None = None
    while True:
        rows, cursor = await asyncio.to_thread(page, engine, flt, EXPORT_BATCH, cursor, False)
        if rows:
            yield csv_lines(rows) if fmt == "csv" else jsonl_lines(rows)
        if cursor is None:
            return


@get("/admin/guard-events/export")
async def export_guard_events(request: Request[Any, Any, Any]) -> Stream:
    await require_reviewer(request)
    known_params(request, "format")
    fmt = request.query_params.get("format") or "jsonl"
    if fmt not in ("csv", "jsonl"):
        raise InvalidRequest("format must be csv or jsonl", param="format")
    flt = EventFilter.from_params(request.query_params)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "content-disposition": f'attachment; filename="guard-events-{stamp}.{fmt}"',
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
    }
    media_type = "text/csv" if fmt == "csv" else "application/x-ndjson"  # Litestar adds the charset to text/*
    return Stream(export_chunks(gateway_of(request).engine, flt, fmt), media_type=media_type, headers=headers)


@get("/admin/requests/{request_id:str}/trail")
async def request_trail(request: Request[Any, Any, Any], request_id: str) -> Response[bytes]:
    """The request row (``null`` if it was never logged) and all its guard events, in order."""
    await require_reviewer(request)
    row, events = await asyncio.to_thread(trail, gateway_of(request).engine, request_id)
    payload = {
        "request_id": request_id,
        "request": request_view(row) if row else None,
        "events": [event_view(e) for e in events],
    }
    return json_response(payload, {"cache-control": "no-store"})


handlers = [list_guard_events, export_guard_events, request_trail, *web.handlers]
