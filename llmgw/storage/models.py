"""The tables: API keys, one row per request, and usage aggregated per key, team, model and day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Table
from sqlmodel import Field, SQLModel


def table(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a ``table=True`` model, for Core queries and bulk inserts."""
    # SQLModel sets __table__ when a table class is created; its type stubs do not declare it
    return model.__table__  # type: ignore[attr-defined]


class ApiKey(SQLModel, table=True):
    """A virtual API key. Only its SHA-256 is stored; the clear key is shown once at creation."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=24, description="first characters, to recognise a key in listings")
    sha256: str = Field(max_length=64, unique=True, index=True)
    team: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=200)
    models: list[str] = Field(default_factory=lambda: ["*"], sa_column=Column(JSON, nullable=False))
    routes: list[str] = Field(default_factory=lambda: ["*"], sa_column=Column(JSON, nullable=False))
    #: tool names (patterns) its requests may offer; null: any (a column added later, so nullable)
    tools: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime
    revoked_at: datetime | None = None
    updated_at: datetime


class RequestRow(SQLModel, table=True):
    """One chat or embeddings request as it ended (or was cut)."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_created_at", "created_at"), Index("ix_requests_key_id", "key_id"))

    id: str = Field(primary_key=True, max_length=40)
    created_at: datetime
    endpoint: str = Field(max_length=40)
    api: str | None = Field(default=None, max_length=20, description="chat | embeddings | messages | responses")
    key_id: str | None = Field(default=None, max_length=40)
    team: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=200)
    route: str = Field(max_length=200)
    model_requested: str | None = Field(default=None, max_length=200)
    model_used: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    stream: bool = False
    status: str = Field(max_length=40, description="ok | error | client_disconnected | blocked | cached")
    http_status: int
    error_code: str | None = Field(default=None, max_length=80)
    error_message: str | None = Field(default=None, max_length=2000)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = Field(default=None, description="prompt tokens read from the provider's prompt cache")
    cache_write_tokens: int | None = Field(default=None, description="prompt tokens written to the prompt cache")
    reasoning_tokens: int | None = Field(default=None, description="completion tokens spent reasoning")
    usage_estimated: bool = False
    cost_usd: float = 0.0
    attempts: int = 1
    total_ms: float = 0.0
    ttft_ms: float | None = None
    upstream_ms: float | None = None
    prompt_id: str | None = Field(default=None, max_length=300)
    prompt_commit: str | None = Field(default=None, max_length=64)
    experiment: str | None = Field(default=None, max_length=200, index=True)
    experiment_arm: str | None = Field(default=None, max_length=200)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    sanitised: str | None = Field(default=None, max_length=2000, description="what the writer changed to store it")
    #: an anonymous request's feedback token, hashed (the token itself is never stored): whoever shows
    #: the token received the answer and may give feedback on it (``api/feedback.py``)
    feedback_sha256: str | None = Field(default=None, max_length=64)


class FeedbackRow(SQLModel, table=True):
    """A score or label attached to a request (``POST /v1/feedback``)."""

    __tablename__ = "feedback"

    id: str = Field(primary_key=True, max_length=40)
    request_id: str = Field(max_length=40, index=True)
    created_at: datetime
    key_id: str | None = Field(default=None, max_length=40)
    score: float | None = None
    label: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)
    sanitised: str | None = Field(default=None, max_length=2000, description="what the writer changed to store it")


class UsageRow(SQLModel, table=True):
    """Running totals; ``key_id`` and ``team`` are empty strings (not NULL) so they can key a row."""

    __tablename__ = "usage"

    day: str = Field(primary_key=True, max_length=10)
    key_id: str = Field(primary_key=True, max_length=40)
    team: str = Field(primary_key=True, max_length=200)
    model: str = Field(primary_key=True, max_length=200)
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
