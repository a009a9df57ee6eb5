"""Guard providers built from a policy's specs, and the lineup of a check.

Stateless providers (HTTP endpoints) are built once per process; a judge is built for each check
from the :class:`~llmgw.guards.providers.judge.Hooks` that reach the calling gateway's models.
"""

from __future__ import annotations

from typing import Any

from llmgw.guards.policy import BedrockGuardrail, Combination, LlmJudge, ModerationEndpoint, OnnxClassifier, Policy
from llmgw.guards.providers import GuardProvider, Lined

_BUILT: dict[str, GuardProvider] = {}


def build(name: str, spec: Any, hooks: Any = None, timeout: float = 60.0) -> GuardProvider:
    if isinstance(spec, ModerationEndpoint):
        from llmgw.guards.providers.moderation_api import ModerationApiProvider

        return ModerationApiProvider(name, spec)
    if isinstance(spec, BedrockGuardrail):
        from llmgw.guards.providers.bedrock_guardrail import BedrockGuardrailProvider

        return BedrockGuardrailProvider(name, spec, timeout=timeout)
    if isinstance(spec, OnnxClassifier):
        from llmgw.guards.providers.onnx_classifier import OnnxClassifierProvider

        return OnnxClassifierProvider(name, spec)
    if isinstance(spec, LlmJudge):
        from llmgw.guards.providers.judge import JudgeProvider

        if hooks is None:
            raise ValueError(f"guard provider {name!r} (llm_judge) needs the gateway's models")
        return JudgeProvider(name, spec, hooks)
    raise ValueError(f"no guard provider for {type(spec).__name__}")


def provider(policy: Policy, name: str, hooks: Any = None) -> GuardProvider:
    """The provider ``name`` of ``policy``: one per spec, a judge (a plain object) per call."""
    spec = policy.providers[name]
    if isinstance(spec, LlmJudge):
        return build(name, spec, hooks)
    key = f"{name}:{spec.model_dump_json()}"
    built = _BUILT.get(key)
    if built is None:  # a Bedrock client's sockets time out with the check (the first policy's, if shared)
        built = _BUILT.setdefault(key, build(name, spec, hooks, spec.timeout_s or policy.timeout_s))
    return built


def lineup(policy: Policy, rule: Combination, hooks: Any = None) -> list[Lined]:
    """The check's providers, each with its timeout, whether it fails open (spec, else policy) and
    the key its verdicts are reused under (the spec itself: a changed spec reads texts anew)."""
    out = []
    for name in rule.providers:
        spec = policy.providers[name]
        timeout = spec.timeout_s or policy.timeout_s
        fail_open = (spec.on_error or policy.on_error) == "open"
        memo_key = f"{name}:{spec.model_dump_json()}"
        out.append(Lined(provider(policy, name, hooks), timeout, fail_open, memo_key, spec.verdict_ttl_s))
    return out
