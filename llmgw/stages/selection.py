"""Select model: apply the plan's model choice, once the cache has missed.

The choice itself is made by the plan stage (``stages/plan.py``) before the cache lookup, so the
cache keys on the model that answers. Here the chosen model's capabilities are checked against
the request (streaming, tools, JSON mode), the context is set for the provider call, and the
routing decision is stored on the request row and summarised in ``x-llmgw-route``.

A requested name is resolved against the catalog and the caller's permissions by
:func:`llmgw.routing.resolve.resolve_model`.
"""

from __future__ import annotations

from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest
from llmgw.routing.resolve import resolve_model
from llmgw.stages.base import Stage


class SelectEmbeddingModel(Stage):
    """``/v1/embeddings``: the requested embedding model (catalog name or alias) the caller may use."""

    name = "select_embedding_model"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        ctx.model_name, ctx.model = resolve_model(
            self.gateway.config, ctx.body["model"], "embedding", ctx.route, ctx.route_name, ctx.key
        )
        ctx.provider_name = ctx.model.provider
        return None


class SelectModel(Stage):
    name = "select_model"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        plan = ctx.plan
        assert plan is not None, "the plan stage runs before model selection"
        name, model = plan.model_name, plan.model
        caps = model.capabilities
        if ctx.stream and "streaming" not in caps:
            raise InvalidRequest(f"model {name!r} does not stream", param="stream", code="unsupported_parameter")
        if ctx.body.get("tools") and "tools" not in caps:
            raise InvalidRequest(f"model {name!r} does not support tools", param="tools", code="unsupported_parameter")
        fmt = ctx.body.get("response_format") or {}
        if fmt.get("type") in ("json_object", "json_schema") and "json_mode" not in caps:
            raise InvalidRequest(
                f"model {name!r} does not support response_format {fmt.get('type')!r}",
                param="response_format",
                code="unsupported_parameter",
            )
        ctx.model_name, ctx.model, ctx.provider_name = name, model, model.provider
        ctx.fallbacks = list(plan.fallbacks)  # consumed as the pipeline falls back
        if plan.routing is not None:
            ctx.meta["route_decision"] = plan.routing.record()
            ctx.meta["task"] = plan.routing.task
        ctx.meta.setdefault("route_decision", {"rule": self.rule(ctx, name)})
        return None

    def rule(self, ctx: RequestContext, name: str) -> str:
        """Why ``name`` answers a request routing did not choose for: the client named it, an
        experiment arm switched to it, a ``routing.aliases`` entry, or the route's default model."""
        if name == ctx.model_requested:
            return "explicit"
        if (ctx.meta.get("experiment") or {}).get("model") == name:
            return "experiment"
        if ctx.model_requested in self.gateway.config.routing.aliases:
            return "alias"
        return "default"
