"""The guardrail event: one decision of one guard on one piece of text.

Stages build these rows through a :class:`GuardLog` (one request's identity and the writer's
queue, bound once), which queues them with ``gateway.writer.put("guard_events", row)``; they are
written off the request path, hash-chained, and never hold a raw PII value (only masked text and a
salted hash of each value, so a reviewer can match a value without it being stored).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Verdict = Literal["allow", "mask", "redact", "block", "flag", "strip", "error"]


def value_hash(salt: bytes, value: str) -> str:
    """Salted hash of a raw value: a reviewer with the salt can check a value, the log alone reveals nothing."""
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:32]


def guard_event(
    *,
    request_id: str,
    stage: str,
    guard: str,
    verdict: Verdict,
    policy: str,
    key_id: str | None = None,
    team: str | None = None,
    user: str | None = None,
    route: str | None = None,
    source: str | None = None,
    scores: dict[str, float] | None = None,
    entities: list[dict[str, Any]] | None = None,
    masked_text: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """A row for the ``guard_events`` table (see ``llmgw/storage`` for the table itself).

    ``entities`` items: ``{"type", "start", "end", "score", "action", "value_hash"}``, offsets into
    the original text. ``masked_text`` must never contain a raw value that policy masked or redacted.
    """
    return {
        "id": "ge_" + secrets.token_hex(10),
        "request_id": request_id,
        "created_at": datetime.now(UTC),
        "key_id": key_id,
        "team": team,
        "user": user,
        "route": route,
        "stage": stage,
        "guard": guard,
        "policy": policy,
        "verdict": verdict,
        "source": source,
        "scores": scores or {},
        "entities": entities or [],
        "masked_text": masked_text,
        "detail": detail,
    }


def nobody() -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class GuardLog:
    """Where one request's guard events go and whom they name, bound once by the stage.

    ``user`` is asked at each event: the client's ``user`` field is logged hashed until the input
    guards have settled it, as the policy wants it after (``llmgw.stages.client_user``).
    """

    put: Callable[[str, dict[str, Any]], None]
    request_id: str
    policy: str
    key_id: str | None = None
    team: str | None = None
    route: str | None = None
    user: Callable[[], str | None] = nobody

    def __call__(self, guard: str, verdict: Verdict, *, stage: str = "input", **fields: Any) -> None:
        self.put(
            "guard_events",
            guard_event(request_id=self.request_id, stage=stage, guard=guard, verdict=verdict, policy=self.policy,
                        key_id=self.key_id, team=self.team, user=self.user(), route=self.route, **fields),
        )  # fmt: skip
