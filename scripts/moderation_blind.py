#!/usr/bin/env python
"""Output moderation on a blind set, whole text: the shipped model beside a fine-tuned MiniLM (issue 17).

    cd scripts && OMP_NUM_THREADS=1 ../.venv/bin/python moderation_blind.py \\
        --set ../bench/data/blind11/guards/outputs_moderation.jsonl \\
        [--tuned /tmp/mod17h/finetuned-lora8.pt --tuned-threshold T] --out ../bench/results/X.json

A measurement, never a choice: the tuned model's threshold comes from its own calibration run
(``moderation_finetune.py``), the shipped model runs at its 0.5. Both score a text as the gateway's
whole-text check does (the max over 700-character views, then the shipped lexicon lift). ``--stream``
(mod17i) also scores both as the gateway's stream path reads a text, with the default
``ModerationPolicy``'s windows: 8-word windows (``finished_windows`` with ``overlap_words``), a window
at or above the model's threshold confirmed on its context view (``output.context_view``); the harmful
score against the threshold stands in for the gateway's per-category cut for both models (so the
shipped figures may differ slightly from ``bench.guard_blind``'s). ``--tuned`` takes a full state dict
or an adapter (trained tensors only, ``moderation_finetune_neg.save_adapter``). Only aggregates are
written: F1, precision, recall, the benign flag rate, and the share and count flagged per category (mod17j);
no row's text.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.moderation import prf  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def read(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = {r["label"] for r in rows}
    if not labels <= {"flagged", "benign"}:
        raise SystemExit(f"{path}: labels other than flagged/benign: {sorted(labels)}")
    return [r["text"] for r in rows], np.array([r["label"] == "flagged" for r in rows]), [r["category"] for r in rows]


def report(y: np.ndarray, flags: np.ndarray, categories: list[str]) -> dict:
    per: dict[str, list[bool]] = defaultdict(list)
    for c, f in zip(categories, flags, strict=True):
        per[c].append(bool(f))
    hard = [i for i, c in enumerate(categories) if c in ("counter_speech", "negated")]
    return {
        **prf(y, flags),
        "counter_speech_and_negated_flagged": round(float(np.mean(flags[hard])), 4) if hard else None,
        "flagged_per_category": {c: round(float(np.mean(v)), 4) for c, v in sorted(per.items())},
        # counts too (mod17j's clauses are "of 30" / "of 70"): aggregates per category, no row
        "flagged_count_per_category": {c: int(sum(v)) for c, v in sorted(per.items())},
        "n_per_category": {c: len(v) for c, v in sorted(per.items())},
    }


def stream_flags(texts: list[str], scores_of, threshold: float) -> np.ndarray:
    """The stream path for a scorer ``scores_of(list[str]) -> np.ndarray`` (see the docstring)."""
    from llmgw.guards.output import context_view, overlap_words
    from llmgw.guards.policy import ModerationPolicy
    from llmgw.guards.stream import finished_windows

    rules = ModerationPolicy()
    ws = [finished_windows(t, rules.window_words, overlap_words(rules)) for t in texts]
    wins = [w.take(final=True) for w in ws]
    flat = [x for ts in wins for x in ts]
    s = scores_of(flat) if flat else np.zeros(0)
    pos, suspects = 0, []
    for i, ts in enumerate(wins):
        suspects += [(i, k) for k in range(len(ts)) if s[pos + k] >= threshold]
        pos += len(ts)
    if not rules.confirm:
        hit = {i for i, _ in suspects}
    else:
        views = [context_view(ws[i], k, rules) or "" for i, k in suspects]
        vs = scores_of(views) if views else np.zeros(0)
        hit = {i for (i, _), v in zip(suspects, vs, strict=True) if v >= threshold}
    return np.array([i in hit for i in range(len(texts))])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, required=True, help="a blind outputs_moderation.jsonl")
    parser.add_argument("--tuned", type=Path, help="a state dict saved by moderation_finetune.py (lora8)")
    parser.add_argument("--tuned-threshold", type=float, help="its threshold, from its calibration run")
    parser.add_argument("--stream", action="store_true", help="also the stream path (mod17i)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from llmgw.guards.moderation import Moderator

    texts, y, categories = read(args.set)
    with tempfile.TemporaryDirectory() as cache:  # a blind set's vectors are not kept
        shipped = Moderator(ROOT / "guardrails/models/moderation.npz", VectorCache(Path(cache)))
        s_shipped = np.array([r.score for r in shipped.score_many(texts)])
        out: dict = {"set": str(args.set), "n": len(texts), "shipped_at_0.5": report(y, s_shipped >= 0.5, categories)}
        if args.stream:

            def shipped_of(xs: list[str]) -> np.ndarray:
                return np.array([r.score for r in shipped.score_many(xs)])

            out["shipped_at_0.5 (stream path)"] = report(y, stream_flags(texts, shipped_of, 0.5), categories)
        if args.tuned:
            import torch
            from moderation_finetune import build, score

            if args.tuned_threshold is None:
                raise SystemExit("--tuned needs --tuned-threshold (from its calibration run)")
            tok, model, _ = build("lora8")
            state = torch.load(args.tuned, map_location="cpu")
            missing = model.load_state_dict(state, strict=False).missing_keys  # an adapter lacks the frozen base
            if any(k.endswith((".a", ".b")) or k.startswith("head.") for k in missing):
                raise SystemExit(f"{args.tuned}: trained tensors missing")
            s_tuned = score(tok, model, shipped, texts)
            out["tuned"] = {"weights": str(args.tuned), "threshold": args.tuned_threshold,
                            **report(y, s_tuned >= args.tuned_threshold, categories)}  # fmt: skip
            if args.stream:

                def tuned_of(xs: list[str]) -> np.ndarray:
                    return score(tok, model, shipped, xs)

                out["tuned (stream path)"] = {"threshold": args.tuned_threshold,
                                              **report(y, stream_flags(texts, tuned_of, args.tuned_threshold),
                                                       categories)}  # fmt: skip
    args.out.write_text(json.dumps(out, indent=2))
    shown = ("f1", "precision", "recall", "benign_fpr", "counter_speech_and_negated_flagged")
    for key in ("shipped_at_0.5", "tuned", "shipped_at_0.5 (stream path)", "tuned (stream path)"):
        if key in out:
            print(key, {k: out[key][k] for k in shown})


if __name__ == "__main__":
    main()
