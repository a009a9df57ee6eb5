#!/usr/bin/env python
"""Output moderation on a blind set, whole text: the shipped model beside a fine-tuned MiniLM (issue 17).

    cd scripts && OMP_NUM_THREADS=1 ../.venv/bin/python moderation_blind.py \\
        --set ../bench/data/blind11/guards/outputs_moderation.jsonl \\
        [--tuned /tmp/mod17h/finetuned-lora8.pt --tuned-threshold T] --out ../bench/results/X.json

A measurement, never a choice: the tuned model's threshold comes from its own calibration run
(``moderation_finetune.py``), the shipped model runs at its 0.5. Both score a text as the gateway's
whole-text check does (the max over 700-character views, then the shipped lexicon lift); the stream
path (8-word windows with context) is what ``bench.guard_blind`` measures for the shipped model and
needs the model inside the gateway. Only aggregates are written: F1, precision, recall, the benign
flag rate, and the share flagged per category; no row's text.
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
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, required=True, help="a blind outputs_moderation.jsonl")
    parser.add_argument("--tuned", type=Path, help="a state dict saved by moderation_finetune.py (lora8)")
    parser.add_argument("--tuned-threshold", type=float, help="its threshold, from its calibration run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from llmgw.guards.moderation import Moderator

    texts, y, categories = read(args.set)
    with tempfile.TemporaryDirectory() as cache:  # a blind set's vectors are not kept
        shipped = Moderator(ROOT / "guardrails/models/moderation.npz", VectorCache(Path(cache)))
        s_shipped = np.array([r.score for r in shipped.score_many(texts)])
        out: dict = {"set": str(args.set), "n": len(texts), "shipped_at_0.5": report(y, s_shipped >= 0.5, categories)}
        if args.tuned:
            import torch
            from moderation_finetune import build, score

            if args.tuned_threshold is None:
                raise SystemExit("--tuned needs --tuned-threshold (from its calibration run)")
            tok, model, _ = build("lora8")
            model.load_state_dict(torch.load(args.tuned, map_location="cpu"))
            s_tuned = score(tok, model, shipped, texts)
            out["tuned"] = {"weights": str(args.tuned), "threshold": args.tuned_threshold,
                            **report(y, s_tuned >= args.tuned_threshold, categories)}  # fmt: skip
    args.out.write_text(json.dumps(out, indent=2))
    shown = ("f1", "precision", "recall", "benign_fpr", "counter_speech_and_negated_flagged")
    for key in ("shipped_at_0.5", "tuned"):
        if key in out:
            print(key, {k: out[key][k] for k in shown})


if __name__ == "__main__":
    main()
