"""Choosing a model for ``auto``, ``fast`` and ``best``, and the order to fall back in.

Candidates are the route's and the key's chat models that have the capabilities the request
needs (streaming, tools, JSON mode, vision) and whose context window fits the estimated prompt
plus the expected output. Then, for the request's task:

* ``cheapest`` (what ``auto`` means by default): the lowest estimated cost among models whose
  quality for the task reaches the route's floor; if none does, the best quality;
* ``best``: the highest quality whose estimated cost is within the route's cap;
* ``fast``: the lowest estimated cost, quality aside.

The rest of the ranking is the fallback order. Every step is written down for the request row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmgw.config import ModelConfig, RouteSelectionConfig
from llmgw.usage import estimate_tokens, prompt_chars


@dataclass(slots=True)
class Candidate:
    name: str
    model: ModelConfig
    quality: float
    est_cost: float
    eligible: bool = True
    why: str = ""

    def record(self) -> dict[str, Any]:
        out = {"model": self.name, "quality": self.quality, "est_cost_usd": round(self.est_cost, 8)}
        if not self.eligible:
            out["excluded"] = self.why
        return out


@dataclass(slots=True)
class Decision:
    task: str
    confidence: float
    task_source: str
    policy: str
    rule: str
    ranked: list[Candidate]
    excluded: list[Candidate] = field(default_factory=list)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "confidence": round(self.confidence, 3),
            "task_source": self.task_source,
            "policy": self.policy,
            "rule": self.rule,
            "chosen": self.ranked[0].name if self.ranked else None,
            "candidates": [c.record() for c in self.ranked + self.excluded],
            "fallbacks": self.fallbacks,
        }

    def header(self, route: str, model: str | None) -> str:
        return f"{route}; task={self.task} ({self.task_source}, {self.confidence:.2f}); {self.rule}; model={model}"


def needs(body: dict[str, Any], stream: bool) -> set[str]:
    wanted = {"chat"}
    if stream:
        wanted.add("streaming")
    if body.get("tools"):
        wanted.add("tools")
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        wanted.add("json_mode")
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            wanted.add("vision")
    return wanted


def candidates(
    models: dict[str, ModelConfig],
    body: dict[str, Any],
    stream: bool,
    task: str,
    spec: RouteSelectionConfig,
    allowed: Any,
) -> tuple[list[Candidate], list[Candidate]]:
    """(eligible, excluded) with estimated costs; ``allowed(name)`` applies route and key permissions."""
    prompt = estimate_tokens(prompt_chars(body))
    output = int(body.get("max_completion_tokens") or body.get("max_tokens") or spec.expected_output_tokens)
    wanted = needs(body, stream)
    eligible: list[Candidate] = []
    excluded: list[Candidate] = []
    for name, model in models.items():
        if model.kind != "chat" or not allowed(name):
            continue
        cost = (prompt * model.price.input_per_mtok + output * model.price.output_per_mtok) / 1_000_000
        candidate = Candidate(name, model, float(model.quality.get(task, model.quality.get("default", 0.5))), cost)
        missing = sorted(wanted - set(model.capabilities) - {"chat"})
        if missing:
            candidate.eligible, candidate.why = False, f"lacks {', '.join(missing)}"
        elif prompt + output > model.context_window:
            candidate.eligible, candidate.why = False, f"context {model.context_window} < {prompt + output} tokens"
        (eligible if candidate.eligible else excluded).append(candidate)
    return eligible, excluded


def rank(eligible: list[Candidate], alias: str, spec: RouteSelectionConfig) -> tuple[list[Candidate], str]:
    """The models in the order to try them, and the rule that put the first one first."""
    by_cost = sorted(eligible, key=lambda c: (c.est_cost, -c.quality, c.name))
    by_quality = sorted(eligible, key=lambda c: (-c.quality, c.est_cost, c.name))
    policy = spec.policy if alias in ("auto", "default") else alias
    if policy == "fast":
        return by_cost, "fast: lowest estimated cost"
    if policy == "best":
        if spec.cost_cap_usd is None:
            return by_quality, "best: highest quality"
        within = [c for c in by_quality if c.est_cost <= spec.cost_cap_usd]
        rest = [c for c in by_quality if c.est_cost > spec.cost_cap_usd]
        if within:
            return within + rest, f"best: highest quality within ${spec.cost_cap_usd:g}"
        return by_cost, f"best: nothing within ${spec.cost_cap_usd:g}, the cheapest"
    good = [c for c in by_cost if c.quality >= spec.quality_floor]
    if good:
        others = [c for c in by_quality if c not in good]
        return good + others, f"cheapest with quality >= {spec.quality_floor:g}"
    return by_quality, f"cheapest: no model reaches quality {spec.quality_floor:g}, the best"


def safest_task(
    plausible: tuple[str, ...],
    models: dict[str, ModelConfig],
    body: dict[str, Any],
    stream: bool,
    alias: str,
    spec: RouteSelectionConfig,
    allowed: Any,
) -> str:
    """When the classifier is unsure: the plausible task whose chosen model serves every plausible task best.

    Each plausible task is routed as if it were the task; the one whose first model has the
    highest quality for the *worst served* of the plausible tasks wins (then the cheaper, then the
    more probable). A code-or-chat request on a catalog where only the large model writes code
    goes to the large model; on a catalog where one model does both, to the cheaper choice.
    Always sending unsure requests to ``chat`` sent code to the model that is worst at it.
    """
    best, best_key = plausible[0], None
    for task in plausible:
        eligible, _ = candidates(models, body, stream, task, spec, allowed)
        if not eligible:
            continue
        chosen = rank(eligible, alias, spec)[0][0]
        worst = min(float(chosen.model.quality.get(t, chosen.model.quality.get("default", 0.5))) for t in plausible)
        key = (worst, -chosen.est_cost)
        if best_key is None or key > best_key:
            best, best_key = task, key
    return best
