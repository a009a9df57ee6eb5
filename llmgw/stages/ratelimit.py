"""Rate limit: requests and tokens per minute per key and team.

Pass-through for now: the model-selection issue fills it in with Litestar stores (memory, Redis).
"""

from __future__ import annotations

from llmgw.stages.base import Stage


class RateLimit(Stage):
    name = "rate_limit"
    toggle = "rate_limit"

    def enabled(self) -> bool:
        return self.gateway.config.routing.enabled
