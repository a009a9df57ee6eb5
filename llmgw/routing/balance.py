"""Deployments of a model: which endpoint to call, and which to leave alone for a while.

A model's own ``provider``/``upstream_id`` is its first deployment; ``deployments`` add more. Each
has a circuit breaker: after ``routing.breaker_failures`` consecutive failures (5xx, 429, timeouts)
it is skipped for ``breaker_cooldown_s``, then tried again (half-open: one request, the probe, is let
through and holds the circuit open while it runs; its success closes it, its failure reopens it).
Among the healthy ones, ``weighted`` picks at random in proportion to the weights; ``latency``
prefers the lowest moving average (EWMA) of time to the first byte, trying each at least once.
State is per process: each replica learns its own view of the upstreams.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from llmgw.config import ModelConfig, RoutingConfig


@dataclass(slots=True)
class Deployment:
    model: str
    provider: str
    upstream_id: str
    weight: float = 1.0
    ewma_ms: float | None = None
    failures: int = 0
    open_until: float = 0.0
    calls: int = 0

    @property
    def key(self) -> str:
        return f"{self.model}@{self.provider}/{self.upstream_id}"

    def record(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "upstream_id": self.upstream_id,
            "ewma_ms": self.ewma_ms,
            "failures": self.failures,
            "open": self.open_until > time.monotonic(),
        }


class Balancer:
    def __init__(self, config: RoutingConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self._deployments: dict[str, list[Deployment]] = {}

    def deployments(self, name: str, model: ModelConfig) -> list[Deployment]:
        found = self._deployments.get(name)
        if found is None:
            found = [Deployment(name, model.provider, model.upstream_id)] + [
                Deployment(name, d.provider, d.upstream_id, d.weight) for d in model.deployments
            ]
            self._deployments[name] = found
        return found

    def order(self, name: str, model: ModelConfig) -> list[Deployment]:
        """Every deployment, the one to try first first; open circuits last."""
        every = self.deployments(name, model)
        if len(every) == 1:  # most models: nothing to order
            return every[:]
        now = time.monotonic()
        healthy = [d for d in every if d.open_until <= now]
        broken = sorted((d for d in every if d.open_until > now), key=lambda d: d.open_until)
        if model.balance == "latency":
            untried = [d for d in healthy if d.calls == 0]
            tried = sorted((d for d in healthy if d.calls), key=lambda d: d.ewma_ms if d.ewma_ms is not None else 1e12)
            return untried + tried + broken
        ordered: list[Deployment] = []
        pool = list(healthy)
        while pool:  # weighted sampling without replacement
            pick = self.rng.choices(pool, weights=[d.weight for d in pool])[0]
            ordered.append(pick)
            pool.remove(pick)
        return ordered + broken

    def circuits(self) -> dict[tuple[str, str], bool]:
        """(model, ``provider/upstream_id``) → whether its circuit is open now, for ``/metrics``."""
        return {
            (d.model, f"{d.provider}/{d.upstream_id}"): self.is_open(d)
            for found in self._deployments.values()
            for d in found
        }

    @staticmethod
    def is_open(deployment: Deployment) -> bool:
        """Whether the deployment's circuit is open (failing, within its cooldown); half-open after it."""
        return deployment.open_until > time.monotonic()

    def admit(self, deployment: Deployment) -> bool:
        """Whether a request may call ``deployment`` now: its circuit is closed, or half-open and this
        request becomes the probe. The probe keeps the circuit open for another cooldown while it runs
        (a probe that never reports, its client gone, frees the next one then): without it every
        request arriving after the cooldown called an upstream that may still be down."""
        if not deployment.open_until:
            return True
        now = time.monotonic()
        if deployment.open_until > now:
            return False  # open, or a probe is in flight
        deployment.open_until = now + self.config.breaker_cooldown_s
        return True

    def succeeded(self, deployment: Deployment, latency_ms: float) -> None:
        a = self.config.ewma_alpha
        deployment.ewma_ms = latency_ms if deployment.ewma_ms is None else a * latency_ms + (1 - a) * deployment.ewma_ms
        deployment.failures = 0
        deployment.open_until = 0.0
        deployment.calls += 1

    def failed(self, deployment: Deployment) -> None:
        deployment.failures += 1
        deployment.calls += 1
        if deployment.failures >= self.config.breaker_failures:
            deployment.open_until = time.monotonic() + self.config.breaker_cooldown_s
