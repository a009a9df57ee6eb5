"""Plan: decide once, before the cache lookup, which model answers and what is retrieved.

The cache must key on the model that will actually answer (an ``auto`` request routed to two
different models must not share an entry) and on the collection the answer is grounded in; the
retrieval and selection stages must then use exactly that. So the decision is made here, once,
and stored as ``ctx.plan`` (:class:`~llmgw.context.RequestPlan`): the cache lookup, ``Retrieve``
and ``SelectModel`` read it and decide nothing again.

The model: an explicit catalog name (or a configured alias, or ``auto``/``fast``/``best`` meaning
the route's default) is resolved against the route's and the key's permissions, with the route's
``selection.fallbacks`` behind it; with ``routing.enabled``, ``auto``, ``fast`` and ``best``
choose by task and cost (``llmgw.routing``). The plan runs after the input guards, so the task
classifier reads the same (templated, masked) last user turn as before; the context-window check
of routing counts the request as sent, before retrieved passages are inserted.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import anyio

from llmgw.config import ModelConfig, RouteSelectionConfig
from llmgw.context import RequestContext, RequestPlan
from llmgw.errors import InvalidRequest
from llmgw.messages import last_user_text
from llmgw.routing.cues import TASKS
from llmgw.routing.resolve import resolve_model, routed
from llmgw.routing.select import Decision, candidates, rank, safest_task
from llmgw.routing.tasks import TaskGuess, classifier_for, plausible
from llmgw.stages.base import Stage
from llmgw.stages.retrieval_plan import plan_for

#: ``selection.default_task`` value: when the classifier is unsure, the safest plausible task for the catalog
SAFEST = "safest"


class PlanRequest(Stage):
    name = "plan"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        if not ctx.body.get("messages"):
            raise InvalidRequest("messages must not be empty", param="messages", code="invalid_value")
        retrieval = plan_for(ctx, self.gateway.config.retrieval.collections_dir) if self.retrieves(ctx) else None
        requested = ctx.body["model"]
        if routed(self.gateway.config, requested):
            ctx.plan = await self.route(ctx, requested)
        else:
            name, model = resolve_model(self.gateway.config, requested, "chat", ctx.route, ctx.route_name, ctx.key)
            fallbacks = self.allowed_fallbacks(ctx, name) if ctx.route is not None else []
            ctx.plan = RequestPlan(name, model, fallbacks)
        ctx.plan.retrieval = retrieval
        return None

    def retrieves(self, ctx: RequestContext) -> bool:
        """Whether the retrieval stage runs for this request (the gateway switch and the route toggle)."""
        return self.gateway.config.retrieval.enabled and (ctx.route is None or ctx.route.stages.retrieval)

    def allowed(self, ctx: RequestContext, name: str) -> bool:
        route = ctx.route
        if route is not None and "*" not in route.models and name not in route.models:
            return False
        return ctx.key is None or ctx.key.allows_model(name)

    def allowed_fallbacks(self, ctx: RequestContext, chosen: str) -> list[tuple[str, ModelConfig]]:
        """The route's ``selection.fallbacks`` that could serve this request in its place: chat models
        the route and key allow, with the capabilities it needs (streaming, tools, JSON mode, vision)
        and a context window that holds it, as ``auto``'s ranking requires of its fallbacks. Without
        the check a tools or JSON request fell back to a model without them (or an embedding model)."""
        assert ctx.route is not None
        spec = ctx.route.selection
        catalog = self.gateway.config.models
        names = [n for n in spec.fallbacks if n != chosen and n in catalog]
        if not names:  # most routes: no fallbacks to check
            return []
        eligible, _ = candidates(
            {n: catalog[n] for n in names}, ctx.body, ctx.stream, "chat", spec, lambda n: self.allowed(ctx, n)
        )
        return [(c.name, c.model) for c in eligible[: spec.max_fallbacks]]

    @cached_property
    def known_tasks(self) -> frozenset[str]:
        """The task names a request may give: the shipped ones, those ``routing.tasks`` adds, and
        those a model's ``quality`` map names."""
        config = self.gateway.config
        qualities = {task for model in config.models.values() for task in model.quality}
        return frozenset({"chat", *TASKS, *config.routing.tasks, *qualities} - {"default"})

    async def task_of(self, ctx: RequestContext) -> TaskGuess:
        routing = self.gateway.config.routing
        default = ctx.route.selection.default_task if ctx.route is not None else "chat"
        if ctx.options.task is not None:
            if ctx.options.task not in self.known_tasks:  # a typo ("cod") was routed on default qualities
                raise InvalidRequest(
                    f"llmgw.task {ctx.options.task[:64]!r} is no task of this gateway; "
                    f"one of: {', '.join(sorted(self.known_tasks))}",
                    param="llmgw.task",
                    code="invalid_value",
                )
            return TaskGuess(ctx.options.task, 1.0, "request")
        text = last_user_text(ctx.body)
        if not text.strip():  # nothing to be unsure about: an empty turn is chat
            return TaskGuess("chat" if default == SAFEST else default, 0.0, "default")
        classifier = await anyio.to_thread.run_sync(
            classifier_for, routing.tasks, routing.replace_tasks, routing.task_view, routing.task_encoder
        )
        probabilities = await anyio.to_thread.run_sync(classifier.probabilities, text)
        task, confidence = next(iter(probabilities.items()))
        if confidence >= routing.task_threshold:
            return TaskGuess(task, confidence, "classifier")
        if default == SAFEST:
            return TaskGuess(task, confidence, "classifier unsure", plausible(probabilities))
        return TaskGuess(default, confidence, f"default (classifier said {task})")

    async def route(self, ctx: RequestContext, alias: str) -> RequestPlan:
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
            if excluded and all(c.why.startswith("context ") for c in excluded):
                # too long for every model: OpenAI's code, which SDK users and frameworks act on (trim, summarise)
                raise InvalidRequest(
                    f"this request is too long for every model on route {ctx.route_name!r} ({reasons})",
                    param="messages",
                    code="context_length_exceeded",
                )
            raise InvalidRequest(
                f"no model on route {ctx.route_name!r} can serve this request ({reasons})",
                param="model",
                code="no_model_available",
            )
        ranked, rule = rank(eligible, alias, spec)
        decision = Decision(guess.task, guess.confidence, guess.source, alias, rule, ranked, excluded)
        fallbacks = [(c.name, c.model) for c in ranked[1 : 1 + spec.max_fallbacks]]
        return RequestPlan(ranked[0].name, ranked[0].model, fallbacks, decision)
