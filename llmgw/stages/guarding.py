"""What the guard stages hand the guards domain from the request and the gateway.

The guards (``llmgw.guards``) know no request context and no gateway: the input, retrieval and
output guard stages bind what they need here, once per request: the policy of the caller
(:func:`policy_of`), the guard log that names the request in every event (:func:`guard_log`),
whether the route fails open, and how an LLM judge reaches this gateway's models
(:func:`judge_hooks`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.guards.events import GuardLog
from llmgw.guards.policy import Policy
from llmgw.guards.providers.judge import Hooks
from llmgw.guards.runtime import GuardFailure, guard_unavailable
from llmgw.providers.base import UpstreamCall
from llmgw.stages.client_user import logged_user
from llmgw.templates.store import Address, WorkingTreeSource, load_template
from llmgw.templates.template import CompiledTemplate

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


def policy_of(gateway: Gateway, ctx: RequestContext) -> Policy:
    """The caller's guard policy (key, team, route, default); a missing one fails closed (503)."""
    key = ctx.key
    try:
        return gateway.guards.policy_for(key.id if key else None, key.team if key else None, ctx.route_name)
    except GuardFailure as exc:
        raise guard_unavailable(str(exc)) from None


def route_fails_open(ctx: RequestContext) -> bool:
    """The route's ``guard_failure: open``: a failing guard lets the request pass, whatever the policy says."""
    return ctx.route is not None and ctx.route.guard_failure == "open"


GUARDS_HEADER = "x-llmgw-guards"


def flag_header(ctx: RequestContext, verdict: str, source: str, score: float) -> None:
    """Name an injection verdict that did not stop the request in the ``x-llmgw-guards`` response
    header (``injection=flag;source=user;score=0.62``, several joined by ``, ``), so a client sees
    what the guardrail log holds."""
    if verdict == "block" and source == "user":
        return  # the request is refused: the 400 says it
    entry = f"injection={verdict};source={source};score={score:.2f}"
    previous = ctx.response_headers.get(GUARDS_HEADER)
    ctx.response_headers[GUARDS_HEADER] = f"{previous}, {entry}" if previous else entry


def guard_log(gateway: Gateway, ctx: RequestContext, policy: Policy) -> GuardLog:
    """The request's guard events under ``policy``, queued on the gateway's writer."""
    key = ctx.key
    return GuardLog(
        gateway.writer.put,
        ctx.request_id,
        policy.label,
        key_id=key.id if key else None,
        team=key.team if key else None,
        route=ctx.route_name,
        user=lambda: logged_user(gateway, ctx) or (key.user if key else None),
    )


_JUDGE_TEMPLATES: dict[tuple[str, str], CompiledTemplate] = {}


def working_tree_judge_template(gateway: Gateway, template_id: str) -> CompiledTemplate:
    """Blocking: a judge's template from the working tree's ``prompts/`` (else the llmgw checkout's),
    read once per process; ``llmgw.warmup`` reads every judge's at start-up, so a misspelt
    ``prompt`` is named then rather than failing each request."""
    config = gateway.config.templates
    root = Path(config.repo)
    if not (root / config.dir).is_dir():
        root = Path(__file__).resolve().parents[2]  # the shipped prompts/
    key = (str(root.resolve()), template_id)
    template = _JUDGE_TEMPLATES.get(key)
    if template is None:
        template = load_template(WorkingTreeSource(root), config.dir, template_id, config.max_output_chars)
        _JUDGE_TEMPLATES[key] = template
    return template


def judge_hooks(gateway: Gateway) -> Hooks:
    """How an LLM judge reaches this gateway: its template (versioned through the prompt store when
    templates are on, else the working tree's ``prompts/``, else the llmgw checkout's), and a
    non-streamed completion from a catalog model through the model's provider."""
    config = gateway.config.templates

    async def messages(template_id: str, variables: dict[str, Any]) -> list[dict[str, str]]:
        template: CompiledTemplate | None
        if config.enabled:
            template = await gateway.prompts.get(Address.parse(template_id))
        else:
            template = await asyncio.to_thread(working_tree_judge_template, gateway, template_id)
        return template.render(variables, param="guard judge template")

    async def complete(model_name: str, chat: list[dict[str, str]], max_tokens: int) -> str:
        model = gateway.config.models.get(model_name)
        if model is None:
            raise ValueError(f"judge model {model_name!r} is not in the catalog")
        body = {"model": model.upstream_id, "messages": chat, "temperature": 0, "max_tokens": max_tokens}
        # the caller's timeout bounds the call; the deadline only keeps the provider's retries inside it
        call = UpstreamCall(body, model.upstream_id, time.monotonic() + 60)
        completion = await gateway.providers[model.provider].complete(call)
        content = ((completion.get("choices") or [{}])[0].get("message") or {}).get("content")
        if not isinstance(content, str):
            raise ValueError("the judge model gave no text")
        return content

    return Hooks(messages, complete)
