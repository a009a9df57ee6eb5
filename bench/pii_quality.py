"""PII masking quality of the default policy, on held-back data.

    .venv/bin/python -m bench.pii_quality [--data ../shared/data] [--split test|dev|blind] [--blind-set DIR]

``--split dev`` is the calibration split (presidio's dev half and WNUT17's train tweets; the
person-name score was fitted on part of these, see scripts/train_person_scorer.py);
``--split test`` is reported; ``--split blind`` prints aggregate figures on
bench/data/blind/guards/pii.jsonl (or ``--blind-set DIR``'s ``pii.jsonl``, e.g. bench/data/blind4/guards),
a set written by someone who saw neither rules nor models (report on it, never tune on it).

Presidio's synthetic set (presidio-research) is split by a hash of each sentence: the ``test`` half
is reported here and was never looked at to choose thresholds (``--split dev`` shows the other half).
WNUT17's dev set (tweets, hand-labelled) measures person names in messy user text. A gold span
counts as found when a masked span of the same type overlaps it; precision is reported per type
(same type) and overall (a masked span that overlaps any gold PII span of a type the policy masks).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from llmgw.guards.pii import PiiAnalyzer
from llmgw.guards.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
TYPES = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "PERSON",
         "US_DRIVER_LICENSE"}  # fmt: skip


def split_of(text: str) -> str:
    return "test" if hashlib.sha256(text.encode()).digest()[0] % 2 else "dev"


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, ROOT.parent / "shared" / "data", "/work/shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SystemExit("no data directory found; pass --data")


def presidio_set(data: Path, split: str) -> list[tuple[str, list[tuple[str, int, int]]]]:
    rows = json.loads((data / "pii" / "presidio" / "generated_large.json").read_text())
    return [
        (r["full_text"], [(s["entity_type"], s["start_position"], s["end_position"]) for s in r["spans"]])
        for r in rows
        if split_of(r["full_text"]) == split
    ]


def blind_set(path: Path) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """The blind PII set (bench/data/blind/guards/pii.jsonl): read here for aggregate figures only."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["text"], [(s["type"], s["start"], s["end"]) for s in r.get("spans", [])]) for r in rows]


def wnut_set(data: Path, file: str = "emerging.dev.conll") -> list[tuple[str, list[tuple[str, int, int]]]]:
    out, tokens, tags = [], [], []
    for line in [*(data / "pii" / "wnut17" / file).read_text().splitlines(), ""]:
        if line.strip():
            token, _, tag = line.rpartition("\t") if "\t" in line else line.rpartition(" ")
            tokens.append(token)
            tags.append(tag)
            continue
        if tokens:
            text, spans, pos, current = "", [], 0, None
            for token, tag in zip(tokens, tags, strict=True):
                start = pos
                text += token + " "
                pos = len(text)
                if tag == "B-person":
                    current = [start, start + len(token)]
                    spans.append(current)
                elif tag == "I-person" and current is not None:
                    current[1] = start + len(token)
                else:
                    current = None
            out.append((text.strip(), [("PERSON", s, e) for s, e in spans]))
        tokens, tags = [], []
    return out


#: public text with capitalised words and (next to) no person names: product, company, drug and place
#: names, commands, eponyms ("Parkinson disease"), report headings. Each source is read as sentences
#: that hold a capitalised word past their first, and split on its own by a hash (see hard_negative_split).
NEGATIVE_SOURCES = {
    "medquad": ("rag/medquad/corpus.jsonl", "text"),
    "tatqa": ("rag/tatqa/corpus.jsonl", "text"),
    "rust_book": ("rag/rust_book/passages.jsonl", "text"),
    "tldr": ("rag/tldr/tldr_pages.jsonl", "text"),
    "banking77": ("paraphrase/banking77/banking77.csv", "text"),
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def hard_negative_split(text: str) -> str:
    """fit (half), calibration (a quarter) or test (a quarter) of a hard-negative sentence."""
    return ("fit", "fit", "calibration", "test")[hashlib.sha256(b"neg:" + text.encode()).digest()[0] % 4]


def hard_negative_set(data: Path, split: str, per_source: int = 300) -> dict[str, list[str]]:
    """Sentences without person names, per source, of one split of :func:`hard_negative_split`."""
    out: dict[str, list[str]] = {}
    for source, (file, column) in NEGATIVE_SOURCES.items():
        path = data / file
        if not path.exists():
            continue
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                texts = [row[column] for row in csv.DictReader(f)]
        else:
            texts = [json.loads(line)[column] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if source == "tldr":
                texts = [t for t, r in zip(texts, path.read_text().splitlines(), strict=True) if '"lang": "en"' in r]
        seen: set[str] = set()
        rows: list[str] = []
        for text in texts:
            for sentence in SENTENCE_END.split(
                re.sub(r"```.*?```|`[^`]*`|<[^>]*>|\[[^\]]*\]\([^)]*\)", " ", text, flags=re.S)
            ):
                sentence = " ".join(sentence.split()).lstrip("#>-* ")
                words = sentence.split()
                if not 30 <= len(sentence) <= 300 or sentence in seen or "|" in sentence:
                    continue
                if not any(w[:1].isupper() and w[1:].islower() and w.isalpha() for w in words[1:]):
                    continue
                seen.add(sentence)
                if hard_negative_split(sentence) == split:
                    rows.append(sentence)
        rows.sort(key=lambda t: hashlib.sha256(t.encode()).hexdigest())
        out[source] = rows[:per_source]
    return out


def evaluate(
    analyzer: PiiAnalyzer, rows: list[tuple[str, list[tuple[str, int, int]]]], types: set[str]
) -> dict[str, Any]:
    tp: dict[str, int] = defaultdict(int)
    gold_n: dict[str, int] = defaultdict(int)
    pred_n: dict[str, int] = defaultdict(int)
    pred_ok: dict[str, int] = defaultdict(int)
    any_ok = any_n = 0
    clean_rows = clean_rows_masked = 0
    times = []
    for text, gold in rows:
        t0 = time.perf_counter()
        found = analyzer.analyze(text)
        times.append((time.perf_counter() - t0) * 1000)
        masked = [f for f in found if analyzer.policy.rule(f.entity).action != "allow"]
        if not gold:
            clean_rows += 1
            clean_rows_masked += any(f.entity in types for f in masked)
        for kind, start, end in gold:
            if kind not in types:
                continue
            gold_n[kind] += 1
            if any(f.entity == kind and f.start < end and start < f.end for f in masked):
                tp[kind] += 1
        for f in masked:
            if f.entity not in types:
                continue
            pred_n[f.entity] += 1
            overlaps = [k for k, s, e in gold if f.start < e and s < f.end]
            pred_ok[f.entity] += f.entity in overlaps
            any_n += 1
            any_ok += bool(overlaps)
    per_type = {
        kind: {
            "gold": gold_n[kind],
            "recall": round(tp[kind] / gold_n[kind], 4) if gold_n[kind] else None,
            "predicted": pred_n[kind],
            "precision": round(pred_ok[kind] / pred_n[kind], 4) if pred_n[kind] else None,
        }
        for kind in sorted(types)
        if gold_n[kind] or pred_n[kind]
    }
    return {
        "sentences": len(rows),
        "per_type": per_type,
        "overall_precision": round(any_ok / any_n, 4) if any_n else None,
        # over-masking: masked spans that overlap no gold PII at all, and rows without PII that got a mask
        "masked_without_pii": any_n - any_ok,
        "rows_without_pii": clean_rows,
        "rows_without_pii_masked": clean_rows_masked,
        "analyze_ms_p50": round(statistics.median(times), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "dev", "blind"],
        help="dev: presidio dev half + WNUT17 train (calibration); test: presidio test half + WNUT17 dev;"
        " blind: aggregate figures on bench/data/blind/guards/pii.jsonl only",
    )
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument(
        "--blind-set",
        type=Path,
        default=ROOT / "bench" / "data" / "blind" / "guards",
        help="the folder whose pii.jsonl --split blind reads (default bench/data/blind/guards)",
    )
    parser.add_argument("--policy", default=str(ROOT / "guardrails" / "default.yaml"))
    args = parser.parse_args()
    data = data_dir(args.data)
    policy = load_policy(Path(args.policy))
    analyzer = PiiAnalyzer(policy.pii, cache_size=0)
    analyzer.analyze("warm up: Jane Doe")
    if args.split == "blind":
        blind = args.blind_set / "pii.jsonl"
        result = {"policy": policy.label, "set": str(blind), "blind_pii": evaluate(analyzer, blind_set(blind), TYPES)}
        print(json.dumps(result, indent=2))
        return
    wnut_file = "emerging.dev.conll" if args.split == "test" else "wnut17train.conll"
    result = {
        "policy": policy.label,
        "presidio_synthetic": evaluate(analyzer, presidio_set(data, args.split), TYPES),
        f"wnut17_{'dev' if args.split == 'test' else 'train'}_person": evaluate(
            analyzer, wnut_set(data, wnut_file), {"PERSON"}
        ),
        # sentences without PII from five public sources: the rows with any masked span
        f"hard_negatives_{'test' if args.split == 'test' else 'calibration'}": {
            source: evaluate(analyzer, [(t, []) for t in texts], TYPES)
            for source, texts in hard_negative_set(data, "test" if args.split == "test" else "calibration").items()
        },
    }
    if args.no_latency:
        print(json.dumps(result, indent=2))
        return
    texts = [t for t, _ in presidio_set(data, args.split) if 250 <= len(t) <= 350][:50] or ["x" * 300]
    runs = []
    for text in texts * 3:
        t0 = time.perf_counter()
        analyzer.analyze(text)
        runs.append((time.perf_counter() - t0) * 1000)
    result["latency_300_chars_ms_p50"] = round(statistics.median(runs), 2)
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "pii_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
