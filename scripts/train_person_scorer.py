"""Fit the person-name score (``llmgw.guards.person_score``) and measure it; writes its model file.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/train_person_scorer.py \
        [--data /work/shared/data] [--target 0.8] [--no-write]

Splits (every choice is made on fit / calibration; test only reports):

* WNUT17 train tweets and presidio's synthetic dev half (``bench.pii_quality.split_of``) are cut by
  a hash into fit (60 %) and calibration (40 %);
* hard negatives (``bench.pii_quality.hard_negative_set``: medical, finance, Rust, command-line and
  banking sentences with capitalised words and no person) into fit / calibration / test;
* test: WNUT17 dev tweets, presidio's test half, the hard negatives' test quarter.

The logistic model's L2 strength is chosen by log-loss on calibration. The operating points are the
lowest thresholds at which precision on the pooled calibration split reaches 0.40 ... 0.95; each
also records the share of rows masked in every no-PII calibration source (``no_pii_masked``:
WNUT17 sentences without an entity, the hard negatives, and bench.pii_no_pii's informal sets:
chat prompts, search questions, assistant commands and the hand-written capitalised words, which
are calibration only). The default target is the lowest (the most recall) at which no informal
source (:data:`INFORMAL`) has more than ``--max-no-pii`` (10 %) of its rows masked.
Leave one source out: for every source, the model is fitted and calibrated without it and tested on
its test rows, at the same target. The old rules (every spaCy PERSON entity and every rule span) are
measured alongside.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.pii_no_pii import no_pii_sets
from bench.pii_quality import data_dir, hard_negative_set, presidio_set
from llmgw.guards.names import RULE_SCORES
from llmgw.guards.person_score import FEATURES, MODEL_FILE, candidates, context, features

ROOT = Path(__file__).resolve().parents[1]
TARGETS = [round(0.4 + 0.05 * i, 2) for i in range(12)]


@dataclass
class Row:
    source: str  # wnut / presidio / a hard-negative source
    split: str  # fit / calibration / test
    text: str
    gold: list[tuple[str, int, int]]
    spans: list[tuple[int, int]] = field(default_factory=list)  # candidate character spans
    x: list[list[float]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)  # who proposed each candidate
    old: list[tuple[int, int, str]] = field(default_factory=list)  # the old rules' spans and who took them


def wnut_rows(data: Path, file: str) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """WNUT17 sentences with every entity type (person, corporation, location, product, ...)."""
    out: list[tuple[str, list[tuple[str, int, int]]]] = []
    tokens: list[tuple[str, str]] = []
    for line in [*(data / "pii" / "wnut17" / file).read_text().splitlines(), ""]:
        if line.strip():
            token, _, tag = line.rpartition("\t") if "\t" in line else line.rpartition(" ")
            tokens.append((token, tag))
            continue
        if tokens:
            text, spans, current = "", [], None
            for token, tag in tokens:
                start = len(text)
                text += token + " "
                if tag.startswith("B-"):
                    current = [tag[2:].upper(), start, start + len(token)]
                    spans.append(current)
                elif tag.startswith("I-") and current is not None:
                    current[2] = start + len(token)
                else:
                    current = None
            out.append((text.strip(), [(str(k), int(s), int(e)) for k, s, e in spans]))
        tokens = []
    return out


def fit_or_cal(text: str) -> str:
    return "fit" if hashlib.sha256(b"person:" + text.encode()).digest()[0] % 10 < 6 else "calibration"


def load_rows(data: Path) -> list[Row]:
    rows = [Row("wnut", fit_or_cal(t), t, g) for t, g in wnut_rows(data, "wnut17train.conll")]
    rows += [Row("wnut", "test", t, g) for t, g in wnut_rows(data, "emerging.dev.conll")]
    rows += [Row("presidio", fit_or_cal(t), t, g) for t, g in presidio_set(data, "dev")]
    rows += [Row("presidio", "test", t, g) for t, g in presidio_set(data, "test")]
    for split in ("fit", "calibration", "test"):
        for source, texts in hard_negative_set(data, split).items():
            rows += [Row(source, split, t, []) for t in texts]
    # informal text without PII (bench.pii_no_pii): calibration and test only, never fitted on;
    # WNUT17's sentences without entities are already among the WNUT17 rows
    for split in ("calibration", "test"):
        for source, texts in no_pii_sets(data, split).items():
            if source != "wnut17":
                rows += [Row("nopii_" + source, split, t, []) for t in texts]
    return rows


#: the no-PII sources whose share of masked rows the default operating point must keep under
#: --max-no-pii: informal writing (chat prompts, questions, assistant commands, tweets, hand-written
#: capitalised words); the document sources (medical eponyms, reports, manuals) are reported only
INFORMAL = ("wnut_no_entity", "nopii_chat", "nopii_nq_open", "nopii_clinc150", "nopii_handwritten")


def no_pii_groups(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows without PII of any kind, by source: WNUT17's sentences without an entity, presidio's
    sentences without a span, each hard-negative source, each informal no-PII source."""
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.gold:
            continue
        out["wnut_no_entity" if r.source == "wnut" else r.source].append(r)
    return dict(out)


def no_pii_rates(
    groups: dict[str, list[Row]], probs: dict[str, list[np.ndarray]], threshold: float
) -> dict[str, float]:
    """The share of each no-PII group's rows with any candidate at or above ``threshold``."""
    return {
        name: round(sum(bool(len(p) and p.max() >= threshold) for p in probs[name]) / len(rs), 4)
        for name, rs in groups.items()
        if rs
    }


def is_person(kind: str) -> bool:
    return kind == "PERSON"


def analyse(rows: list[Row]) -> None:
    import spacy

    from llmgw.guards.names import name_rules
    from llmgw.guards.nlp import SPACY_MODEL
    from llmgw.guards.pii import UNUSED_PIPES

    nlp = spacy.load(SPACY_MODEL, disable=list(UNUSED_PIPES))
    for row, doc in zip(rows, nlp.pipe([r.text for r in rows], batch_size=256), strict=True):
        ctx = context(doc)
        tokens = ctx["tokens"]
        persons = [(s, e) for k, s, e in row.gold if is_person(k)]
        for cand in candidates(doc):
            start, end = tokens[cand.start].idx, tokens[cand.end - 1].idx + len(tokens[cand.end - 1].text)
            row.spans.append((start, end))
            row.x.append(features(doc, cand, ctx))
            row.y.append(int(any(start < e and s < end for s, e in persons)))
            row.origin.append("+".join(sorted(cand.sources)))
        old = [(e.start_char, e.end_char, "spacy") for e in doc.ents if e.label_ == "PERSON"]
        old += [(s, e, "rule:" + k) for s, e, k in name_rules(doc) if RULE_SCORES[k] >= 0.5]
        row.old = old


def measure(rows: list[Row], predicted: list[list[tuple[int, int]]]) -> dict[str, Any]:
    """Recall, precision and over-masking of predicted spans, as bench.pii_quality counts them."""
    gold_n = tp = pred_n = pred_ok = clean = clean_masked = 0
    for row, spans in zip(rows, predicted, strict=True):
        persons = [(s, e) for k, s, e in row.gold if is_person(k)]
        gold_n += len(persons)
        tp += sum(any(a < e and s < b for a, b in spans) for s, e in persons)
        pred_n += len(spans)
        pred_ok += sum(any(a < e and s < b for s, e in persons) for a, b in spans)
        if not persons:
            clean += 1
            clean_masked += bool(spans)
    return {
        "rows": len(rows),
        "gold": gold_n,
        "recall": round(tp / gold_n, 4) if gold_n else None,
        "predicted": pred_n,
        "precision": round(pred_ok / pred_n, 4) if pred_n else None,
        "rows_without_person": clean,
        "rows_without_person_masked": clean_masked,
        "share_masked": round(clean_masked / clean, 4) if clean else None,
    }


def probabilities(rows: list[Row], model: Any) -> list[np.ndarray]:
    """Each row's candidate probabilities (one batched call: thresholds are then cheap to sweep)."""
    x = np.array([v for r in rows for v in r.x]).reshape(-1, len(FEATURES))
    p = model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)
    out, i = [], 0
    for r in rows:
        out.append(p[i : i + len(r.x)])
        i += len(r.x)
    return out


def scored(
    rows: list[Row], model: Any, threshold: float, probs: list[np.ndarray] | None = None
) -> list[list[tuple[int, int]]]:
    probs = probs if probs is not None else probabilities(rows, model)
    return [
        [span for span, q in zip(r.spans, p, strict=True) if q >= threshold] for r, p in zip(rows, probs, strict=True)
    ]


def old_spans(rows: list[Row]) -> list[list[tuple[int, int]]]:
    return [[(s, e) for s, e, _ in row.old] for row in rows]


def false_sources(rows: list[Row]) -> dict[str, Any]:
    """Where the old rules' false PERSON spans come from: who took them, what they really are."""
    by_origin: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row in rows:
        persons = [(s, e) for k, s, e in row.gold if is_person(k)]
        for s, e, origin in row.old:
            key = "spacy" if origin == "spacy" else "rules"
            total[key] += 1
            if any(s < b and a < e for a, b in persons):
                continue
            by_origin[key if origin == "spacy" else origin] += 1
            kinds = {k for k, a, b in row.gold if s < b and a < e}
            by_kind[next(iter(sorted(kinds))) if kinds else "none"] += 1
    return {"spans_by_recognizer": dict(total), "false_by_recognizer": dict(by_origin.most_common()),
            "false_by_gold_type": dict(by_kind.most_common())}  # fmt: skip


def fit(rows: list[Row], cal: list[Row]) -> tuple[Any, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    x = np.array([v for r in rows for v in r.x])
    y = np.array([v for r in rows for v in r.y])
    xc = np.array([v for r in cal for v in r.x])
    yc = np.array([v for r in cal for v in r.y])
    best: tuple[float, float, Any] | None = None
    for c in (0.03, 0.1, 0.3, 1.0, 3.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(x, y)
        loss = log_loss(yc, model.predict_proba(xc)[:, 1])
        if best is None or loss < best[0]:
            best = (loss, c, model)
    assert best is not None
    return best[2], best[1]


def operating_points(model: Any, cal: list[Row]) -> list[dict[str, Any]]:
    """For each precision target, the lowest threshold at which pooled calibration precision reaches it."""
    grid = [round(0.02 + 0.01 * i, 2) for i in range(97)]
    probs = probabilities(cal, model)
    measured = [(t, measure(cal, scored(cal, model, t, probs))) for t in grid]
    out = []
    for target in TARGETS:
        hit = next(((t, m) for t, m in measured if (m["precision"] or 0) >= target), None)
        if hit is not None:
            t, m = hit
            out.append({"precision": target, "threshold": t, "calibration": m})
    return out


def by_source(rows: list[Row], split: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.split == split:
            name = r.source if r.source in ("wnut", "presidio") else "hard_negatives"
            out["no_pii_informal" if r.source.startswith("nopii_") else name].append(r)
    return out


def report(model: Any, threshold: float, groups: dict[str, list[Row]]) -> dict[str, Any]:
    return {name: measure(rs, scored(rs, model, threshold)) for name, rs in groups.items()}


def threshold_at(points: list[dict[str, Any]], target: float) -> float:
    return next((p["threshold"] for p in points if p["precision"] >= target), points[-1]["threshold"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument(
        "--target",
        type=float,
        help="precision target of the reported operating point (default: the lowest, i.e. the most recall,"
        " at which no informal no-PII calibration source has more than --max-no-pii of its rows masked)",
    )
    parser.add_argument("--max-no-pii", type=float, default=0.10)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--cache", type=Path, help="keep the analysed rows in this pickle (re-runs skip spaCy)")
    args = parser.parse_args()
    if args.cache and args.cache.exists():
        rows = pickle.loads(args.cache.read_bytes())
    else:
        rows = load_rows(data_dir(args.data))
        analyse(rows)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(rows))
    fit_rows = [r for r in rows if r.split == "fit"]
    cal_rows = [r for r in rows if r.split == "calibration"]
    model, c = fit(fit_rows, cal_rows)
    points = operating_points(model, cal_rows)
    cal_groups = no_pii_groups(cal_rows)
    cal_probs = {name: probabilities(rs, model) for name, rs in cal_groups.items()}
    rates = {p["precision"]: no_pii_rates(cal_groups, cal_probs, p["threshold"]) for p in points}
    target = args.target or min(
        (p["precision"] for p in points
         if all(v <= args.max_no_pii for k, v in rates[p["precision"]].items() if k in INFORMAL)),
        default=TARGETS[-1],
    )  # fmt: skip
    threshold = threshold_at(points, target)
    result: dict[str, Any] = {
        "features": list(FEATURES),
        "weights": [round(float(w), 5) for w in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 5),
        "l2_c": c,
        "operating_points": [
            {"precision": p["precision"], "threshold": p["threshold"], "no_pii_masked": rates[p["precision"]]}
            for p in points
        ],
        "default_precision": target,
    }
    test_groups = no_pii_groups([r for r in rows if r.split == "test"])
    test_probs = {name: probabilities(rs, model) for name, rs in test_groups.items()}
    figures: dict[str, Any] = {
        "sizes": {s: dict(Counter(r.source for r in rows if r.split == s)) for s in ("fit", "calibration", "test")},
        "old_rules_false_positive_sources": {
            "calibration": false_sources(cal_rows),
            "test": false_sources([r for r in rows if r.split == "test"]),
        },
        "old_rules": {
            s: {n: measure(rs, old_spans(rs)) for n, rs in by_source(rows, s).items()} for s in ("calibration", "test")
        },
        "calibration_curve": [
            {
                "precision": p["precision"],
                "threshold": p["threshold"],
                **{
                    n: measure(rs, scored(rs, model, p["threshold"]))
                    for n, rs in by_source(rows, "calibration").items()
                },
                "no_pii_masked": no_pii_rates(cal_groups, cal_probs, p["threshold"]),
            }
            for p in points
        ],
        "target": target,
        "threshold": threshold,
        "test": report(model, threshold, by_source(rows, "test")),
        "test_no_pii_masked": no_pii_rates(test_groups, test_probs, threshold),
    }
    # leave one source out: fit and calibrate without source X (its rows of every split), at the same
    # precision target, and test on X's test rows; the informal no-PII sources are never fitted on, so
    # for them only the calibration (the threshold) leaves them out
    cross = {}
    for other in sorted({r.source for r in rows}):
        keep = [r for r in rows if r.source != other]
        m, _ = fit([r for r in keep if r.split == "fit"], [r for r in keep if r.split == "calibration"])
        pts = operating_points(m, [r for r in keep if r.split == "calibration"])
        t = threshold_at(pts, target)
        tested = [r for r in rows if r.source == other and r.split == "test"]
        if tested:
            cross[f"without_{other}"] = {"threshold": t, **measure(tested, scored(tested, m, t))}
    figures["cross_source"] = cross
    print(json.dumps({"weights": dict(zip(FEATURES, result["weights"], strict=True)), **figures}, indent=1))
    if not args.no_write:
        MODEL_FILE.write_text(json.dumps(result, indent=1) + "\n")
        out = ROOT / "bench" / "results" / "person_scorer.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
