"""Retrieve: ground the answer in passages from a collection, cited and treated as untrusted data.

The collection, k, filters and floor come from the route (``routes.<r>.retrieval``) and may be
refined by the request (``"llmgw": {"retrieval": {...}}``) within what the route allows; the plan
stage works them out once (``ctx.plan.retrieval``), before the cache lookup that keys on them. The
passages go through the indirect-injection guard (source ``retrieved``) before they are inserted
through a template from ``prompts/`` that marks them as data and numbers them for citation.
The sources used are returned in ``x-llmgw-sources`` and in an ``llmgw`` object of the response.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio

from llmgw.context import RequestContext
from llmgw.errors import NotFound, RetrievalTemplateMissing, RetrievalUnavailable
from llmgw.messages import insert_before_last_user, last_user_text
from llmgw.retrieval.collection import CollectionError
from llmgw.retrieval.plan import Plan
from llmgw.retrieval.store import Hit
from llmgw.stages.base import Chunks, Stage
from llmgw.stages.retrieval_guard import screen
from llmgw.templates.store import Address, WorkingTreeSource, load_template
from llmgw.templates.template import CompiledTemplate

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

log = logging.getLogger("llmgw.retrieval")


def passage_variables(hits: list[Hit]) -> list[dict[str, Any]]:
    """What the template sees; a passage cannot close its own ``<passage>`` element."""
    return [
        {
            "n": n,
            "id": h.chunk.id,
            "title": h.chunk.title.replace('"', "'"),
            "section": h.chunk.heading.replace('"', "'"),
            "text": h.chunk.text.replace("</passage", "<\\/passage"),
            "score": h.score,
        }
        for n, h in enumerate(hits, start=1)
    ]


def sources_header(hits: list[Hit]) -> str:
    return ", ".join(f"{quote(h.chunk.id, safe='')};score={h.score:.4f}" for h in hits)


class Retrieve(Stage):
    name = "retrieve"
    toggle = "retrieval"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self._templates: dict[str, Any] = {}

    def enabled(self) -> bool:
        return self.gateway.config.retrieval.enabled

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        plan = ctx.plan.retrieval if ctx.plan is not None else None  # decided by the plan stage
        if plan is None:
            return None
        question = last_user_text(ctx.body)
        if not question.strip():
            return None
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.gateway.config.retrieval.timeout_s):
                # abandoned on timeout: the thread finishes its search in the background while the
                # request goes on without passages (anyio's default waits for the thread, whatever the timeout)
                hits = await anyio.to_thread.run_sync(self.search, plan, question, abandon_on_cancel=True)
        except (CollectionError, TimeoutError) as exc:
            self.failed(ctx, plan, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - stores and embedding APIs raise their own types
            self.failed(ctx, plan, exc)
            return None
        hits = await screen(self.gateway, ctx, hits)
        ctx.meta["retrieval"] = {
            "collection": plan.collection,
            "version": self.gateway.retrieval.collection_version(plan.collection),
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "passages": [{"id": h.chunk.id, "score": round(h.score, 6)} for h in hits],
        }
        ctx.sources = {"collection": plan.collection, "sources": [h.public() for h in hits]}
        ctx.response_headers["x-llmgw-sources"] = sources_header(hits)
        if hits:
            added = await self.render(plan, hits)
            ctx.body["messages"] = insert_before_last_user(ctx.body["messages"], added)
        return None

    def search(self, plan: Plan, question: str) -> list[Hit]:
        collection = self.gateway.retrieval.collection(plan.collection)
        plan.template = plan.template or collection.spec.template
        return collection.search(question, plan.k, plan.filters, plan.tenant, plan.min_score, plan.mode)

    def failed(self, ctx: RequestContext, plan: Plan, exc: BaseException) -> None:
        """Log the failure in full (and on the request row); the client's 503 names only its kind.

        The detail is the operator's: a collection file's error names its path on the server, and a
        store's connection error its URL (docs/retrieval.md: server paths never reach a client)."""
        kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        reason = kind if isinstance(exc, TimeoutError) else f"{kind}: {exc}"
        log.warning("retrieval from %s failed: %s", plan.collection, reason)
        ctx.meta["retrieval"] = {"collection": plan.collection, "error": reason[:500]}
        if plan.required:
            raise RetrievalUnavailable(
                f"retrieval from collection {plan.collection!r} failed ({kind}); the gateway's log has the detail"
            )
        ctx.response_headers["x-llmgw-retrieval"] = "error"

    async def render(self, plan: Plan, hits: list[Hit]) -> list[dict[str, Any]]:
        config = self.gateway.config.templates
        assert plan.template is not None
        variables = {"passages": passage_variables(hits), "collection": plan.collection}
        template: CompiledTemplate | None
        try:
            if config.enabled:  # versioned like every template: the default ref of the prompts repository
                template = await self.gateway.prompts.get(Address.parse(plan.template))
            else:  # templates off: the file in the working tree, read once
                template = self._templates.get(plan.template)
                if template is None:
                    source = WorkingTreeSource(Path(config.repo))
                    template = await anyio.to_thread.run_sync(
                        load_template, source, config.dir, plan.template, config.max_output_chars
                    )
                    self._templates[plan.template] = template
        except NotFound as exc:
            raise RetrievalTemplateMissing(f"retrieval template {plan.template!r} not found: {exc.message}") from None
        return template.render(variables, param="retrieval template")


class AttachSources(Stage):
    """Adds the ``llmgw`` object (collection and sources) to the answer: the body, or the first chunk."""

    name = "attach_sources"
    toggle = "retrieval"

    def enabled(self) -> bool:
        return self.gateway.config.retrieval.enabled

    async def response(self, ctx: RequestContext, completion: dict[str, Any]) -> dict[str, Any]:
        sources = ctx.sources
        if sources is not None:
            completion["llmgw"] = {**(completion.get("llmgw") or {}), **sources}
        return completion

    async def stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        first = True
        async for chunk in chunks:
            if first:
                first = False
                sources = ctx.sources
                if sources is not None:
                    chunk = {**chunk, "llmgw": {**(chunk.get("llmgw") or {}), **sources}}
            yield chunk
