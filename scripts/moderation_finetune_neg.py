#!/usr/bin/env python
"""Output moderation: LoRA-tune MiniLM with negated, counter-speech, reclaimed and discussing rows
added to its TRAINING data only (issue 17, mod17i).

mod17g (one epoch) cut negated/counter-speech flagged 12.4 -> 7.7 % but lost F1; mod17h (two epochs)
won F1 back but lost the negation gain. Reading: the tuned encoder needs such rows in its training
data. This script trains ``moderation_finetune.py``'s ``lora8`` model (rank-8 LoRA on query/value of
every layer + a 384->256->1 head, same optimiser, schedule, seed, batch and 128 word pieces) on
mod17g/h's training rows plus these, all drawn from the *train* split only (calibration and test rows
are exactly mod17g/h's; no added row is in either):

* ``compose_*``: round 3's composed frames (``guard_training.moderation_compose``), the train-split
  frames filled with train-split phrases: benign negated / counter / discussing / figurative twins and,
  so the shared phrases stay balanced, the harmful composed rows of the same frames' split.
* ``wrap_negated``, ``wrap_counter``, ``wrap_discussing``: short harmful rows of mod17g/h's own training
  part (English sources) quoted inside general templates (:data:`WRAPS`, written for this script) that
  negate, rebut or report, or discuss them without promoting; labelled benign.
* ``wrap_reclaimed``: in-group, self-describing use of identity words (:data:`RECLAIMED`), benign.
* real rows beyond mod17g/h's 400-per-source cap, train split only: ``bias_madlibs`` NOT_BAD
  (CC-BY 4.0), ``wiki_toxicity`` non-toxic identity comments (CC-BY 4.0), ``hh_harmless`` chosen
  replies that refuse (MIT; a keyword test, :data:`REFUSAL`).

Choices, on calibration only: epochs (1 or 2; calibration is scored after each) -- the epoch with the
higher calibration F1 among those whose calibration negated+counter flagged (sources containing
``negat`` or ``counter``) is at most 15 %; if neither, the lower such rate; a tie keeps epoch 2. The
LoRA configuration is mod17g's calibration choice (lora8), not re-searched (one CPU core, 2 hours).
Threshold: the shipped rule, lowest with mean benign calibration flag rate <= 5 %. Then test and
held-out are scored once beside the shipped model (``--test``), the rule being
docs/experiments/mod17i-rule.md.

    cd /work/wt/mod17i && nice -n 5 env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 \\
        PYTHONPATH=. /work/main/.venv/bin/python scripts/moderation_finetune_neg.py --counts   # rows only
    ... scripts/moderation_finetune_neg.py --weights /tmp/mod17i --adapter /tmp/mod17i/adapter \\
        --out bench/results/mod17i-finetune.json                 # train, choose on calibration (mod17i run)
    ... scripts/moderation_finetune_neg.py --weights /tmp/mod17i --out bench/results/mod17i-finetune.json --test
    ... scripts/moderation_blind.py --set bench/data/blind11/guards/outputs_moderation.jsonl --stream \\
        --tuned /tmp/mod17i/adapter/adapter.pt --tuned-threshold T --out bench/results/mod17i-blind11.json

``--verdict BLIND.json --adapter DIR --out bench/results/mod17i-verdict.json`` applies the rule to the
blind run. Without ``--test`` only calibration figures are computed (the choice); ``--test`` loads the chosen
weights from ``--weights`` and adds test and held-out figures. Weights (full state) go to ``--weights``;
``--adapter DIR`` writes only the trained tensors (LoRA + head).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import harm_scores, prf, threshold_for_fpr  # noqa: E402
from guard_training.moderation_data import ModRow, load_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from moderation_finetune import figures, parts_of_rows, score, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 29

#: general templates: a harmful message {X} quoted and negated, rebutted/reported, or discussed
WRAPS = {
    "negated": [
        'I would never say "{X}" to anyone.',
        'I don\'t agree with "{X}", not even a little.',
        'Nobody should ever write "{X}". I certainly won\'t.',
        "I'm not going to say \"{X}\"; that isn't who I am.",
        'No, I do not think "{X}" is acceptable in any way.',
        'I never wrote "{X}". Someone made that account to impersonate me.',
    ],
    "counter": [
        'Someone replied "{X}" under my post. That is abuse, and I reported it.',
        'Comments like "{X}" are hateful and have no place here.',
        '"{X}" Seriously? Writing things like that hurts real people. Please stop.',
        'If your reply to this is "{X}", you are the problem. Be better.',
        'I\'m tired of seeing "{X}" in these comments. Mods, please remove it.',
        'To whoever wrote "{X}": that is cruel and it is not okay.',
    ],
    "discussing": [
        'The study collected messages such as "{X}" to train abuse filters.',
        'In court, the prosecutor read out the message "{X}" as evidence of harassment.',
        'Content moderators see comments like "{X}" every day; this article explains how they cope.',
        'Our report found that posts like "{X}" rise sharply after major news events.',
        'Example of a removed comment: "{X}". Content like this breaks rule 3 of our community guidelines.',
        'In the novel the villain says "{X}", and the book shows the harm his words cause.',
    ],
}
#: sources whose short harmful training rows are quoted (English only)
WRAP_SOURCES = ("davidson_hate", "davidson_offensive", "madlibs_bad", "templ_hate", "templ_threat", "surge_toxic",
                "wiki_toxic", "answers_threat", "answers_insult", "compose_threat", "compose_harassment")  # fmt: skip
WRAP_PER_KIND = 150
#: in-group, self-describing use of identity words
RECLAIMED = [
    "As a {T} person, I call myself {T} and I'm proud of it.",
    "{T_CAP} and proud! The march today was amazing.",
    'We took the word "{T}" back; in our community it means family.',
    "Me and my {T} friends are going to the film festival tonight.",
    "{T_CAP} joy is resistance. Happy pride, everyone!",
    "I'm {T} and I love my life, thanks for asking.",
    "Being {T} is part of who I am, and I talk about it openly.",
    "Our {T} book club meets on Thursdays, everyone is welcome.",
]
RECLAIMED_TERMS = ["queer", "gay", "trans", "lesbian", "bi", "deaf", "disabled", "autistic", "fat", "Black", "Muslim",
                   "Jewish", "old", "brown", "nonbinary", "crip"]  # fmt: skip
RECLAIMED_N = 80
REFUSAL = re.compile(
    r"\b(I['’]m sorry|I am sorry|I can['’]t|I cannot|I won['’]t|I will not|I['’]m not (?:able|comfortable|going)|"
    r"I['’]d rather not|not something I|isn['’]t appropriate|not appropriate|I don['’]t think (?:I|that['’]s|it['’]s)|"
    r"I would (?:highly )?(?:suggest|recommend) against|illegal|not a good idea|I don['’]t want to)",
    re.I,
)
HH_REFUSALS = 200


def _wrap_text(text: str) -> str:
    return " ".join(text.replace('"', "'").split()).rstrip(".")


def extra_rows(train: list[ModRow]) -> list[ModRow]:
    """The added training rows (train split only; see the module docstring)."""
    rng = random.Random(SEED)
    have = {r.text for r in train}
    out: list[ModRow] = []
    # 1. composed frames: train-split frames and phrases only
    composed = load_rows(default_data_dir(), answers=True, compose=True)
    out += [r for r in composed if r.source.startswith("compose_") and r.split == "train"]
    # 2. general templates around the training part's own short harmful rows
    pool = [r for r in train if r.source in WRAP_SOURCES and 12 <= len(r.text) <= 160 and "\n" not in r.text]
    pool += [r for r in out if r.harmful and r.source in WRAP_SOURCES and len(r.text) <= 160]
    pool.sort(key=lambda r: r.text)
    for kind, patterns in WRAPS.items():
        made: set[str] = set()
        for r in rng.sample(pool, min(len(pool), WRAP_PER_KIND * 2)):
            if len(made) >= WRAP_PER_KIND:
                break
            made.add(rng.choice(patterns).replace("{X}", _wrap_text(r.text)))
        out += [ModRow(t, f"wrap_{kind}", 0, (), "train", "project (this script)") for t in sorted(made)]
    made = set()
    for _ in range(RECLAIMED_N * 5):
        if len(made) >= RECLAIMED_N:
            break
        term = rng.choice(RECLAIMED_TERMS)
        made.add(rng.choice(RECLAIMED).replace("{T_CAP}", term[:1].upper() + term[1:]).replace("{T}", term))
    out += [ModRow(t, "wrap_reclaimed", 0, (), "train", "project (this script)") for t in sorted(made)]
    # 3. real rows past the 400 cap, train split only
    base = load_rows(default_data_dir(), answers=True)
    for source in ("madlibs_not_bad", "wiki_not_toxic"):
        out += [r for r in base if r.source == source and r.split == "train" and r.text not in have]
    hh = [r for r in base if r.source == "hh_chosen_replies" and r.split == "train" and r.text not in have]
    hh = sorted((r for r in hh if REFUSAL.search(r.text)), key=lambda r: r.text)
    picked = rng.sample(hh, min(len(hh), HH_REFUSALS))
    out += [ModRow(r.text, "hh_refusals", 0, (), "train", r.licence, r.group) for r in picked]
    assert all(r.split == "train" for r in out)
    return out


def hard(rows: list[ModRow]) -> list[int]:
    return [i for i, r in enumerate(rows) if "negat" in r.source or "counter" in r.source]


def per_source(rows: list[ModRow], flags: np.ndarray) -> dict:
    by: dict[str, list[bool]] = {}
    for r, f in zip(rows, flags, strict=True):
        by.setdefault(r.source, []).append(bool(f))
    return {s: {"n": len(v), "flagged": round(float(np.mean(v)), 4)} for s, v in sorted(by.items())}


def arguments(name: str, description: str) -> argparse.Namespace:
    """The command line of a LoRA moderation experiment (``name``: mod17i, mod17j) and its default paths."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--counts", action="store_true", help="print the rows per part and added kind, stop")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--test", action="store_true", help="load the chosen weights, add test and held-out figures")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mod17g/vectors"), help="shipped MiniLM vectors")
    ap.add_argument("--weights", type=Path, default=Path(f"/tmp/{name}"))
    ap.add_argument("--adapter", type=Path, help="write the trained tensors (LoRA + head) here")
    ap.add_argument("--out", type=Path, default=ROOT / f"bench/results/{name}-finetune.json")
    ap.add_argument("--verdict", type=Path, help="a moderation_blind.py --stream output: apply the rule, write --out")
    return ap.parse_args()


def main() -> None:
    args = arguments("mod17i", __doc__.splitlines()[0])
    if args.verdict:
        size = (args.adapter / "adapter.pt").stat().st_size
        result = verdict(json.loads(args.verdict.read_text(encoding="utf-8")), size)
        print(result)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    import torch

    torch.set_num_threads(1)
    from llmgw.guards.moderation import Moderator

    parts = parts_of_rows()
    added = extra_rows(parts["train"])
    counts = dict(sorted(Counter(f"{r.source} ({'harmful' if r.harmful else 'benign'})" for r in added).items()))
    cal_test = {r.text for k in ("cal", "test") for r in parts[k]}
    overlap = sum(r.text in cal_test for r in added)
    print({k: len(v) for k, v in parts.items()}, "added", len(added), counts, "text overlap with cal/test", overlap)
    if args.counts:
        return
    shipped = Moderator(ROOT / "guardrails/models/moderation.npz", VectorCache(args.cache))
    cal = parts["cal"]
    y_cal = np.array([bool(r.harmful) for r in cal])
    hc = hard(cal)
    if args.out.exists():
        out = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        out = {"rows": {k: len(v) for k, v in parts.items()}, "added": len(added), "added_per_kind": counts,
               "added_text_overlap_with_cal_test": overlap, "config": "lora8", "epochs_max": args.epochs}  # fmt: skip

    def on_cal(tok, model) -> dict:
        s_cal = score(tok, model, shipped, [r.text for r in cal])
        t = threshold_for_fpr(cal, s_cal, 0.05)
        hard_flagged = round(float(np.mean(s_cal[hc] >= t)), 4)
        return {"threshold": round(float(t), 4), "calibration_f1": prf(y_cal, s_cal >= t)["f1"],
                "calibration_negated_counter_flagged": hard_flagged, "s": s_cal}  # fmt: skip

    args.weights.mkdir(parents=True, exist_ok=True)
    if not args.test:
        epochs, model, secs = train_epochs(parts["train"] + added, args.epochs, args.weights, on_cal)
        ok = [e for e, v in epochs.items() if v["calibration_negated_counter_flagged"] <= 0.15]
        if ok:
            chosen = max(ok, key=lambda e: (epochs[e]["calibration_f1"], e))
        else:
            chosen = min(epochs, key=lambda e: (epochs[e]["calibration_negated_counter_flagged"], -e))
        out.update(train_seconds=round(secs), train_rows=len(parts["train"]) + len(added), chosen_epoch=chosen,
                   epochs={str(e): {k: v for k, v in d.items() if k != "s"} for e, d in epochs.items()},
                   threshold=epochs[chosen]["threshold"])  # fmt: skip
        print("chosen", chosen, out["epochs"][str(chosen)], flush=True)
        np.save(args.weights / "cal_scores.npy", epochs[chosen]["s"])
        if args.adapter:
            model.load_state_dict(torch.load(args.weights / f"epoch{chosen}.pt", map_location="cpu"))
            save_adapter(model, args.adapter)
    else:
        s, t = chosen_scores(args.weights, out, parts, shipped)
        out["finetuned"] = figures(parts, s, t)
        out["finetuned"]["test_per_source"] = per_source(parts["test"], s["test"] >= t)
        shown = {k: v for k, v in out["finetuned"].items() if k != "test_per_source"}
        print("finetuned", json.dumps(shown), flush=True)
        b = {k: harm_scores(shipped, parts[k]) for k in ("cal", "test", "held")}
        out["shipped"] = figures(parts, b, 0.5)
        out["shipped"]["test_per_source"] = per_source(parts["test"], b["test"] >= 0.5)
        print("shipped", json.dumps({k: v for k, v in out["shipped"].items() if k != "test_per_source"}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


def chosen_scores(weights: Path, out: dict, parts: dict, shipped) -> tuple[dict[str, np.ndarray], float]:
    """``--test``: the chosen epoch's weights scored on test and held-out (calibration scores as saved)
    and the calibration threshold."""
    import torch
    from moderation_finetune import build

    tok, model, _ = build("lora8")
    model.load_state_dict(torch.load(weights / f"epoch{out['chosen_epoch']}.pt", map_location="cpu"))
    s = {"cal": np.load(weights / "cal_scores.npy"),
         **{k: score(tok, model, shipped, [r.text for r in parts[k]]) for k in ("test", "held")}}  # fmt: skip
    return s, out["threshold"]


def train_epochs(rows: list, epochs_max: int, weights: Path, on_cal) -> tuple[dict[int, dict], object, float]:
    """``lora8`` trained on ``rows``; after every epoch the calibration figures (``on_cal``) are taken and
    the epoch's full weights saved to ``weights/epoch<N>.pt``: ({epoch: figures}, model, seconds)."""
    import torch

    epochs: dict[int, dict] = {}

    def keep(epoch: int, tok, model) -> None:
        epochs[epoch] = on_cal(tok, model)
        torch.save(model.state_dict(), weights / f"epoch{epoch}.pt")
        print(f"  epoch {epoch}:", {k: v for k, v in epochs[epoch].items() if k != "s"}, flush=True)

    tok, model, secs = train("lora8", rows, epochs_max, on_epoch=keep)
    keep(epochs_max, tok, model)
    return epochs, model, secs


def verdict(blind: dict, adapter_bytes: int) -> dict:
    """docs/experiments/mod17i-rule.md, applied as written to ``moderation_blind.py --stream``'s output."""
    b, n = blind["shipped_at_0.5"], blind["tuned"]
    bs, ns = blind["shipped_at_0.5 (stream path)"], blind["tuned (stream path)"]
    hard_b, hard_n = b["counter_speech_and_negated_flagged"], n["counter_speech_and_negated_flagged"]
    checks = {
        "a_f1": n["f1"] >= b["f1"] + 0.03,
        "b_benign": n["benign_fpr"] <= max(b["benign_fpr"] + 0.01, 0.10),
        "c_negated_counter": hard_n is not None and hard_b is not None and hard_n <= min(hard_b, 0.15),
        "d_cost_adapter_le_2mb": adapter_bytes <= 2 * 1024 * 1024,
        "e_stream": ns["f1"] >= bs["f1"] and ns["benign_fpr"] <= max(bs["benign_fpr"] + 0.01, 0.10),
    }
    return {**checks, "adapter_bytes": adapter_bytes, "passes": all(checks.values())}


def save_adapter(model, folder: Path) -> None:
    """Only the trained tensors (LoRA a/b of every query/value, the head): merge ``b @ a * 2`` into each
    projection's weight for the gateway's single encoder pass."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    keep = {k: v for k, v in model.state_dict().items() if ".a" in k[-2:] or ".b" in k[-2:] or k.startswith("head.")}
    torch.save(keep, folder / "adapter.pt")


if __name__ == "__main__":
    t0 = time.time()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        main()
    print(f"done in {time.time() - t0:.0f}s", flush=True)
