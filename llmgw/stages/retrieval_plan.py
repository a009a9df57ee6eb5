"""What to retrieve for one request: the route's retrieval settings refined by the request's own.

A request may pick another collection only among those its route allows, lower or raise ``k``
within 1–50, add filters (never remove the route's) and set a floor. The option itself is checked
when the request is parsed (``llmgw.options``); here it meets the route: a collection the route
does not allow is a 403 naming the field, and one it allows (``"*"``) that does not exist a 404: a
typo must not be answered without grounding (or, on a route that requires retrieval, as a 503).
"""

from __future__ import annotations

from pathlib import Path

from llmgw.context import RequestContext
from llmgw.errors import CollectionNotAllowed, CollectionNotFound, InvalidRequest, clip
from llmgw.options import RetrievalOption
from llmgw.retrieval.collection import NAME
from llmgw.retrieval.plan import Plan


def plan_for(ctx: RequestContext, collections_dir: str | None = None) -> Plan | None:
    """The plan, or None when this request retrieves nothing; ``collections_dir``: where a collection the
    request names must exist (a route's own is the operator's: its failure is the retrieval's)."""
    route = ctx.route.retrieval if ctx.route is not None else None
    option = ctx.options.retrieval or RetrievalOption()
    if option.off:
        return None
    name = option.collection or (route.collection if route else None)
    if not name:
        return None
    if not NAME.match(name):  # the route's own (a request's is checked as it is parsed)
        raise InvalidRequest(f"invalid collection name {clip(name)}", param="llmgw.retrieval.collection")
    allowed = {route.collection, *route.collections} if route else set()
    if name not in allowed and "*" not in allowed:
        raise CollectionNotAllowed(
            f"collection {name!r} is not allowed on route {ctx.route_name!r}",
            param="llmgw.retrieval.collection",
        )
    own = route.collection if route else None
    if collections_dir is not None and name != own and not (Path(collections_dir) / f"{name}.yaml").is_file():
        raise CollectionNotFound(f"no collection {name!r}", param="llmgw.retrieval.collection")
    filters = dict(option.filters or {})
    filters.update(route.filters if route else {})  # the route's filters win: a request narrows, never widens
    key = ctx.key
    tenant = (key.team or key.id) if key is not None and key.id else None
    return Plan(
        collection=name,
        k=option.k or (route.k if route else None),
        filters=filters,
        min_score=option.min_score if option.min_score is not None else (route.min_score if route else None),
        mode=option.mode or (route.mode if route else None),
        template=route.template if route else None,
        tenant=tenant,
        required=bool(route.required) if route else False,
    )
