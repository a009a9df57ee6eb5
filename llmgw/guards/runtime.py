"""The guards' long-lived parts: policies, analyzers and classifiers, and their worker thread.

Models load once per process (Presidio + spaCy about 1 s, MiniLM 4–5 s) and are shared by every
gateway in it. All model work runs on the guards' own worker thread with a timeout, so the event
loop never waits on it; a guard that errors or times out fails closed unless the policy says open.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Collection
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from llmgw.config import ConfigError, GuardsConfig
from llmgw.errors import GuardUnavailable
from llmgw.guards.pii import Masker, PiiAnalyzer
from llmgw.guards.policy import Policy, load_policies
from llmgw.guards.providers import VerdictMemo

log = logging.getLogger("llmgw.guards")
T = TypeVar("T")


#: checks reading more characters than this run on a thread of their own (``GuardRuntime.bulk``): a
#: long document's guards take seconds, and on the shared threads every short request queued behind
#: it waited out its own budget and failed with it
BULK_CHARS = 16_000


class GuardFailure(Exception):
    """A guard could not give a verdict (error or timeout)."""


def guard_unavailable(detail: str) -> GuardUnavailable:
    """The client's error for a guard that failed where the policy fails closed (503)."""
    return GuardUnavailable(f"a guard could not check this request, and the policy fails closed: {detail}")


@lru_cache(maxsize=1)
def injection_detector() -> Any:
    from llmgw.encoders import encoder
    from llmgw.guards.injection import InjectionDetector

    return InjectionDetector(embed=encoder("float"))


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


def selectable_policies(config: GuardsConfig, policies: dict[str, Policy]) -> list[str]:
    """The policies a request can get (``default_policy`` and those the key, team and route maps
    name), in that order; a name with no file is a configuration error, found at start-up rather
    than as a 503 on the first request it would apply to."""
    named = [("default_policy", config.default_policy)]
    for field in ("route_policies", "team_policies", "key_policies"):
        named += [(f"{field}.{who}", name) for who, name in getattr(config, field).items()]
    missing = [(f"guards.{where}", f"no policy {name!r} in {config.policy_dir}") for where, name in named
               if name not in policies]  # fmt: skip
    if missing:
        raise ConfigError(missing, config.policy_dir)
    return list(dict.fromkeys(name for _, name in named))


def judges_in_catalog(config: GuardsConfig, policies: list[Policy], catalog: Collection[str]) -> None:
    """Every ``llm_judge`` of a policy a request can get names a model of the gateway's catalog: a
    misspelt one is a configuration error at start-up, not a 503 (or, failing open, an unguarded
    pass) on every request the policy applies to."""
    from llmgw.guards.policy import LlmJudge

    missing = [(f"{policy.name}.providers.{name}.model", f"no model {spec.model!r} in `models`")
               for policy in policies for name, spec in policy.providers.items()
               if isinstance(spec, LlmJudge) and spec.model not in catalog]  # fmt: skip
    if missing:
        raise ConfigError(missing, config.policy_dir)


#: injection results kept per runtime (content hash and source -> result)
INJECTION_CACHE_SIZE = 4096


class GuardRuntime:
    """One gateway's guards: its policies, worker threads, and the caches of results by content
    (PII analyzers per policy, injection scores), so history resent on every turn is read once.
    The models behind them load once per process (``injection_detector``, ``presidio_engine``)."""

    def __init__(self, config: GuardsConfig, catalog: Collection[str] | None = None) -> None:
        self.config = config
        self._analyzers: dict[str, PiiAnalyzer] = {}
        self._injection_cache: OrderedDict[str, Any] = OrderedDict()
        self._injection_lock = threading.Lock()  # guard workers share the cache
        self.verdicts = VerdictMemo()  # guard providers' verdicts by content (event loop only)
        self.policies = configured_policies(config)
        #: what a request can get: only these are loaded at start-up (another policy file in the folder,
        #: e.g. one naming a local model this machine does not have, is validated but not loaded)
        self.selectable = selectable_policies(config, self.policies) if config.enabled else []
        if catalog is not None:
            judges_in_catalog(config, [self.policies[name] for name in self.selectable], catalog)
        self.healthy = True
        self.executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="llmgw-guards")
        # a second thread for work that overlaps the main guard work of the same request (PII beside
        # the injection embedding): on two cores the input guards cost the slower of the two, not the sum
        self.side = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="llmgw-guards-side")
        # long reads (more than BULK_CHARS characters) on threads of their own, with their own side thread
        self.bulk = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="llmgw-guards-bulk")
        self.bulk_side = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="llmgw-guards-bulk-side")
        self._lane = threading.local()  # on a guard thread: the side thread of the lane ``run`` chose
        if config.hash_salt:
            self.salt = config.hash_salt.encode()
        else:
            self.salt = os.urandom(16)
            if config.enabled:
                log.warning(
                    "guards.hash_salt is not set: PII value hashes in the log cannot be matched across restarts"
                )

    def policy_for(self, key_id: str | None, team: str | None, route_name: str) -> Policy:
        """The policy of the caller's key, else its team's, else the route's, else the default."""
        name = (
            (key_id and self.config.key_policies.get(key_id))
            or (team and self.config.team_policies.get(team))
            or self.config.route_policies.get(route_name)
            or self.config.default_policy
        )
        policy = self.policies.get(name)
        if policy is None:
            raise GuardFailure(f"policy {name!r} not found in {self.config.policy_dir}")
        return policy

    def analyzer(self, policy: Policy) -> PiiAnalyzer:
        """One analyzer (and its result cache) per distinct PII policy."""
        key = policy.pii.model_dump_json()
        analyzer = self._analyzers.get(key)
        if analyzer is None:
            analyzer = self._analyzers.setdefault(key, PiiAnalyzer(policy.pii))
        return analyzer

    def score_injection(
        self,
        texts: list[str],
        sources: list[str] | None = None,
        side: Executor | None = None,
        evidence_on: Executor | None = None,
    ) -> list[Any]:
        """Blocking: injection results by content hash and source (``user`` by default; ``retrieved``
        and ``tool`` text also gets the passage rules): history resent on every turn is scored once.
        With ``side``, half of several new texts is scored on that executor meanwhile (retrieved
        passages: the embeddings run outside the GIL, so on two cores four passages cost about the
        time of two). With ``evidence_on``, the rules and the n-gram model of the texts scored here
        run on that executor while their embedding runs here (``InjectionDetector.score_many``)."""
        kinds = sources or ["user"] * len(texts)
        keys = [hashlib.sha256(f"{s}:{t}".encode()).hexdigest() for t, s in zip(texts, kinds, strict=True)]
        cache = self._injection_cache
        with self._injection_lock:
            found = {k: cache[k] for k in keys if k in cache}
        missing = sorted({k: (t, s) for k, t, s in zip(keys, texts, kinds, strict=True) if k not in found}.items())
        if missing:
            detector = injection_detector()
            split = len(missing) // 2 if side is not None and len(missing) >= 2 else 0
            ahead, here = missing[:split], missing[split:]
            pending = (
                side.submit(detector.score_many, [t for _, (t, _) in ahead], [s for _, (_, s) in ahead])
                if side is not None and ahead
                else None
            )
            scored = detector.score_many([t for _, (t, _) in here], [s for _, (_, s) in here], evidence_on)
            fresh = dict(zip([k for k, _ in ahead + here], (pending.result() if pending else []) + scored, strict=True))
            found.update(fresh)
            with self._injection_lock:
                cache.update(fresh)
                while len(cache) > INJECTION_CACHE_SIZE:
                    cache.popitem(last=False)
        return [found[k] for k in keys]

    async def mask_stored_text(self, policy: Policy, text: str, where: str) -> str:
        """``text`` that goes only to the database (a feedback comment) with PII masked per
        ``policy``; a ``block`` entity refuses it (400 ``pii_blocked``), a failing analyzer fails
        closed or open as for a request."""
        if not text or not policy.pii.enabled:
            return text
        try:
            findings = await self.run(policy.timeout_s, self.analyzer(policy).analyze, text)
        except GuardFailure as exc:
            if policy.on_error == "open":
                return text
            raise guard_unavailable(str(exc)) from None
        return Masker(policy.pii, salt=self.salt).apply(text, findings, where)[0]

    def warm(self) -> None:
        """Load every model of the policies a request can get now (blocking) rather than on the first request."""
        for policy in (self.policies[name] for name in self.selectable):
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
        load than a guard's timeout, so loading it on the first request would fail that request;
        and what can be found wrong before a request (a model that does not fit its tokenizer or
        labels, a moderation endpoint's key variable not set) is reported now, naming the provider."""
        from llmgw.guards.policy import BedrockGuardrail, ModerationEndpoint, OnnxClassifier
        from llmgw.guards.providers.registry import provider

        for name, spec in policy.providers.items():
            if isinstance(spec, ModerationEndpoint):  # its key's variable: unset, every call would fail
                provider(policy, name)._headers()  # type: ignore[attr-defined]
            if isinstance(spec, BedrockGuardrail):  # no AWS credentials: every call would fail
                provider(policy, name).warm()  # type: ignore[attr-defined]
            if isinstance(spec, OnnxClassifier):
                # an OnnxClassifierProvider: the GuardProvider protocol has no loading step
                provider(policy, name).warm()  # type: ignore[attr-defined]

    async def run(self, timeout: float, fn: Any, *args: Any, chars: int = 0) -> Any:
        """Run blocking guard work on the worker thread; errors and timeouts become GuardFailure.
        Work reading more than :data:`BULK_CHARS` characters runs on the ``bulk`` thread instead."""
        loop = asyncio.get_running_loop()
        executor, side = (self.bulk, self.bulk_side) if chars > BULK_CHARS else (self.executor, self.side)
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, self._on_lane, side, fn, *args), timeout)
        except TimeoutError:
            raise GuardFailure(f"guard timed out after {timeout:g}s") from None
        except Exception as exc:  # any guard bug must become a verdict, not a crash
            log.exception("guard failed")
            raise GuardFailure(f"guard failed: {type(exc).__name__}: {exc}") from exc

    def _on_lane(self, side: Executor, fn: Any, *args: Any) -> Any:
        self._lane.side = side
        return fn(*args)

    @property
    def side_here(self) -> Executor:
        """The side thread for work overlapping the calling guard thread's: its lane's (``run``
        decided it once, by the characters read), the shared one for a caller outside ``run``."""
        side: Executor = getattr(self._lane, "side", self.side)
        return side

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.side.shutdown(wait=False, cancel_futures=True)
        self.bulk.shutdown(wait=False, cancel_futures=True)
        self.bulk_side.shutdown(wait=False, cancel_futures=True)
