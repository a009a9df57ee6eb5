"""The one interface every pipeline stage implements.

A stage may act in three places, each optional:

* ``request(ctx)`` before the provider is called: rewrite ``ctx.body``, raise a
  :class:`~llmgw.errors.GatewayError` to refuse, or return a completion dict to answer early
  (a cache hit); the later request stages and the provider are then skipped.
* ``response(ctx, completion)`` on a non-streamed answer, and ``stream(ctx, chunks)`` on a
  streamed one: a wrapper around the chunk iterator doing constant work per chunk.
* ``done(ctx)`` once the request has ended however it ended (cache store, audit log).

The pipeline calls only what a stage overrides, so a pass-through stage costs nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from llmgw.context import RequestContext

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

Chunks = AsyncIterator[dict[str, Any]]


class Stage:
    name: ClassVar[str] = "stage"
    #: the route toggle (``routes.<name>.stages.<toggle>``) that turns the stage off; None: always on
    toggle: ClassVar[str | None] = None

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def enabled(self) -> bool:
        """Whether the gateway-wide config turns this stage on at all."""
        return True

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        return None

    async def response(self, ctx: RequestContext, completion: dict[str, Any]) -> dict[str, Any]:
        return completion

    def stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        return chunks

    def done(self, ctx: RequestContext) -> None:
        return None

    @classmethod
    def overrides(cls, method: str) -> bool:
        return getattr(cls, method) is not getattr(Stage, method)
