"""Train / dev / test assignment (near-duplicate groups, hashed), indirect-injection examples built
within a split, and ``splits.json``: everything that decides which row is held out."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from llmgw.guards.moderation import views as moderation_views

from .config import NEAR_DUP, SEED, SPLIT
from .data import Rec, text_key
from .embedding import CachedEmbedder


def bucket(group_key: str) -> str:
    h = int(hashlib.sha256(f"split-{SEED}:{group_key}".encode()).hexdigest()[:8], 16) % 100
    if h < SPLIT[0]:
        return "train"
    if h < SPLIT[0] + SPLIT[1]:
        return "dev"
    return "test"


def assign_splits(recs: list[Rec], embed: CachedEmbedder) -> dict[str, int]:
    """Group exact and near duplicates across all sources; each group gets one split."""
    fixed = [r for r in recs if r.extra.get("train_only") or r.extra.get("dev_only")]
    for r in fixed:  # hand-written rows have a fixed split and take no part in grouping
        r.split = "train" if r.extra.get("train_only") else "dev"
    recs = [r for r in recs if not (r.extra.get("train_only") or r.extra.get("dev_only"))]
    keys = sorted({r.key for r in recs})
    index = {k: i for i, k in enumerate(keys)}
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_text = {}
    for r in recs:
        first_text.setdefault(r.key, r.text)
    vecs = embed([moderation_views(first_text[k])[0] for k in keys])
    n = len(keys)
    block = 2048
    pairs = 0
    for i in range(0, n, block):
        sims = vecs[i : i + block] @ vecs.T
        rows, cols = np.nonzero(sims >= NEAR_DUP)
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            if i + a < b:
                union(i + a, b)
                pairs += 1
    groups: dict[int, list[str]] = defaultdict(list)
    for k in keys:
        groups[find(index[k])].append(k)
    split_of = {}
    for members in groups.values():
        s = bucket(min(members))
        for k in members:
            split_of[k] = s
    for r in recs:
        r.split = split_of[r.key]
    sizes = sorted((len(m) for m in groups.values()), reverse=True)
    return {"texts": n, "groups": len(groups), "near_dup_pairs": pairs, "largest_groups": sizes[:5]}


def hide(attack: str, context: str, rng: random.Random) -> str:
    """``attack`` inserted at the start, the end or a sentence boundary of ``context``."""
    where = rng.choice(["start", "middle", "middle", "end"])
    if where == "start":
        return f"{attack}\n{context}"
    if where == "end":
        return f"{context}\n{attack}"
    cuts = [m.end() for m in re.finditer(r"[.!?]\s+", context)]
    if not cuts:
        return f"{context} {attack}"
    cut = rng.choice(cuts)
    return f"{context[:cut]}{attack} {context[cut:]}"


def build_indirect(recs: list[Rec], bipia: dict[str, list[str]] | None = None) -> list[Rec]:
    """Attack strings hidden in benign passages; attack and passage always from the same split.

    Deterministic per attack (its own seeded RNG, contexts sorted by hash), so the bench can
    rebuild the test passages from the test split alone.
    """
    contexts: dict[str, list[Rec]] = defaultdict(list)
    for r in recs:
        if r.kind == "passage" and r.inj == 0 and not r.extra.get("train_only"):
            contexts[r.split].append(r)
    for pool in contexts.values():
        pool.sort(key=lambda r: (r.key, r.source))
    emails = {s: [r for r in rs if r.source == "benign/bipia_email"] for s, rs in contexts.items()}
    out: list[Rec] = []

    def make(attack: Rec, source: str, n: int) -> None:
        pool = contexts.get(attack.split, [])
        if not pool:
            return
        rng = random.Random(f"{SEED}:{attack.key}")
        for j in range(n):
            ctx = rng.choice(emails[attack.split]) if j == 0 and emails.get(attack.split) else rng.choice(pool)
            text = hide(attack.text, ctx.text[:1500], rng)
            out.append(
                Rec(
                    text=text,
                    source=source,
                    inj=1,
                    kind="passage",
                    licence=attack.licence,
                    key=text_key(text),
                    split=attack.split,
                    extra={"attack": attack.text, "context_source": ctx.source, "context": ctx.text[:1500]},
                )
            )

    for r in sorted(recs, key=lambda r: (r.source, r.key)):
        if r.kind == "attack_string":
            make(r, f"indirect/{r.source.split('/')[1]}", 3)
        elif r.inj == 1 and r.kind == "prompt" and len(r.text) <= 300 and int(r.key[:4], 16) % 3 == 0:
            # a third of the short direct attacks (chosen by hash) hidden in passages as well
            make(r, f"indirect/{r.source.split('/')[1]}", 1)
    return out


def write_splits(out: Path, recs: list[Rec]) -> None:
    test_keys: dict[str, list[str]] = defaultdict(list)
    for r in recs:
        if r.split == "test":
            test_keys[r.source].append(r.key)
    splits = {
        "seed": SEED,
        "split_percent": dict(zip(("train", "dev", "test"), SPLIT, strict=True)),
        "near_dup_cosine": NEAR_DUP,
        "key": "sha256(NFKC(text).lower() with whitespace collapsed)[:16]",
        "note": "test-split text hashes per source; indirect test passages are rebuilt from test attacks and "
        "test passages",
        "test": {s: sorted(set(k)) for s, k in sorted(test_keys.items())},
        "dev_count": sum(r.split == "dev" for r in recs),
        "train_count": sum(r.split == "train" for r in recs),
    }
    (out / "splits.json").write_text(json.dumps(splits, indent=0, sort_keys=True) + "\n", encoding="utf-8")
