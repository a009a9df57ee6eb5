"""A check's guard providers consulted for one request, each verdict logged as a guard event.

A provider that fails (error, timeout) is logged as ``error``; failing open it just drops out of
the combination, failing closed (its spec's ``on_error``, else the policy's; a route's
``guard_failure: open`` opens it) refuses the request with 503 ``guard_unavailable``. The input,
retrieval and output guard stages all go through here, so a verdict reads the same in the log
whichever text it was on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llmgw.guards.events import GuardLog
from llmgw.guards.policy import Combination, Policy
from llmgw.guards.providers import Verdict, VerdictMemo, consult
from llmgw.guards.providers.judge import Hooks
from llmgw.guards.providers.registry import lineup
from llmgw.guards.runtime import guard_unavailable


@dataclass(slots=True)
class Consulted:
    """Per text, the verdict of each provider that gave one; ``failed_open``: one failed and was let pass."""

    verdicts: list[dict[str, Verdict]] = field(default_factory=list)
    failed_open: bool = False


async def consult_providers(
    log: GuardLog,
    policy: Policy,
    rule: Combination,
    hooks: Hooks,
    texts: list[str],
    source: str,
    check: str,
    route_open: bool,
    count: Callable[[str, str, str], None] | None = None,
    memo: VerdictMemo | None = None,
) -> Consulted:
    """The check's guard providers on ``texts``. Each verdict is a guard event named
    ``{check}:{provider}``, and counted by ``count(check, provider, verdict)`` (the gateway's
    metrics); ``route_open``: the route fails open whatever the spec says; ``memo``: verdicts given
    before on the same texts (the gateway's), reused for each spec's ``verdict_ttl_s``."""
    stage = "output" if source == "output" else "input"
    out = Consulted([{} for _ in texts])
    for outcome in await consult(lineup(policy, rule, hooks), texts, source, memo):
        guard = f"{check}:{outcome.provider}"
        if count is not None:  # per text read, as the input side's events; an error once per call
            kinds = ["flag" if v.flagged else "allow" for v in outcome.verdicts] if outcome.verdicts else ["error"]
            for kind in kinds:
                count(check, outcome.provider, kind)
        if outcome.verdicts is None:
            log(guard, "error", stage=stage, source=source, scores={"failed": 1.0}, detail=outcome.error)
            if outcome.fail_open or route_open:
                out.failed_open = True
                continue
            # the client learns which provider and what kind of failure; the detail (an endpoint's
            # internal URL, an AWS account's error text) is the guardrail log's
            raise guard_unavailable(
                f"guard provider {outcome.provider!r}: {(outcome.error or 'failed').split(':', 1)[0]}"
            )
        if source == "output":  # one event per batch of windows: a long stream is many windows
            flagged = [v for v in outcome.verdicts if v.flagged]
            top = max(outcome.verdicts, key=lambda v: v.score)
            log(guard, "flag" if flagged else "allow", stage=stage, source=source,
                scores={"score": top.score, **top.categories},
                detail=", ".join(sorted({v.detail for v in flagged if v.detail})) or None)  # fmt: skip
        else:
            for verdict in outcome.verdicts:
                log(guard, "flag" if verdict.flagged else "allow", stage=stage, source=source,
                    scores={"score": verdict.score, **verdict.categories}, detail=verdict.detail or None)  # fmt: skip
        for slot, verdict in zip(out.verdicts, outcome.verdicts, strict=True):
            slot[outcome.provider] = verdict
    return out
