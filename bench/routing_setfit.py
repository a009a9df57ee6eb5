"""SetFit-style contrastive fine-tuning of MiniLM for task routing (route23), against the frozen encoder.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.routing_setfit [--config lora_qv] [--test]

A measurement only: the gateway keeps the frozen ONNX MiniLM. Everything but the encoder is what ships
(the exemplars, the instruction view, the six cues × ``tasks.CUE_WEIGHT``, the regression, the temperature
calibration, the threshold rule); see ``bench/routing_encoders.py``.

**Fine-tuning** (Tunstall et al. 2022, SetFit): pairs of exemplars' instruction views, same task = 1,
different task = 0 (half each, ``--pairs`` per exemplar, seeded), cosine-similarity loss (MSE of the cosine
of the mean-pooled embeddings against the label), one epoch, batch 16, at most 64 word pieces, AdamW with
10 % linear warm-up then linear decay. Only LoRA adapters on the attention projections are trained
(written here, no ``peft``): ``lora_qv`` = rank 8 on query and value, ``lora_qkvo`` = rank 8 on query,
key, value and the attention output; alpha 16, everything else frozen.

**CV** (no held-out set read): the five folds of ``bench.routing.threshold_by_cv`` (stratified,
``random_state=1``). In each fold the encoder is fine-tuned on that fold's training exemplars only; every
exemplar is embedded with the tuned encoder (mean pooling, normalised, the model's own window); the cues
are appended as shipped; ``C`` is chosen on the training part by ``routing_encoders.choose_c``; the head
is fitted on the training part and calibrated on its own out-of-fold logits (as ``threshold_by_cv``
does); the held-out fold is scored. The threshold is then chosen on the pooled out-of-fold
probabilities by the rule of ``threshold_by_cv``. References: ``minilm_shipped`` (the frozen ONNX
vectors at ``tasks.C`` and the shipped threshold; asserted equal to ``threshold_by_cv`` and to
route20's figures) and ``minilm_frozen_rule`` (frozen vectors through the same per-fold C choice and
threshold rule as the tuned model).

**Test** (``--test``, only once ``docs/experiments/route23-rule.md`` is committed): the chosen
configuration is fine-tuned on all exemplars, ``C`` chosen on all by ``choose_c``, fitted and
calibrated as ``routing_encoders.Fitted``, thresholded at its CV threshold; the three held-out sets are
scored once, against the gateway's own ``TaskClassifier`` at the shipped threshold. The final adapter
goes to ``/tmp/route23/`` (not in git).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from bench.routing import THRESHOLDS, Router, calibrated, outcomes, threshold_by_cv
from bench.routing_encoders import MPNET, Exemplars, Fitted, choose_c, query_strings, test_sets, with_cues
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = Path("/tmp/route23")
COMBINE = "instruction"
CONFIGS = {"lora_qv": ("query", "value"), "lora_qkvo": ("query", "key", "value", "attention.output.dense")}
RANK, ALPHA, LR, BATCH, MAX_LEN, SEED = 8, 16.0, 2e-4, 16, 64, 23


# -- LoRA, a few lines ----------------------------------------------------------------------------------------
def add_lora(model: Any, targets: tuple[str, ...], rank: int = RANK, alpha: float = ALPHA) -> list[Any]:
    """Freeze ``model`` and wrap every Linear whose qualified name ends with a target; the new parameters."""
    import torch
    from torch import nn

    class LoRA(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.a = nn.Parameter(torch.empty(rank, base.in_features))
            nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
            self.b = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale

    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(name.endswith(t) for t in targets)
    ]
    params = []
    for name, module in wrapped:
        parent = model.get_submodule(name.rsplit(".", 1)[0])
        lora = LoRA(module)
        setattr(parent, name.rsplit(".", 1)[1], lora)
        params += [lora.a, lora.b]
    return params


def encoder() -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    from llmgw import embedder

    torch.set_num_threads(1)
    return SentenceTransformer(embedder.model_path(), device="cpu")


def pairs_of(labels: np.ndarray, per: int, seed: int) -> list[tuple[int, int, float]]:
    """``per`` pairs per exemplar, half same-task (1.0), half other-task (0.0), shuffled."""
    rng = random.Random(seed)
    by: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by.setdefault(int(y), []).append(i)
    out = []
    for i, y in enumerate(labels):
        same = [j for j in by[int(y)] if j != i]
        other = [j for k, js in by.items() if k != int(y) for j in js]
        out += [(i, rng.choice(same), 1.0) for _ in range(per // 2)]
        out += [(i, rng.choice(other), 0.0) for _ in range(per - per // 2)]
    rng.shuffle(out)
    return out


def pair_loss(bert: Any, tok: Any, texts: list[str], batch: list[tuple[int, int, float]]) -> Any:
    """The SetFit loss of one batch of ``(i, j, same)`` pairs: MSE between the two mean-pooled
    embeddings' cosine and the label (shared by route23 and route24's training loops)."""
    import torch

    def embed(strings: list[str]) -> Any:
        enc = tok(strings, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        hidden = bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    a = embed([texts[i] for i, _, _ in batch])
    b = embed([texts[j] for _, j, _ in batch])
    target = torch.tensor([y for _, _, y in batch])
    return torch.nn.functional.mse_loss(torch.cosine_similarity(a, b), target)


def fine_tune(texts: list[str], labels: np.ndarray, config: str, per: int, seed: int, steps: int | None = None) -> Any:
    """A MiniLM with LoRA adapters trained on ``texts`` (SetFit pairs); returns (model, seconds, losses)."""
    import torch

    torch.manual_seed(seed)
    model = encoder()
    bert = model[0].auto_model
    params = add_lora(bert, CONFIGS[config])
    tok = model.tokenizer
    pairs = pairs_of(labels, per, seed)
    batches = [pairs[i : i + BATCH] for i in range(0, len(pairs), BATCH)][:steps]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    warm = max(1, len(batches) // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (len(batches) - s) / (len(batches) - warm))
    )

    bert.train()
    losses, started = [], time.perf_counter()
    for batch in batches:
        loss = pair_loss(bert, tok, texts, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    bert.eval()
    return model, time.perf_counter() - started, losses, params


def vectors(model: Any, texts: list[str]) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(out, dtype=np.float32)


def lora_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model[0].auto_model.state_dict().items() if k.endswith((".a", ".b"))}


# -- the head, per fold, as threshold_by_cv does it ------------------------------------------------------------
def outer_folds(labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=taskmod.FOLDS, shuffle=True, random_state=1)
    return list(folds.split(np.zeros((len(labels), 1)), labels))


def fold_probs(data: taskmod.Views, labels: np.ndarray, train: np.ndarray, test: np.ndarray, names: list[str],
               c: float | None) -> tuple[list[dict[str, float]], float, float]:  # fmt: skip
    """The held-out fold's calibrated probabilities; ``c`` None: chosen on the training part by ``choose_c``."""
    if c is None:
        c, _ = choose_c(data[train], labels[train], names)
    weights, bias = taskmod.fit(*taskmod.training_rows(data[train], labels[train], COMBINE), c)
    inner = taskmod.out_of_fold_logits(data[train], labels[train], c, combine=COMBINE)
    temperature = taskmod.best_temperature(inner, labels[train])
    return calibrated(taskmod.logits_of(weights, bias, data[test], COMBINE), temperature, names), c, temperature


def pick_threshold(router: Router, cases: list[tuple[str, str]], probs: list[dict[str, float]]) -> tuple[float, Any]:
    """The rule of ``threshold_by_cv`` on given out-of-fold probabilities."""
    sweep = {th: outcomes(router, cases, probs, th)["overall"] for th in THRESHOLDS}
    best_routed = max(r["routed"] for r in sweep.values())
    near = [th for th in THRESHOLDS if sweep[th]["routed"] >= best_routed - 0.01]
    return max(near, key=lambda th: (sweep[th]["served"], sweep[th]["routed"], -th)), sweep


def cv_of(router: Router, ex: Exemplars, per_fold: list[np.ndarray], folds: Any, c: float | None,
          threshold: float | None) -> dict[str, Any]:  # fmt: skip
    probs: list[dict[str, float]] = [{} for _ in ex.cases]
    cs, temps = [], []
    for vecs, (train, test) in zip(per_fold, folds, strict=True):
        data = with_cues(vecs, ex.cue_texts)
        got, chosen_c, temperature = fold_probs(data, ex.labels, train, test, ex.names, c)
        cs.append(chosen_c)
        temps.append(round(temperature, 3))
        for i, p in zip(test, got, strict=True):
            probs[i] = p
    chosen, sweep = pick_threshold(router, ex.cases, probs)
    th = chosen if threshold is None else threshold
    return {"C_per_fold": cs, "temperature_per_fold": temps, "threshold": th,
            "at_threshold": outcomes(router, ex.cases, probs, th),
            "at_0.7": {k: v for k, v in sweep[0.7].items() if k != "n"}}  # fmt: skip


def show(key: str, row: dict[str, Any]) -> None:
    print(key, f"C{row['C_per_fold']} th{row['threshold']}", json.dumps(row["at_threshold"]["overall"]), flush=True)
    print("   routed", json.dumps({t: r["routed"] for t, r in row["at_threshold"]["per_task"].items()}), flush=True)
    print("   label ", json.dumps({t: r["label"] for t, r in row["at_threshold"]["per_task"].items()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="lora_qv", help="comma-separated, of " + ", ".join(CONFIGS))
    parser.add_argument("--pairs", type=int, default=6, help="pairs per training exemplar (20 did not fit the time)")
    parser.add_argument("--probe", type=int, default=0, help="only time this many steps and exit")
    parser.add_argument("--test", action="store_true", help="train on all, score the held-out sets (after the rule)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "route23-setfit.json")
    args = parser.parse_args()
    import torch

    from llmgw.config import RoutingConfig

    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    shipped_threshold = RoutingConfig().task_threshold
    router = Router(0.9)
    ex = Exemplars(MPNET)
    folds = outer_folds(ex.labels)
    if args.probe:
        _, secs, losses, params = fine_tune(ex.embedded, ex.labels, args.configs.split(",")[0], args.pairs, SEED,
                                            args.probe)  # fmt: skip
        n = sum(p.numel() for p in params)
        print(f"{args.probe} steps {secs:.1f}s = {secs / args.probe:.3f} s/step; {n} params; loss {losses[-5:]}")
        return
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "exemplars": len(ex.cases), "torch_threads": 1,
        "recipe": {"pairs_per_exemplar": args.pairs, "epochs": 1, "batch": BATCH, "max_word_pieces": MAX_LEN,
                   "lr": LR, "rank": RANK, "alpha": ALPHA, "seed": SEED, "loss": "cosine-similarity (MSE)"},
        "shipped": {"C": taskmod.C, "threshold": shipped_threshold},
    }  # fmt: skip

    if args.test:  # the CV run's figures and choice, as written (nothing re-chosen)
        result = json.loads(args.out.read_text())
        cv, chosen = result["cv"], result["chosen"]
    else:
        # references: the shipped frozen vectors
        frozen = [ex.minilm] * len(folds)
        cv: dict[str, Any] = {"minilm_shipped": cv_of(router, ex, frozen, folds, taskmod.C, shipped_threshold)}
        _, _, probs = threshold_by_cv(
            router, ex.cases, with_cues(ex.minilm, ex.cue_texts), ex.labels, taskmod.C, COMBINE
        )
        assert outcomes(router, ex.cases, probs, shipped_threshold) == cv["minilm_shipped"]["at_threshold"]
        route20 = json.loads((ROOT / "bench" / "results" / "route20-encoders.json").read_text())
        assert (
            route20["cv"]["minilm_shipped"]["at_threshold"]["overall"]
            == cv["minilm_shipped"]["at_threshold"]["overall"]
        )
        cv["minilm_frozen_rule"] = cv_of(router, ex, frozen, folds, None, None)
        torch_frozen = vectors(encoder(), ex.embedded)
        result["torch_vs_onnx_max_abs"] = float(np.abs(torch_frozen - ex.minilm).max())
        for key in cv:
            show(key, cv[key])

        timing: dict[str, list[float]] = {}
        for config in args.configs.split(","):
            per_fold, timing[config] = [], []
            for k, (train, _) in enumerate(folds):
                model, secs, losses, _ = fine_tune([ex.embedded[i] for i in train], ex.labels[train], config,
                                                   args.pairs, SEED + k)  # fmt: skip
                per_fold.append(vectors(model, ex.embedded))
                timing[config].append(round(secs, 1))
                print(config, "fold", k, f"{secs:.0f}s", "loss first/last 50", round(float(np.mean(losses[:50])), 4),
                      round(float(np.mean(losses[-50:])), 4), flush=True)  # fmt: skip
            np.save(OUT_DIR / f"cv-vectors-{config}.npy", np.stack(per_fold))
            cv[config] = cv_of(router, ex, per_fold, folds, None, None)
            show(config, cv[config])
        result["train_seconds_per_fold"] = timing
        result["cv"] = cv
        tuned = [k for k in timing]
        chosen = max(tuned, key=lambda k: (cv[k]["at_threshold"]["overall"]["routed"], -tuned.index(k)))
        result["chosen"] = chosen
        args.out.write_text(json.dumps(result, indent=2))

    if args.test:
        model, secs, _, params = fine_tune(ex.embedded, ex.labels, chosen, args.pairs, SEED + 99)
        result["final_train_seconds"] = round(secs, 1)
        state = lora_state(model)
        torch.save(state, OUT_DIR / f"adapter-{chosen}.pt")
        n = sum(v.numel() for v in state.values())
        result["adapter"] = {"path": str(OUT_DIR / f"adapter-{chosen}.pt"), "params": n, "float32_bytes": 4 * n,
                             "file_bytes": (OUT_DIR / f"adapter-{chosen}.pt").stat().st_size}  # fmt: skip
        data = with_cues(vectors(model, ex.embedded), ex.cue_texts)
        c, _ = choose_c(data, ex.labels, ex.names)
        mine = Fitted(data, ex.labels, ex.names, c)
        ship = taskmod.TaskClassifier(ex.exemplars)
        result["final"] = {"C": c, "threshold": cv[chosen]["threshold"], "temperature": round(mine.temperature, 3)}
        tests: dict[str, Any] = {}
        for set_name, set_cases in test_sets().items():
            p_mine, p_ship = [], []
            for _, text in set_cases:
                emb, cue = query_strings(text)
                p_mine.append(mine.probabilities(with_cues(vectors(model, [emb]), [cue])))
                p_ship.append(ship.probabilities(text))
            tests[set_name] = {
                "minilm_shipped": outcomes(router, set_cases, p_ship, shipped_threshold),
                chosen: outcomes(router, set_cases, p_mine, cv[chosen]["threshold"]),
            }
            for key, row in tests[set_name].items():
                print(set_name, key, json.dumps(row["overall"]), flush=True)
        result["test"] = tests
        result["verdict"] = verdict(cv, chosen, tests, result["adapter"]["float32_bytes"])
        print("verdict", json.dumps(result["verdict"]))
    args.out.write_text(json.dumps(result, indent=2))


def verdict(cv: dict[str, Any], chosen: str, tests: dict[str, Any], size: int) -> dict[str, Any]:
    """docs/experiments/route23-rule.md, applied against ``minilm_shipped``."""
    mine, ref = cv[chosen]["at_threshold"], cv["minilm_shipped"]["at_threshold"]
    gain = round(mine["overall"]["routed"] - ref["overall"]["routed"], 4)
    drops = {t: round(mine["per_task"][t]["routed"] - r["routed"], 4) for t, r in ref["per_task"].items()}
    test_changes = {
        s: round(rows[chosen]["overall"]["routed"] - rows["minilm_shipped"]["overall"]["routed"], 4)
        for s, rows in tests.items()
    }
    out = {
        "cv_routed_change": gain, "a": gain >= 0.015,
        "per_task_routed_change": drops, "b": all(d >= -0.02 for d in drops.values()),
        "test_routed_change": test_changes, "c": all(d >= -0.01 for d in test_changes.values()),
        "adapter_float32_bytes": size, "d": size <= 2 * 1024 * 1024,
    }  # fmt: skip
    out["ships"] = all(out[k] for k in ("a", "b", "c", "d"))
    return out


if __name__ == "__main__":
    main()
