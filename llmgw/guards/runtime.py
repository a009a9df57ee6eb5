"""The guards' long-lived parts: policies, analyzers and classifiers, and their worker thread.

Models load once per process (Presidio + spaCy about 1 s, MiniLM 4–5 s) and are shared by every
gateway in it. All model work runs on the guards' own worker thread with a timeout, so the event
loop never waits on it; a guard that errors or times out fails closed unless the policy says open.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from llmgw.config import GuardsConfig
from llmgw.context import RequestContext
from llmgw.guards.pii import PiiAnalyzer
from llmgw.guards.policy import PiiPolicy, Policy, load_policies

log = logging.getLogger("llmgw.guards")
T = TypeVar("T")


class GuardFailure(Exception):
    """A guard could not give a verdict (error or timeout)."""


_ANALYZERS: dict[str, PiiAnalyzer] = {}


def _analyzer(pii: PiiPolicy) -> PiiAnalyzer:
    """One analyzer (and its result cache) per distinct PII policy, shared process-wide."""
    key = pii.model_dump_json()
    analyzer = _ANALYZERS.get(key)
    if analyzer is None:
        analyzer = _ANALYZERS.setdefault(key, PiiAnalyzer(pii))
    return analyzer


@lru_cache(maxsize=1)
def injection_detector() -> Any:
    from llmgw.encoders import encoder
    from llmgw.guards.injection import InjectionDetector

    return InjectionDetector(embed=encoder("float"))


@lru_cache(maxsize=4)
def moderator(extra_terms: tuple[str, ...] = ()) -> Any:
    from llmgw.encoders import encoder
    from llmgw.guards.moderation import Moderator

    return Moderator(embed=encoder("float"), policy_terms=extra_terms)


def policy_dir(configured: str) -> Path:
    """The folder as configured; a relative one missing from the working directory is looked up in
    the llmgw checkout itself, so `llmgw serve` run from elsewhere still finds the shipped policies."""
    path = Path(configured)
    if path.is_dir() or path.is_absolute():
        return path
    return Path(__file__).resolve().parents[2] / configured


def configured_policies(config: GuardsConfig) -> dict[str, Policy]:
    """The policy files of ``config.policy_dir`` by name, with a built-in ``default`` if none is there."""
    policies = load_policies(policy_dir(config.policy_dir))
    policies.setdefault("default", Policy(name="default", version="builtin"))
    return policies


class GuardRuntime:
    def __init__(self, config: GuardsConfig) -> None:
        self.config = config
        self.policies = configured_policies(config)
        self.healthy = True
        self.executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="llmgw-guards")
        # a second thread for work that overlaps the main guard work of the same request (PII beside
        # the injection embedding): on two cores the input guards cost the slower of the two, not the sum
        self.side = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="llmgw-guards-side")
        if config.hash_salt:
            self.salt = config.hash_salt.encode()
        else:
            self.salt = os.urandom(16)
            if config.enabled:
                log.warning(
                    "guards.hash_salt is not set: PII value hashes in the log cannot be matched across restarts"
                )

    def policy_for(self, ctx: RequestContext) -> Policy:
        key = ctx.key
        name = (
            (key and self.config.key_policies.get(key.id))
            or (key and key.team and self.config.team_policies.get(key.team))
            or self.config.route_policies.get(ctx.route_name)
            or self.config.default_policy
        )
        policy = self.policies.get(name)
        if policy is None:
            raise GuardFailure(f"policy {name!r} not found in {self.config.policy_dir}")
        return policy

    def analyzer(self, policy: Policy) -> PiiAnalyzer:
        return _analyzer(policy.pii)

    def warm(self) -> None:
        """Load every model now (blocking) rather than on the first request."""
        for policy in self.policies.values():
            if policy.pii.enabled:
                self.analyzer(policy).analyze("warm up: Jane Doe, jane@example.com")
            if policy.injection.enabled:
                injection_detector().score("hello")
            if policy.moderation.enabled:  # the whole output check: moderator, secrets, new-PII recognizers
                from llmgw.guards.output import check_output

                check_output(policy, ["hello"], None, "")
            self.warm_providers(policy)

    @staticmethod
    def warm_providers(policy: Policy) -> None:
        """Load a policy's local guard models now: a Prompt Guard-sized ONNX model takes longer to
        load than a guard's timeout, so loading it on the first request would fail that request."""
        from llmgw.guards.policy import OnnxClassifier
        from llmgw.guards.providers.registry import provider

        for name, spec in policy.providers.items():
            if isinstance(spec, OnnxClassifier):
                provider(policy, name)._load()  # type: ignore[attr-defined]

    async def run(self, timeout: float, fn: Any, *args: Any) -> Any:
        """Run blocking guard work on the worker thread; errors and timeouts become GuardFailure."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.executor, fn, *args), timeout)
        except TimeoutError:
            raise GuardFailure(f"guard timed out after {timeout:g}s") from None
        except Exception as exc:  # any guard bug must become a verdict, not a crash
            log.exception("guard failed")
            raise GuardFailure(f"guard failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.side.shutdown(wait=False, cancel_futures=True)
