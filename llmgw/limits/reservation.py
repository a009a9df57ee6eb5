"""What the rate limit counted before the provider call, settled once the request has ended.

The prompt's tokens are counted as estimated up front; when the request ends the difference to the
provider's usage, the completion and the spend are added to the same scopes and windows.
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
