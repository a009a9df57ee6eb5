"""Render template: expand a versioned prompt template from ``prompts/`` into the messages.

The template comes from the request (``llmgw.prompt``: ``"id@version"`` or
``{"id", "version", "variables"}``), or is pinned by the route (``routes.<r>.template``). An
experiment on the template (or the route) picks the version when the request names none. How the
rendered messages meet the client's is the template's ``combine`` rule:

* ``prepend``: the template's messages, then the client's;
* ``replace``: only the template's messages;
* ``fill_user``: the client's last user message becomes the variable ``user_input``; the template's
  system messages go first, its other messages take that user message's place.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest
from llmgw.messages import SYSTEM_ROLES, last_user_index, text_of
from llmgw.stages.base import Stage
from llmgw.templates.experiments import assign
from llmgw.templates.store import Address, variable_paths, variables_from

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


def combine(mode: str, rendered: list[dict[str, Any]], client: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if mode == "replace":
        return rendered
    if mode == "fill_user":
        last = last_user_index(client)
        assert last is not None, "checked by the stage: fill_user needs a user turn"
        systems = [m for m in rendered if m["role"] in SYSTEM_ROLES]
        others = [m for m in rendered if m["role"] not in SYSTEM_ROLES]
        return systems + client[:last] + others + client[last + 1 :]
    return rendered + client


class RenderTemplate(Stage):
    name = "render_template"
    toggle = "template"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.by_template = {exp.template: name for name, exp in gateway.config.experiments.items() if exp.enabled}

    def enabled(self) -> bool:
        return self.gateway.config.templates.enabled

    def address(self, ctx: RequestContext) -> tuple[Address | None, dict[str, Any]]:
        """The template the request names (with the variables given beside it), else the route's."""
        prompt = ctx.options.prompt
        if prompt is not None:
            return Address.parse(prompt.id, prompt.version), prompt.variables
        if ctx.route is not None and ctx.route.template:
            return Address.parse(ctx.route.template), {}
        return None, {}

    @staticmethod
    def may_use(ctx: RequestContext, model: str | None) -> bool:
        """Whether an arm's model is one the request's route and key allow (no model: the request's own)."""
        if model is None:
            return True
        route = ctx.route
        if route is not None and "*" not in route.models and model not in route.models:
            return False
        return ctx.key is None or ctx.key.allows_model(model)

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        address, own = self.address(ctx)
        config = self.gateway.config
        experiment = ctx.route.experiment if ctx.route is not None else None
        if experiment is not None and not config.experiments[experiment].enabled:
            # switched off: the route serves the experiment's template at the default version, no arm
            if address is None:
                address = Address(config.experiments[experiment].template)
            experiment = None
        if address is None and experiment is None:
            return None
        if experiment is None and address is not None and address.version is None:
            experiment = self.by_template.get(address.id)
        if experiment is not None and (address is None or address.version is None):
            spec = config.experiments[experiment]
            user = ctx.body.get("user") or (ctx.key.user if ctx.key else None)
            usable = [arm for arm in spec.arms if self.may_use(ctx, arm.model)]
            if not usable:  # no arm this caller may use: the default version, as when switched off
                address = address or Address(spec.template)
            else:
                chosen = assign(experiment, spec, user, ctx.request_id, usable)
                address = Address(spec.template, chosen.arm.version)
                if chosen.arm.model:
                    ctx.body["model"] = chosen.arm.model
                ctx.meta["experiment"] = {"name": experiment, "arm": chosen.arm.name, "sticky": chosen.sticky}
                if chosen.arm.model:
                    ctx.meta["experiment"]["model"] = chosen.arm.model
                ctx.response_headers["x-llmgw-experiment"] = chosen.header()
        assert address is not None
        template = await self.gateway.prompts.get(address)
        variables = variables_from(ctx.options.prompt_variables, own)
        paths = variable_paths(variables, own)
        client = ctx.body.get("messages") or []
        if template.spec.combine == "fill_user":
            last = last_user_index(client)
            if last is None:
                raise InvalidRequest(
                    f"template {address.id} fills in your last user message, and there is none",
                    param="messages",
                )
            variables["user_input"] = text_of(client[last].get("content"))
            paths["user_input"] = f"messages[{last}].content"
        rendered = template.render(variables)
        ctx.body["messages"] = combine(template.spec.combine, rendered, client)
        # the input guards score what the client wrote, not the template's own (trusted) text
        ctx.guards.templated = frozenset(
            i for i, m in enumerate(ctx.body["messages"]) if any(m is written for written in rendered)
        )
        ctx.guards.template_inputs = {
            paths[name]: v if isinstance(v, str) else json.dumps(v) for name, v in variables.items() if v
        }
        ctx.meta["prompt"] = {
            "id": template.id,
            "version": address.version or config.templates.default_ref,
            "commit": template.commit,
            "blob": template.blob,
        }
        ctx.response_headers["x-llmgw-prompt"] = f"{template.id}@{template.commit}"
        return None
