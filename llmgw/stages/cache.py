"""Cache: answer from the exact or semantic cache before the provider, store after it.

Pass-through for now: the semantic-cache issue fills them in. ``CacheLookup.request`` returning
a completion dict is how a hit answers early; the pipeline replays it as a stream if asked.
"""

from __future__ import annotations

from llmgw.stages.base import Stage


class CacheLookup(Stage):
    name = "cache_lookup"
    toggle = "cache"

    def enabled(self) -> bool:
        return self.gateway.config.cache.enabled


class CacheStore(Stage):
    name = "cache_store"
    toggle = "cache"

    def enabled(self) -> bool:
        return self.gateway.config.cache.enabled
