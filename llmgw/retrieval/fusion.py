"""Fusing a vector ranking and a keyword ranking into one, as OpenSearch's search pipelines do.

* ``rrf``: reciprocal rank fusion, score = sum of weight / (rank_constant + rank) over the lists a
  hit appears in (OpenSearch's ``score-ranker-processor``, rank_constant 60 by default).
* ``min_max``: each list's scores normalised to [0, 1] by its own min and max, then a weighted
  arithmetic mean, a missing hit counting 0 (the ``normalization-processor``).

The local store and the OpenSearch store's client-side fallback both use these functions, so a
collection ranks the same on both within the limits of approximate k-NN.
"""

from __future__ import annotations


def rrf(rankings: list[list[str]], rank_constant: int = 60, weights: list[float] | None = None) -> dict[str, float]:
    """Weights scale each list's reciprocal ranks (OpenSearch: ``combination.parameters.weights``)."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (rank_constant + rank)
    return fused


def min_max(scored: list[dict[str, float]], weights: list[float]) -> dict[str, float]:
    fused: dict[str, float] = {}
    total = sum(weights) or 1.0
    for scores, weight in zip(scored, weights, strict=True):
        if not scores:
            continue
        low, high = min(scores.values()), max(scores.values())
        for key, score in scores.items():
            normalised = (score - low) / (high - low) if high > low else 1.0
            fused[key] = fused.get(key, 0.0) + weight * normalised / total
    return fused


def top(fused: dict[str, float], k: int) -> list[tuple[str, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
