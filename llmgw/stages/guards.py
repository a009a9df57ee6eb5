"""Guards: PII masking and prompt-injection detection on the way in; moderation and PII
restoration on the way out (streaming-aware).

Pass-through for now: the guardrails issue fills them in.
"""

from __future__ import annotations

from llmgw.stages.base import Stage


class InputGuards(Stage):
    name = "input_guards"
    toggle = "input_guards"

    def enabled(self) -> bool:
        return self.gateway.config.guards.enabled


class OutputGuards(Stage):
    name = "output_guards"
    toggle = "output_guards"

    def enabled(self) -> bool:
        return self.gateway.config.guards.enabled
