"""Admin endpoints of the cache: what it holds, and dropping entries on demand.

Template and collection changes never need this for correctness (a new commit or collection
version is a new scope, so old entries simply stop matching); it frees their space at once and
lets an operator withdraw answers of a route, template or collection.
"""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, Response, delete, get

from llmgw.api.admin import ADMIN_HEADERS, require_admin
from llmgw.api.common import gateway_of, json_response


@get("/admin/cache")
async def cache_stats(request: Request[Any, Any, Any]) -> Response[bytes]:
    await require_admin(request)
    cache = gateway_of(request).cache
    if cache is None:
        return json_response({"enabled": False}, ADMIN_HEADERS)
    memory = cache.memory
    with memory.lock:
        routes = {name: len(order) for name, order in memory.routes.items() if order}
        scopes = len(memory.indexes)
        answers = sum(1 for e in memory.entries.values() if e.answer_vector is not None)
    return json_response({"enabled": True, "entries": len(memory), "routes": routes, "semantic_scopes": scopes,
                          "answer_vectors": answers, "exact_store": cache.config.exact_store,
                          "feedback": cache.error_estimate()}, ADMIN_HEADERS)  # fmt: skip


@delete("/admin/cache", status_code=200)
async def cache_invalidate(
    request: Request[Any, Any, Any], route: str | None = None, template: str | None = None,
    collection: str | None = None,
) -> Response[bytes]:  # fmt: skip
    await require_admin(request)
    cache = gateway_of(request).cache
    if cache is None:
        return json_response({"deleted": 0}, ADMIN_HEADERS)
    deleted = await anyio.to_thread.run_sync(
        lambda: cache.memory.invalidate(route=route, template=template, collection=collection)
    )
    if cache.semantic is not cache.memory:  # the shared semantic tier (OpenSearch) kept serving them by meaning
        deleted += await anyio.to_thread.run_sync(
            lambda: cache.semantic.invalidate(route=route, template=template, collection=collection)
        )
    if cache.redis is not None:
        deleted += await cache.redis.invalidate(route=route, template=template, collection=collection)
    return json_response({"deleted": deleted}, ADMIN_HEADERS)


handlers = [cache_stats, cache_invalidate]
