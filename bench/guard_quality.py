"""Quality and latency of the prompt-injection and moderation guards, on held-out data only.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python -m bench.guard_quality [--data DIR] [--cache DIR]

The test split is rebuilt from ``guardrails/models/splits.json`` (hashes of the test texts written by
``scripts/train_guards.py``): those rows were never used for training, model selection or threshold
tuning. Reports

* injection: TPR per attack set at the thresholds where the held-out benign texts of the same route
  (user prompts, or retrieved passages for hidden attacks) have FPR <= 1%, 2% and 5%, and at the
  shipped threshold 0.5; FPR at 0.5 per benign set;
* FPR on trigger-word-rich benign prompts: held-out benign prompts containing words such as
  ignore / system / password / pretend / instructions / override, plus the hand-written
  ``bench/data/benign_triggers.txt``;
* moderation: precision / recall / F1 of flagged-vs-safe and per category; a synthetic secrets check;
* latency per guard: p50 / p95 of ``score()`` on 300-character texts, embedding included, one thread.

Prints markdown tables and writes ``bench/results/guard_quality.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import statistics
import string
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from llmgw.guards.classifier import MODELS_DIR, default_embedder
from llmgw.guards.injection import InjectionDetector, rule_hits
from llmgw.guards.moderation import CATEGORIES, Moderator, find_secrets
from llmgw.guards.normalize import normalize
from llmgw.guards.policy import load_policy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "guard_quality.json"
TRIGGERS_FILE = REPO / "bench" / "data" / "benign_triggers.txt"
TRIGGER_WORDS = re.compile(
    r"\b(?:ignor\w*|system|password\w*|pretend\w*|instruction\w*|override|forget\w*|disregard\w*|bypass\w*|jailbreak\w*|"
    r"prompt\w*|rules?|secret\w*|reveal\w*|act\s+as|developer\s+mode|admin\w*|sudo|root|hack\w*|command\w*)\b",
    re.IGNORECASE,
)
#: the shipped guardrails/default.yaml's thresholds per source (passages are noisier than user turns)
_DEFAULT_POLICY = load_policy(REPO / "guardrails" / "default.yaml")
POLICY_THRESHOLDS = {source: _DEFAULT_POLICY.injection.threshold_for(source) for source in ("user", "retrieved")}
TARGETS = {"injection_tpr_at_fpr_0.02": 0.90, "trigger_fpr": 0.05, "moderation_f1": 0.85}


def _train_module() -> Any:
    """The training script's loaders (one source of truth for reading and splitting the data)."""
    path = REPO / "scripts" / "train_guards.py"
    spec = importlib.util.spec_from_file_location("train_guards", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_guards"] = module
    spec.loader.exec_module(module)
    return module


def load_test(tg: Any, data: Path, splits_path: Path) -> tuple[list[Any], list[Any]]:
    splits = json.loads(splits_path.read_text(encoding="utf-8"))
    test = {src: set(keys) for src, keys in splits["test"].items()}
    recs, bipia = tg.load_records(data)
    for r in recs:
        r.split = "test" if r.key in test.get(r.source, ()) else ("train" if r.extra.get("train_only") else "other")
    indirect = [r for r in tg.build_indirect(recs, bipia) if r.split == "test"]
    return [r for r in recs if r.split == "test"], indirect


def roc_threshold(neg: np.ndarray, fpr: float) -> float:
    """Smallest threshold with at most ``fpr`` of the negatives at or above it."""
    if len(neg) == 0:
        return 0.5
    s = np.sort(neg)[::-1]
    k = int(np.floor(fpr * len(s)))  # this many negatives may score >= threshold
    return float(np.nextafter(s[k], np.inf)) if k < len(s) else float(s[-1])


def _rate(x: np.ndarray) -> float:
    return round(float(np.mean(x)), 4) if len(x) else float("nan")


def prf(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    tp, fp, fn = float((y & p).sum()), float((~y & p).sum()), float((y & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4), "support": int(y.sum())}


# -- injection ---------------------------------------------------------------------------------------
def bench_injection(det: InjectionDetector, test: list[Any], indirect: list[Any]) -> tuple[dict[str, Any], dict]:
    rows = [r for r in test if r.inj is not None and r.kind != "attack_string"] + indirect
    route_of = ["retrieved" if r.kind == "passage" else "user" for r in rows]
    t0 = time.time()
    results = det.score_many([r.text for r in rows], route_of)
    elapsed = time.time() - t0
    score = np.array([x.score for x in results])
    clf = np.array([x.classifier for x in results])  # without the rules
    # without the hidden-instruction (passages) and n-gram (user turns) stages: what they add
    windows = InjectionDetector(det.model, det.embed, hidden=False)
    plain = np.array([x.score for x in windows.score_many([r.text for r in rows], route_of)])
    out: dict[str, Any] = {
        "n": len(rows),
        "scoring_seconds": round(elapsed, 1),
        "routes": {},
        "attacks": {},
        "benign": {},
    }
    thresholds, clf_thresholds, plain_thresholds = {}, {}, {}
    for route in ("user", "retrieved"):
        neg = np.array([score[i] for i, r in enumerate(rows) if r.inj == 0 and route_of[i] == route])
        thresholds[route] = {f: roc_threshold(neg, f) for f in (0.01, 0.02, 0.05)}
        neg_plain = np.array([plain[i] for i, r in enumerate(rows) if r.inj == 0 and route_of[i] == route])
        plain_thresholds[route] = roc_threshold(neg_plain, 0.02)
        neg_clf = np.array([clf[i] for i, r in enumerate(rows) if r.inj == 0 and route_of[i] == route])
        clf_thresholds[route] = roc_threshold(neg_clf, 0.02)
        out["routes"][route] = {
            "benign_n": len(neg),
            "fpr_at_0.5": _rate(neg >= 0.5),
            "default_policy_threshold": POLICY_THRESHOLDS[route],
            "fpr_at_default_policy_threshold": _rate(neg >= POLICY_THRESHOLDS[route]),
            "thresholds_at_test_fpr": {str(f): round(t, 4) for f, t in thresholds[route].items()},
        }
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_source[r.source].append(i)
    for src, idx in sorted(by_source.items()):
        s = score[idx]
        route = route_of[idx[0]]
        if rows[idx[0]].inj == 1:
            out["attacks"][src] = {
                "n": len(idx),
                "route": route,
                **{f"tpr_at_fpr_{f}": _rate(s >= thresholds[route][f]) for f in (0.01, 0.02, 0.05)},
                "tpr_at_0.5": _rate(s >= 0.5),
                "tpr_at_default_policy_threshold": _rate(s >= POLICY_THRESHOLDS[route]),
                "rule_hit_rate": _rate(np.array([bool(results[i].rule_hits) for i in idx])),
                "classifier_only_tpr_at_fpr_0.02": _rate(clf[idx] >= clf_thresholds[route]),
                "without_new_stages_tpr_at_fpr_0.02": _rate(plain[idx] >= plain_thresholds[route]),
            }
        else:
            out["benign"][src] = {"n": len(idx), "route": route, "fpr_at_0.5": _rate(s >= 0.5)}
    # all direct attacks pooled (the headline number)
    direct = np.array([score[i] for i, r in enumerate(rows) if r.inj == 1 and route_of[i] == "user"])
    hidden = np.array([score[i] for i, r in enumerate(rows) if r.inj == 1 and route_of[i] == "retrieved"])
    out["pooled"] = {
        "direct_attacks": {
            "n": len(direct),
            **{f"tpr_at_fpr_{f}": _rate(direct >= thresholds["user"][f]) for f in (0.01, 0.02, 0.05)},
            "tpr_at_0.5": _rate(direct >= 0.5),
            "without_new_stages_tpr_at_fpr_0.02": _rate(
                np.array([plain[i] for i, r in enumerate(rows) if r.inj == 1 and route_of[i] == "user"])
                >= plain_thresholds["user"]
            ),
        },
        "hidden_attacks": {
            "n": len(hidden),
            **{f"tpr_at_fpr_{f}": _rate(hidden >= thresholds["retrieved"][f]) for f in (0.01, 0.02, 0.05)},
            "tpr_at_0.5": _rate(hidden >= 0.5),
            "without_new_stages_tpr_at_fpr_0.02": _rate(
                np.array([plain[i] for i, r in enumerate(rows) if r.inj == 1 and route_of[i] == "retrieved"])
                >= plain_thresholds["retrieved"]
            ),
        },
    }
    # harmful requests are not injections: how often the injection guard fires on them (informational)
    harmful = [r for r in test if r.source.startswith("harmful/")]
    if harmful:
        hs = np.array([x.score for x in det.score_many([r.text for r in harmful])])
        out["harmful_requests_flag_rate_at_0.5"] = _rate(hs >= 0.5)
    return out, thresholds


def bench_triggers(det: InjectionDetector, test: list[Any], thresholds: dict) -> dict[str, Any]:
    held = [r.text for r in test if r.inj == 0 and r.kind == "prompt" and TRIGGER_WORDS.search(r.text)]
    written = [
        line.strip()
        for line in TRIGGERS_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    out: dict[str, Any] = {}
    for name, texts in (
        ("held_out_benign_with_trigger_words", held),
        ("handwritten_benign_triggers", written),
        ("all", held + written),
    ):
        res = det.score_many(texts)
        s = np.array([x.score for x in res])
        out[name] = {
            "n": len(texts),
            "fpr_at_0.5": _rate(s >= 0.5),
            "fpr_at_test_fpr_0.01_threshold": _rate(s >= thresholds["user"][0.01]),
            "fpr_at_test_fpr_0.05_threshold": _rate(s >= thresholds["user"][0.05]),
            "rule_hits": sum(bool(x.rule_hits) for x in res),
            "false_positives_at_0.5": [
                {"text": t[:160], "score": round(x.score, 3), "rules": x.rule_hits}
                for t, x in zip(texts, res, strict=True)
                if x.score >= 0.5
            ]
            if name != "all"
            else None,
        }
    return out


# -- moderation --------------------------------------------------------------------------------------
def bench_moderation(mod: Moderator, test: list[Any]) -> dict[str, Any]:
    """On the injection model's test split. Since issue 17 the moderation model has its own data and
    splits (``scripts/train_moderation.py``; its held-out figures are in ``moderation.md``), so some
    of these rows were in its training data: read these figures as a regression check only."""
    rows = [r for r in test if r.cats is not None]
    res = mod.score_many([r.text for r in rows])
    y = np.array([[c in r.cats for c in CATEGORIES] for r in rows])
    p = np.array([[c in x.flagged for c in CATEGORIES] for x in res])
    out: dict[str, Any] = {"n": len(rows), "binary": prf(y.any(1), p.any(1)), "per_category": {}, "per_source": {}}
    out["binary"]["negatives"] = int((~y.any(1)).sum())
    for j, cat in enumerate(CATEGORIES):
        out["per_category"][cat] = prf(y[:, j], p[:, j])
    out["macro_f1"] = round(float(np.mean([v["f1"] for v in out["per_category"].values()])), 4)
    for src in sorted({r.source for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.source == src]
        out["per_source"][src] = {
            "n": len(idx),
            "labelled_harmful": _rate(y[idx].any(1)),
            "flagged": _rate(p[idx].any(1)),
        }
    # without davidson: the non-tweet part of the test data
    idx = [i for i, r in enumerate(rows) if "davidson" not in r.source]
    out["binary_without_davidson"] = prf(y[idx].any(1), p[idx].any(1))
    return out


def bench_secrets(seed: int = 7, n: int = 40) -> dict[str, Any]:
    """Synthetic: random keys of each format inside sentences, and look-alikes that must not match."""
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits

    def rs(k: int, alphabet: str = alnum) -> str:
        return "".join(rng.choice(alphabet) for _ in range(k))

    makers = {
        "aws_access_key": lambda: "AKIA" + rs(16, string.ascii_uppercase + string.digits),
        "openai_key": lambda: "sk-proj-" + rs(40) + "7",
        "anthropic_key": lambda: "sk-ant-api03-" + rs(90, alnum + "-_"),
        "github_token": lambda: "ghp_" + rs(36),
        "slack_token": lambda: f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-{rs(24)}",
        "private_key": lambda: "-----BEGIN RSA PRIVATE KEY-----\n" + rs(64) + "\n-----END RSA PRIVATE KEY-----",
        "jwt": lambda: "eyJ" + rs(30, alnum + "_-") + ".eyJ" + rs(40, alnum + "_-") + "." + rs(43, alnum + "_-"),
        "generic_secret": lambda: 'api_key = "' + rs(24) + '"',
    }
    templates = [
        "Here is the config: {}",
        "{} -- do not share",
        "Use this value {} when calling the service.",
        "token:\n{}\nthanks",
    ]
    lookalikes = [
        "we used scikit-learn (sk-learn) here",
        "ask-the-expert-session-2024-final-version",
        "AKIA is the prefix",
        'api_key = "YOUR_API_KEY_HERE"',
        'password = "changeme"',
        'api_key = os.environ["API_KEY"]',
        "the ghp_ prefix marks a GitHub token",
        "eyJ is how base64 JSON starts",
        "xoxb- tokens are bot tokens",
        "-----BEGIN PUBLIC KEY-----",
        "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ]
    per_type = {}
    for kind, make in makers.items():
        hit = exact = 0
        for _ in range(n):
            secret = make()
            text = rng.choice(templates).format(secret)
            found = find_secrets(text)
            start = text.index(secret)
            if kind == "generic_secret":
                start, secret = start + secret.index('"') + 1, secret.split('"')[1]
            ok = [f for f in found if f["type"] == kind]
            hit += bool(ok)
            exact += any(f["start"] == start and f["end"] == start + len(secret) for f in ok)
        per_type[kind] = {"n": n, "recall": round(hit / n, 3), "exact_span": round(exact / n, 3)}
    fps = [t for t in lookalikes if find_secrets(t)]
    return {"per_type": per_type, "lookalikes": len(lookalikes), "lookalike_false_positives": fps}


def technical_passages(tg: Any, data: Path, chars: int = 1200) -> list[str]:
    """COVID-QA passages the training script never reads (it keeps the first ``RAG_PASSAGES_KEEP``
    by hash), first ``chars`` characters of those at least that long: benign scientific prose."""
    return [p[:chars] for p in tg.covid_passages(data)[tg.RAG_PASSAGES_KEEP :] if len(p) >= chars]


def bench_technical_prose(mod: Moderator, passages: list[str], window_words: int = 8) -> dict[str, Any]:
    """Share of stream windows (8 words plus 4 before, the default policy) and of whole passages
    that the default threshold (0.5 per category, lexicons included) would stop."""
    from llmgw.guards.stream import windows_of

    windows = [windows_of(p, window_words) for p in passages]
    flat = [w for ws in windows for w in ws]
    results = mod.score_many(flat)
    flagged = [bool(r.flagged) for r in results]
    stopped, pos, categories = 0, 0, defaultdict(int)
    for ws in windows:
        hits = flagged[pos : pos + len(ws)]
        stopped += any(hits)
        pos += len(ws)
    for r in results:
        for c in r.flagged:
            categories[c] += 1
    return {
        "passages": len(passages),
        "windows": len(flat),
        "window_flag_rate": _rate(np.array(flagged)),
        "passage_stop_rate": round(stopped / len(passages), 4) if passages else None,
        "flagged_windows_by_category": dict(categories),
    }


# -- latency -----------------------------------------------------------------------------------------
def _texts_300(test: list[Any], n: int = 40) -> list[str]:
    pool = [r.text for r in test if r.kind == "prompt" and len(r.text) >= 120]
    rng = random.Random(3)
    rng.shuffle(pool)
    out = []
    for t in pool:
        while len(t) < 300:
            t = t + " " + t
        out.append(t[:300])
        if len(out) == n:
            break
    return out


def _timed(fn: Any, texts: list[str], repeat: int = 1) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        for t in texts:
            t0 = time.perf_counter()
            fn(t)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
        "n": len(times),
    }


def bench_latency(det: InjectionDetector, mod: Moderator, texts: list[str]) -> dict[str, Any]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        embed = default_embedder()
        for t in texts[:5]:  # warm up
            det.score(t)
            mod.score(t)
        return {
            "threads": 1,
            "text_chars": 300,
            "injection.score (total)": _timed(det.score, texts),
            "moderation.score (total)": _timed(mod.score, texts),
            "embedding only (1 text)": _timed(lambda t: embed([t]), texts),
            "normalize only": _timed(normalize, texts, 5),
            "injection rules only": _timed(lambda t: [rule_hits(b) for _, b in normalize(t).views()], texts, 5),
            "secrets only": _timed(find_secrets, texts, 5),
        }
    finally:
        torch.set_num_threads(threads)


# -- report ------------------------------------------------------------------------------------------
def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def report(res: dict[str, Any]) -> str:
    inj, trig, mod, lat, sec = res["injection"], res["triggers"], res["moderation"], res["latency"], res["secrets"]
    parts = ["## Injection: TPR per held-out attack set (thresholds from held-out benign of the same route)", ""]
    rows = [
        [s, v["n"], v["route"], v["tpr_at_fpr_0.01"], v["tpr_at_fpr_0.02"], v["tpr_at_fpr_0.05"], v["tpr_at_0.5"],
         v["without_new_stages_tpr_at_fpr_0.02"]]
        for s, v in inj["attacks"].items()
    ]  # fmt: skip
    for name, v in inj["pooled"].items():
        rows.append(
            [
                f"**pooled {name.replace('_', ' ')}**",
                v["n"],
                "",
                v["tpr_at_fpr_0.01"],
                v["tpr_at_fpr_0.02"],
                v["tpr_at_fpr_0.05"],
                v["tpr_at_0.5"],
                v.get("without_new_stages_tpr_at_fpr_0.02", ""),
            ]
        )
    headers = ["attack set", "n", "route", "TPR@FPR≤1%", "TPR@FPR≤2%", "TPR@FPR≤5%", "TPR@0.5 (shipped)",
               "TPR@FPR≤2% without the sentence and n-gram stages"]  # fmt: skip
    parts += [
        _table(headers, rows),
        "",
    ]
    rows = [[s, v["n"], v["route"], v["fpr_at_0.5"]] for s, v in inj["benign"].items()]
    rows += [[f"**all {k}**", v["benign_n"], k, v["fpr_at_0.5"]] for k, v in inj["routes"].items()]
    rows += [
        [f"**all {k}, at the default policy's {v['default_policy_threshold']}**", v["benign_n"], k,
         v["fpr_at_default_policy_threshold"]]
        for k, v in inj["routes"].items()
    ]  # fmt: skip
    parts += [
        "Benign held-out sets: FPR at the shipped threshold 0.5",
        "",
        _table(["benign set", "n", "route", "FPR@0.5"], rows),
        "",
    ]
    if "harmful_requests_flag_rate_at_0.5" in inj:
        parts += [
            f"Harmful requests (not injections; moderation's job) flagged by the injection guard at 0.5: "
            f"{inj['harmful_requests_flag_rate_at_0.5']}",
            "",
        ]
    parts += ["## Injection: FPR on trigger-word-rich benign prompts", ""]
    rows = [
        [
            k,
            v["n"],
            v["fpr_at_0.5"],
            v["fpr_at_test_fpr_0.01_threshold"],
            v["fpr_at_test_fpr_0.05_threshold"],
            v["rule_hits"],
        ]
        for k, v in trig.items()
    ]
    parts += [_table(["set", "n", "FPR@0.5 (shipped)", "FPR@1%-threshold", "FPR@5%-threshold", "rule hits"], rows), ""]
    parts += ["## Moderation (held-out)", ""]
    b = mod["binary"]
    rows = [["**flagged vs safe (binary)**", b["support"], b["precision"], b["recall"], b["f1"]]]
    b2 = mod["binary_without_davidson"]
    rows.append(["binary, without Davidson tweets", b2["support"], b2["precision"], b2["recall"], b2["f1"]])
    rows += [[c, v["support"], v["precision"], v["recall"], v["f1"]] for c, v in mod["per_category"].items()]
    rows.append(["macro over categories", "", "", "", mod["macro_f1"]])
    parts += [_table(["", "positives", "precision", "recall", "F1"], rows), ""]
    rows = [[k, v["recall"], v["exact_span"]] for k, v in sec["per_type"].items()]
    parts += [
        "## Secrets (synthetic)",
        "",
        _table(["type", "recall", "exact span"], rows),
        "",
        f"Look-alikes flagged: {len(sec['lookalike_false_positives'])} of {sec['lookalikes']}",
        "",
    ]
    parts += ["## Latency added per guard (300-char texts, one thread, embedding included)", ""]
    rows = [[k, v["p50_ms"], v["p95_ms"]] for k, v in lat.items() if isinstance(v, dict)]
    parts += [_table(["guard", "p50 ms", "p95 ms"], rows), ""]
    parts += ["## Targets", ""]
    rows = [[t, m, "yes" if ok else "**no**"] for t, m, ok in res["targets"]]
    parts += [_table(["target", "measured", "met"], rows)]
    return "\n".join(parts)


def targets(res: dict[str, Any]) -> list[tuple[str, str, bool]]:
    out = []
    for src, v in res["injection"]["attacks"].items():
        out.append(
            (f"injection TPR ≥ 0.90 at FPR ≤ 2%: {src}", str(v["tpr_at_fpr_0.02"]), v["tpr_at_fpr_0.02"] >= 0.90)
        )
    trig = res["triggers"]["all"]["fpr_at_0.5"]
    out.append(("FPR ≤ 0.05 on trigger-word benign prompts (shipped 0.5)", str(trig), trig <= 0.05))
    f1 = res["moderation"]["binary"]["f1"]
    out.append(("moderation F1 ≥ 0.85 (binary, held-out)", str(f1), f1 >= 0.85))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="guard quality on held-out data")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--models", type=Path, default=MODELS_DIR, help="folder with injection.npz and moderation.npz")
    ap.add_argument("--splits", type=Path, default=None, help="default: splits.json in --models")
    ap.add_argument("--cache", type=Path, default=None, help="embedding cache dir (as in the training script)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args(argv)
    tg = _train_module()
    data = args.data or tg.default_data_dir()
    splits = args.splits or args.models / "splits.json"
    test, indirect = load_test(tg, data, splits)
    embed = tg.CachedEmbedder(args.cache, guard=True) if args.cache else default_embedder()
    det = InjectionDetector(args.models / "injection.npz", embed=embed)
    mod = Moderator(args.models / "moderation.npz", embed=embed)
    res: dict[str, Any] = {
        "data": str(data),
        "splits": str(splits),
        "test_rows": len(test),
        "hidden_attack_passages": len(indirect),
        "artifacts": {"injection": det.metadata.get("train_hash"), "moderation": mod.metadata.get("train_hash")},
    }
    res["injection"], thresholds = bench_injection(det, test, indirect)
    res["triggers"] = bench_triggers(det, test, thresholds)
    res["moderation"] = bench_moderation(mod, test)
    res["technical_prose"] = bench_technical_prose(mod, technical_passages(tg, data))
    res["secrets"] = bench_secrets()
    if args.no_latency:
        res["latency"] = {}
    else:
        live_det = InjectionDetector(args.models / "injection.npz")  # real embedder, no cache
        live_mod = Moderator(args.models / "moderation.npz")
        res["latency"] = bench_latency(live_det, live_mod, _texts_300(test))
    res["targets"] = targets(res)
    text = report(res)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
