"""Retrieve: augment the messages with passages from a collection (OpenSearch or local).

Pass-through for now: the retrieval issue fills it in.
"""

from __future__ import annotations

from llmgw.stages.base import Stage


class Retrieve(Stage):
    name = "retrieve"
    toggle = "retrieval"

    def enabled(self) -> bool:
        return self.gateway.config.retrieval.enabled
