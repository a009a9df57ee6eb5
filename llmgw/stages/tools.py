"""Tools: the key's and route's allow-lists on the tools a request offers, and the answer's tool
calls checked against what was offered (``llmgw.guards.tools`` decides; this stage adapts).

Each decision that an allow-list or a tool call makes is a guard event (guard ``tools``): a
request's offered tools once, when an allow-list restricts them; every tool call of the answer.
The policy named on them is the guard policy when the input guards chose one, else ``allow-list``.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.errors import ToolNotAllowed, ToolNotOffered, clip
from llmgw.guards.events import GuardLog, Verdict
from llmgw.guards.tools import ANY, CallCheck, allows, offered, restricted
from llmgw.stages.base import Chunks, Stage
from llmgw.stages.client_user import logged_user

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


class ToolAllowList(Stage):
    """Before anything else on the route: refuse a request offering a tool it may not use."""

    name = "tool_allow_list"

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        tools = offered(ctx.body)
        if not tools:
            return None
        by_key = ctx.key.tools if ctx.key is not None else ANY
        by_route = ctx.route.tools if ctx.route is not None else ANY
        if not (restricted(by_key) or restricted(by_route)):
            return None
        for where, name in tools:
            refused_by = "key" if not allows(by_key, name) else "route" if not allows(by_route, name) else None
            if refused_by is not None:
                whose = f"key {ctx.key.id}" if refused_by == "key" and ctx.key else f"route {ctx.route_name!r}"
                log(self.gateway, ctx, "block", "input", f"{name[:200]}: not in the {refused_by}'s allow-list")
                raise ToolNotAllowed(f"tool {clip(name)} is not allowed for {whose}", param=where)
        names = ", ".join(sorted({name for _, name in tools}))
        log(self.gateway, ctx, "allow", "input", f"offered: {names}"[:2000])
        return None


class ToolCalls(Stage):
    """After the provider: an answer may only call the tools the request offered.

    A guard like the others: on with the guards, or wherever a route restricts tools (a
    gateway with neither keeps its stream free of the wrapper)."""

    name = "tool_calls"

    def enabled(self) -> bool:
        config = self.gateway.config
        return config.guards.enabled or any(restricted(route.tools) for route in config.routes.values())

    async def response(self, ctx: RequestContext, completion: dict[str, Any]) -> dict[str, Any]:
        check = CallCheck(frozenset(name for _, name in offered(ctx.body)))
        for i, choice in enumerate(completion.get("choices") or ()):
            message = choice.get("message") or {}
            calls = list(message.get("tool_calls") or ())
            if isinstance(message.get("function_call"), dict):
                calls.append({"index": len(calls), "function": message["function_call"]})
            if calls:
                self.decide(ctx, check.feed(choice.get("index", i), calls, ending=True))
        return completion

    def stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        return self._stream(ctx, chunks)

    async def _stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        check = CallCheck(frozenset(name for _, name in offered(ctx.body)))
        async with aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                for choice in chunk.get("choices") or ():
                    index = choice.get("index", 0)
                    delta = choice.get("delta") or {}
                    calls = list(delta.get("tool_calls") or ())
                    if isinstance(delta.get("function_call"), dict):
                        calls.append({"index": 0, "function": delta["function_call"]})
                    if calls:  # decided before the chunk leaves: a refused call sends nothing
                        self.decide(ctx, check.feed(index, calls))
                    if choice.get("finish_reason") is not None:
                        self.decide(ctx, check.end(index))
                yield chunk

    def decide(self, ctx: RequestContext, decisions: list[tuple[str, bool]]) -> None:
        for name, allowed in decisions:
            log(self.gateway, ctx, "allow" if allowed else "block", "output",
                f"tool call {name[:200]}" + ("" if allowed else ": not offered by the request"))  # fmt: skip
            if not allowed:
                ctx.meta["tool_not_offered"] = name[:200]
                raise ToolNotOffered(f"the model called tool {clip(name)}, which the request did not offer")


def log(gateway: Gateway, ctx: RequestContext, verdict: Verdict, stage: str, detail: str) -> None:
    """One ``tools`` guard event, under the guard policy when the input guards chose one."""
    key = ctx.key
    GuardLog(
        gateway.writer.put,
        ctx.request_id,
        ctx.meta.get("guard_policy") or "allow-list",
        key_id=key.id if key else None,
        team=key.team if key else None,
        route=ctx.route_name,
        user=lambda: logged_user(gateway, ctx) or (key.user if key else None),
    )("tools", verdict, stage=stage, source="tool", detail=detail)
