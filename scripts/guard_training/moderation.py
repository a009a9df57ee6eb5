"""Output-moderation guard: a harmful unit (one hidden layer: whether) and six logistic category units (which) over
the float encoder's vectors; the operating point is chosen on the calibration split for a benign
false-positive target, and the model carries the table from target to threshold (the policy's
``moderation.benign_fpr`` knob). Reports per source on the test split, whole text and as a stream
reads it (8-word windows, a hit confirmed on its context view), and leave-one-dataset-out.

    nice -n 10 .venv/bin/python scripts/train_moderation.py [--no-loso]
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from llmgw.guards.classifier import LinearModel
from llmgw.guards.moderation import CATEGORIES, HarmfulUnit, Moderator, save_model
from llmgw.guards.moderation import views as moderation_views

from .moderation_compose import KIND_OF_SOURCE as COMPOSED_KINDS
from .moderation_data import MOD_SEED, MOD_SPLIT, ModRow, load_rows
from .moderation_frames import KIND_OF_SOURCE as ANSWER_KINDS
from .vector_cache import VectorCache

#: rows per source at full weight in training (bigger sources are down-weighted to this)
SOURCE_CAP = 600.0
#: benign false-positive targets the model's table covers; the shipped 0.5 is DEFAULT_FPR's threshold
FPR_TARGETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
DEFAULT_FPR = 0.05
#: (hidden units, L2 alpha) of the harmful unit: the pair with the best calibration F1 at the default FPR
#: ships (round 2 added 512 units: 0.8105 against 0.7999 for 256 on the calibration split)
HEAD_GRID = ((256, 1e-3), (256, 1e-2), (512, 1e-3))
HIDDEN = 256
#: the templated harmful answers and messages and their benign twins (``moderation_frames.py``)
ANSWERS = True
#: round 3: the composed harmful messages and benign twins, split by frame and phrase (``moderation_compose.py``).
#: Off: neither round 3 nor round 4 was shipped (docs/guardrails.md, "Round 3 operating rule", "Round 4"), so a
#: retrain reproduces the shipped round-2 model; set True to fit round 3's data (with it, calibration also holds
#: round 4's calibration-only frames, ``moderation_compose.CAL_FRAMES``), and WORST_CAP = 0.10 for round 4's file
COMPOSE = False
#: round 4: the operating point caps the *worst* benign calibration source (every benign source flagged at most
#: this share, the classifier alone), and a category lexicon's hit counts only where the classifier's own score
#: reaches a separate floor, the lowest at which every benign calibration source still stays under the same cap
#: (:func:`operating_rule`). None: round 2's rule (5 % mean benign FPR, lexicon hits always count at 0.9), the
#: shipped one: round 4 (0.10) failed its ship check on held-out recall (docs/guardrails.md, "Round 4")
WORST_CAP: float | None = None
#: sources with fewer calibration rows do not count for the worst-source cap (on fewer than 10 rows one flag is
#: already more than 10 %)
CAP_MIN_ROWS = 10
#: the stream path as the default policy reads it
WINDOW_WORDS, CONTEXT_WORDS, BEFORE, AFTER = 8, 4, 40, 24
KIND_OF_SOURCE = {**ANSWER_KINDS, **COMPOSED_KINDS}
STREAM_SHARE = 0.15  # the share of each source's test rows also read as a stream (hash-chosen)


def dataset(source: str) -> str:
    """The published set a source comes from (a set's harmful and benign halves are one dataset)."""
    for prefix in ("davidson", "surge", "wiki", "madlibs", "germeval", "ailuminate", "templ", "rag", "answers",
                   "compose", "hh_"):  # fmt: skip
        if source.startswith(prefix):
            return prefix.rstrip("_")
    return source


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _features(rows: list[ModRow], embed: VectorCache) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every view of every row (the first at full weight, the rest at half), and each view's row."""
    texts, weights, owner = [], [], []
    for i, r in enumerate(rows):
        for j, v in enumerate(moderation_views(r.text)):
            texts.append(v)
            weights.append(1.0 if j == 0 else 0.5)
            owner.append(i)
    return embed(texts), np.array(weights), owner


def _source_weights(rows: list[ModRow]) -> np.ndarray:
    n = Counter(r.source for r in rows)
    return np.array([min(1.0, SOURCE_CAP / n[r.source]) for r in rows])


def fit_harmful(rows: list[ModRow], embed: VectorCache, alpha: float, hidden: int = HIDDEN) -> HarmfulUnit:
    """The harmful unit: a perceptron with one hidden layer (sklearn, fixed seed), rows weighted by
    source cap and the classes balanced."""
    from sklearn.neural_network import MLPClassifier

    x, view_w, owner = _features(rows, embed)
    y = np.array([rows[i].harmful for i in owner])
    w = _source_weights(rows)[owner] * view_w
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    w = np.where(y == 1, w * (pos + neg) / (2 * pos), w * (pos + neg) / (2 * neg))
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=80, early_stopping=True,
                        random_state=MOD_SEED)  # fmt: skip
    clf.fit(x, y, sample_weight=w * len(w) / w.sum())
    return HarmfulUnit(
        clf.coefs_[0].T.astype(np.float32), clf.intercepts_[0].astype(np.float32),
        clf.coefs_[1][:, 0].astype(np.float32), float(clf.intercepts_[1][0]),
    )  # fmt: skip


def fit_categories(rows: list[ModRow], embed: VectorCache) -> tuple[np.ndarray, np.ndarray]:
    """One unit per category over the harmful rows only: it names the harm, it does not decide it."""
    from sklearn.linear_model import LogisticRegression

    harmful = [r for r in rows if r.harmful]
    x, view_w, owner = _features(harmful, embed)
    w = _source_weights(harmful)[owner] * view_w
    coefs, biases = [], []
    for cat in CATEGORIES:
        y = np.array([cat in harmful[i].cats for i in owner])
        if y.sum() == 0:
            coefs.append(np.zeros(x.shape[1], np.float32))
            biases.append(-4.0)
            continue
        pos, neg = w[y].sum(), w[~y].sum()
        wj = np.where(y, w * (pos + neg) / (2 * pos), w * (pos + neg) / (2 * neg))
        clf = LogisticRegression(C=1.0, max_iter=3000, tol=1e-5)
        clf.fit(x, y.astype(int), sample_weight=wj * len(wj) / wj.sum())
        coefs.append(clf.coef_[0].astype(np.float32))
        biases.append(float(clf.intercept_[0]))
    return np.stack(coefs), np.array(biases, np.float32)


def make_model(cats: tuple[np.ndarray, np.ndarray], meta: dict) -> LinearModel:
    return LinearModel(cats[0].astype(np.float32), cats[1].astype(np.float32), list(CATEGORIES), meta)


def shifted(unit: HarmfulUnit, shift: float) -> HarmfulUnit:
    return HarmfulUnit(unit.hidden_weights, unit.hidden_bias, unit.out_weights, unit.out_bias - shift)


def as_shipped(unit: HarmfulUnit) -> HarmfulUnit:
    """The unit as the file stores it (hidden weights in float16), so reports measure what ships."""
    return HarmfulUnit(unit.hidden_weights.astype(np.float16).astype(np.float32), unit.hidden_bias,
                       unit.out_weights, unit.out_bias)  # fmt: skip


def harm_scores(mod: Moderator, rows: list[ModRow]) -> np.ndarray:
    """Whole-text score per row as the run time computes it (max over 700-character views, lexicons
    included): the top category's score."""
    return np.array([r.score for r in mod.score_many([r.text for r in rows])])


def macro_fpr(rows: list[ModRow], scores: np.ndarray, t: float) -> float:
    """Benign false-positive rate averaged over the benign sources (each source counts the same)."""
    by: dict[str, list[bool]] = defaultdict(list)
    for r, s in zip(rows, scores, strict=True):
        if not r.harmful:
            by[r.source].append(bool(s >= t))
    return float(np.mean([np.mean(v) for v in by.values()])) if by else 0.0


def threshold_for_fpr(rows: list[ModRow], scores: np.ndarray, target: float) -> float:
    """The lowest threshold whose macro benign FPR on ``rows`` is at most ``target``."""
    cands = np.unique(np.round(scores, 5))
    best = 1.0
    for t in cands[::-1]:
        if macro_fpr(rows, scores, float(t)) <= target:
            best = float(t)
        else:
            break
    return best


def worst_fpr(rows: list[ModRow], scores: np.ndarray, t: float, min_n: int = 0) -> tuple[float, str]:
    """The highest benign flag rate over the benign sources of ``rows`` (those with at least
    ``min_n`` rows) at ``t``, and its source."""
    by: dict[str, list[bool]] = defaultdict(list)
    for r, s in zip(rows, scores, strict=True):
        if not r.harmful:
            by[r.source].append(bool(s >= t))
    rates = {k: float(np.mean(v)) for k, v in by.items() if len(v) >= min_n}
    src = max(rates, key=lambda k: rates[k])
    return rates[src], src


def meets_caps(rows: list[ModRow], scores: np.ndarray, t: float, mean_cap: float | None,
               worst_cap: float | None, min_n: int = 0) -> bool:  # fmt: skip
    return (mean_cap is None or macro_fpr(rows, scores, t) <= mean_cap) and (
        worst_cap is None or worst_fpr(rows, scores, t, min_n)[0] <= worst_cap
    )


def threshold_for(
    rows: list[ModRow], scores: np.ndarray, mean_cap: float | None, worst_cap: float | None, min_n: int = 0
) -> float:
    """The lowest threshold (a calibration score) meeting both caps; flag rates only fall as the
    threshold rises, so scanning down from the top and stopping at the first miss finds it."""
    best = 1.0
    for t in np.unique(np.round(scores, 5))[::-1]:
        if not meets_caps(rows, scores, float(t), mean_cap, worst_cap, min_n):
            break
        best = float(t)
    return best


def model_scores(mod: Moderator, rows: list[ModRow]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, whole text: the classifier's own score (max over views, no lexicon) and whether a
    category lexicon term occurs."""
    res = mod.score_many([r.text for r in rows])
    own = np.array([r.model_score for r in res])
    lex = np.array([any(h["category"] in CATEGORIES for h in r.lexicon_hits) for r in res])
    return own, lex


def with_lexicon(own: np.ndarray, lex: np.ndarray, floor: float) -> np.ndarray:
    """The score the run time compares with the threshold when a counted lexicon hit lifts to 1.0."""
    return np.where(lex & (own >= floor), 1.0, own)


def operating_rule(
    rows: list[ModRow], own: np.ndarray, lex: np.ndarray, worst_cap: float | None, mean_cap: float | None = None,
    min_n: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """``(threshold, lexicon floor)`` on calibration rows: the threshold is the lowest at which the
    classifier alone meets the caps; the floor is the lowest classifier score (at most the threshold)
    at which counting the lexicon hits above it still meets them. Lowering the floor only adds flags,
    so the scan stops at the first miss."""
    t = threshold_for(rows, own, mean_cap, worst_cap, min_n)
    floor = t
    for f in [*np.unique(np.round(own[lex & (own < t)], 5))[::-1], 0.0]:
        if not meets_caps(rows, with_lexicon(own, lex, float(f)), t, mean_cap, worst_cap, min_n):
            break
        floor = float(f)
    return t, floor


def prf(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    # as booleans: on int labels ``~y`` is -1/-2, which counts right in ``&`` but indexes rows in ``p[~y]``
    y, p = np.asarray(y, dtype=bool), np.asarray(p, dtype=bool)
    tp, fp, fn = int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())
    pr, rc = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"precision": round(pr, 4), "recall": round(rc, 4), "f1": round(2 * pr * rc / max(1e-9, pr + rc), 4),
            "benign_fpr": round(float(p[~y].mean()), 4) if (~y).any() else None}  # fmt: skip


def stream_flags(
    mod: Moderator, rows: list[ModRow], threshold: float, sentences: tuple[int, int] | None = (1, 1)
) -> list[bool]:
    """Whether a stream of each row would be stopped by a harm category: an 8-word window (with 4
    before) reaches the threshold and so does its context view (``Windows.view`` with ``sentences``
    around the window's own; None: no confirmation, the window's hit stops)."""
    from llmgw.guards.stream import finished_windows

    ws = [finished_windows(r.text, WINDOW_WORDS, CONTEXT_WORDS) for r in rows]
    texts = [w.take(final=True) for w in ws]
    flat = [t for ts in texts for t in ts]
    scores = [res.score for res in mod.score_many(flat)]
    pos, suspects = 0, []
    for i, ts in enumerate(texts):
        for k in range(len(ts)):
            if scores[pos + k] >= threshold:
                suspects.append((i, k))
        pos += len(ts)
    if sentences is None:
        return [i in {j for j, _ in suspects} for i in range(len(rows))]
    views = [ws[i].view(k, BEFORE, AFTER, sentences) or "" for i, k in suspects]
    confirmed = {i for (i, _), res in zip(suspects, mod.score_many(views), strict=True) if res.score >= threshold}
    return [i in confirmed for i in range(len(rows))]


def composites(rows: list[ModRow], split: str) -> list[ModRow]:
    """Answers are many sentences: each short picked row of ``split`` (a toxic post, a threat, a
    counter-speech sentence) told inside an ordinary answer, between the opening sentence of one
    benign chat prompt or reply and the closing one of another from the same split, with its own
    label (source ``inside/<source>``). Stream-path figures only: the model never trains on these."""
    import re

    fillers = [r.text for r in rows if r.split == split and r.source in ("benign_chat", "hh_chosen_replies")]
    sentences = [m for t in fillers for m in re.split(r"(?<=[.!?])\s+", t.strip()) if 30 <= len(m) <= 200]
    out = []
    for r in rows:
        if r.split != split or not _pick(r) or len(r.text) > 400 or r.source.startswith("rag_") or not sentences:
            continue
        h = int(hashlib.sha256(f"inside-{MOD_SEED}:{r.text}".encode()).hexdigest()[:12], 16)
        before, after = sentences[h % len(sentences)], sentences[(h // 7919) % len(sentences)]
        out.append(ModRow(f"{before} {r.text} {after}", f"inside/{r.source}", r.harmful, r.cats, split, r.licence))
    return out


def choose_view(mod: Moderator, rows: list[ModRow]) -> tuple[tuple[int, int], dict]:
    """The context view (sentences before, after) with the best stream-path F1 on the calibration
    rows read as streams, alone and told inside ordinary answers (:func:`composites`); also the
    figure without confirmation."""
    cal = [r for r in rows if r.split == "cal" and _pick(r)] + composites(rows, "cal")
    y = np.array([bool(r.harmful) for r in cal])
    out, best = {}, None
    for sentences in (None, (0, 0), (1, 0), (0, 1), (1, 1), (2, 1)):
        res = prf(y, np.array(stream_flags(mod, cal, 0.5, sentences)))
        out[str(sentences)] = res
        print(f"  calibration stream path, view {sentences}: {json.dumps(res)}", flush=True)
        if sentences is not None and (best is None or res["f1"] > best[0]):
            best = (res["f1"], sentences)
    return best[1], out  # type: ignore[index]


def report(
    mod: Moderator,
    rows: list[ModRow],
    split: str,
    threshold: float,
    stream: bool = True,
    sentences: tuple[int, int] = (1, 1),
) -> dict:
    test = [r for r in rows if r.split == split]
    scores = harm_scores(mod, test)
    flags = scores >= threshold
    y = np.array([bool(r.harmful) for r in test])
    out: dict = {"n": len(test), "whole_text": prf(y, flags), "per_source": {}}
    out["whole_text"]["macro_benign_fpr"] = round(macro_fpr(test, scores, threshold), 4)
    if stream:  # answers that hold the short rows inside ordinary sentences: stream figures only
        extra = composites(rows, split)
        test, scores = test + extra, np.concatenate([scores, harm_scores(mod, extra)])
        flags, y = scores >= threshold, np.array([bool(r.harmful) for r in test])
    picked = [i for i, r in enumerate(test) if _pick(r) or r.source.startswith("inside/")]
    sflags = np.zeros(len(test), bool)
    if stream:
        sflags[picked] = stream_flags(mod, [test[i] for i in picked], threshold, sentences)
        bare = np.zeros(len(test), bool)
        bare[picked] = stream_flags(mod, [test[i] for i in picked], threshold, None)
        for name, inside in (("stream", False), ("stream_inside_answers", True)):
            idx = np.array([i for i in picked if test[i].source.startswith("inside/") == inside])
            out[name] = {**prf(y[idx], sflags[idx]), "n": len(idx)}
            out[f"{name}_without_confirmation"] = prf(y[idx], bare[idx])
    kinds: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(test):
        if r.source in KIND_OF_SOURCE:
            kinds[KIND_OF_SOURCE[r.source]].append(i)
    out["per_kind"] = {
        k: {"n": len(idx), "flagged": round(float(flags[idx].mean()), 4)} for k, idx in sorted(kinds.items())
    }
    for src in sorted({r.source for r in test}):
        idx = [i for i, r in enumerate(test) if r.source == src]
        sidx = [i for i in idx if i in set(picked)]
        out["per_source"][src] = {
            "n": len(idx), "harmful": bool(test[idx[0]].harmful), "flagged": round(float(flags[idx].mean()), 4),
            **({"stream_n": len(sidx), "stream_flagged": round(float(sflags[sidx].mean()), 4)}
               if stream and sidx else {}),
        }  # fmt: skip
    return out


def _pick(r: ModRow) -> bool:
    """A hash-chosen subset per source for the (slower) stream-path figures."""
    h = int(hashlib.sha256(f"stream-{MOD_SEED}:{r.text}".encode()).hexdigest()[:8], 16) % 1000
    return h < 1000 * STREAM_SHARE


def loso(
    rows: list[ModRow], embed: VectorCache, alpha: float, cats: tuple[np.ndarray, np.ndarray], hidden: int = HIDDEN
) -> dict:
    """Per dataset: fit without any of its rows, pick the threshold on the others' calibration rows,
    report on its test rows (whole text)."""
    out = {}
    for name in sorted({dataset(r.source) for r in rows}):
        keep = [r for r in rows if dataset(r.source) != name]
        harm = fit_harmful([r for r in keep if r.split == "train"], embed, alpha, hidden)
        mod = Moderator(make_model(cats, {}), embed, lexicon_dir=Path("/nonexistent"), harmful=harm)
        cal = [r for r in keep if r.split == "cal"]
        t = threshold_for_fpr(cal, harm_scores(mod, cal), DEFAULT_FPR)
        held = [r for r in rows if dataset(r.source) == name and r.split == "test"]
        if not held:  # training-only rows (the hand-written ones)
            continue
        scores = harm_scores(mod, held)
        y = np.array([bool(r.harmful) for r in held])
        res = prf(y, scores >= t)
        res.update({"n": len(held), "per_source": {
            s: round(float((scores[[i for i, r in enumerate(held) if r.source == s]] >= t).mean()), 4)
            for s in sorted({r.source for r in held})}})  # fmt: skip
        out[name] = res
        print(f"  loso {name}: {json.dumps(res)}", flush=True)
    return out


def train(data: Path, cache: Path, out: Path, run_loso: bool = True) -> dict:
    t0 = time.time()
    rows = load_rows(data, answers=ANSWERS, compose=COMPOSE)
    embed = VectorCache(cache)
    train_rows = [r for r in rows if r.split == "train"]
    cal = [r for r in rows if r.split == "cal"]
    print(f"moderation: {len(rows)} rows, {Counter(r.split for r in rows)}", flush=True)
    cats = fit_categories(train_rows, embed)
    best, grid = None, {}
    for hidden, alpha in HEAD_GRID:  # the head whose calibration F1 at the default FPR is best
        harm = fit_harmful(train_rows, embed, alpha, hidden)
        mod = Moderator(make_model(cats, {}), embed, harmful=harm)
        scores = harm_scores(mod, cal)
        t = threshold_for_fpr(cal, scores, DEFAULT_FPR)
        f1 = prf(np.array([bool(r.harmful) for r in cal]), scores >= t)["f1"]
        print(f"  hidden={hidden} alpha={alpha}: calibration F1 {f1} at threshold {t:.4f}", flush=True)
        grid[f"{hidden}/{alpha}"] = f1
        if best is None or f1 > best[0]:
            best = (f1, (hidden, alpha), harm, scores)
    f1, (hidden, c), harm, scores = best  # type: ignore[misc]
    rule: dict = {}
    if WORST_CAP is not None:  # round 4: 0.5 becomes the worst-source cap's threshold; lexicons behind a floor
        own, lex = model_scores(Moderator(make_model(cats, {}), embed, harmful=harm), cal)
        t_raw, floor_raw = operating_rule(cal, own, lex, WORST_CAP, min_n=CAP_MIN_ROWS)
        scores, shift = with_lexicon(own, lex, floor_raw), logit(t_raw)
        rule = {"operating_rule": f"worst benign calibration source (n >= {CAP_MIN_ROWS}) <= {WORST_CAP}",
                "worst_cap": WORST_CAP, "cap_min_rows": CAP_MIN_ROWS,
                "lexicon_floor": round(1 / (1 + math.exp(-(logit(floor_raw) - shift))), 5),
                "lexicon_score": 1.0}  # fmt: skip
        print(f"  rule worst<={WORST_CAP}: raw threshold {t_raw:.5f}, lexicon floor {floor_raw:.5f}", flush=True)
    # on the calibration split: the threshold per benign-FPR target; 0.5 becomes DEFAULT_FPR's (or the rule's)
    raw = {target: threshold_for_fpr(cal, scores, target) for target in FPR_TARGETS}
    shift = logit(raw[DEFAULT_FPR]) if WORST_CAP is None else shift
    table = {str(k): round(1 / (1 + math.exp(-(logit(v) - shift))), 5) for k, v in raw.items()}
    harm = shifted(harm, shift)
    meta = {
        "kind": "ovr", "dim": 384, "categories": list(CATEGORIES),
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2, float ONNX encoder (llmgw.encoders)",
        "seed": MOD_SEED, "split_percent": dict(zip(("train", "cal", "test"), MOD_SPLIT, strict=True)),
        "harmful_unit": f"MLP, {hidden} ReLU units", "alpha": c, "head_grid": grid, "source_cap": SOURCE_CAP,
        "default_benign_fpr": DEFAULT_FPR, "fpr_thresholds": table,
        "thresholds": {cat: 0.5 for cat in CATEGORIES},
        "train_hash": hashlib.sha256("\n".join(sorted(r.text for r in train_rows)).encode()).hexdigest()[:16],
        "train_rows": len(train_rows), "sources": sorted({r.source for r in rows}), **rule,
    }  # fmt: skip
    mod = Moderator(make_model((cats[0].astype(np.float16).astype(np.float32), cats[1]), meta), embed,
                    harmful=as_shipped(harm))  # fmt: skip
    sentences, meta["calibration_views"] = choose_view(mod, rows)
    meta["confirm_sentences"] = list(sentences)
    print("test report ...", flush=True)
    meta["calibration"] = report(mod, rows, "cal", 0.5, stream=False)
    meta["test_metrics"] = report(mod, rows, "test", 0.5, sentences=sentences)
    meta["sizes"] = {s: dict(Counter(r.split for r in rows if r.source == s)) for s in sorted({r.source for r in rows})}
    meta["leave_one_dataset_out"] = {}
    save_model(out / "moderation.npz", make_model(cats, meta), harm)
    write_card(out / "moderation.md", rows, meta)
    print(json.dumps(meta["test_metrics"], indent=1), flush=True)
    if run_loso:  # slow: the model is written first, then again with these figures
        meta["leave_one_dataset_out"] = loso(rows, embed, c, cats, hidden)
        save_model(out / "moderation.npz", make_model(cats, meta), harm)
        write_card(out / "moderation.md", rows, meta)
    print(f"done in {time.time() - t0:.0f}s", flush=True)
    return meta


def write_card(path: Path, rows: list[ModRow], meta: dict) -> None:
    from .moderation_card import card

    path.write_text(card(rows, meta), encoding="utf-8")
