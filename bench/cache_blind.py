"""The cache's decision on question pairs written blind (bench/data/blind*/cache): aggregate figures only.

Each JSONL line holds ``a`` (the stored question), ``b`` (the asked one), ``same`` (whether one
answer serves both) and ``category``. A pair is served when the gateway's matcher
(``llmgw.cache.match`` with the shipped rule: the threshold ``cache.max_wrong_rate`` picks, the
margin, the verifier) would serve ``a``'s entry for ``b``. Reported per file, per category and
per error-bound row: the share of true pairs served and the wrong share of hits. No pair is
printed: these sets are for a final measurement, never for tuning.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python -m bench.cache_blind [--sets bench/data/blind4/cache ...]

Beside the shipped decision (the word verifier and the role alignment), the word verifier alone at
the same threshold is reported (``words_only``): what the role alignment changed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from collections import defaultdict
from pathlib import Path

from llmgw.cache.align import verify
from llmgw.cache.bounds import table, threshold_for
from llmgw.cache.embed import embed
from llmgw.cache.match import Rule, match
from llmgw.cache.roles import signature
from llmgw.cache.store import Entry
from llmgw.config import CacheConfig

ROOT = Path(__file__).resolve().parents[1]


def served(a: str, b: str, threshold: float) -> tuple[bool, float]:
    va, vb = embed(a), embed(b)
    if va is None or vb is None:
        return False, 0.0
    entry = Entry(key=a, scope="s", route="r", question=a, completion={}, created=0.0, expires=0.0, vector=va,
                  roles=signature(a).dumps())  # parsed at insertion, as the gateway does  # fmt: skip
    score = float(va @ vb)
    rule = Rule(threshold, None, CacheConfig().answer_drop, CacheConfig().margin)
    return bool(match(b, vb, [(entry, score)], rule, verify).plausible), score


def figures(rows: list[tuple[bool, bool]]) -> dict[str, float]:
    positives = sum(same for same, _ in rows)
    hits = [same for same, hit in rows if hit]
    wrong = len(hits) - sum(hits)
    return {"pairs": len(rows), "served": round(sum(hits) / positives, 4) if positives else 0.0, "hits": len(hits),
            "wrong": wrong, "wrong_rate": round(wrong / len(hits), 4) if hits else 0.0}  # fmt: skip


def evaluate(directory: Path, shipped: float) -> dict[str, object]:
    files: dict[str, object] = {}
    for path in sorted(directory.glob("*pairs.jsonl")):
        pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        scored = []
        for p in pairs:
            ok_shipped, score = served(p["a"], p["b"], shipped)
            verified = verify(p["a"], p["b"]) is None
            words = verify(p["a"], p["b"], by_role=False) is None
            scored.append((bool(p["same"]), ok_shipped, score, verified, p.get("category", ""), words))
        by_category = defaultdict(list)
        for same, hit, _, _, category, _ in scored:
            by_category[category].append((same, hit))
        per_bound = {}
        for bound, t in table()["verifier"].items():
            per_bound[str(bound)] = {"threshold": t, **figures([(s, v and sc >= t) for s, _, sc, v, _, _ in scored])}
        files[path.name] = {
            "shipped": figures([(s, h) for s, h, *_ in scored]),
            "words_only": figures([(s, w and sc >= shipped) for s, _, sc, _, _, w in scored]),
            "categories": {c: figures(r) for c, r in sorted(by_category.items())},
            "per_bound": per_bound,
        }
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=Path, nargs="+", default=[ROOT / "bench" / "data" / "blind" / "cache"],
                        help="directories of *pairs.jsonl files")  # fmt: skip
    parser.add_argument("--dir", type=Path, default=None, help="one directory (the same as --sets DIR)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    shipped = threshold_for(CacheConfig().max_wrong_rate)
    result: dict[str, object] = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
                                 "machine": platform.node(), "load_1m": round(os.getloadavg()[0], 2),
                                 "threshold": shipped, "sets": {}}  # fmt: skip
    for directory in [args.dir] if args.dir is not None else args.sets:
        result["sets"][str(directory)] = evaluate(directory, shipped)  # type: ignore[index]
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
