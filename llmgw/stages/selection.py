"""Select model: apply the plan's model choice, once the cache has missed.

The choice itself is made by the plan stage (``stages/plan.py``) before the cache lookup, so the
cache keys on the model that answers. Here the chosen model's capabilities are checked against
the request (streaming, tools, JSON mode), the context is set for the provider call, and the
routing decision is stored on the request row and summarised in ``x-llmgw-route``.

``resolve_model`` resolves a requested name against the catalog and the caller's permissions:
explicit catalog names where the route and the key allow them; a configured alias; ``auto``,
``fast``, ``best`` and ``default`` as the route's ``default_model`` when routing is off.
"""

from __future__ import annotations

from typing import Any

from llmgw.config import ModelConfig
from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest, NotFound, PermissionDenied, clip
from llmgw.stages.base import Stage

ALIASES = frozenset({"auto", "fast", "best", "default"})


def resolve_model(gateway: Any, ctx: RequestContext, requested: str, kind: str) -> tuple[str, ModelConfig]:
    catalog: dict[str, ModelConfig] = gateway.config.models
    route = ctx.route
    name = requested
    if name not in catalog:
        aliases = gateway.config.routing.aliases
        if aliases.get(name):
            name = aliases[name][0]
        elif name in ALIASES and route is not None and route.default_model:
            name = route.default_model
        else:
            raise NotFound(f"The model {clip(requested)} does not exist", param="model")
    model = catalog[name]
    if model.kind != kind:
        raise InvalidRequest(
            f"model {name!r} is a {model.kind} model, not a {kind} model",
            param="model",
            code="wrong_model_kind",
        )
    if route is not None and "*" not in route.models and name not in route.models:
        raise PermissionDenied(f"route {ctx.route_name!r} does not allow model {name!r}", code="model_not_allowed")
    if ctx.key is not None and not ctx.key.allows_model(name):
        raise PermissionDenied(f"this key may not use model {name!r}", code="model_not_allowed")
    return name, model


class SelectEmbeddingModel(Stage):
    """``/v1/embeddings``: the requested embedding model (catalog name or alias) the caller may use."""

    name = "select_embedding_model"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        ctx.model_name, ctx.model = resolve_model(self.gateway, ctx, ctx.body["model"], "embedding")
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
        ctx.state["fallbacks"] = list(plan.fallbacks)  # consumed as the pipeline falls back
        if plan.routing is not None:
            ctx.meta["route_decision"] = plan.routing.record()
            ctx.meta["task"] = plan.routing.task
        ctx.meta.setdefault("route_decision", {"rule": "explicit" if name == ctx.model_requested else "default"})
        return None
