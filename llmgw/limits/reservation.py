"""What the rate limit counted before the provider call, settled once the request has ended.

The prompt's tokens are counted as estimated up front; when the request ends the difference to the
provider's usage, the completion and the spend are added to the same scopes and windows. A daily
budget also holds the request's highest cost (``reserved_usd``, taken by
:class:`~llmgw.stages.ratelimit.ReserveBudget` once the model is known) until the real cost replaces it.

Only what was really added is settled: a request refused on its key's limit never had its estimate
added to its team's tokens (``counted``), and one whose store failed after reserving in some budgets
holds the reservation only there (``reserved``). Taking back what was never added would lower the
other scopes' counts, below zero, and let the team's other keys past their limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmgw.config import LimitSpec


@dataclass(frozen=True, slots=True)
class Reservation:
    scopes: list[tuple[str, LimitSpec]]  # ("key:<id>" or "team:<name>", its limits)
    minute: int  # the minute window counted in (epoch minutes)
    day: str  # the budget's day, UTC (YYYY-MM-DD)
    estimate: int  # the prompt tokens counted up front
    reserved_usd: float = 0.0  # added to each daily budget of ``reserved`` before the call
    counted: frozenset[str] = frozenset()  # scopes whose tokens per minute got ``estimate``
    reserved: frozenset[str] = frozenset()  # scopes whose daily budget holds ``reserved_usd``
