"""What one request retrieves, once decided: the collection, how many passages, and the filters.

The request context carries it (decided by ``stages/retrieval_plan.py`` before the cache lookup);
the cache keys on it and the retrieval stage carries it out. A plain value of the retrieval
domain, so the context does not import the stage that decides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmgw.retrieval.store import Filters


@dataclass(slots=True)
class Plan:
    collection: str
    k: int | None
    filters: Filters
    min_score: float | None
    mode: str | None
    template: str | None  # None: the collection's own (known once it is open)
    tenant: str | None
    required: bool
