"""Prompt-injection guard: training rows (two-stage, multiple-instance), model selection and
calibration on dev, leave-one-source-out runs and the held-out test report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from llmgw.guards.classifier import LinearModel
from llmgw.guards.injection import InjectionDetector, detailed_views, sentence_parts
from llmgw.guards.normalize import normalize

from .config import NEG_CAP, NEG_SHARE, POS_CAP, TRIGGER_WORDS
from .data import Rec, canon
from .embedding import CachedEmbedder
from .metrics import logit, roc_threshold, source_weights, tpr_at


def injection_rows(
    recs: list[Rec],
    embed: Callable[[list[str]], np.ndarray],
    cap: float,
    m0: tuple[np.ndarray, float] | None = None,
    neg_cap: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training windows. Without ``m0`` only whole windows; with it, sentences too: every sentence of
    a benign text is a negative, and for an attack only its sentence that ``m0`` scores highest is a
    positive (multiple-instance labelling: we know some part of the prompt is the attack, not which).
    Each hidden-attack passage also adds its clean passage as a paired negative."""
    xs: list[str] = []
    ys: list[int] = []
    ws: list[float] = []
    rec_w = source_weights(recs, cap, neg_cap)

    def add(body: str, y: int, w: float) -> None:
        xs.append(body)
        ys.append(y)
        ws.append(w)

    for r, w in zip(recs, rec_w, strict=True):
        vs, _ = detailed_views(r.text)
        if m0 is None:
            vs = [v for v in vs if not v[2]]
        if r.source.startswith("indirect/"):
            needle = canon(r.extra["attack"])
            head, tail = needle[:40], needle[-40:]

            def has_attack(body: str, needle: str = needle, head: str = head, tail: str = tail) -> int:
                c = canon(body)
                return int(head in c or tail in c or (len(c) >= 20 and c in needle))

            labels = [has_attack(body) for _, body, _ in vs]
            if not any(labels):
                labels = [1] * len(vs)
            for (_, body, seg), y in zip(vs, labels, strict=True):
                add(body, y, (w if y else w * 0.5) * (0.5 if seg else 1.0))
            for _, body, seg in detailed_views(r.extra["context"])[0]:
                if m0 is not None or not seg:
                    add(body, 0, w * (0.25 if seg else 0.5))
        elif r.inj == 1:
            whole = [(i, body) for i, (_, body, seg) in enumerate(vs) if not seg]
            for j, (_, body) in enumerate(whole):
                add(body, 1, w if j == 0 else w * 0.5)
            last = [body for kind, body, seg in vs if seg and kind is None]
            if last and m0 is not None:
                parts = sentence_parts(normalize(r.text).text)
                scores = embed(parts) @ m0[0] + m0[1]
                if int(np.argmax(scores)) == len(parts) - 1:  # the last sentence is the attack
                    add(last[0], 1, w * 0.5)
        else:
            for _, body, seg in vs:
                add(body, 0, w * 0.5 if seg else w)
    return embed(xs), np.array(ys), np.array(ws)


def two_stage_rows(
    train: list[Rec], embed: Callable[[list[str]], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows-only model first; it picks the positive sentence of each attack for the final rows."""
    x0, y0, w0 = injection_rows(train, embed, POS_CAP, neg_cap=NEG_CAP)
    m0 = fit_logreg(x0, y0, w0, 3.0, NEG_SHARE)
    return injection_rows(train, embed, POS_CAP, m0=m0, neg_cap=NEG_CAP)


def fit_logreg(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, neg_share: float = 0.5
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression; negatives get ``neg_share`` of the total weight."""
    from sklearn.linear_model import LogisticRegression

    pos = w[y == 1].sum()
    neg = w[y == 0].sum()
    w = np.where(y == 1, w * (1 - neg_share) / pos, w * neg_share / neg)
    clf = LogisticRegression(C=c, max_iter=3000, tol=1e-5)
    clf.fit(x, y, sample_weight=w * len(w) / w.sum())
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def is_user_benign(r: Rec) -> bool:
    return r.inj == 0 and r.kind == "prompt"


def injection_eval(detector: InjectionDetector, recs: list[Rec]) -> dict[str, np.ndarray]:
    res = detector.score_many([r.text for r in recs], ["retrieved" if r.kind == "passage" else "user" for r in recs])
    return {
        "score": np.array([x.score for x in res]),
        "clf": np.array([x.classifier for x in res]),
        "rules": np.array([bool(x.rule_hits) for x in res]),
    }


def benign_weights(recs: list[Rec]) -> np.ndarray:
    """Weights of benign rows in a false-positive rate: pooled, every row counts once."""
    return np.ones(len(recs))


def user_threshold(neg_scores: np.ndarray, trig_scores: np.ndarray, fpr: float) -> float:
    """Operating threshold for user prompts: FPR <= ``fpr`` on all benign prompts and <= 5% on the
    trigger-word-rich ones (the issue's two false-positive targets)."""
    return max(roc_threshold(neg_scores, fpr), roc_threshold(trig_scores, 0.05))


def is_trigger_prompt(r: Rec) -> bool:
    return is_user_benign(r) and (r.source == "handwritten/dev_trigger_prompts" or bool(TRIGGER_WORDS.search(r.text)))


def train_injection(recs: list[Rec], indirect: list[Rec], embed: CachedEmbedder) -> tuple[LinearModel, dict]:
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    train = [r for r in used if r.split == "train"]
    dev = [r for r in used if r.split == "dev"]
    test = [r for r in used if r.split == "test"]
    print(f"injection: train {len(train)}, dev {len(dev)}, test {len(test)}", flush=True)
    x, y, w = two_stage_rows(train, embed)
    print(f"  {len(y)} training windows and sentences ({int(y.sum())} positive)", flush=True)
    dev_user_neg = [r for r in dev if is_user_benign(r)]
    trig_mask = np.array([is_trigger_prompt(r) for r in dev_user_neg])
    dev_pass_neg = [r for r in dev if r.inj == 0 and r.kind == "passage"]
    dev_pos = [r for r in dev if r.inj == 1]
    print(
        f"  dev: {len(dev_user_neg)} benign prompts ({int(trig_mask.sum())} with trigger words), "
        f"{len(dev_pass_neg)} benign passages, {len(dev_pos)} attacks",
        flush=True,
    )
    best = None
    for c in (1.0, 3.0, 10.0):
        coef, bias = fit_logreg(x, y, w, c, NEG_SHARE)
        det = InjectionDetector(LinearModel(coef[None, :], np.array([bias], np.float32), ["injection"], {}), embed)
        neg_u = injection_eval(det, dev_user_neg)["score"]
        neg_p = injection_eval(det, dev_pass_neg)["score"]
        pos_eval = injection_eval(det, dev_pos)["score"]
        per_source = defaultdict(list)
        for f in (0.01, 0.02):
            thr_u = user_threshold(neg_u, neg_u[trig_mask], f)
            thr_p = roc_threshold(neg_p, f)
            for r, s in zip(dev_pos, pos_eval, strict=True):
                per_source[r.source].append(s >= (thr_p if r.kind == "passage" else thr_u))
        # mean TPR at the 1% and 2% operating points over the attack sets with at least 10 dev rows
        macro = float(np.mean([np.mean(v) for v in per_source.values() if len(v) >= 20]))
        print(
            f"  C={c}: dev macro TPR {macro:.3f} "
            + " ".join(f"{k.split('/')[1]}={np.mean(v):.2f}" for k, v in sorted(per_source.items())),
            flush=True,
        )
        if best is None or macro > best[0] + 1e-9:
            best = (macro, c, coef, bias)
    assert best is not None
    _, c, coef, bias = best

    # calibrate: 0.5 == the user operating threshold at 1% pooled FPR (and <= 5% on trigger-word prompts)
    raw = InjectionDetector(LinearModel(coef[None, :], np.array([bias], np.float32), ["injection"], {}), embed)
    neg_clf = injection_eval(raw, dev_user_neg)["clf"]
    t_pool, t_trig = roc_threshold(neg_clf, 0.01), roc_threshold(neg_clf[trig_mask], 0.05)
    t1 = max(t_pool, t_trig)
    binding = "the trigger-word constraint" if t_trig >= t_pool else "the 1% pooled constraint"
    shift = -logit(t1)
    model = LinearModel(coef[None, :], np.array([bias + shift], np.float32), ["injection"], {})
    det = InjectionDetector(model, embed)
    thresholds: dict[str, dict[str, float]] = {}
    for route, negs in (("user", dev_user_neg), ("retrieved", dev_pass_neg)):
        scores = injection_eval(det, negs)["score"]
        thresholds[route] = {
            f"fpr_{f}": round(min(roc_threshold(scores, f), 0.999), 4) for f in (0.005, 0.01, 0.02, 0.05)
        }
        if route == "user":
            thresholds[route]["trigger_fpr_0.05"] = round(min(roc_threshold(scores[trig_mask], 0.05), 0.999), 4)
    meta = {"C": c, "calibration_shift": shift, "calibration_binding": binding, "thresholds": thresholds}
    print(f"  C={c}, calibration shift {shift:.3f}, thresholds {thresholds}", flush=True)
    return model, meta


def loso_injection(recs: list[Rec], indirect: list[Rec], embed: CachedEmbedder, c: float) -> dict[str, dict]:
    """Leave one attack family out of training entirely (direct and hidden); score all of its rows."""
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    families = sorted({r.source.split("/")[1] for r in used if r.inj == 1})
    dev_user_neg = [r for r in used if r.split == "dev" and is_user_benign(r)]
    dev_pass_neg = [r for r in used if r.split == "dev" and r.inj == 0 and r.kind == "passage"]
    out = {}
    for fam in families:
        train = [r for r in used if r.split == "train" and r.source.split("/")[1] != fam]
        x, y, w = two_stage_rows(train, embed)
        coef, bias = fit_logreg(x, y, w, c, NEG_SHARE)
        det = InjectionDetector(LinearModel(coef[None, :], np.array([bias], np.float32), ["injection"], {}), embed)
        for route, negs in (("user", dev_user_neg), ("retrieved", dev_pass_neg)):
            pos_recs = [
                r
                for r in used
                if r.inj == 1 and r.source.split("/")[1] == fam and (r.kind == "passage") == (route == "retrieved")
            ]
            if not pos_recs:
                continue
            neg = injection_eval(det, negs)
            ev = injection_eval(det, pos_recs)
            trig = np.array([is_trigger_prompt(r) for r in negs])

            def thr(scores: np.ndarray, f: float, route: str = route, trig: np.ndarray = trig) -> float:
                return user_threshold(scores, scores[trig], f) if route == "user" else roc_threshold(scores, f)

            row: dict = {"n": len(pos_recs), "route": route}
            for f in (0.01, 0.02, 0.05):
                row[f"tpr_at_dev_fpr_{f}"] = round(tpr_at(ev["score"], thr(neg["score"], f)), 3)
            row["tpr_classifier_only_at_dev_fpr_0.01"] = round(tpr_at(ev["clf"], thr(neg["clf"], 0.01)), 3)
            name = pos_recs[0].source
            out[name] = row
            print(f"  LOSO {name}: {row}", flush=True)
    return out


def injection_test_report(det: InjectionDetector, recs: list[Rec], indirect: list[Rec]) -> dict:
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    test = [r for r in used if r.split == "test"]
    ev = injection_eval(det, test)
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(test):
        by_src[r.source].append(i)
    neg_u = [i for i, r in enumerate(test) if is_user_benign(r)]
    neg_p = [i for i, r in enumerate(test) if r.inj == 0 and r.kind == "passage"]
    rep: dict = {"attacks": {}, "benign": {}}
    thr = det.thresholds
    for route, negs in (("user", neg_u), ("retrieved", neg_p)):
        bw = benign_weights([test[i] for i in negs])
        rep[f"thresholds_on_test_{route}"] = {f: roc_threshold(ev["score"][negs], f, bw) for f in (0.01, 0.02, 0.05)}
    for src, idx in sorted(by_src.items()):
        s = ev["score"][idx]
        if test[idx[0]].inj == 1:
            route = "retrieved" if test[idx[0]].kind == "passage" else "user"
            tt = rep[f"thresholds_on_test_{route}"]
            rep["attacks"][src] = {
                "n": len(idx),
                "route": route,
                "tpr_at_0.5": round(tpr_at(s, 0.5), 3),
                "tpr_at_test_fpr_0.01": round(tpr_at(s, tt[0.01]), 3),
                "tpr_at_test_fpr_0.02": round(tpr_at(s, tt[0.02]), 3),
                "tpr_at_test_fpr_0.05": round(tpr_at(s, tt[0.05]), 3),
                "tpr_at_dev_fpr_0.01": round(tpr_at(s, thr[route]["fpr_0.01"]), 3),
            }
        else:
            route = "retrieved" if test[idx[0]].kind == "passage" else "user"
            rep["benign"][src] = {
                "n": len(idx),
                "route": route,
                "fpr_at_0.5": round(float((s >= 0.5).mean()), 4),
                f"fpr_at_dev_{route}_fpr_0.01": round(float((s >= thr[route]["fpr_0.01"]).mean()), 4),
                "rule_hits": int(ev["rules"][idx].sum()),
            }
    return rep
