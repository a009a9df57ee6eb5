"""Rate limit: requests and tokens per minute, and a daily budget, per key and per team.

Before the provider: the request is counted (an atomic increment, so replicas sharing Redis share
the limit) and refused with 429 when a minute's requests or tokens, or a day's spend, would go past
a limit. Tokens are counted in two steps: the prompt as estimated before the call, then the
difference to the provider's usage and the completion when the request ends; the spend is added
then too, from the same prices as the usage rows. Headers follow OpenAI's names
(``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``, ...).

A daily budget is reserved before the provider is called (:class:`ReserveBudget`, once the model and
so its price are known): the request's highest cost (its prompt, and ``max_tokens`` or
``limits.reserve_output_tokens`` of completion for each of its ``n`` choices) is added to the day's
spend, by one atomic step in the store, only while the spend with every reservation in flight is
below the budget; the difference to the real cost is settled when the request ends. So requests
arriving together on any number of replicas are admitted as if they had come one after another: the
budget is passed by at most the last admitted request, as it is for sequential requests, not by
every request in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmgw.config import LimitSpec, ModelConfig
from llmgw.context import RequestContext
from llmgw.errors import BudgetExceeded, GatewayError, LimitsUnavailable, RateLimited
from llmgw.limits.counters import Counters
from llmgw.limits.reservation import Reservation
from llmgw.stages.base import Stage
from llmgw.usage import Usage, billed_prompt_chars, cost_usd, estimate_tokens

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

log = logging.getLogger("llmgw.limits")
DAY_S = 86_400 + 3_600


class RateLimit(Stage):
    name = "rate_limit"
    toggle = "rate_limit"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.config = gateway.config.limits
        self._warned: set[tuple[str, str]] = set()

    def enabled(self) -> bool:
        return self.gateway.config.limits.enabled

    @property
    def counters(self) -> Counters:
        counters = self.gateway.counters
        assert counters is not None, "the stage is on only with limits enabled, and the gateway has counters then"
        return counters

    def scopes(self, ctx: RequestContext) -> list[tuple[str, LimitSpec]]:
        key = ctx.key
        if key is None:
            return []
        out = [(f"key:{key.id}", self.config.keys.get(key.id, self.config.default_key))]
        if key.team and key.team in self.config.teams:
            out.append((f"team:{key.team}", self.config.teams[key.team]))
        return out

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        scopes = self.scopes(ctx)
        if not scopes:
            return None
        now = time.time()
        minute, day = int(now // 60), datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        retry = str(60 - int(now % 60))
        estimate = estimate_tokens(billed_prompt_chars(ctx.body))
        ctx.limits = Reservation(scopes, minute, day, estimate)
        counted: set[str] = set()  # scopes whose tokens got the estimate: only these are settled
        try:
            for scope, spec in scopes:
                await self.check_budget(ctx, scope, spec, day)
                if spec.requests_per_minute:
                    used = await self.counters.add(f"rpm:{scope}:{minute}", 1, 120)
                    self.headers(ctx, "requests", spec.requests_per_minute, used)
                    if used > spec.requests_per_minute:
                        raise RateLimited(
                            f"{scope} is over {spec.requests_per_minute} requests per minute",
                            headers={"retry-after": retry},
                        )
                if spec.tokens_per_minute:
                    used = await self.counters.add(f"tpm:{scope}:{minute}", estimate, 120)
                    counted.add(scope)
                    self.headers(ctx, "tokens", spec.tokens_per_minute, used)
                    if used > spec.tokens_per_minute:
                        raise RateLimited(
                            f"{scope} is over {spec.tokens_per_minute} tokens per minute",
                            code="tokens_rate_limit_exceeded",
                            headers={"retry-after": retry},
                        )
        except GatewayError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store is down: limits cannot be checked
            log.warning("rate-limit store unavailable: %s", exc)
            raise LimitsUnavailable("the rate-limit store is unavailable") from None
        finally:
            ctx.limits = replace(ctx.limits, counted=frozenset(counted))
        return None

    async def check_budget(self, ctx: RequestContext, scope: str, spec: LimitSpec, day: str) -> None:
        if spec.daily_budget_usd is None:
            return
        spent = await self.counters.get(f"spend:{scope}:{day}")
        if spent >= spec.daily_budget_usd:
            raise BudgetExceeded(
                f"{scope} has spent its daily budget of ${spec.daily_budget_usd:g}",
                headers={"retry-after": str(self.seconds_to_midnight())},
            )
        if spent >= spec.daily_budget_usd * self.config.soft_budget_ratio:
            ctx.response_headers["x-llmgw-budget"] = (
                f"warning; {scope}; spent={spent:.6f}; limit={spec.daily_budget_usd:g}"
            )
            ctx.meta.setdefault("budget_warnings", []).append(scope)
            if (scope, day) not in self._warned:  # the soft alert: logged once per scope and day
                self._warned.add((scope, day))
                log.warning("%s has spent $%.4f of its $%g daily budget", scope, spent, spec.daily_budget_usd)

    @staticmethod
    def seconds_to_midnight() -> int:
        now = time.time()
        return int(86_400 - now % 86_400)

    @staticmethod
    def headers(ctx: RequestContext, kind: str, limit: int, used: float) -> None:
        previous = ctx.response_headers.get(f"x-ratelimit-remaining-{kind}")
        remaining = max(0, int(limit - used))
        if previous is None or remaining < int(previous):  # the tightest scope wins
            ctx.response_headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            ctx.response_headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)

    def done(self, ctx: RequestContext) -> None:
        """Settle tokens and spend once the request ended (a background task: never on the request path)."""
        held = ctx.limits
        if held is None:
            return
        tokens = ctx.prompt_tokens + ctx.completion_tokens - held.estimate if ctx.model else -held.estimate
        cost = cost_usd(ctx.model, ctx.usage())
        try:
            task = asyncio.get_running_loop().create_task(self.settle(held, tokens, cost))
        except RuntimeError:  # no loop (cannot happen in the server); nothing to settle into
            return
        self.gateway.settling.add(task)  # awaited on shutdown (``Gateway.stop``)
        task.add_done_callback(self.gateway.settling.discard)

    async def settle(self, held: Reservation, tokens: float, cost: float) -> None:
        """Add ``tokens`` (the difference to the estimate) where the estimate was counted, and the real
        ``cost`` to each daily budget less the reservation it holds (already in its spend)."""
        try:
            for scope, spec in held.scopes:
                if spec.tokens_per_minute and tokens and scope in held.counted:
                    await self.counters.add(f"tpm:{scope}:{held.minute}", tokens, 120)
                if spec.daily_budget_usd is None:
                    continue
                delta = cost - (held.reserved_usd if scope in held.reserved else 0.0)
                if delta != 0:
                    await self.counters.add(f"spend:{scope}:{held.day}", delta, DAY_S)
        except Exception:
            log.warning("settling usage in the rate-limit store failed", exc_info=True)


class ReserveBudget(Stage):
    """Reserve the request's highest cost in every daily budget it counts against, right before the
    provider: refused with 429 ``budget_exceeded`` when it does not fit (see the module docstring)."""

    name = "reserve_budget"
    toggle = "rate_limit"

    def enabled(self) -> bool:
        limits = self.gateway.config.limits
        specs = [limits.default_key, *limits.keys.values(), *limits.teams.values()]
        return limits.enabled and any(spec.daily_budget_usd is not None for spec in specs)

    def highest_cost(self, body: dict[str, Any], model: ModelConfig, estimate: int) -> float:
        """The prompt estimate, and ``max_tokens`` (or ``limits.reserve_output_tokens``) of completion
        for each of the ``n`` choices, at ``model``'s prices."""
        most = body.get("max_completion_tokens") or body.get("max_tokens")
        if not isinstance(most, int) or isinstance(most, bool) or most <= 0:
            most = self.gateway.config.limits.reserve_output_tokens
        most = min(most, max(0, model.context_window - estimate))
        choices = body.get("n")  # each of ``n`` choices may use them all: the highest cost is n times one
        if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
            most *= choices
        return cost_usd(model, Usage(estimate, most))

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        held = ctx.limits
        counters = self.gateway.counters
        if held is None or ctx.model is None or counters is None:
            return None
        # the model may fail and the request fall back to a dearer one: its highest cost is the dearest's
        candidates = [ctx.model, *(model for _, model in ctx.fallbacks)]
        amount = max(self.highest_cost(ctx.body, model, held.estimate) for model in candidates)
        taken: list[str] = []  # scopes holding the reservation: settled (or refunded) when the request ends
        refused: tuple[str, LimitSpec] | None = None
        failed = False
        try:
            for scope, spec in held.scopes:
                if spec.daily_budget_usd is None:
                    continue
                ok, _ = await counters.reserve(f"spend:{scope}:{held.day}", amount, spec.daily_budget_usd, DAY_S)
                if not ok:
                    refused = (scope, spec)
                    while taken:  # what this request took in an earlier scope goes back at once
                        await counters.add(f"spend:{taken[-1]}:{held.day}", -amount, DAY_S)
                        taken.pop()
                    break
                taken.append(scope)
        except Exception as exc:  # noqa: BLE001 - the store is down: budgets cannot be checked
            log.warning("rate-limit store unavailable: %s", exc)
            failed = True
        # recorded however it ended: a reservation taken before the store failed is refunded by the
        # settle (``RateLimit.done``) rather than held in the budget for the rest of the day
        ctx.limits = replace(held, reserved_usd=amount if taken else 0.0, reserved=frozenset(taken))
        if failed:
            raise LimitsUnavailable("the rate-limit store is unavailable")
        if refused is not None:
            scope, spec = refused
            raise BudgetExceeded(
                f"{scope} has spent or reserved its daily budget of ${spec.daily_budget_usd:g}",
                headers={"retry-after": str(RateLimit.seconds_to_midnight())},
            )
        return None
