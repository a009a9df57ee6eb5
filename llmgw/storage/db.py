"""Database engines: SQLite by default, PostgreSQL by URL (psycopg 3)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import SQLModel, create_engine

from llmgw.audit import models as audit_models  # noqa: F401  (registers the guard_events tables)
from llmgw.errors import GatewayError
from llmgw.storage import models  # noqa: F401  (registers the tables)

CONNECT_TIMEOUT_S = 5
# What a request that reads or writes the database directly (the admin API, a lookup of an unknown
# key) sees while the database is down or unreachable: the server's fault, and a passing one (503).
log = logging.getLogger("llmgw.storage")
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def unavailable(exc: BaseException, where: str) -> GatewayError:
    """A database that cannot be reached, as the client sees it: 503 ``storage_unavailable``, a
    one-line warning (the driver's words, never the SQL or its values) instead of a traceback."""
    cause = str(getattr(exc, "orig", None) or exc).strip()
    log.warning("database unavailable on %s: %s", where, cause.splitlines()[0][:200] if cause else type(exc).__name__)
    return GatewayError(
        "the database is unavailable; try again shortly", status=503, code="storage_unavailable",
        headers={"retry-after": "5"},
    )  # fmt: skip


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the tables created; SQLite files get WAL and their folder."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
    else:
        # an unreachable database must fail a connection in seconds, not hang the writer (and shutdown)
        timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_S}
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=timeout)
    create_tables(engine)
    add_missing_columns(engine)
    return engine


def create_tables(engine: Engine, attempts: int = 3) -> None:
    """``create_all``, tolerating another replica creating the same tables at the same moment.

    ``create_all`` checks then creates; two gateways starting together on one database can both
    see a table missing and one of them then fails with "already exists". Trying again sees it.
    """
    for attempt in range(attempts):
        try:
            SQLModel.metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def add_missing_columns(engine: Engine) -> None:
    """Additive migration: nullable columns added to a model since a table was created.

    ``create_all`` creates missing tables but never alters existing ones; every column added to
    the models later is nullable (or has a default), so ``ALTER TABLE ... ADD COLUMN`` is enough.
    """
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            existing = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in existing and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
