"""The ``guard_events`` table (one guard decision per row) and the retention checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class GuardEventRow(SQLModel, table=True):
    """A guard decision as written by the storage writer: the fields of ``guard_event()``, the
    denormalised ``entity_types`` / ``value_hashes`` filter columns, and the hash chain.

    ``created_at`` is UTC (timestamptz on PostgreSQL). Never a raw PII value: only masked text and salted hashes.
    """

    __tablename__ = "guard_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_guard_events_chain_seq"),
        Index("ix_guard_events_created_at_id", "created_at", "id"),
        Index("ix_guard_events_request_id", "request_id", "created_at"),
        Index("ix_guard_events_key_id", "key_id", "created_at"),
        Index("ix_guard_events_team", "team", "created_at"),
        Index("ix_guard_events_guard", "guard", "created_at"),
        Index("ix_guard_events_verdict", "verdict", "created_at"),
        Index("ix_guard_events_stage", "stage", "created_at"),
    )

    id: str = Field(primary_key=True)
    chain: str = Field(description="one chain per writer process: hostname-pid-start-random")
    seq: int = Field(description="1, 2, 3, ... within the chain")
    request_id: str
    created_at: datetime
    key_id: str | None = None
    team: str | None = None
    user: str | None = None
    route: str | None = None
    stage: str
    guard: str
    policy: str
    verdict: str = Field(description="allow | mask | redact | block | flag | strip | error")
    source: str | None = None
    scores: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    entities: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    entity_types: str | None = Field(default=None, description="',EMAIL_ADDRESS,PHONE_NUMBER,' for LIKE filters")
    value_hashes: str | None = Field(default=None, description="',h1,h2,': the entities' salted value hashes")
    masked_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """Where a chain resumes after retention deleted its oldest rows: the last deleted row's seq and hash."""

    __tablename__ = "audit_checkpoints"

    chain: str = Field(primary_key=True)
    seq: int
    hash: str = Field(max_length=64)
    deleted: int = Field(0, description="rows of this chain deleted by retention so far")
    pruned_at: datetime
