"""The cache's error-bound table: which cosine threshold keeps wrong hits under a bound, and does it hold?

``cache.max_wrong_rate`` (docs/cache.md) picks the semantic tier's threshold from a table shipped
in the package (``llmgw/cache/bounds.json``). This script makes that table and measures it:

* **Data** (``../shared/data/paraphrase``): COVID FAQ pairs (split by FAQ question, as in
  ``bench.cache_quality``), banking77 and CLINC150 intent pairs (their own train / test splits;
  same intent = the same cached answer would serve, different intent in the same domain = a wrong
  hit), and the built near-miss families of ``bench.cache_pairs`` (split whole). A fixed-seed
  sample of each intent set keeps the run short.
* **Calibration**: for each bound, the lowest threshold (0.50-0.99) at which the conservative wrong
  rate on the pooled calibration splits (the upper end of an 80 % one-sided Jeffreys interval)
  is within the bound at that
  threshold and every higher one. With the verifier (``cache.veto: true``) and without it.
* **Measured** on the test splits, never used for the choice: per source, the share of true
  pairs served and the wrong share of hits; and **cross-source**: the table fit without source X
  (its calibration split left out too), tested on X.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python -m bench.cache_bounds            # writes the table
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python -m bench.cache_bounds --check    # measure only
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

from bench import cache_pairs
from bench.cache_quality import DEFAULT_DATA, covid_pairs
from llmgw.cache.align import verify
from llmgw.cache.embed import embed

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "llmgw" / "cache" / "bounds.json"
BOUNDS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
GRID = [round(float(t), 2) for t in np.arange(0.50, 0.991, 0.01)]
SAMPLE = {"dev": 800, "calibration": 4000, "test": 1200}  # pairs per intent-set split (hits are what calibrate)
Pair = tuple[str, str, int]


def intent_pairs(path: Path, calibrate: str, test: str, seed: int = 13) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(development, calibration, test): the development sample is drawn from the calibration
    split's rows outside the calibration sample."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, list[Pair]] = {calibrate: [], test: []}
    for r in rows:
        if r["split"] in out:
            out[r["split"]].append((r["text1"], r["text2"], int(r["same_intent"])))
    rng = random.Random(seed)
    cal = rng.sample(out[calibrate], SAMPLE["calibration"])
    chosen = set(cal)
    rest = [p for p in out[calibrate] if p not in chosen]
    return rng.sample(rest, SAMPLE["dev"]), cal, rng.sample(out[test], SAMPLE["test"])


def thirds(pairs: list[Pair], seed: int = 5) -> tuple[list[Pair], list[Pair]]:
    """A development third and the calibration rest, grouped by stored question (COVID's split)."""
    groups = sorted({a for a, _, _ in pairs})
    random.Random(seed).shuffle(groups)
    dev = set(groups[: len(groups) // 3])
    return [p for p in pairs if p[0] in dev], [p for p in pairs if p[0] not in dev]


def sources(data: Path) -> dict[str, tuple[list[Pair], list[Pair], list[Pair]]]:
    """Per source: (development, calibration, test). Rules are written reading development pairs
    only (``--dev``), thresholds fit on calibration pairs, figures reported on test pairs."""
    tune, test = covid_pairs(data / "covid")
    covid_dev, covid_cal = thirds([p[:3] for p in tune])
    built_tune, built_test = cache_pairs.split()
    built_dev, built_cal = built_tune[: len(built_tune) // 3], built_tune[len(built_tune) // 3 :]
    role_dev, role_cal, role_test = cache_pairs.role_split()
    return {
        "covid": (covid_dev, covid_cal, [p[:3] for p in test]),
        "built": ([p[:3] for p in cache_pairs.pairs(built_dev)], [p[:3] for p in cache_pairs.pairs(built_cal)],
                  [p[:3] for p in cache_pairs.pairs(built_test)]),
        "roles": ([p[:3] for p in cache_pairs.role_pairs(role_dev)], [p[:3] for p in cache_pairs.role_pairs(role_cal)],
                  [p[:3] for p in cache_pairs.role_pairs(role_test)]),
        "banking77": intent_pairs(data / "banking77" / "banking77_intent_pairs.csv", "train", "test"),
        "clinc150": intent_pairs(data / "clinc150" / "clinc150_intent_pairs.csv", "train", "test"),
    }  # fmt: skip


class Vectors:
    """Question vectors, kept on disk between runs (``--vectors``) so a rerun costs no embedding."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as saved:
                self.known = dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))

    def __call__(self, text: str) -> np.ndarray:
        if text not in self.known:
            vector = embed(text)
            self.known[text] = vector if vector is not None else np.zeros(384, dtype=np.float32)
        return self.known[text]

    def save(self) -> None:
        if self.path is not None and self.known:
            texts = list(self.known)
            np.savez(self.path, texts=np.array(texts), vectors=np.stack([self.known[t] for t in texts]))


Row = tuple[float, bool, bool, int]  # (cosine, word verifier passes, word and role verifier pass, same)
MODES = ("verifier", "words_only", "no_verifier")  # shipped with the verifier on; measured; shipped for veto: false


def scored(pairs: list[Pair], vectors: Vectors) -> list[Row]:
    out = []
    for a, b, same in pairs:
        words = verify(a, b, by_role=False) is None
        out.append((float(vectors(a) @ vectors(b)), words, words and verify(a, b) is None, same))
    return out


def passes(row: Row, mode: str) -> bool:
    return mode == "no_verifier" or (row[1] if mode == "words_only" else row[2])


def rates(rows: list[Row], threshold: float, mode: str) -> dict[str, float]:
    hits = [row[3] for row in rows if row[0] >= threshold and passes(row, mode)]
    positives = sum(row[3] for row in rows)
    wrong = len(hits) - sum(hits)
    return {"served": round(sum(hits) / positives, 4) if positives else 0.0, "hits": len(hits), "wrong": wrong,
            "wrong_rate": round(wrong / len(hits), 4) if hits else 0.0}  # fmt: skip


def upper(wrong: int, hits: int, confidence: float = 0.8) -> float:
    """The upper end of a one-sided Jeffreys interval for the wrong share of hits (1.0 with no hit)."""
    from scipy.stats import beta

    return 1.0 if hits == 0 else float(beta.ppf(confidence, wrong + 0.5, hits - wrong + 0.5))


def fit(rows: list[Row], mode: str) -> dict[str, float]:
    """Bound -> the lowest threshold t whose wrong share is within the bound with 80 % confidence
    (``upper``), and whose observed wrong share is within it at every threshold above t."""
    table: dict[str, float] = {}
    curve = {t: rates(rows, t, mode) for t in GRID}
    for bound in BOUNDS:
        chosen = 1.0
        for t in GRID:
            r = curve[t]
            above = all(curve[u]["wrong_rate"] <= bound for u in GRID if u > t)
            if upper(r["wrong"], r["hits"]) <= bound and above:
                chosen = t
                break
        table[str(bound)] = chosen
    return table


def development(data: dict[str, tuple[list[Pair], list[Pair], list[Pair]]], limit: int) -> None:
    """The development pairs the role alignment decides: true pairs it refuses, near-misses the
    whole verifier lets through (at any cosine). The only rows this script prints."""
    for name, (dev, _, _) in data.items():
        refused, passed, positives = [], [], 0
        for a, b, same in dev:
            positives += same
            words = verify(a, b, by_role=False)
            if words is not None:
                continue
            reason = verify(a, b)
            if same and reason is not None:
                refused.append(f"  {reason:9} | {a} | {b}")
            elif not same and reason is None:
                passed.append(f"  passed    | {a} | {b}")
        print(f"## {name}: {len(dev)} dev pairs, {positives} true; roles refuse {len(refused)} true pairs the words "
              f"pass; {len(passed)} near-misses pass both")  # fmt: skip
        print("\n".join(refused[:limit] + passed[:limit]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA.parent)
    parser.add_argument("--check", action="store_true", help="measure only; leave the shipped table alone")
    parser.add_argument("--dev", type=int, default=0, metavar="N",
                        help="print up to N development pairs per source the roles decide; nothing else")  # fmt: skip
    parser.add_argument("--vectors", type=Path, default=None, help="an .npz file keeping the vectors between runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cache_bounds.json")
    args = parser.parse_args()
    started = time.time()
    split = sources(args.data)
    if args.dev:
        development(split, args.dev)
        return
    vectors = Vectors(args.vectors)
    data = {name: (scored(cal, vectors), scored(test, vectors)) for name, (_, cal, test) in split.items()}
    vectors.save()
    result: dict[str, object] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"), "machine": platform.node(),
        "load_1m": round(os.getloadavg()[0], 2),
        "command": "python -m bench.cache_bounds" + (" --check" if args.check else ""),
        "pairs": {n: {"development": len(split[n][0]), "calibration": len(c), "test": len(t)}
                  for n, (c, t) in data.items()},
    }  # fmt: skip
    for mode in MODES:
        pooled = [row for cal, _ in data.values() for row in cal]
        table = fit(pooled, mode)
        held = {b: {n: rates(test, t, mode) for n, (_, test) in data.items()} for b, t in table.items()}
        cross = {}
        for name in data:
            others = [row for n, (cal, _) in data.items() if n != name for row in cal]
            sub = fit(others, mode)
            cross[name] = {b: {"threshold": t, **rates(data[name][1], t, mode)} for b, t in sub.items()}
        curve = {str(t): {n: rates(test, t, mode) for n, (_, test) in data.items()} for t in GRID[::5]}
        result[mode] = {"table": table, "test": held, "cross_source": cross, "test_curve": curve}
    result["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    if not args.check:
        shipped = {"made": result["date"], "command": "python -m bench.cache_bounds",
                   "data": "calibration parts of covid, built, roles, banking77, clinc150 (bench/cache_bounds.py)",
                   "verifier": result["verifier"]["table"], "no_verifier": result["no_verifier"]["table"]}  # type: ignore[index]  # fmt: skip
        TABLE.write_text(json.dumps(shipped, indent=1) + "\n")
    report(result)


def report(result: dict) -> None:  # type: ignore[type-arg]
    for label in MODES:
        block = result[label]
        print(f"\n## {label}: bound -> threshold {block['table']}")
        print("| bound | threshold | " + " | ".join(f"{n} served / wrong" for n in result["pairs"]) + " |")
        for b, t in block["table"].items():
            cells = [f"{r['served']:.3f} / {r['wrong']} of {r['hits']}" for r in block["test"][b].values()]
            print(f"| {b} | {t} | " + " | ".join(cells) + " |")
        print("cross-source (fit without X, tested on X):")
        for b in block["table"]:
            cells = [f"{n} t={c[b]['threshold']} {c[b]['served']:.3f} / {c[b]['wrong']} of {c[b]['hits']}"
                     for n, c in block["cross_source"].items()]  # fmt: skip
            print(f"| {b} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
