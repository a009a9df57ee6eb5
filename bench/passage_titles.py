"""Benign passages dropped when the passage guard reads a chunk's title with its text (issue 17).

    OMP_NUM_THREADS=2 python -m bench.passage_titles [--n 300] [--seed 7]

Since 2026-12-06 the retrieval guard and ingest screening score a chunk's title and section with its
text (the passage template shows them to the model). This scores benign documents that carry a title
apart from their text both ways with the shipped detector at the default policy's ``retrieved``
operating points and counts what each would drop or flag. The corpus is HotpotQA's paragraphs with
their Wikipedia titles (``../shared/data/rag/hotpotqa``), the one corpus there whose documents
carry titles as a field.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from llmgw.guards.policy import load_policy
from llmgw.guards.runtime import injection_detector

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "rag" / "hotpotqa" / "corpus.jsonl"
POLICY = Path(__file__).resolve().parents[1] / "guardrails" / "default.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    detector = injection_detector()
    flag, act = load_policy(POLICY).injection.cutoffs("retrieved", detector.operating_points("retrieved"))
    with open(args.corpus, encoding="utf-8") as f:
        rows = [row for row in map(json.loads, f) if row.get("title")]
    rows = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    for label, texts in (("text alone", [r["text"] for r in rows]),
                         ("title + text", [f"{r['title']}\n\n{r['text']}" for r in rows])):  # fmt: skip
        scores = [result.score for result in detector.score_many(texts, ["retrieved"] * len(texts))]
        dropped, flagged = sum(s >= act for s in scores), sum(flag <= s < act for s in scores)
        print(f"{label}: {dropped} of {len(rows)} dropped, {flagged} flagged (cutoffs {flag:.3f} / {act:.3f})")


if __name__ == "__main__":
    main()
