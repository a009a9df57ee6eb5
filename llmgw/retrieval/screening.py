"""Screening a collection's chunks for hidden instructions when they are ingested.

The retrieval guard scores every retrieved passage it has not seen in this process on the request
path: about 40 ms of CPU for a new 1,000-character passage, paid again after every restart and on
every replica. A collection's chunks are known at ingest, so ``llmgw ingest`` scores them there,
with the same detector, and stores the result with the chunk (``metadata["screen"]``). This moves
the cost off the request path, and it tells whoever runs the ingest which documents hold text that
reads like an instruction to a model before any user retrieves it.

A stored result carries the detector's fingerprint (its models and rules). The guard reuses it
only while the gateway runs the very same detector, and scores the passage itself otherwise: new
models or rules never trust an old verdict. The stored text is never re-read from the result, so
a chunk edited in the store without re-ingesting keeps a result for its old text; chunks are
written only by ``llmgw ingest``, which screens what it writes.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmgw.guards.injection import InjectionResult
from llmgw.retrieval.store import StoredChunk

KEY = "screen"
SOURCE = "retrieved"
#: part of the fingerprint; bumped when what a stored verdict means changes. 2: each chunk has its
#: own verdict (before, the chunks of one document shared one metadata dict, and all of them held
#: the verdict of its last chunk: those verdicts must not be trusted)
FORMAT = b"verdict-format-3"  # 3: the title and section are scored with the text (before: the text alone)


def screened_text(chunk: StoredChunk) -> str:
    """What of a chunk the model sees, so what is scored: the passage template renders its title and
    section too, and an instruction hidden in a heading or an HTML ``<title>`` reached the model
    unscreened when only the text was scored."""
    head = "\n".join(p for p in (chunk.title, chunk.heading) if p)
    return f"{head}\n\n{chunk.text}" if head else chunk.text


@lru_cache(maxsize=4)
def fingerprint(detector: Any) -> str:
    """The detector's models and the code that turns them into a passage score (the rules, the
    normalisation, the passage unit): a change to any of them makes every stored verdict stale."""
    from llmgw.guards import classifier, injection, normalize, reported

    h = hashlib.sha256(FORMAT)
    h.update(detector.model.weights.tobytes())
    h.update(detector.model.bias.tobytes())
    h.update(detector.passage_model.weights.tobytes())
    h.update(detector.passage_model.bias.tobytes())
    # which reported text (quotations, ...) the passage rules discount: set by the model file (inj17r)
    h.update(str(getattr(detector, "quotes", None)).encode())
    for module in (classifier, injection, normalize, reported):
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()[:16]


def screen(chunks: list[StoredChunk], detector: Any, threshold: float) -> list[StoredChunk]:
    """Score ``chunks`` as the retrieval guard would and store each result; the ones at or above
    ``threshold`` are returned (for the ingest summary)."""
    if not chunks:
        return []
    mark = fingerprint(detector)
    results = detector.score_many([screened_text(c) for c in chunks], [SOURCE] * len(chunks))
    for chunk, result in zip(chunks, results, strict=True):
        chunk.metadata[KEY] = {
            "score": round(float(result.score), 6),
            "classifier": round(float(result.classifier), 6),
            "hidden": round(float(result.hidden), 6),
            "rules": list(result.rule_hits),
            "quoted_rules": list(result.reported_hits),
            "variant": result.variant,
            "detector": mark,
        }
    return [c for c, r in zip(chunks, results, strict=True) if r.score >= threshold]


def stored(chunk: StoredChunk, mark: str) -> InjectionResult | None:
    """The result stored at ingest, if the same detector made it."""
    found = chunk.metadata.get(KEY)
    if not isinstance(found, dict) or found.get("detector") != mark:
        return None
    try:
        return InjectionResult(
            score=float(found["score"]),
            rule_hits=[str(r) for r in found.get("rules") or []],
            variant=found.get("variant"),
            classifier=float(found.get("classifier", 0.0)),
            hidden=float(found.get("hidden", 0.0)),
            reported_hits=[str(r) for r in found.get("quoted_rules") or []],
        )
    except (KeyError, TypeError, ValueError):
        return None  # a malformed entry is no verdict: score the passage
