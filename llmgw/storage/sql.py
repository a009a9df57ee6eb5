"""Idempotent inserts: a row whose id is already stored is skipped, and the caller learns which were new.

Every write of the storage writer goes through here, so a retried batch (whose first attempt may
have committed after all) or a replayed dead-letter file never stores a row twice, and usage totals
count only the rows that were new.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


@lru_cache(maxsize=32)
def _statement(table: Table, dialect: str) -> Any:
    """Built once per table and dialect (building statements is a noticeable share of the writer's time)."""
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    keys = list(table.primary_key.columns)
    return insert_fn(table).on_conflict_do_nothing(index_elements=[c.name for c in keys]).returning(*keys)


def insert_new(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Insert ``rows``, skipping those already stored; the primary keys of the rows that were new."""
    if not rows:
        return []
    return [tuple(r) for r in conn.execute(_statement(table, conn.dialect.name), rows).all()]
