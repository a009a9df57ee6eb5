"""What to retrieve for one request: the route's retrieval settings refined by the request's own.

A request may pick another collection only among those its route allows, lower or raise ``k``
within 1–50, add filters (never remove the route's) and set a floor. Errors are 400s naming the
offending field.
"""

from __future__ import annotations

from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import CollectionNotAllowed, InvalidRequest, clip
from llmgw.retrieval.collection import NAME
from llmgw.retrieval.plan import Plan

FIELDS = {"collection", "k", "filters", "min_score", "mode"}


def _option(ctx: RequestContext) -> dict[str, Any] | None:
    option = ctx.options.get("retrieval")
    if option is None or option is False:
        return None if option is None else {"off": True}
    if isinstance(option, str):
        return {"collection": option}
    if not isinstance(option, dict):
        raise InvalidRequest("llmgw.retrieval must be an object or a collection name", param="llmgw.retrieval")
    unknown = sorted(set(option) - FIELDS)
    if unknown:
        raise InvalidRequest(
            f"unknown field llmgw.retrieval.{unknown[0]} (known: {', '.join(sorted(FIELDS))})",
            param=f"llmgw.retrieval.{unknown[0]}",
        )
    return option


def _check(option: dict[str, Any]) -> None:
    k = option.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50):
        raise InvalidRequest("llmgw.retrieval.k must be an integer from 1 to 50", param="llmgw.retrieval.k")
    floor = option.get("min_score")
    if floor is not None and (not isinstance(floor, int | float) or isinstance(floor, bool) or floor < 0):
        raise InvalidRequest("llmgw.retrieval.min_score must be a number ≥ 0", param="llmgw.retrieval.min_score")
    filters = option.get("filters")
    if filters is not None:
        ok = isinstance(filters, dict) and all(
            isinstance(v, str | int | float | bool)
            or (isinstance(v, list) and all(isinstance(x, str | int | float | bool) for x in v))
            for v in filters.values()
        )
        if not ok:
            raise InvalidRequest(
                "llmgw.retrieval.filters must map fields to a value or a list of values",
                param="llmgw.retrieval.filters",
            )
    mode = option.get("mode")
    if mode is not None and mode not in ("hybrid", "dense", "bm25"):
        raise InvalidRequest("llmgw.retrieval.mode must be hybrid, dense or bm25", param="llmgw.retrieval.mode")


def plan_for(ctx: RequestContext) -> Plan | None:
    """The plan, or None when this request retrieves nothing."""
    route = ctx.route.retrieval if ctx.route is not None else None
    option = _option(ctx) or {}
    if option.get("off"):
        return None
    _check(option)
    name = option.get("collection") or (route.collection if route else None)
    if not name:
        return None
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequest(f"invalid collection name {clip(name)}", param="llmgw.retrieval.collection")
    allowed = {route.collection, *route.collections} if route else set()
    if name not in allowed and "*" not in allowed:
        raise CollectionNotAllowed(
            f"collection {name!r} is not allowed on route {ctx.route_name!r}",
            param="llmgw.retrieval.collection",
        )
    filters = dict(option.get("filters") or {})
    filters.update(route.filters if route else {})  # the route's filters win: a request narrows, never widens
    key = ctx.key
    tenant = (key.team or key.id) if key is not None and key.id else None
    k = option.get("k") or (route.k if route else None)
    floor = option.get("min_score")
    return Plan(
        collection=name,
        k=k,
        filters=filters,
        min_score=float(floor) if floor is not None else (route.min_score if route else None),
        mode=option.get("mode") or (route.mode if route else None),
        template=route.template if route else None,
        tenant=tenant,
        required=bool(route.required) if route else False,
    )
