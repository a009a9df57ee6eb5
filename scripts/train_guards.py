#!/usr/bin/env python
"""Train the prompt-injection and moderation guards from ``../shared/data`` (reproducible).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python scripts/train_guards.py [--data DIR] [--out DIR]

Steps (fixed seeds, no randomness outside ``random.Random(SEED)`` / hashes):

1. Load every usable row (``load_records``), each with its source set and labels: ``inj`` (1 attack,
   0 benign, None unused) and ``cats`` (moderation categories, ``()`` safe, None unused).
2. Split: texts are grouped (exact duplicates after case/space folding, and near-duplicates with
   embedding cosine >= ``NEAR_DUP``, across all sources), and each group goes to train / dev / test
   by a hash of its smallest member key: 65 / 15 / 20. Near-duplicate attacks (Gandalf and the
   DAN family have many) never straddle train and test. The test split is never used for
   training or tuning; dev is used for the regularisation strength and the thresholds only.
3. Indirect injection examples are built by hiding attack strings (BIPIA text and code attacks,
   short direct attacks) in benign passages (BIPIA e-mails, COVID FAQ answers and paper passages)
   of the *same* split.
4. Logistic regression on all-MiniLM-L6-v2 windows (``llmgw.guards.injection.views``); the
   probability is shifted so 0.5 is the dev threshold at 1% false positives. Moderation: one
   logistic unit per category, shifted so 0.5 is each category's best-F1 dev threshold.
5. Writes ``injection.npz``, ``moderation.npz``, ``splits.json`` (test-split text hashes) and the
   data cards ``injection.md`` / ``moderation.md`` with held-out metrics.

Embeddings are cached in ``$TMPDIR/llmgw-guard-embeddings`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

# the training code lives in scripts/guard_training/; this file is loaded by path (bench/guard_quality.py) or
# with scripts/ on sys.path (train_hidden_guard.py, train_lexical_guard.py), so make the package importable
_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

# importing guard_training sets the HF offline / OMP defaults and puts the repository on sys.path
from guard_training.cards import write_injection_card  # noqa: E402
from guard_training.config import (  # noqa: E402
    EMBED_MODEL,
    HANDWRITTEN_WEIGHT,
    RAG_PASSAGES_KEEP,
    REPO,
    SEED,
    TRIGGER_WORDS,
)
from guard_training.data import Rec, covid_passages, default_data_dir, load_records  # noqa: E402
from guard_training.embedding import CachedEmbedder  # noqa: E402
from guard_training.injection import injection_test_report, loso_injection, train_injection  # noqa: E402
from guard_training.metrics import data_hash  # noqa: E402
from guard_training.splits import assign_splits, build_indirect, write_splits  # noqa: E402

from llmgw.guards.classifier import LinearModel  # noqa: E402
from llmgw.guards.injection import RULES, InjectionDetector  # noqa: E402
from llmgw.guards.injection import views as injection_views  # noqa: E402
from llmgw.guards.moderation import views as moderation_views  # noqa: E402

# besides main(), what bench/guard_quality.py, train_hidden_guard.py and train_lexical_guard.py read as tg.<name>
__all__ = [
    "HANDWRITTEN_WEIGHT", "RAG_PASSAGES_KEEP", "TRIGGER_WORDS", "CachedEmbedder", "build_indirect",
    "covid_passages", "default_data_dir", "load_records", "main",
]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Train, on one BLAS thread: the logistic fits differ in the last digits with the thread count,
    and the shipped artifacts must come out byte for byte whatever ``OMP_NUM_THREADS`` says."""
    with threadpool_limits(limits=1, user_api="blas"):
        _main(argv)


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data directory (default ../shared/data)")
    ap.add_argument("--out", type=Path, default=REPO / "guardrails" / "models")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "llmgw-guard-embeddings")
    ap.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out runs")
    ap.add_argument("--only", choices=("injection", "moderation"), help="train one guard only")
    args = ap.parse_args(argv)
    random.seed(SEED)
    np.random.seed(SEED)
    data = args.data or default_data_dir()
    t0 = time.time()
    recs, bipia = load_records(data)
    print(f"{len(recs)} records from {data}", flush=True)
    split_stats = assign_splits(recs, CachedEmbedder(args.cache))
    embed = CachedEmbedder(args.cache)
    print(f"splits: {split_stats} {Counter(r.split for r in recs)}", flush=True)
    indirect = build_indirect(recs, bipia)
    print(f"{len(indirect)} indirect-injection passages", flush=True)
    warm = [body for r in recs + indirect if r.kind != "attack_string" for _, body in injection_views(r.text)]
    warm += [body for r in indirect for _, body in injection_views(r.extra["context"])]
    warm += [body for r in recs if r.cats is not None for body in moderation_views(r.text)]
    print(f"embedding {len(set(warm))} distinct windows", flush=True)
    embed(warm)

    args.out.mkdir(parents=True, exist_ok=True)
    # --- injection
    if args.only != "moderation":
        train_and_write_injection(args, recs, indirect, embed, split_stats)
    if args.only != "injection":
        train_and_write_moderation(args, recs, embed)
    write_splits(args.out, recs)
    print(f"done in {time.time() - t0:.0f}s", flush=True)
    if args.only != "moderation":  # the hidden-instruction stage reads this model's logit: it must follow
        print("injection model changed: now run scripts/train_hidden_guard.py (it refuses to load otherwise)")


def train_and_write_injection(
    args: argparse.Namespace, recs: list[Rec], indirect: list[Rec], embed: CachedEmbedder, split_stats: dict
) -> None:
    inj_model, inj_meta = train_injection(recs, indirect, embed)
    used_inj = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    inj_meta.update(
        {
            "kind": "ovr",
            "dim": int(inj_model.dim),
            "embedding_model": EMBED_MODEL,
            "normalize_embeddings": True,
            "window_chars": 700,
            "seed": SEED,
            "split_stats": split_stats,
            "train_hash": data_hash([r for r in used_inj if r.split == "train"]),
            "train_rows": sum(r.split == "train" for r in used_inj),
            "sources": sorted({r.source for r in used_inj}),
            "rules": [name for name, *_ in RULES],
        }
    )
    det = InjectionDetector(
        LinearModel(
            inj_model.weights.astype(np.float16).astype(np.float32), inj_model.bias, inj_model.classes, inj_meta
        ),
        embed,
    )
    inj_report = injection_test_report(det, recs, indirect)
    inj_meta["test_metrics"] = inj_report
    loso = {} if args.no_loso else loso_injection(recs, indirect, embed, inj_meta["C"])
    inj_meta["leave_one_source_out"] = loso
    LinearModel(inj_model.weights, inj_model.bias, inj_model.classes, inj_meta).save(args.out / "injection.npz")
    write_injection_card(args.out / "injection.md", recs, indirect, inj_meta, inj_report, loso)
    print(json.dumps(inj_report, indent=1), flush=True)


def train_and_write_moderation(args: argparse.Namespace, recs: list[Rec], embed: CachedEmbedder) -> None:
    """Moderation has its own data, splits and script since issue 17: ``scripts/train_moderation.py``."""
    from guard_training.moderation import train

    train(args.data or default_data_dir(), args.cache.parent / "llmgw-moderation-vectors", args.out)


if __name__ == "__main__":
    main()
