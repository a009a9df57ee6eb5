#!/usr/bin/env python
"""Output moderation: does fine-tuning MiniLM itself beat the frozen encoder on the same rows? (issue 17)

    cd scripts && OMP_NUM_THREADS=1 ../.venv/bin/python moderation_finetune.py [--measure]
    (mod17h: --configs lora8 --epochs 2 --choose-epoch --weights /tmp/mod17h --out bench/results/mod17h-finetune.json)

The rows are scripts/moderation_encoders.py's (``load_rows(answers=True)``, seed 13, at most 400
train, 150 calibration and 150 test rows per source; the hand-written held-out sentences of
``guard_training.moderation_heldout``). The model is the shipped all-MiniLM-L6-v2 (``embedder.model_path()``)
with mean pooling and a small head (384 -> 256 -> 1), trained with binary cross-entropy on the train
rows only (at most 128 word pieces, batch 32, one CPU thread). Two configurations, the one with the
higher calibration F1 is kept: ``top2`` (the top two transformer layers and the head are trained, the
rest frozen) and ``lora8`` (rank-8 LoRA on every layer's query and value projections, plus the head).
Each configuration's threshold is the shipped rule's: the lowest one whose mean benign flag rate over
the calibration sources is at most 5 %. A text is scored as the gateway scores it: the max over its
700-character views (``llmgw.guards.moderation.views``), then the shipped lexicon lift.

The baseline is the shipped model (``guardrails/models/moderation.npz`` over the shipped MiniLM
vectors, at its own 0.5), scored by ``guard_training.moderation.harm_scores`` (the gateway's
``Moderator.score_many``). The ship rule is docs/experiments/mod17g-rule.md, committed before any
test or held-out figure was computed. Weights go to ``--weights`` (never committed).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import harm_scores, macro_fpr, prf, threshold_for_fpr  # noqa: E402
from guard_training.moderation_data import ModRow, load_rows  # noqa: E402
from guard_training.moderation_heldout import heldout_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from moderation_encoders import sample  # noqa: E402

MAX_TOKENS = 128
BATCH = 32
ROOT = Path(__file__).resolve().parent.parent


def parts_of_rows() -> dict[str, list[ModRow]]:
    """moderation_encoders.py's rows, drawn in its order with its seed."""
    rng = random.Random(13)
    rows = load_rows(default_data_dir(), answers=True)
    return {"train": sample(rows, "train", 400, rng), "cal": sample(rows, "cal", 150, rng),
            "test": sample(rows, "test", 150, rng), "held": heldout_rows()}  # fmt: skip


def build(config: str):
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    from llmgw import embedder

    path = embedder.model_path()
    tok = AutoTokenizer.from_pretrained(path)
    enc = AutoModel.from_pretrained(path)
    for p in enc.parameters():
        p.requires_grad = False

    class LoRA(nn.Module):
        def __init__(self, base: nn.Linear, r: int = 8, alpha: int = 16) -> None:
            super().__init__()
            self.base, self.scale = base, alpha / r
            self.a = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
            self.b = nn.Parameter(torch.zeros(base.out_features, r))

        def forward(self, x):
            return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale

    layers = enc.encoder.layer
    if config == "top2":
        for layer in layers[-2:]:
            for p in layer.parameters():
                p.requires_grad = True
        enc_lr = 5e-5
    elif config == "lora8":
        for layer in layers:
            att = layer.attention.self
            att.query, att.value = LoRA(att.query), LoRA(att.value)
        enc_lr = 5e-4
    else:
        raise ValueError(config)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = enc
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(384, 256), nn.ReLU(), nn.Linear(256, 1))

        def forward(self, ids, mask):
            h = self.enc(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    model = Model()
    groups = [{"params": [p for p in model.enc.parameters() if p.requires_grad], "lr": enc_lr},
              {"params": model.head.parameters(), "lr": 1e-3}]  # fmt: skip
    return tok, model, groups


def batches(tok, texts: list[str], order: list[int]):
    for i in range(0, len(order), BATCH):
        idx = order[i : i + BATCH]
        b = tok([texts[j] for j in idx], truncation=True, max_length=MAX_TOKENS, padding=True, return_tensors="pt")
        yield idx, b["input_ids"], b["attention_mask"]


def train(config: str, rows: list[ModRow], epochs: float, steps: int | None = None, on_epoch=None):
    """``on_epoch(epoch, tok, model)`` is called after each full epoch but the last (mod17h)."""
    import torch

    torch.manual_seed(7)
    tok, model, groups = build(config)
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    texts = [r.text for r in rows]
    y = torch.tensor([float(r.harmful) for r in rows])
    per_epoch = math.ceil(len(rows) / BATCH)
    total = steps or math.ceil(epochs * per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / total))
    lossf = torch.nn.BCEWithLogitsLoss()
    rng, step, t0 = random.Random(7), 0, time.time()
    model.train()
    while step < total:
        order = list(range(len(rows)))
        rng.shuffle(order)
        for idx, ids, mask in batches(tok, texts, order):
            loss = lossf(model(ids, mask), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 25 == 0 or step == total:
                print(f"  {config} step {step}/{total} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
            if step >= total:
                break
            if on_epoch is not None and step % per_epoch == 0:
                on_epoch(step // per_epoch, tok, model)
                model.train()
    return tok, model, time.time() - t0


def score(tok, model, mod, texts: list[str]) -> np.ndarray:
    """The gateway's whole-text score: max over 700-character views, then the shipped lexicon lift."""
    import torch

    from llmgw.guards.moderation import CATEGORIES, normalize, views

    flat, owner = [], []
    for i, t in enumerate(texts):
        for v in views(t):
            flat.append(v)
            owner.append(i)
    order = sorted(range(len(flat)), key=lambda j: len(flat[j]))  # similar lengths batch together
    probs = np.zeros(len(flat))
    model.eval()
    with torch.no_grad():
        for idx, ids, mask in batches(tok, flat, order):
            probs[idx] = torch.sigmoid(model(ids, mask)).numpy()
    own = np.zeros(len(texts))
    for j, i in enumerate(owner):
        own[i] = max(own[i], probs[j])
    out = own.copy()
    for i, t in enumerate(texts):
        hits = mod.lexicon_hits(normalize(t).text)
        if any(h["category"] in CATEGORIES for h in hits) and own[i] >= mod.lexicon_floor:
            out[i] = max(out[i], mod.lexicon_score)
    return out


def figures(parts: dict[str, list[ModRow]], s: dict[str, np.ndarray], t: float) -> dict:
    """moderation_encoders.py's figures at ``t`` (plus calibration)."""
    cal, test, held = parts["cal"], parts["test"], parts["held"]
    yh = np.array([bool(r.harmful) for r in held])
    hard = [i for i, r in enumerate(test) if "negat" in r.source or "counter" in r.source]
    return {
        "threshold": round(t, 4),
        "calibration": prf(np.array([bool(r.harmful) for r in cal]), s["cal"] >= t),
        "calibration_mean_benign_fpr": round(macro_fpr(cal, s["cal"], t), 4),
        "test": prf(np.array([bool(r.harmful) for r in test]), s["test"] >= t),
        "test_mean_benign_fpr": round(macro_fpr(test, s["test"], t), 4),
        "test_negated_and_counter_speech_flagged": round(float(np.mean(s["test"][hard] >= t)), 4),
        "test_negated_and_counter_speech_n": len(hard),
        "heldout": prf(yh, s["held"] >= t),
        "heldout_benign_twins_flagged": int(((s["held"] >= t) & (yh == 0)).sum()),
    }


def rule(base: dict, new: dict) -> dict:
    """docs/experiments/mod17g-rule.md (mod17h-rule.md has the same clauses)."""
    checks = {
        "a_test_f1": new["test"]["f1"] >= base["test"]["f1"] + 0.03,
        "b_negated_counter": new["test_negated_and_counter_speech_flagged"]
        <= min(base["test_negated_and_counter_speech_flagged"] + 0.02, 0.15),
        "c_mean_benign_fpr": new["test_mean_benign_fpr"] <= base["test_mean_benign_fpr"] + 0.01,
        "d_heldout": new["heldout"]["recall"] >= base["heldout"]["recall"] + 0.05
        and new["heldout_benign_twins_flagged"] <= base["heldout_benign_twins_flagged"],
    }
    return {**checks, "passes": all(checks.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="top2,lora8")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--choose-epoch", action="store_true",
                    help="also score calibration after each earlier epoch; keep the checkpoint with the higher "
                    "calibration F1 (mod17h)")  # fmt: skip
    ap.add_argument("--measure", type=int, default=0, help="time this many steps per config, print, stop")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mod17g/vectors"), help="shipped MiniLM vectors")
    ap.add_argument("--weights", type=Path, default=Path("/tmp/mod17g"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/mod17g-finetune.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from llmgw.guards.moderation import Moderator

    parts = parts_of_rows()
    print({k: len(v) for k, v in parts.items()}, flush=True)
    if args.measure:
        for config in args.configs.split(","):
            _, _, secs = train(config, parts["train"], args.epochs, steps=args.measure)
            n = math.ceil(len(parts["train"]) / BATCH)
            print(f"{config}: {secs / args.measure:.2f} s/step, one epoch ~{secs / args.measure * n / 60:.1f} min")
        return
    shipped = Moderator(ROOT / "guardrails/models/moderation.npz", VectorCache(args.cache))
    out: dict = {"rows": {k: len(v) for k, v in parts.items()}, "epochs": args.epochs, "max_tokens": MAX_TOKENS,
                 "batch": BATCH, "configs": {}}  # fmt: skip
    # 1. fit each configuration, choose on calibration F1 (nothing else is scored before the choice)
    fitted = {}
    y_cal = np.array([r.harmful for r in parts["cal"]])

    def on_cal(tok, model):
        s_cal = score(tok, model, shipped, [r.text for r in parts["cal"]])
        t = threshold_for_fpr(parts["cal"], s_cal, 0.05)
        return s_cal, t, prf(y_cal, s_cal >= t)["f1"]

    for config in args.configs.split(","):
        earlier: dict = {}  # epoch -> (state dict copy, threshold, calibration scores, calibration F1)

        def on_epoch(epoch, tok, model, earlier=earlier):
            s_cal, t, f1 = on_cal(tok, model)
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            earlier[epoch] = (state, t, s_cal, f1)
            print(f"  epoch {epoch}: threshold {t:.4f} calibration F1 {f1}", flush=True)

        hook = on_epoch if args.choose_epoch else None
        tok, model, secs = train(config, parts["train"], args.epochs, on_epoch=hook)
        s_cal, t, f1 = on_cal(tok, model)
        info = {"train_seconds": round(secs), "threshold": round(t, 4), "calibration_f1": f1}
        if args.choose_epoch:
            last = math.ceil(args.epochs)
            info["epochs"] = {str(e): {"threshold": round(v[1], 4), "calibration_f1": v[3]} for e, v in earlier.items()}
            info["epochs"][str(last)] = {"threshold": round(t, 4), "calibration_f1": f1}
            best = max(earlier, key=lambda e: earlier[e][3], default=None)
            info["chosen_epoch"] = last
            if best is not None and earlier[best][3] > f1:  # ties keep the longer run
                state, t, s_cal, f1 = earlier[best]
                model.load_state_dict(state)
                info.update(chosen_epoch=best, threshold=round(t, 4), calibration_f1=f1)
        out["configs"][config] = info
        print(config, json.dumps(out["configs"][config]), flush=True)
        fitted[config] = (tok, model, t, s_cal)
    chosen = max(fitted, key=lambda c: out["configs"][c]["calibration_f1"])
    out["chosen"] = chosen
    tok, model, t, s_cal = fitted[chosen]
    args.weights.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.weights / f"finetuned-{chosen}.pt")
    out["weights"] = str(args.weights / f"finetuned-{chosen}.pt")
    # 2. test and held-out, once
    s = {"cal": s_cal, **{k: score(tok, model, shipped, [r.text for r in parts[k]]) for k in ("test", "held")}}
    out["finetuned"] = figures(parts, s, t)
    print("finetuned", json.dumps(out["finetuned"]), flush=True)
    b = {k: harm_scores(shipped, parts[k]) for k in ("cal", "test", "held")}
    out["shipped"] = figures(parts, b, 0.5)
    print("shipped", json.dumps(out["shipped"]), flush=True)
    out["rule"] = rule(out["shipped"], out["finetuned"])
    print("rule", json.dumps(out["rule"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        main()
