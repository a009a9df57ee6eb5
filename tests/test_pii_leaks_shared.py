"""The leak audit of :mod:`tests.test_pii_leaks` on the shared backends of a production deployment:
PostgreSQL for storage, Redis for the exact cache tier and the rate-limit counters.

The same traffic (:func:`~tests.test_pii_leaks.run_traffic`) goes through a gateway on a fresh
PostgreSQL schema and a Redis key prefix of its own; then every column of every table of that
schema (cast to text) and every Redis key and value under the prefix (strings, hashes, lists,
sets, sorted sets) are searched for the raw values, besides the surfaces outside the database.

Skipped when PostgreSQL or Redis cannot be reached, unless ``LLMGW_REQUIRE_POSTGRES=1`` or
``LLMGW_REQUIRE_REDIS=1`` (then the test fails).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from tests import test_pii_leaks as base
from tests.conftest import PG_BASE, fresh_schema
from tests.upstream import FakeUpstream

REDIS_URL = os.environ.get("LLMGW_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: the gateway's database connections give up on a lock after this (the dead-letter step)
LOCK_TIMEOUT_MS = 500


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database for this module, dropped afterwards."""
    with fresh_schema("llmgw_pii") as schema:
        yield schema


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    """A key prefix of this module's own; only its keys are deleted afterwards (never FLUSHDB)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if os.environ.get("LLMGW_REQUIRE_REDIS"):
            pytest.fail(f"LLMGW_REQUIRE_REDIS is set and Redis is not reachable: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"llmgw-test-pii:{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def pg_url(schema: str) -> str:
    options = f"-csearch_path%3D{schema}%20-clock_timeout%3D{LOCK_TIMEOUT_MS}"
    return f"{PG_BASE}?options={options}"


@contextlib.contextmanager
def pg_locked(schema: str) -> Iterator[None]:
    """Every table of the schema locked: the gateway's writes fail after ``lock_timeout``."""
    with psycopg.connect(PG_BASE, connect_timeout=3) as conn:  # one transaction until the block ends
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            (schema,),
        ).fetchall()
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for (t,) in tables)
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(names))
        try:
            yield
        finally:
            conn.rollback()


@pytest.fixture(scope="module")
def audit(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory, pg_schema: str, redis_prefix: str
) -> Iterator[base.Audit]:
    shared: dict[str, dict[str, Any]] = {
        "cache": {"exact_store": "redis", "redis_url": REDIS_URL, "redis_prefix": f"{redis_prefix}cache:"},
        # generous limits, so the counters are written to Redis for every request
        "limits": {"enabled": True, "store": "redis", "redis_url": REDIS_URL, "namespace": f"{redis_prefix}limits",
                   "default_key": {"requests_per_minute": 10_000, "tokens_per_minute": 10_000_000,
                                   "daily_budget_usd": 1_000.0}},
    }  # fmt: skip
    data_dir = tmp_path_factory.mktemp("leaks-shared")

    def cached(audit: base.Audit) -> None:  # a wrong-answer feedback deletes the entry later in the traffic
        audit.midway.update({f"{k} (while cached)": v for k, v in redis_dump(redis_prefix).items()})

    locked = lambda _: pg_locked(pg_schema)  # noqa: E731
    with base.audited_gateway(upstream, data_dir, pg_url(pg_schema), locked, cached, **shared) as result:
        yield result


# --- the shared surfaces -----------------------------------------------------------------------


def postgres(audit: base.Audit, schema: str) -> dict[str, str]:
    """Every column of every table of the schema cast to text (``bytea`` decoded as UTF-8), one
    surface per ``table.column``, naming the row's first column."""
    audit.gw.flush()
    out: dict[str, str] = {}
    with psycopg.connect(PG_BASE, connect_timeout=3) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
            (schema,),
        ).fetchall()
        by_table: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in columns:
            by_table.setdefault(table, []).append((column, kind))
        for table, cols in by_table.items():
            parts = [
                sql.SQL("convert_from({}, 'UTF8')" if kind == "bytea" else "{}::text").format(sql.Identifier(c))
                for c, kind in cols
            ]
            query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), sql.Identifier(schema, table))
            for row in conn.execute(query):
                for (name, _), value in zip(cols, row, strict=True):
                    where = f"pg:{table}.{name} [{cols[0][0]}={row[0]}]"
                    out[where] = out.get(where, "") + str(value)
    return out


def redis_dump(prefix: str) -> dict[str, str]:
    """Every key under the prefix and its value, whatever its type, one surface per key."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=False)
    out: dict[str, str] = {}

    def text(value: bytes | str | float) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    try:
        for key in client.scan_iter(f"{prefix}*", count=500):
            kind = text(client.type(key))
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [f"{text(k)}={text(v)}" for k, v in client.hgetall(key).items()]
            elif kind == "list":
                values = list(client.lrange(key, 0, -1))
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = [f"{text(m)}:{s}" for m, s in client.zrange(key, 0, -1, withscores=True)]  # type: ignore[str-unpack]
            elif kind == "stream":
                values = [repr(e) for e in client.xrange(key) or []]
            elif kind == "none":  # expired between SCAN and TYPE
                continue
            else:
                raise AssertionError(f"redis key {key!r} of a type this dump does not read: {kind}")
            out[f"redis:{kind} {text(key)}"] = text(key) + "\n" + "\n".join(text(v) for v in values)
    finally:
        client.close()
    return out


SURFACES = ["postgres", "redis", "files", "logs", "metrics", "headers", "error_bodies", "admin", "spans", "upstream"]


def found_on(audit: base.Audit, name: str, schema: str, prefix: str) -> dict[str, str]:
    if name == "postgres":
        return postgres(audit, schema)
    if name == "redis":
        return {**audit.midway, **redis_dump(prefix)}
    return base.surface(audit, name)


@pytest.mark.parametrize("name", SURFACES)
def test_no_raw_value_on(audit: base.Audit, name: str, pg_schema: str, redis_prefix: str) -> None:
    found = found_on(audit, name, pg_schema, redis_prefix)
    assert found, f"{name}: nothing to search (the audit would pass vacuously)"
    leaks = base.where_found(found)
    assert not leaks, "\n".join(leaks)


def test_the_traffic_took_every_path(audit: base.Audit) -> None:
    base.test_the_traffic_took_every_path(audit)


def test_the_shared_backends_were_used(audit: base.Audit, pg_schema: str, redis_prefix: str) -> None:
    """Not a vacuous sweep: the rows are in PostgreSQL (and no SQLite file was made), the cached
    answer and the limit counters are in Redis under the prefix."""
    tables = postgres(audit, pg_schema)
    assert any(k.startswith("pg:requests.") for k in tables) and any(k.startswith("pg:guard_events.") for k in tables)
    assert any(k.startswith("pg:feedback.comment") for k in tables)
    masked = "".join(v for k, v in tables.items() if k.startswith("pg:guard_events.masked_text"))
    assert "<EMAIL_ADDRESS_1>" in masked or "<EMAIL_ADDRESS>" in masked
    assert not list(audit.data_dir.glob("*.db")), "no SQLite database: the storage is PostgreSQL"
    keys = {**audit.midway, **redis_dump(redis_prefix)}
    cached = [v for k, v in keys.items() if k.startswith(f"redis:string {redis_prefix}cache:")]
    assert cached and any("cache me" in v for v in cached), keys.keys()
    assert any(k.startswith(f"redis:string {redis_prefix}limits") for k in keys), keys.keys()
    status = audit.gw.admin().get("/readyz").json()["checks"]
    assert status.get("cache_redis") is True and status.get("limits_redis") is True, status


def test_a_feedback_label_holding_pii_is_not_stored_raw(audit: base.Audit, pg_schema: str) -> None:
    """As on SQLite: a label holding PII is refused; the same text as a comment is stored masked."""
    email = "label.owner@fabrikam.example"
    request_id = audit.gw.rows()[0]["id"]
    with audit.gw.admin() as admin:
        refused = admin.post("/v1/feedback", json={"request_id": request_id, "label": f"wrong, ask {email}"})
        assert refused.status_code == 400 and email not in refused.text, refused.text
        kept = admin.post(
            "/v1/feedback", json={"request_id": request_id, "label": "wrong_answer", "comment": f"ask {email}"}
        )
        assert kept.status_code == 201, kept.text
    stored = postgres(audit, pg_schema)
    assert any(k.startswith("pg:feedback.label") and "wrong_answer" in v for k, v in stored.items())
    assert not base.where_found(stored, {"EMAIL_ADDRESS": email})


def test_the_redis_dump_reads_every_type(redis_prefix: str) -> None:
    """The dump itself: a raw value in a hash, list, set or sorted set is found and its key named."""
    prefix = f"{redis_prefix}dump-check:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.hset(f"{prefix}h", "field", base.RAW["US_SSN"])
        client.rpush(f"{prefix}l", "x", base.RAW["EMAIL_ADDRESS"])
        client.sadd(f"{prefix}s", base.RAW["IBAN_CODE"])
        client.zadd(f"{prefix}z", {base.RAW["PHONE_NUMBER"]: 1.0})
        client.set(f"{prefix}{base.RAW['PERSON']}", "a raw value in the key's name")
        leaks = base.where_found(redis_dump(prefix))
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
    assert sorted(leaks) == [
        f"redis:hash {prefix}h: US_SSN ('536-22-8726')",
        f"redis:list {prefix}l: EMAIL_ADDRESS ('dana.reyes@northwind.example')",
        f"redis:set {prefix}s: IBAN_CODE ('GB82 WEST 1234 5698 7654 32')",
        f"redis:string {prefix}Dana Reyes: PERSON ('Dana Reyes')",
        f"redis:zset {prefix}z: PHONE_NUMBER ('(212) 555-0147')",
    ]
