"""Select model: resolve the model name against the catalog and the caller's permissions.

Explicit catalog names are honoured where the route and the key allow them, with the route's
``selection.fallbacks`` behind them. With ``routing.enabled``, ``auto``, ``fast`` and ``best``
choose by task and cost (``llmgw.routing``): the task comes from the request (``llmgw.task`` or
``x-llmgw-task``) or the task classifier; the decision is stored on the request row and
summarised in ``x-llmgw-route``. Without it they mean the route's ``default_model``.
"""

from __future__ import annotations

from typing import Any

import anyio

from llmgw.config import ModelConfig, RouteSelectionConfig
from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest, NotFound, PermissionDenied
from llmgw.routing.select import Decision, candidates, rank, safest_task
from llmgw.routing.tasks import TaskGuess, classifier_for, plausible
from llmgw.stages.base import Stage
from llmgw.stages.template import text_of

ALIASES = frozenset({"auto", "fast", "best", "default"})
#: ``selection.default_task`` value: when the classifier is unsure, the safest plausible task for the catalog
SAFEST = "safest"


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
            raise NotFound(f"The model '{requested}' does not exist", param="model")
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


class SelectModel(Stage):
    name = "select_model"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        if not ctx.body.get("messages"):
            raise InvalidRequest("messages must not be empty", param="messages", code="invalid_value")
        requested = ctx.body["model"]
        routing = self.gateway.config.routing
        catalog = self.gateway.config.models
        if routing.enabled and requested in ALIASES and requested not in catalog and not routing.aliases.get(requested):
            name, model = await self.decide(ctx, requested)
        else:
            name, model = resolve_model(self.gateway, ctx, requested, "chat")
            if ctx.route is not None:
                ctx.state["fallbacks"] = self.allowed_fallbacks(ctx, name)
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
        ctx.meta.setdefault("route_decision", {"rule": "explicit" if name == ctx.model_requested else "default"})
        return None

    def allowed(self, ctx: RequestContext, name: str) -> bool:
        route = ctx.route
        if route is not None and "*" not in route.models and name not in route.models:
            return False
        return ctx.key is None or ctx.key.allows_model(name)

    def allowed_fallbacks(self, ctx: RequestContext, chosen: str) -> list[tuple[str, ModelConfig]]:
        assert ctx.route is not None
        spec = ctx.route.selection
        catalog = self.gateway.config.models
        names = [n for n in spec.fallbacks if n != chosen and n in catalog and self.allowed(ctx, n)]
        return [(n, catalog[n]) for n in names[: spec.max_fallbacks]]

    async def task_of(self, ctx: RequestContext) -> TaskGuess:
        routing = self.gateway.config.routing
        default = ctx.route.selection.default_task if ctx.route is not None else "chat"
        given = ctx.options.get("task")
        if given is not None:
            if not isinstance(given, str) or not given:
                raise InvalidRequest("llmgw.task must be a task name", param="llmgw.task")
            return TaskGuess(given, 1.0, "request")
        last = next((m for m in reversed(ctx.body["messages"]) if m.get("role") == "user"), None)
        text = text_of(last.get("content")) if last else ""
        if not text.strip():  # nothing to be unsure about: an empty turn is chat
            return TaskGuess("chat" if default == SAFEST else default, 0.0, "default")
        classifier = await anyio.to_thread.run_sync(classifier_for, routing.tasks, routing.replace_tasks)
        probabilities = await anyio.to_thread.run_sync(classifier.probabilities, text)
        task, confidence = next(iter(probabilities.items()))
        if confidence >= routing.task_threshold:
            return TaskGuess(task, confidence, "classifier")
        if default == SAFEST:
            return TaskGuess(task, confidence, "classifier unsure", plausible(probabilities))
        return TaskGuess(default, confidence, f"default (classifier said {task})")

    async def decide(self, ctx: RequestContext, alias: str) -> tuple[str, ModelConfig]:
        spec = ctx.route.selection if ctx.route is not None else RouteSelectionConfig()
        guess = await self.task_of(ctx)
        models = self.gateway.config.models
        if guess.plausible:
            safest = safest_task(
                guess.plausible, models, ctx.body, ctx.stream, alias, spec, lambda n: self.allowed(ctx, n)
            )
            guess = TaskGuess(safest, guess.confidence, f"safest of {'/'.join(guess.plausible)}, classifier unsure")
        eligible, excluded = candidates(models, ctx.body, ctx.stream, guess.task, spec, lambda n: self.allowed(ctx, n))
        if not eligible:
            reasons = "; ".join(f"{c.name}: {c.why}" for c in excluded) or "no chat model is allowed"
            raise InvalidRequest(
                f"no model on route {ctx.route_name!r} can serve this request ({reasons})",
                param="model",
                code="no_model_available",
            )
        ranked, rule = rank(eligible, alias, spec)
        decision = Decision(guess.task, guess.confidence, guess.source, alias, rule, ranked, excluded)
        ctx.state["decision"] = decision
        ctx.state["fallbacks"] = [(c.name, c.model) for c in ranked[1 : 1 + spec.max_fallbacks]]
        ctx.meta["route_decision"] = decision.record()
        ctx.meta["task"] = guess.task
        return ranked[0].name, ranked[0].model
