"""Input guards: mask PII and detect prompt injection before anything leaves for a provider.

Every message is scanned, history and tool-call arguments included (analysis results are cached
by content, so a conversation's earlier turns cost nothing on the next turn), and so is every other
text field that reaches the provider (``stop``, ``metadata``, names, unknown fields:
:func:`llmgw.guards.scan.collect`); the ``user`` field is hashed, scanned or kept per policy
(``llmgw.stages.client_user``). Placeholders are per request and live in ``ctx.guards`` only; the
output guards use them to restore the answer. Every decision is logged as a guard event holding
masked text only.
"""

from __future__ import annotations

import json
from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import InvalidRequest, PayloadTooLarge
from llmgw.guards.consult import consult_providers
from llmgw.guards.events import GuardLog, Verdict
from llmgw.guards.output import add_canary
from llmgw.guards.pii import Finding, Masker
from llmgw.guards.policy import Policy
from llmgw.guards.providers import Verdict as ProviderVerdict
from llmgw.guards.providers import combine
from llmgw.guards.runtime import GuardFailure, GuardRuntime, guard_unavailable, injection_detector
from llmgw.guards.scan import STRIPPED, USER_FIELDS, Item, collect, scan, template_variables
from llmgw.stages.base import Stage
from llmgw.stages.client_user import scanned_user, settle_user
from llmgw.stages.guarding import flag_header, guard_log, judge_hooks, policy_of, route_fails_open


class InputGuards(Stage):
    name = "input_guards"
    toggle = "input_guards"

    def enabled(self) -> bool:
        return self.gateway.config.guards.enabled

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        runtime: GuardRuntime = self.gateway.guards
        policy = policy_of(self.gateway, ctx)
        log = guard_log(self.gateway, ctx, policy)
        fail_open = policy.on_error == "open" or route_fails_open(ctx)
        ctx.meta["guard_policy"] = policy.label
        user_mode = policy.pii.user if policy.pii.enabled else "allow"
        sent_user = {name: ctx.body.get(name) for name in USER_FIELDS}
        settle_user(self.gateway, ctx, user_mode)
        items = collect(ctx.body, ctx.guards.templated, user=user_mode == "scan")
        items += template_variables(ctx.guards.template_inputs, items)
        masker = Masker(policy.pii, salt=runtime.salt)
        # the whole body: a placeholder-shaped string in a field not scanned (a tool's description)
        # may come back in the answer too, and must come back as written
        masker.reserve([json.dumps(ctx.body, ensure_ascii=False, default=str), *(item.text for item in items)])
        ctx.guards.masker = masker
        ctx.guards.policy = policy
        chars = sum(len(item.text) for item in items)
        try:
            if chars > policy.max_chars:
                raise GuardFailure(f"{chars} characters to screen, more than max_chars ({policy.max_chars})")
            findings, injections = await runtime.run(
                policy.budget_s(chars), scan, runtime, policy, items, chars=chars
            )  # fmt: skip
        except GuardFailure as exc:
            log("input", "allow" if fail_open else "block", detail=str(exc), scores={"failed": 1.0})
            if fail_open:
                ctx.meta["guards_failed_open"] = True
                return None
            if chars > policy.max_chars:  # the client's to fix (send less), not a passing fault: no retry
                raise PayloadTooLarge(
                    f"the request holds {chars} characters for the guards to screen; this gateway's policy screens "
                    f"at most {policy.max_chars}", code="too_long_to_screen",
                ) from None  # fmt: skip
            raise guard_unavailable(str(exc)) from None
        self.mask(ctx, log, masker, items, findings)
        for item in items:
            if item.read is not None:  # masked value by value: from now on it reads as sent
                item.text = item.read()
        if user_mode == "scan":
            scanned_user(self.gateway, ctx, sent_user)
        ctx.guards.user_settled = True  # `user` is as the policy wants it now
        external = await self.providers(ctx, log, policy, items, injections)
        self.injection(ctx, log, policy, items, injections, external)
        if policy.moderation.enabled and policy.moderation.canary and ctx.meta.get("prompt"):
            ctx.guards.canary = add_canary(ctx.body.get("messages") or [])
        return None

    def mask(
        self, ctx: RequestContext, log: GuardLog, masker: Masker, items: list[Item], findings: list[list[Finding]]
    ) -> None:
        entities: list[dict[str, Any]] = []
        masked_texts: list[str] = []
        try:
            for item, found in zip(items, findings, strict=True):
                if not found:
                    continue
                masked, records = masker.apply(item.text, found, item.where)
                item.set(masked)
                item.text = masked
                entities.extend({**r, "where": item.where} for r in records)
                masked_texts.append(f"{item.where}: {masked}")
        except InvalidRequest as exc:  # a `block` entity
            log("pii", "block", entities=entities, detail=exc.message)
            raise
        actions = {e["action"] for e in entities}
        verdict: Verdict = "mask" if "mask" in actions else "redact" if "redact" in actions else "allow"
        log("pii", verdict, entities=entities, masked_text="\n".join(masked_texts)[:20_000] or None)
        if entities:
            counts: dict[str, int] = {}
            for e in entities:
                counts[e["type"]] = counts.get(e["type"], 0) + 1
            ctx.meta["pii"] = counts

    async def providers(
        self, ctx: RequestContext, log: GuardLog, policy: Policy, items: list[Item], results: list[Any]
    ) -> list[dict[str, ProviderVerdict] | None]:
        """The guard providers' verdicts on every scanned item whose source has some configured.
        They read the masked text: a raw PII value never leaves for a third-party detector."""
        external: list[dict[str, ProviderVerdict] | None] = [None] * len(items)
        for source, rule in policy.injection.providers.items():
            chosen = [i for i, (item, r) in enumerate(zip(items, results, strict=True))
                      if r is not None and item.source == source]  # fmt: skip
            if not chosen:
                continue
            texts = [items[i].text for i in chosen]
            consulted = await consult_providers(log, policy, rule, judge_hooks(self.gateway), texts, source,
                                                "injection", route_fails_open(ctx),
                                                self.gateway.metrics.guard_provider,
                                                self.gateway.guards.verdicts)  # fmt: skip
            if consulted.failed_open:
                ctx.meta["guards_failed_open"] = True
            for i, verdicts in zip(chosen, consulted.verdicts, strict=True):
                external[i] = verdicts
        return external

    def injection(
        self,
        ctx: RequestContext,
        log: GuardLog,
        policy: Policy,
        items: list[Item],
        results: list[Any],
        external: list[dict[str, ProviderVerdict] | None],
    ) -> None:
        detector = injection_detector()
        for item, result, verdicts in zip(items, results, external, strict=True):
            if result is None:
                continue
            flag_at, act_at = policy.injection.cutoffs(item.source, detector.operating_points(item.source))
            builtin_hit = result.score >= act_at
            # the policy's keys are the Literal sources; an item's source is a plain str (absent: None)
            rule = policy.injection.providers.get(item.source)  # type: ignore[call-overload]
            hit, score = builtin_hit, result.score
            if rule is not None and verdicts is not None:
                hit, score = combine(rule, (builtin_hit, result.score), verdicts)
            # below the action's operating point but above the flagging one: served, logged, named in a header
            advisory = not hit and result.score >= flag_at
            verdict: Verdict = policy.injection.action_for(item.source) if hit else "flag" if advisory else "allow"
            if verdict == "allow" and item.source != "user":
                continue  # clean tool outputs are not worth an event each
            scores = {"score": round(score, 4), "builtin": round(result.score, 4),
                      "classifier": round(result.classifier, 4), "flag_at": round(flag_at, 4),
                      "act_at": round(act_at, 4)}  # fmt: skip
            scores.update({f"provider:{name}": v.score for name, v in (verdicts or {}).items()})
            reason = result.reason
            if rule is not None and verdicts is not None:
                flagged = [name for name, v in verdicts.items() if v.flagged]
                reason = f"{rule.combine}: " + ", ".join(
                    [*(["builtin (" + result.reason + ")"] if builtin_hit and rule.builtin else []), *flagged]
                ) if hit else result.reason  # fmt: skip
            log("injection", verdict, source=item.source, scores=scores, masked_text=item.text[:4000], detail=reason)
            if verdict == "allow":
                continue
            ctx.meta.setdefault("injection", []).append(
                {"where": item.where, "source": item.source, "score": score, "verdict": verdict}
            )
            flag_header(ctx, verdict, item.source, score)
            if verdict == "block":
                raise InvalidRequest(
                    f"{item.where} looks like a prompt injection (score {score:.2f}, source {item.source})",
                    param=item.where,
                    code="prompt_injection",
                )
            if verdict == "strip":
                item.set(STRIPPED)
