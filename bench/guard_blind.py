"""The shipped guards on the sets written blind (``bench/data/blind/guards``), per encoder.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.guard_blind [--encoders float,int8-8bit]

The blind sets were written by a helper that had seen no model, rule, code or training data of the
gateway. Nothing is tuned here: the detectors run with the operating points of the shipped default
policy (``guardrails/default.yaml``: user turns and retrieved passages, each at its action
threshold, ``acted``: a blocked turn or a dropped passage, and at its flagging one,
``flagged_or_acted``; moderation per category, on the whole text, and as a stream reads it: 8-word
windows whose hits are confirmed on their context view) and the script prints rates per file and
category. ``--encoders`` compares the vectors the classifiers
read: ``float`` (what the guards read since 2026-12-03, the same on every CPU) and ``int8-8bit``
(the copy the shipped classifiers were trained on, as this CPU computes it), and counts verdicts
that differ between them. ``--policy NAME`` runs another policy of ``guardrails/`` instead (its
operating points, and the guard providers it names per source combined with the built-in detector as
the input and retrieval guard stages combine them: e.g. ``finetuned``, the fine-tuned MiniLM
classifier). ``--injection-model DIR`` also runs a candidate injection detector (``DIR/injection.npz``, its
``injection_passages.npz`` and n-gram model beside it; its own operating points) in the same run, on the
same vectors, under the key ``<encoder>:candidate``. Writes ``bench/results/guard_blind.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from llmgw import encoders
from llmgw.guards.injection import InjectionDetector
from llmgw.guards.moderation import Moderator
from llmgw.guards.output import context_view, harmful_category, overlap_words
from llmgw.guards.policy import Combination, Policy, load_policies
from llmgw.guards.providers import Verdict, combine, consult
from llmgw.guards.providers.registry import lineup
from llmgw.guards.stream import finished_windows

BLIND = Path(__file__).parent / "data" / "blind" / "guards"  # --sets blind2 reads bench/data/blind2/guards
RESULTS = Path(__file__).parent / "results" / "guard_blind.json"
GUARDRAILS = Path(__file__).resolve().parents[1] / "guardrails"


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (BLIND / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def int8_8bit(workdir: Path) -> encoders.OnnxEncoder:
    """The recipe the shipped classifiers were trained on: dynamic int8, per channel, 8-bit weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    enc = encoders.OnnxEncoder("float")
    target = workdir / "int8-8bit.onnx"
    quantize_dynamic(str(enc.path), str(target), weight_type=QuantType.QInt8, per_channel=True)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    enc.session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    enc.precision = "int8"
    return enc


def provider_verdicts(policy: Policy, rule: Combination, texts: list[str], source: str) -> list[dict[str, Verdict]]:
    """The check's providers on ``texts``, in batches of similar length (a provider pads a batch to
    its longest text); a provider error stops the run (a figure must not hide failed calls)."""
    out: list[dict[str, Verdict]] = [{} for _ in texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), 32):
        part = order[start : start + 32]
        for outcome in asyncio.run(consult(lineup(policy, rule), [texts[i] for i in part], source)):
            if outcome.verdicts is None:
                raise SystemExit(f"guard provider {outcome.provider}: {outcome.error}")
            for i, verdict in zip(part, outcome.verdicts, strict=True):
                out[i][outcome.provider] = verdict
    return out


def run(
    embed: Any,
    only: str | None = None,
    policy_name: str = "default",
    policies: Path = GUARDRAILS,
    moderation_model: Path | None = None,
    injection_model: Path | None = None,
) -> dict[str, Any]:
    policy = load_policies(policies)[policy_name]
    det = InjectionDetector(injection_model / "injection.npz" if injection_model else None, embed=embed)
    mod = Moderator(moderation_model, embed=embed, policy_terms=tuple(policy.moderation.lexicon))
    out: dict[str, Any] = {"verdicts": {}}
    files = () if only == "moderation" else (
        ("user_benign_triggers.jsonl", "user"),
        ("user_benign_plain.jsonl", "user"),
        ("user_attacks.jsonl", "user"),
        ("passages_benign.jsonl", "retrieved"),
        ("passages_attacks.jsonl", "retrieved"),
    )  # fmt: skip
    for name, source in files:
        if not (BLIND / name).is_file():  # a set may hold some of the files (blind8: passages only)
            continue
        # the policy's two operating points: its action (block a user turn, drop a passage) and flagging
        flag_at, act_at = policy.injection.cutoffs(source, det.operating_points(source))
        data = rows(name)
        scores = [r.score for r in det.score_many([d["text"] for d in data], [source] * len(data))]
        acted = [s >= act_at for s in scores]
        rule = policy.injection.providers.get(source)  # type: ignore[call-overload]
        if rule is not None:  # as the guard stages: the providers' verdicts joined with the built-in one
            verdicts = provider_verdicts(policy, rule, [d["text"] for d in data], source)
            acted = [combine(rule, (a, s), v)[0] for a, s, v in zip(acted, scores, verdicts, strict=True)]
        # served but flagged: the built-in score between its flagging and its action points
        flagged = [a or s >= flag_at for a, s in zip(acted, scores, strict=True)]
        out["verdicts"][name] = acted
        by_cat: dict[str, list[bool]] = defaultdict(list)
        for d, f in zip(data, acted, strict=True):
            by_cat[d.get("category", "?")].append(f)
        out[name] = {
            "n": len(data), "acted": round(float(np.mean(acted)), 4),
            "flagged_or_acted": round(float(np.mean(flagged)), 4),
            "action": policy.injection.action, "act_at": act_at, "flag_at": flag_at, "policy": policy.label,
            "providers": rule.model_dump() if rule is not None else None,
            "acted_by_category": {c: round(float(np.mean(v)), 3) for c, v in sorted(by_cat.items())},
        }  # fmt: skip
    if only == "injection":
        return out
    data = rows("outputs_moderation.jsonl")
    rules = policy.moderation  # whole-text scores at the policy's thresholds
    whole = [harmful_category(rules, mod.score(d["text"]).categories) is not None for d in data]
    truth = np.array([d["label"] == "flagged" for d in data])
    out["verdicts"]["outputs_moderation.jsonl"] = whole
    out["outputs_moderation.jsonl"] = moderation_figures(data, whole, truth)
    # as a stream reads it: 8-word windows, a window's hit confirmed on its context view
    stream = [stream_stopped(mod, policy, d["text"]) for d in data]
    out["outputs_moderation.jsonl (stream path)"] = moderation_figures(data, stream, truth)
    return out


def moderation_figures(data: list[dict[str, Any]], flagged: list[bool], truth: np.ndarray) -> dict[str, Any]:
    pred = np.array(flagged)
    tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    by_cat = defaultdict(list)
    for d, f in zip(data, flagged, strict=True):
        by_cat[d.get("category", "?")].append(f)
    return {
        "n": len(data), "precision": round(precision, 3), "recall": round(recall, 3),
        "f1": round(2 * precision * recall / max(1e-9, precision + recall), 3),
        "benign_fpr": round(float(pred[~truth].mean()), 3),
        "flagged_by_category": {c: round(float(np.mean(v)), 3) for c, v in sorted(by_cat.items())},
    }  # fmt: skip


def stream_stopped(mod: Moderator, policy: Any, text: str) -> bool:
    """Whether the output guard would stop a stream of ``text`` on a harm category (as the stage
    does: windows, then each suspect window confirmed on its context view)."""
    rules = policy.moderation
    w = finished_windows(text, rules.window_words, overlap_words(rules))
    results = mod.score_many(w.take(final=True))
    suspects = [k for k, r in enumerate(results) if harmful_category(rules, r.categories) is not None]
    if not rules.confirm or not suspects:
        return bool(suspects)
    views = [context_view(w, k, rules) or "" for k in suspects]
    return any(harmful_category(rules, r.categories) is not None for r in mod.score_many(views))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default="float", help="comma-separated: float, int8-8bit")
    ap.add_argument(
        "--sets", type=Path, default=None, help="folder of the blind sets (default bench/data/blind/guards)"
    )
    ap.add_argument("--only", choices=("injection", "moderation"), help="one guard's files only")
    ap.add_argument("--policy", default="default", help="a policy of guardrails/ (e.g. finetuned)")
    ap.add_argument("--moderation-model", type=Path, help="another moderation model file (e.g. an earlier one)")
    ap.add_argument("--tag", default="", help="appended to the result file's name")
    ap.add_argument(
        "--injection-model", type=Path, help="a folder with a candidate injection.npz: run beside the shipped one"
    )
    args = ap.parse_args()
    global BLIND, RESULTS
    if args.sets is not None:
        BLIND = args.sets
        RESULTS = RESULTS.with_name(f"guard_blind-{args.sets.parent.name}.json")
    if args.only:
        RESULTS = RESULTS.with_name(f"guard_{BLIND.parent.name}_{args.only}.json")
    if args.policy != "default":
        RESULTS = RESULTS.with_name(f"{RESULTS.stem}-{args.policy}.json")
    if args.tag:
        RESULTS = RESULTS.with_name(f"{RESULTS.stem}-{args.tag}.json")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.encoders.split(","):
            embed = encoders.OnnxEncoder("float") if name == "float" else int8_8bit(Path(tmp))
            results[name] = run(embed, args.only, args.policy, moderation_model=args.moderation_model)
            if args.injection_model is not None:
                results[f"{name}:candidate"] = run(
                    embed, "injection", args.policy, injection_model=args.injection_model
                )
    names = list(results)
    if len(names) == 2:
        a, b = (results[n]["verdicts"] for n in names)
        results["verdicts_that_differ"] = {f: int(sum(x != y for x, y in zip(a[f], b[f], strict=True))) for f in a}
    for r in results.values():
        if isinstance(r, dict):
            r.pop("verdicts", None)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
