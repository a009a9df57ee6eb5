#!/usr/bin/env python
"""Train the prompt-injection and moderation guards from ``../shared/data`` (reproducible).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python scripts/train_guards.py [--data DIR] [--out DIR]

The injection guard (``--only injection``) is trained by ``guard_training/injection_broad.py``:
broad data mixed by source, per-source train / calibration / test splits, two logistic units on
one embedding per view, operating points chosen on calibration and written into the model file,
per-source test and leave-one-source-out reports (docs/guardrails.md, "How the injection guard is
trained"). Embeddings are cached with ``--cache`` (e.g. ``/work/wt/cache/...``, never committed).

The moderation guard's steps (fixed seeds, no randomness outside ``random.Random(SEED)`` / hashes):

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
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

# the training code lives in scripts/guard_training/; this file is loaded by path (bench/guard_quality.py) or
# with scripts/ on sys.path (train_lexical_guard.py), so make the package importable
_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

# importing guard_training sets the HF offline / OMP defaults and puts the repository on sys.path
from guard_training.config import (  # noqa: E402
    HANDWRITTEN_WEIGHT,
    RAG_PASSAGES_KEEP,
    REPO,
    SEED,
    TRIGGER_WORDS,
)
from guard_training.data import Rec, covid_passages, default_data_dir, load_records  # noqa: E402
from guard_training.embedding import CachedEmbedder  # noqa: E402
from guard_training.splits import assign_splits, build_indirect, write_splits  # noqa: E402

from llmgw.guards.injection import views as injection_views  # noqa: E402
from llmgw.guards.moderation import views as moderation_views  # noqa: E402

# besides main(), what bench/guard_quality.py and train_lexical_guard.py read as tg.<name>
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
    if args.only != "moderation":  # the injection guard: broad data by source, its own splits (injection_broad.py)
        from guard_training.injection_broad import run as train_injection_broad

        train_injection_broad(data, args.out, args.cache, with_loso=not args.no_loso)
        if args.only == "injection":
            return
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
    if args.only != "injection":
        train_and_write_moderation(args, recs, embed)
    write_splits(args.out, recs)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


def train_and_write_moderation(args: argparse.Namespace, recs: list[Rec], embed: CachedEmbedder) -> None:
    """Moderation has its own data, splits and script since issue 17: ``scripts/train_moderation.py``."""
    from guard_training.moderation import train

    train(args.data or default_data_dir(), args.cache.parent / "llmgw-moderation-vectors", args.out)


if __name__ == "__main__":
    main()
