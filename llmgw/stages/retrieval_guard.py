"""Retrieved passages through the indirect-injection guard (source ``retrieved``).

A document in a collection is data someone else wrote: instructions hidden in it must not reach
the model as if the user had sent them. Each passage is scored like a user message, against the
policy's operating points for ``retrieved`` (by default: dropped where at most 2 % of every benign
calibration source of passages is, flagged where at most 5 % is). What the policy's action means
for a passage: ``block`` drops it (the request goes on without it: the user did not write it),
``strip`` replaces its text, ``flag`` keeps it; a flagged passage is kept; each hit is a guard
event naming the chunk (not quoting it: a collection's
text is not masked, and the log never holds raw PII). A guard that fails blocks the
request unless the policy or route fails open, as for every guard.

A chunk screened by ``llmgw ingest`` carries its verdict (``llmgw.retrieval.screening``): while
the gateway runs the same detector, that verdict is used and the passage is not scored again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llmgw.context import RequestContext
from llmgw.guards.consult import Consulted, consult_providers
from llmgw.guards.providers import combine
from llmgw.guards.runtime import GuardFailure, GuardRuntime, guard_unavailable, injection_detector
from llmgw.guards.scan import STRIPPED
from llmgw.retrieval.screening import fingerprint, screened_text, stored
from llmgw.retrieval.store import Hit
from llmgw.stages.guarding import flag_header, guard_log, judge_hooks, policy_of, route_fails_open

if TYPE_CHECKING:
    from llmgw.gateway import Gateway


async def screen(gateway: Gateway, ctx: RequestContext, hits: list[Hit]) -> list[Hit]:
    if not hits or not gateway.config.guards.enabled:
        return hits
    if ctx.route is not None and not ctx.route.stages.input_guards:
        return hits
    runtime: GuardRuntime = gateway.guards
    policy = ctx.guards.policy or policy_of(gateway, ctx)
    if not policy.injection.scans("retrieved"):
        return hits
    log = guard_log(gateway, ctx, policy)
    fail_open = policy.on_error == "open" or route_fails_open(ctx)
    try:
        chars = sum(len(screened_text(h.chunk)) for h in hits)
        results, at_ingest = await runtime.run(policy.budget_s(chars), _verdicts, runtime, hits, chars=chars)
    except GuardFailure as exc:
        log(
            "injection",
            "allow" if fail_open else "block",
            source="retrieved",
            detail=str(exc),
            scores={"failed": 1.0},
        )
        if fail_open:
            ctx.meta["guards_failed_open"] = True
            return hits
        raise guard_unavailable(str(exc)) from None
    flag_at, act_at = policy.injection.cutoffs("retrieved", injection_detector().operating_points("retrieved"))
    rule = policy.injection.providers.get("retrieved")
    external = Consulted([{} for _ in hits])
    if rule is not None:
        texts = [screened_text(h.chunk) for h in hits]
        hooks = judge_hooks(gateway)
        open_route = route_fails_open(ctx)
        external = await consult_providers(
            log,
            policy,
            rule,
            hooks,
            texts,
            "retrieved",
            "injection",
            open_route,
            gateway.metrics.guard_provider,
            gateway.guards.verdicts,
        )
        if external.failed_open:
            ctx.meta["guards_failed_open"] = True
    kept: list[Hit] = []
    for hit, result, verdicts in zip(hits, results, external.verdicts, strict=True):
        flagged, score = result.score >= act_at, result.score
        if rule is not None:
            flagged, score = combine(rule, (flagged, result.score), verdicts)
        # between the flagging and the action's operating points a passage is kept and flagged
        action = policy.injection.action_for("retrieved") if flagged else "flag" if result.score >= flag_at else None
        if action is None:
            kept.append(hit)
            continue
        reason = result.reason + (" (screened at ingest)" if hit.chunk.id in at_ingest else "")
        by = [name for name, v in verdicts.items() if v.flagged]
        log(
            "injection",
            action,
            source="retrieved",
            scores={
                "score": round(score, 4),
                "builtin": round(result.score, 4),
                "classifier": round(result.classifier, 4),
                **{f"provider:{name}": v.score for name, v in verdicts.items()},
            },
            detail=f"chunk {hit.chunk.id}: {reason}" + (f"; providers: {', '.join(by)}" if by else ""),
        )
        ctx.meta.setdefault("injection", []).append(
            {"where": f"retrieved:{hit.chunk.id}", "source": "retrieved", "score": score, "verdict": action}
        )
        flag_header(ctx, "drop" if action == "block" else action, "retrieved", score)
        if action == "flag":
            kept.append(hit)
        elif action == "strip":  # a copy: the store's chunk is shared with every other request
            kept.append(replace(hit, chunk=replace(hit.chunk, text=STRIPPED, title="", heading="")))
    return kept


def _verdicts(runtime: GuardRuntime, hits: list[Hit]) -> tuple[list[Any], set[str]]:
    """Blocking: the verdicts stored at ingest by this very detector, the other passages scored
    now; and the ids of the chunks whose verdict came from the ingest."""
    mark = fingerprint(injection_detector())
    results: list[Any] = [stored(h.chunk, mark) for h in hits]
    at_ingest = {h.chunk.id for h, r in zip(hits, results, strict=True) if r is not None}
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        texts = [screened_text(hits[i].chunk) for i in todo]  # title and section too: the model sees them
        scored = runtime.score_injection(texts, ["retrieved"] * len(todo), runtime.side_here)
        for i, result in zip(todo, scored, strict=True):
            results[i] = result
    return results, at_ingest
