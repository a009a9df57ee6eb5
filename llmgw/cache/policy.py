"""Per-request cache policy: whether to look up, whether to store, and the route's settings.

The request steers with ``Cache-Control`` (``no-cache``: skip the lookup, still store the fresh
answer; ``no-store``: store nothing from this request) and the gateway option ``cache``
(``"llmgw": {"cache": "force" | "off" | "refresh" | "no-store"}`` or the ``x-llmgw-cache``
header): ``force`` caches whatever the temperature, ``off`` bypasses it entirely, ``refresh`` is
``no-cache`` that also marks the entry that would have answered wrong (as negative feedback on a hit
does: the client did not want it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmgw.cache.bounds import threshold_for
from llmgw.config import CacheConfig, RouteConfig
from llmgw.options import CacheOption


@dataclass(frozen=True, slots=True)
class Settings:
    ttl_s: float
    max_entries: int
    threshold: float
    semantic: bool
    max_temperature: float
    answer_threshold: float | None = None


def settings_for(config: CacheConfig, route: RouteConfig | None) -> Settings:
    over = route.cache if route is not None else None

    def pick(name: str) -> Any:
        value = getattr(over, name, None) if over is not None else None
        return getattr(config, name) if value is None else value

    # the most specific setting wins: the route's threshold, then the route's own error bound (before the
    # section's threshold: a route that asks for a stricter bound must get it), the section's threshold,
    # and last the section's bound (cache.max_wrong_rate, bounds.py)
    threshold = over.threshold if over is not None else None
    if threshold is None and over is not None and over.max_wrong_rate is not None:
        threshold = threshold_for(over.max_wrong_rate, config.veto)
    if threshold is None:
        threshold = config.threshold
    if threshold is None:
        threshold = threshold_for(config.max_wrong_rate, config.veto)
    answer_threshold = pick("answer_threshold")
    # No cosine passes a threshold of 1.0 (and with the shipped table every bound's row is 1.0): without the
    # answer basis such a tier serves no hit, so it is off rather than an embedding and a search per request.
    semantic = bool(pick("semantic")) and (threshold < 1.0 or answer_threshold is not None)
    return Settings(pick("ttl_s"), pick("max_entries"), threshold, semantic, pick("max_temperature"),
                    answer_threshold)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Decision:
    lookup: bool
    store: bool
    reason: str | None = None  # why the lookup (or the store) is skipped
    refresh: bool = False  # ``cache: refresh``: what would have answered is marked wrong


def decide(option: CacheOption | None, cache_control: str, temperature: Any, settings: Settings) -> Decision:
    """From the ``cache`` option (checked by ``llmgw.options``), the ``Cache-Control`` header and
    the request's temperature."""
    directives = {d.strip().split("=")[0] for d in cache_control.lower().split(",")}
    if option == "off":
        return Decision(False, False, "off")
    if option != "force" and isinstance(temperature, int | float) and temperature > settings.max_temperature:
        return Decision(False, False, "temperature")
    store = "no-store" not in directives and option != "no-store"
    if option == "refresh":
        return Decision(False, store, "no-cache", refresh=True)
    if "no-cache" in directives:
        return Decision(False, store, "no-cache")
    return Decision(True, store, None if store else "no-store")
