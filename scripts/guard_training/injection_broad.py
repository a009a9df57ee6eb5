"""The injection guard's training run (``scripts/train_guards.py --only injection`` calls :func:`run`).

Writes ``injection.npz`` (the user-turn unit; its metadata holds the operating points of both
routes, the C chosen, the data by source, the test report and the leave-one-source-out results),
``injection_passages.npz`` (the unit for retrieved passages and tool output), ``injection_splits.json``
and the data card ``injection.md``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from llmgw.guards.classifier import LinearModel
from llmgw.guards.injection import RULES
from llmgw.guards.lexical import LexicalModel

from . import broad
from .calibrated import PASSAGE_QUOTES, RATES, SOURCE_CAP, build, loso, per_source, plain_windows
from .config import EMBED_MODEL
from .embedding import CachedEmbedder


def run(data: Path, out: Path, cache: Path, with_loso: bool = True) -> dict:
    t0 = time.time()
    embed = CachedEmbedder(cache)
    rows = broad.load_rows(data)
    bipia = broad.bipia_attacks(data)
    print(f"{len(rows)} rows, {len(bipia)} BIPIA attack strings: {dict(Counter(r.source for r in rows))}", flush=True)
    windows = sorted({w for r in rows for w in plain_windows(r.text)}, key=len)
    print(f"embedding {len(windows)} distinct windows", flush=True)
    embed(windows)
    first = {r.text: embed(plain_windows(r.text)[:1])[0] for r in rows}
    broad.assign_splits(rows, first)
    for a in bipia:
        a.split = broad.split_of(a.key)
    planted = broad.planted(rows, bipia)
    embed(sorted({w for r in planted for w in plain_windows(r.text)}, key=len))
    everything = rows + planted
    lexical = LexicalModel.load()
    det, meta = build(everything, embed, lexical)
    print(f"C {meta['C']}; operating points {json.dumps(meta['operating_points'])}", flush=True)
    test = [r for r in everything if r.split == "test" and r.route != "external"]
    external = [r for r in everything if r.route == "external"]
    report = per_source(det, test, meta["operating_points"])
    report_external = per_source(det, external, meta["operating_points"])
    counts = {s: dict(Counter(r.split for r in everything if r.source == s))
              for s in sorted({r.source for r in everything})}  # fmt: skip
    licences = {s: sorted({r.licence for r in everything if r.source == s}) for s in counts}
    common = {
        "kind": "ovr",
        "dim": 384,
        "embedding_model": EMBED_MODEL,
        "normalize_embeddings": True,
        "window_chars": 700,
        "seed": broad.SEED,
        "shares": dict(broad.SHARES),
        "rates": list(RATES),
        "source_cap": SOURCE_CAP,
        "operating_points": meta["operating_points"],
        "thresholds": meta["operating_points"],
        "passage_quotes": PASSAGE_QUOTES.value,
    }
    user_meta = {
        **common,
        "C": meta["C"],
        "rows_by_source_and_split": counts,
        "licences": licences,
        "test_metrics": report,
        "external_metrics": report_external,
        "leave_one_source_out": {},
        "rules": [name for name, *_ in RULES],
        "train_rows": sum(r.split == "train" for r in everything),
    }
    out.mkdir(parents=True, exist_ok=True)
    passage = det.passage_model
    LinearModel(passage.weights, passage.bias, ["injection"], {**common, "C": meta["C"]}).save(
        out / "injection_passages.npz"
    )
    broad.write_splits(out / "injection_splits.json", everything)
    for stage in ("models", "leave one source out"):
        if stage != "models":
            if not with_loso:
                break
            user_meta["leave_one_source_out"] = loso(everything, embed, lexical, meta["C"])
        LinearModel(det.model.weights, det.model.bias, ["injection"], user_meta).save(out / "injection.npz")
        write_card(out / "injection.md", user_meta)
        print(f"{stage} written ({time.time() - t0:.0f}s)", flush=True)
    print(f"injection guard trained in {time.time() - t0:.0f}s", flush=True)
    return user_meta


def _table(report: dict, points: dict, keys: list[str]) -> list[str]:
    lines = ["| source | route | n | " + " | ".join(f"≥ op {k}" for k in keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]  # fmt: skip
    for source, r in report.items():
        what = "attacks caught" if r["label"] == 1 else "benign hit"
        lines.append(f"| {source} ({what}) | {r['route']} | {r['n']} | "
                     + " | ".join(f"{100 * r['hit'][k]:.1f} %" for k in keys) + " |")  # fmt: skip
    return lines


def write_card(path: Path, meta: dict) -> None:
    keys = ["0.005", "0.02", "0.05", "0.1"]
    pts = meta["operating_points"]
    lines = [
        "# Injection guard: data card (written by scripts/train_guards.py --only injection)",
        "",
        f"Embedding: {meta['embedding_model']}. Seed {meta['seed']}, splits {meta['shares']} per source.",
        f"C chosen on calibration: {meta['C']}. Rows per source capped at {meta['source_cap']:.0f} (weights).",
        "",
        "## Operating points (calibration split; the threshold that at most this share of every benign source reaches)",
        "",
        "| route | " + " | ".join(pts["user"]) + " |",
        "|---|" + "---|" * len(pts["user"]),
        *[f"| {route} | " + " | ".join(f"{v:.3f}" for v in pts[route].values()) + " |" for route in pts],
        "",
        "## Test split, per source (share at or above the operating point)",
        "",
        *_table(meta["test_metrics"], pts, keys),
        "",
        "## External sets (never trained on, never used for a choice)",
        "",
        *_table(meta["external_metrics"], pts, keys),
        "",
    ]
    if meta["leave_one_source_out"]:
        lines += ["## Leave one source out (fit and calibrate without it, measure all its rows)", "",
                  *_table(meta["leave_one_source_out"], pts, keys), ""]  # fmt: skip
    lines += ["## Rows by source and split", "", "| source | licence | train | calibration | test |",
              "|---|---|---|---|---|"]  # fmt: skip
    for s, c in meta["rows_by_source_and_split"].items():
        lic = ", ".join(meta["licences"][s])
        lines.append(f"| {s} | {lic} | {c.get('train', 0)} | {c.get('calibration', 0)} | {c.get('test', 0)} |")
    path.write_text("\n".join(lines) + "\n")
