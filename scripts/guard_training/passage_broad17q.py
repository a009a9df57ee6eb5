"""Experiment inj17q (issue 17): the passage unit refitted on broader benign *document* data.

Why: the shipped passage unit saw 120 rows of each of six corpora, and its 2 % point was set by
MedQuAD alone (the only benign passage source with >= 30 calibration rows). On fresh sets it drops
2.5-5 % of benign passages (security documentation, changelogs, code answers, e-mails) and only
0.17-0.39 of planted attacks. Here the unit sees more of what ordinary retrieved text looks like,
and more attacks planted into it, so that its 2 % point is measured on many kinds at once:

* **more rows of the public corpora** (``EXTRA``): up to ``CORPUS_CAP`` rows per corpus (the shipped
  120 kept with their recorded splits, the rest hash-chosen), and three corpora the shipped run
  did not use (HotpotQA Wikipedia paragraphs, PubMedQA abstracts, XQuAD passages in 12 languages);
* the project's **hand-written document kinds** (security docs, changelogs, code answers, e-mail
  notices, ``handwritten_passages``) with their own group splits, their training groups trained on;
* **quoted-attack documents** (``quoted_frames17q``): training-split attack strings quoted inside
  descriptive frames (advisory, changelog, incident report, test fixture, explainer, forum answer),
  benign; and the same frames with the attack planted where it addresses the reader, attacks;
* **more planted attacks**: every BIPIA attack and every short direct attack planted once more into
  the new benign rows of its own split.

Splits: new rows of a corpus are grouped with the shipped rows they nearly duplicate (cosine >= 0.92
of the first window) and take that row's split; otherwise near-duplicate groups among the new rows
go to a split by the seeded hash (``broad.assign_splits``); XQuAD by its passage id, so the 12
translations of one passage share a split. Frames take their attack's split. The user-turn unit,
the rules, the window size and the one-embedding-per-window cost are the shipped ones.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from llmgw.guards.classifier import LinearModel
from llmgw.guards.injection import InjectionDetector

from . import broad, handwritten_passages, quoted_frames17q
from .calibrated import RATES, Embed, attack_windows, fit, plain_windows, threshold_at
from .passage_calibration import existing_rows, scores_by_source

ROUTE = "retrieved"
CORPUS_CAP = 600
SOURCE_CAP = 300.0
#: extended below the shipped {0.5, 2, 8} after the first calibration run showed the drop rate rising as C fell
C_GRID = (0.01, 0.03, 0.05, 0.1, 0.25, 0.5, 2.0, 8.0)
#: (name, weight of the quoted-attack benign documents; None: no frame rows in training at all)
DATA_VARIANTS: tuple[tuple[str, float | None], ...] = (("broad", None), ("broad+frames", 1.0), ("broad+frames x3", 3.0))
DROP, FLAG = "0.02", "0.05"
QUOTED = "passage/quoted17"


def _texts(data: Path) -> dict[str, list[str]]:
    rag, inj = data / "rag", data / "injection"
    j = broad._jsonl
    return {
        "tldr": [r["text"] for r in j(rag / "tldr" / "tldr_pages.jsonl")],
        "rust_book": [r["text"] for r in j(rag / "rust_book" / "passages.jsonl")],
        "wikitables": [r["text"] for r in j(rag / "wikitables" / "tables.jsonl")],
        "tatqa": [r["text"] for r in j(rag / "tatqa" / "corpus.jsonl")],
        "medquad": [r["text"] for r in j(rag / "medquad" / "corpus.jsonl")],
        "covid_qa": [r["text"] for r in j(rag / "covid_qa" / "passages.jsonl")],
        "bipia_email": [r["context"] for r in j(inj / "bipia" / "contexts" / "email_train.jsonl")],
        "hotpotqa": [f"{r['title']}\n{r['text']}" for r in j(rag / "hotpotqa" / "corpus.jsonl")],
        "pubmedqa": [r["text"] for r in j(rag / "pubmedqa" / "corpus.jsonl")],
    }


LICENCES = {"tldr": "CC-BY-4.0", "rust_book": "MIT OR Apache-2.0", "wikitables": "CC-BY-SA-4.0",
            "tatqa": "CC-BY-4.0", "medquad": "CC-BY-4.0", "covid_qa": "Apache-2.0", "bipia_email": "MIT",
            "hotpotqa": "CC-BY-SA-4.0", "pubmedqa": "MIT", "xquad": "CC-BY-SA-4.0"}  # fmt: skip


def extra_rows(data: Path, shipped: list[broad.Row], embed: Embed) -> list[broad.Row]:
    """New benign passage rows of the corpora, beyond the shipped ones, each with its split."""
    shipped_by_source: dict[str, list[broad.Row]] = defaultdict(list)
    for r in shipped:
        if r.route == ROUTE and r.label == 0:
            shipped_by_source[r.source].append(r)
    out: list[broad.Row] = []
    for name, texts in _texts(data).items():
        source = f"passage/{name}"
        old = shipped_by_source.get(source, [])
        seen = {broad.canon(r.text) for r in old}
        cand = [broad.Row(broad.chunk(t), source, 0, ROUTE, LICENCES[name]) for t in texts if len(t.strip()) >= 80]
        cand = [r for r in broad._cap(cand, None) if broad.canon(r.text) not in seen][: max(0, CORPUS_CAP - len(old))]
        out.extend(_split_new(cand, old, embed))
    xq = [(r["passage_id"], r["text"]) for r in broad._jsonl(data / "rag" / "xquad" / "passages.jsonl")]
    xrows = []
    for pid, text in xq:
        row = broad.Row(broad.chunk(text), "passage/xquad", 0, ROUTE, LICENCES["xquad"])
        row.split = broad.split_of(f"xquad:{pid}")
        xrows.append(row)
    out.extend(broad._cap(xrows, CORPUS_CAP))
    for r in out:
        r.extra = True  # type: ignore[attr-defined]
    return out


def _split_new(new: list[broad.Row], old: list[broad.Row], embed: Embed) -> list[broad.Row]:
    if not new:
        return []
    both = new + old
    first = dict(zip([r.text for r in both], embed([plain_windows(r.text)[0] for r in both]), strict=True))
    broad.assign_splits(new, first)
    if old:
        xo = np.stack([first[r.text] for r in old])
        for r in new:
            sims = xo @ first[r.text]
            best = int(np.argmax(sims))
            if sims[best] >= broad.NEAR_DUP:
                r.split = old[best].split
    return new


def attack_strings(rows: list[broad.Row], data: Path) -> list[broad.Row]:
    """BIPIA's attacks and every short direct user attack (<= 300 characters), with their splits."""
    bipia = broad.bipia_attacks(data)
    for a in bipia:
        a.split = broad.split_of(a.key)
    direct = [r for r in rows if r.route == "user" and r.label == 1 and len(r.text) <= 300]
    return bipia + direct


def frame_rows(attacks: list[broad.Row]) -> list[broad.Row]:
    """Quoted-attack documents (benign, ``passage/quoted17``) and the same frames with the attack
    planted where it addresses the reader (``planted17/framed``); each in its attack's split."""
    out = []
    for a in attacks:
        _, text = quoted_frames17q.compose(a.text, quoted=True)
        out.append(broad.Row(broad.chunk(text, 1400), QUOTED, 0, ROUTE, "project", a.split))
        _, frame = quoted_frames17q.compose(a.text, quoted=False)
        rng = random.Random(f"{broad.SEED}:frameplant:{a.key}")
        out.append(broad.Row(broad.plant(a.text, frame, rng), "planted17/framed", 1, ROUTE, a.licence, a.split,
                             a.text, QUOTED))  # fmt: skip
    return out


def planted_extra(pool: list[broad.Row], attacks: list[broad.Row]) -> list[broad.Row]:
    """Every attack string planted once more, into a new benign row of its own split."""
    by_split: dict[str, list[broad.Row]] = defaultdict(list)
    for r in pool:
        by_split[r.split].append(r)
    for p in by_split.values():
        p.sort(key=lambda r: r.key)
    out = []
    for a in attacks:
        ctxs = by_split.get(a.split)
        if not ctxs:
            continue
        rng = random.Random(f"{broad.SEED}:plant17:{a.key}")
        ctx = rng.choice(ctxs)
        family = a.source.split("/", 1)[1] if a.source.startswith("planted/") else "direct"
        out.append(broad.Row(broad.plant(a.text, ctx.text, rng), f"planted17/{family}", 1, ROUTE, a.licence, a.split,
                             a.text, ctx.source))  # fmt: skip
    return out


def all_rows(data: Path, splits_path: Path, embed: Embed) -> list[broad.Row]:
    base = existing_rows(data, splits_path)
    hand = handwritten_passages.rows()
    extra = extra_rows(data, base, embed)
    attacks = attack_strings(base, data)
    rows = base + hand + extra + frame_rows(attacks) + planted_extra(extra, attacks)
    embed(sorted({w for r in rows if r.route != "external" for w in plain_windows(r.text)}, key=len))  # one batch
    return rows


def training_set(rows: list[broad.Row], embed: Embed, frames: float | None) -> tuple[np.ndarray, ...]:
    """As ``calibrated.training_set`` for the passage route (user turns at half weight, every source
    counted at most ``SOURCE_CAP`` rows, attacks weighted as much as benign text, user hard negatives
    x3), with the quoted-attack documents weighted ``frames`` (``None``: frame rows left out)."""
    texts, labels, sources, extra = [], [], [], []
    for r in rows:
        if r.route == "external" or r.split != "train":
            continue
        if frames is None and (r.source == QUOTED or r.source == "planted17/framed"):
            continue
        ws = attack_windows(r) if r.route == ROUTE and r.label == 1 else plain_windows(r.text)
        for w in ws:
            texts.append(w)
            labels.append(r.label)
            sources.append(r.source)
            extra.append(0.5 if r.route == "user" else 1.0)
    y = np.array(labels)
    per = Counter(sources)
    hard = {"user/chat/trigger_word": 3.0, "user/handwritten": 3.0, QUOTED: frames or 1.0}
    w = np.array([min(1.0, SOURCE_CAP / per[s]) * e * hard.get(s, 1.0) for s, e in zip(sources, extra, strict=True)])
    w[y == 1] *= w[y == 0].sum() / w[y == 1].sum()
    return embed(texts), y, w / w.mean()


def points_from(scores: dict[str, np.ndarray], without: str = "") -> dict[str, float]:
    """The points from every benign calibration passage source except the composed quoted-attack
    documents: their rule hits are fixed by the attack strings they quote (no unit can lower them),
    so they are training hard negatives and a reported figure, never a point setter."""
    benign = {s: v for s, v in scores.items() if s.startswith("passage/") and s not in (without, QUOTED)}
    return {f"{rate:g}": threshold_at(benign, rate) for rate in RATES}


def hit_table(scores: dict[str, np.ndarray], points: dict[str, float]) -> dict[str, dict]:
    return {s: {"n": len(v), "hits_at": {k: int((v >= points[k]).sum()) for k in (DROP, FLAG)},
                "hit": {k: round(float((v >= points[k]).mean()), 4) for k in (DROP, FLAG)}}
            for s, v in scores.items()}  # fmt: skip


def macro_planted(table: dict[str, dict], at: str = DROP) -> float:
    rates = [t["hit"][at] for s, t in table.items() if s.startswith(("planted/", "planted17/"))]
    return float(np.mean(rates)) if rates else 0.0


def detector(shipped: InjectionDetector, unit: LinearModel, embed: Embed) -> InjectionDetector:
    return InjectionDetector(shipped.model, embed=embed, lexical=shipped.lexical or False, passage_model=unit)


def calibrate(rows: list[broad.Row], embed: Embed, shipped: InjectionDetector) -> dict:
    """Every variant (data x C) fitted on train and measured on calibration; the chosen one is the
    highest macro planted-attack drop rate at its own 2 % point (ties: the earlier in the grid)."""
    cal = [r for r in rows if r.split == "calibration" and r.route == ROUTE]
    cal_shipped = scores_by_source(shipped, cal)
    shipped_own = shipped.operating_points(ROUTE)
    out: dict = {
        "shipped_own_points": {"points": shipped_own, "table": hit_table(cal_shipped, shipped_own)},
        "shipped_recomputed_points": {"points": points_from(cal_shipped)},
        "variants": {},
    }
    out["shipped_recomputed_points"]["table"] = hit_table(cal_shipped, out["shipped_recomputed_points"]["points"])
    for key in ("shipped_own_points", "shipped_recomputed_points"):
        out[key]["macro_planted_drop"] = round(macro_planted(out[key]["table"]), 4)
    best = None
    for name, frames in DATA_VARIANTS:
        x, y, w = training_set(rows, embed, frames)
        for c in C_GRID:
            unit = fit(x, y, w, c)
            sc = scores_by_source(detector(shipped, unit, embed), cal)
            pts = points_from(sc)
            table = hit_table(sc, pts)
            m = macro_planted(table)
            key = f"{name}, C={c:g}"
            out["variants"][key] = {"frames": frames, "C": c, "points": pts, "macro_planted_drop": round(m, 4),
                                    "table": table}  # fmt: skip
            print(f"  {key}: 2% point {pts[DROP]:.3f}, macro planted dropped {m:.3f}", flush=True)
            if best is None or m > best[0]:
                best = (m, key, unit)
    assert best is not None
    out["chosen"] = best[1]
    out["_unit"] = best[2]
    return out
