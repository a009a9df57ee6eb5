"""Guard providers built from a policy's specs, once per process, and the per-check lineup."""

from __future__ import annotations

from llmgw.guards.policy import Combination, Policy
from llmgw.guards.providers import GuardProvider

_BUILT: dict[str, GuardProvider] = {}


def build(name: str, spec: object) -> GuardProvider:
    from llmgw.guards.policy import ModerationEndpoint

    if isinstance(spec, ModerationEndpoint):
        from llmgw.guards.providers.moderation_api import ModerationApiProvider

        return ModerationApiProvider(name, spec)
    raise ValueError(f"no guard provider for {type(spec).__name__}")


def provider(policy: Policy, name: str) -> GuardProvider:
    """The provider ``name`` of ``policy``, shared by every policy with the same spec."""
    spec = policy.providers[name]
    key = f"{name}:{spec.model_dump_json()}"
    built = _BUILT.get(key)
    if built is None:
        built = _BUILT.setdefault(key, build(name, spec))
    return built


def lineup(policy: Policy, rule: Combination) -> list[tuple[GuardProvider, float, bool]]:
    """The check's providers, each with its timeout and whether it fails open (spec, else policy)."""
    out = []
    for name in rule.providers:
        spec = policy.providers[name]
        timeout = spec.timeout_s or policy.timeout_s
        fail_open = (spec.on_error or policy.on_error) == "open"
        out.append((provider(policy, name), timeout, fail_open))
    return out
