#!/usr/bin/env python
"""Experiment inj27p: the fine-tuned MiniLM (``scripts/train_injection_finetune.py``) as the passage
detector, its 2 % point measured on inj17q's broad benign calibration sources
(rule: ``docs/experiments/inj27p-rule.md``).

    cd WORKTREE && PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/inj27p_finetuned_passages.py \
        --stage calibration     # rows, calibration scores, T, bench/results/inj27p-policy.yaml
    ... --stage check           # inj17q's test split: candidate (provider >= T) vs the shipped detector
    ... --stage cost            # ms per 700-character window, one thread

Scores are the ``onnx_classifier`` provider's own (``OnnxClassifierProvider._classify``, unrounded) on
``"passage: "`` + the passage as the retrieval stage hands it to a provider (whole chunk, truncated at
``max_length`` tokens); the max over 700-character windows (``injection.views``) is computed beside it and
reported only. Rows: inj17q's (``passage_broad17q``), rebuilt and checked against its recorded counts.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

import numpy as np  # noqa: E402
from guard_training import broad, handwritten_passages  # noqa: E402
from guard_training import passage_broad17q as pb  # noqa: E402
from guard_training.calibrated import threshold_at  # noqa: E402
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.passage_calibration import existing_rows  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402

from llmgw.guards.injection import InjectionDetector, views  # noqa: E402
from llmgw.guards.policy import OnnxClassifier, load_policy  # noqa: E402
from llmgw.guards.providers.onnx_classifier import OnnxClassifierProvider  # noqa: E402

RESULTS = REPO / "bench" / "results"
MODEL = Path("/work/models_inj27/minilm-ft")
POLICY = REPO / "bench" / "results" / "inj27p-policy.yaml"  # copy into a policy folder to use it
PROVIDER = "finetuned-minilm"
WORK = Path("/tmp/inj27p")
RATE = 0.02
SPEC: dict[str, Any] = {
    "kind": "onnx_classifier",
    "path": str(MODEL),
    "labels": ["BENIGN", "INJECTION"],
    "positive": ["INJECTION"],
    "prefixes": {"retrieved": "passage: ", "tool": "passage: "},
    "max_length": 512,
    "threads": 1,
}


# -- rows ------------------------------------------------------------------------------------------
def inj17q_rows(embed: VectorCache) -> list[broad.Row]:
    """``passage_broad17q.all_rows`` without its final bulk embedding (which changes no row or split)."""
    data = default_data_dir()
    base = existing_rows(data, REPO / "guardrails" / "models" / "injection_splits.json")
    hand = handwritten_passages.rows()
    extra = pb.extra_rows(data, base, embed)
    attacks = pb.attack_strings(base, data)
    return base + hand + extra + pb.frame_rows(attacks) + pb.planted_extra(extra, attacks)


def passage_rows(embed: VectorCache) -> list[broad.Row]:
    cache = WORK / "rows.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    rows = inj17q_rows(embed)
    counts = Counter((r.source, r.split) for r in rows if r.route == pb.ROUTE)
    got = {f"{s}|{sp}": n for (s, sp), n in sorted(counts.items())}
    want = json.loads((RESULTS / "inj17q-calibration.json").read_text())["rows"]
    if got != want:
        diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
        raise SystemExit(f"rows differ from inj17q's recorded counts: {diff}")
    keep = [r for r in rows if r.route == pb.ROUTE and r.split in ("calibration", "test")]
    WORK.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(keep))
    return keep


# -- scores ----------------------------------------------------------------------------------------
def provider(spec: dict[str, Any] | OnnxClassifier) -> OnnxClassifierProvider:
    s = spec if isinstance(spec, OnnxClassifier) else OnnxClassifier(**{**spec, "threshold": 0.5})
    return OnnxClassifierProvider(PROVIDER, s)


def probabilities(p: OnnxClassifierProvider, texts: list[str], prefix: str) -> np.ndarray:
    """INJECTION probability (the provider's ``_classify``, unrounded) of each prefixed text, in batches
    of 32 of similar length (as ``bench.guard_blind`` batches)."""
    out = np.zeros(len(texts))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    pos = p.spec.labels.index("INJECTION")
    for start in range(0, len(order), 32):
        part = order[start : start + 32]
        probs = p._classify([prefix + texts[i] for i in part])
        out[part] = probs[:, pos]
    return out


def scored(p: OnnxClassifierProvider, rows: list[broad.Row], name: str) -> dict[str, dict[str, np.ndarray]]:
    """Per row key: ``whole`` (as the provider receives the passage) and ``windows`` (max over the
    700-character windows of the plain text); cached in ``WORK``."""
    cache = WORK / f"scores-{name}.pkl"
    known: dict[str, tuple[float, float]] = pickle.loads(cache.read_bytes()) if cache.is_file() else {}
    todo = [r for r in rows if r.key not in known]
    if todo:
        t0 = time.time()
        whole = probabilities(p, [r.text for r in todo], "passage: ")
        wins = [[body for kind, body in views(r.text) if kind is None] for r in todo]
        flat = sorted({w for ws in wins for w in ws})
        fs = dict(zip(flat, probabilities(p, flat, "passage: "), strict=True))
        for r, w, ws in zip(todo, whole, wins, strict=True):
            known[r.key] = (float(w), max(fs[x] for x in ws))
        cache.write_bytes(pickle.dumps(known))
        print(f"  scored {len(todo)} rows ({len(flat)} windows) in {time.time() - t0:.0f}s", flush=True)
    return {r.key: {"whole": known[r.key][0], "windows": known[r.key][1]} for r in rows}  # type: ignore[misc]


def by_source(rows: list[broad.Row], values: dict[str, float]) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        out[r.source].append(values[r.key])
    return {s: np.array(v) for s, v in sorted(out.items())}


def point_setters(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """inj17q's point rule: benign passage sources except the composed quoted-attack documents."""
    return {s: v for s, v in scores.items() if s.startswith("passage/") and s != pb.QUOTED}


def table(scores: dict[str, np.ndarray], t: float) -> dict[str, dict]:
    return {s: {"n": len(v), "dropped": int((v >= t).sum()), "rate": round(float((v >= t).mean()), 4)}
            for s, v in scores.items()}  # fmt: skip


def pooled(tab: dict[str, dict], benign: bool) -> dict[str, float]:
    if benign:
        keys = [s for s in tab if s.startswith("passage/") and s != pb.QUOTED]
    else:
        keys = [s for s in tab if s.startswith(("planted/", "planted17/"))]
    n, d = sum(tab[s]["n"] for s in keys), sum(tab[s]["dropped"] for s in keys)
    return {"n": n, "dropped": d, "rate": round(d / n, 4) if n else float("nan")}


# -- stages ----------------------------------------------------------------------------------------
def write_policy(t: float) -> None:
    default = (REPO / "guardrails" / "default.yaml").read_text()
    spec = {**SPEC, "threshold": t, "source_thresholds": {"retrieved": t, "tool": t}}
    head = (
        "# inj27p candidate (docs/experiments/inj27p-rule.md): the default policy, with the fine-tuned MiniLM\n"
        "# (scripts/train_injection_finetune.py, one epoch, float ONNX) deciding retrieved passages and tool output\n"
        "# alone (builtin: false; the built-in detector still runs and is logged). Threshold written by\n"
        "# scripts/inj27p_finetuned_passages.py --stage calibration: the lowest score that at most 2 % of every\n"
        "# benign passage source of inj17q's calibration split (>= 30 rows, passage/quoted17 excepted) reaches.\n"
    )
    block = (
        "providers:\n"
        f"  {PROVIDER}:\n"
        + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in spec.items())
        + "injection_providers_placeholder\n"
    )
    providers = (
        "  providers:\n"
        f"    retrieved: {{providers: [{PROVIDER}], combine: any, builtin: false}}\n"
        f"    tool: {{providers: [{PROVIDER}], combine: any, builtin: false}}\n"
    )
    body = default.replace("injection:\n", "injection:\n" + providers, 1)
    text = head + body.rstrip("\n") + "\n" + block.replace("injection_providers_placeholder\n", "")
    POLICY.write_text(text)
    pol = load_policy(POLICY)
    got = pol.providers[PROVIDER]  # type: ignore[index]
    assert got.source_thresholds == {"retrieved": t, "tool": t}, got
    assert set(pol.injection.providers) == {"retrieved", "tool"}


def calibration(embed: VectorCache) -> None:
    rows = [r for r in passage_rows(embed) if r.split == "calibration"]
    p = provider(SPEC)
    sc = scored(p, rows, "calibration")
    out: dict[str, Any] = {"model": str(MODEL), "rate": RATE}
    for kind in ("whole", "windows"):
        s = by_source(rows, {k: v[kind] for k, v in sc.items()})
        t = threshold_at(point_setters(s), RATE)
        out[kind] = {"T": t, "calibration": table(s, t), "pooled_benign": pooled(table(s, t), True),
                     "pooled_planted": pooled(table(s, t), False)}  # fmt: skip
        print(f"{kind}: T = {t}; benign {out[kind]['pooled_benign']}; planted {out[kind]['pooled_planted']}")
    out["point_setters"] = {s: len(v) for s, v in point_setters(by_source(rows, {k: 0.0 for k in sc})).items()}
    t = out["whole"]["T"]
    if t > 1:
        out["stopped"] = "T > 1: the policy cannot express it"
    else:
        write_policy(t)
        out["policy"] = str(POLICY.relative_to(REPO))
    (RESULTS / "inj27p-calibration.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"T = {t}; wrote {RESULTS / 'inj27p-calibration.json'}")


def check(embed: VectorCache) -> None:
    pol = load_policy(POLICY)
    spec = pol.providers[PROVIDER]  # type: ignore[index]
    t = spec.source_thresholds["retrieved"]
    rows = [r for r in passage_rows(embed) if r.split == "test"]
    sc = scored(provider(spec), rows, "test")
    shipped = InjectionDetector(embed=embed)
    _, act = load_policy(REPO / "guardrails" / "default.yaml").injection.cutoffs(
        "retrieved", shipped.operating_points("retrieved")
    )
    ship = {r.key: x.score for r, x in zip(rows, shipped.score_many([r.text for r in rows], ["retrieved"] * len(rows)),
                                          strict=True)}  # fmt: skip
    cal = json.loads((RESULTS / "inj27p-calibration.json").read_text())
    out: dict[str, Any] = {"T": t, "shipped_act_at": act}
    tabs = {
        "candidate": table(by_source(rows, {k: v["whole"] for k, v in sc.items()}), t),
        "shipped": table(by_source(rows, ship), act),
        "windows_reported": table(by_source(rows, {k: v["windows"] for k, v in sc.items()}), cal["windows"]["T"]),
    }
    out["test"] = tabs
    out["pooled"] = {k: {"benign": pooled(v, True), "planted": pooled(v, False)} for k, v in tabs.items()}
    c, s = out["pooled"]["candidate"], out["pooled"]["shipped"]
    out["c1"] = {"candidate": c["benign"]["rate"], "shipped": s["benign"]["rate"],
                 "holds": c["benign"]["rate"] <= s["benign"]["rate"] + 0.01 + 1e-9}  # fmt: skip
    out["c2"] = {"candidate": c["planted"]["rate"], "shipped": s["planted"]["rate"],
                 "holds": c["planted"]["rate"] >= s["planted"]["rate"] - 0.05 - 1e-9}  # fmt: skip
    out["passes"] = out["c1"]["holds"] and out["c2"]["holds"]
    (RESULTS / "inj27p-check.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: out[k] for k in ("T", "shipped_act_at", "pooled", "c1", "c2", "passes")}, indent=1))


def cost(embed: VectorCache) -> None:
    """ms per 700-character window, one thread: the provider (float ONNX) vs the built-in detector, each
    on 50 distinct ~700-character English benign calibration passages (the float encoder memoises texts it has
    embedded, so one text repeated would time a lookup), after 5 warm-up texts; p50 and mean."""
    from llmgw import encoders

    english = ("passage/medquad", "passage/pubmedqa", "passage/covid_qa", "passage/hotpotqa", "passage/tldr")
    rows = [r for r in passage_rows(embed) if r.split == "calibration" and r.source in english and len(r.text) >= 600]
    texts = sorted({r.text[:700] for r in rows})[:55]
    p = provider(SPEC)
    det = InjectionDetector(embed=encoders.OnnxEncoder("float"))

    def timed(fn: Any) -> dict[str, float]:
        for t in texts[:5]:
            fn(t)
        runs = []
        for t in texts[5:]:
            t0 = time.perf_counter()
            fn(t)
            runs.append(1000 * (time.perf_counter() - t0))
        return {"p50": round(statistics.median(runs), 2), "mean": round(statistics.mean(runs), 2), "n": len(runs)}

    tok = p._load()[0]
    out = {
        "texts": len(texts) - 5,
        "mean_chars": round(statistics.mean(len(t) for t in texts[5:]), 1),
        "mean_tokens_with_prefix": round(statistics.mean(len(tok.encode("passage: " + t).ids) for t in texts[5:]), 1),
        "provider_float_onnx_ms": timed(lambda t: p._classify(["passage: " + t])),
        "builtin_detector_ms": timed(lambda t: det.score_many([t], ["retrieved"])),
    }
    (RESULTS / "inj27p-cost.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=("rows", "calibration", "check", "cost"), required=True)
    ap.add_argument("--cache", type=Path, default=WORK / "vectors")
    args = ap.parse_args()
    embed = VectorCache(args.cache)
    if args.stage == "rows":
        rows = passage_rows(embed)
        print(Counter((r.source, r.split) for r in rows))
    elif args.stage == "calibration":
        calibration(embed)
    elif args.stage == "check":
        check(embed)
    else:
        cost(embed)


if __name__ == "__main__":
    main()
