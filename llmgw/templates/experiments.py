"""Online A/B assignment: weighted arms, sticky per user (hashed) or per request.

A unit (the user, or the request id when there is no user or stickiness is per request) is hashed
with the experiment name into [0, 1), which picks an arm by cumulative weight: the same user
always lands in the same arm, different experiments split users independently, and nothing
needs to be stored to remember an assignment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from llmgw.config import ArmConfig, ExperimentConfig


def bucket(experiment: str, unit: str) -> float:
    digest = hashlib.sha256(f"{experiment}\0{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment: str
    arm: ArmConfig
    sticky: bool

    def header(self) -> str:
        return f"{self.experiment}={self.arm.name}"


def assign(
    name: str,
    experiment: ExperimentConfig,
    user: str | None,
    request_id: str,
    arms: Sequence[ArmConfig] | None = None,
) -> Assignment:
    """The unit's arm, drawn among ``arms`` (non-empty; the experiment's by default).

    The template stage passes only the arms the caller may use: an arm whose model the caller's
    key or route may not use is left out of that caller's draw (its share goes to the other arms),
    since drawing it would refuse a request for a model the caller is allowed.
    """
    arms = list(experiment.arms if arms is None else arms)
    sticky = experiment.sticky == "user" and bool(user)
    point = bucket(name, user if sticky and user else request_id)
    total = sum(arm.weight for arm in arms)
    edge = 0.0
    for arm in arms:
        edge += arm.weight / total
        if point < edge:
            return Assignment(name, arm, sticky)
    return Assignment(name, arms[-1], sticky)
