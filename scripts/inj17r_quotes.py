#!/usr/bin/env python
"""Experiment inj17r: quote-aware injection rules for retrieved passages and tool output (issue 17).

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/inj17r_quotes.py --stage calibration
    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/inj17r_quotes.py --stage test

``--stage calibration`` scores the calibration split only, for every configuration: passage unit
{shipped, inj17q (``bench/results/inj17q-model``)} x rules {as shipped, quote-aware with each
``QuoteKinds``}, points recomputed by the shipped rule (``passage_broad17q.points_from``), and
chooses one (``choose``; the rule is ``docs/experiments/inj17r-rule.md``); it writes the candidate files
to ``bench/results/inj17r-model`` and ``bench/results/inj17r-calibration.json``. It also measures the
rules' cost per 700-character window (clause e). ``--stage test`` (only after the rule is committed)
reads the project's test split for clause (d): ``bench/results/inj17r-test.json``.
The rows are inj17q's (``guard_training/passage_broad17q.all_rows``), embedded once and cached.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)


import numpy as np  # noqa: E402
from guard_training import passage_broad17q as pb  # noqa: E402
from guard_training.calibrated import plain_windows  # noqa: E402
from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.vector_cache import VectorCache  # noqa: E402
from inj17q_passages import arguments  # noqa: E402

from llmgw.guards.classifier import LinearModel, load  # noqa: E402
from llmgw.guards.injection import InjectionDetector, QuoteKinds  # noqa: E402
from llmgw.guards.normalize import normalize  # noqa: E402

RESULTS = REPO / "bench" / "results"
MODEL_OUT = RESULTS / "inj17r-model"
UNITS = ("shipped", "inj17q")
KINDS: tuple[QuoteKinds | None, ...] = (None, *QuoteKinds)
#: the over-defence the experiment is about: benign calibration text that quotes attack phrasing
QUOTED_BENIGN = (pb.QUOTED, "passage/security_docs")
PLANTED_TOLERANCE = 0.02
TIE = 0.01


def config_name(unit: str, kinds: QuoteKinds | None) -> str:
    return f"{unit} unit, rules {'as shipped' if kinds is None else 'quote-aware ' + kinds.value}"


def detector(shipped: InjectionDetector, unit: LinearModel, embed: VectorCache, kinds: QuoteKinds | None):
    return InjectionDetector(
        shipped.model, embed=embed, lexical=shipped.lexical or False, passage_model=unit, quotes=kinds or False
    )


def quoted_benign_rate(table: dict) -> float:
    n = sum(table[s]["n"] for s in QUOTED_BENIGN if s in table)
    hits = sum(table[s]["hits_at"][pb.DROP] for s in QUOTED_BENIGN if s in table)
    return hits / n if n else 0.0


def choose(variants: dict[str, dict]) -> str:
    """The rule's choice (``docs/experiments/inj17r-rule.md``). The unit: the one whose best quote-aware
    configuration drops the most planted attacks (macro over the planted calibration sources).
    Within it, among its quote-aware configurations whose macro planted drop is at least the same
    unit's with the rules as shipped - 0.02: the *narrowest* span set (quotes, then + code and
    blockquotes, then + fences: fewer places where an attacker's rule match stops scoring) whose drop
    rate on the quoted benign calibration text is within 0.01 of the lowest among them."""
    aware = {k: v for k, v in variants.items() if v["kinds"] is not None}
    unit = max(UNITS, key=lambda u: (max(v["macro_planted_drop"] for v in aware.values() if v["unit"] == u),
                                     -UNITS.index(u)))  # fmt: skip
    base = next(v["macro_planted_drop"] for v in variants.values() if v["unit"] == unit and v["kinds"] is None)
    ok = [k for k, v in aware.items() if v["unit"] == unit
          and v["macro_planted_drop"] >= base - PLANTED_TOLERANCE - 1e-9]  # fmt: skip
    low = min(variants[k]["quoted_benign_drop"] for k in ok)
    return next(k for k in ok if variants[k]["quoted_benign_drop"] <= low + TIE + 1e-9)


def calibrate(rows: list, embed: VectorCache, shipped: InjectionDetector, units: dict[str, LinearModel]) -> dict:
    cal = [r for r in rows if r.split == "calibration" and r.route == pb.ROUTE]
    own = shipped.operating_points(pb.ROUTE)
    out: dict = {"shipped_own_points": {"points": own}, "variants": {}}
    out["shipped_own_points"]["table"] = pb.hit_table(pb.scores_by_source(shipped, cal), own)
    out["shipped_own_points"]["macro_planted_drop"] = round(pb.macro_planted(out["shipped_own_points"]["table"]), 4)
    for u in UNITS:
        for kinds in KINDS:
            sc = pb.scores_by_source(detector(shipped, units[u], embed, kinds), cal)
            pts = pb.points_from(sc)
            table = pb.hit_table(sc, pts)
            v = {"unit": u, "kinds": kinds.value if kinds else None, "points": pts, "table": table,
                 "macro_planted_drop": round(pb.macro_planted(table), 4),
                 "quoted_benign_drop": round(quoted_benign_rate(table), 4)}  # fmt: skip
            out["variants"][config_name(u, kinds)] = v
            print(
                f"  {config_name(u, kinds)}: 2% point {pts[pb.DROP]:.3f}, macro planted "
                f"{v['macro_planted_drop']:.3f}, quoted benign dropped {v['quoted_benign_drop']:.3f}",
                flush=True,
            )
    out["chosen"] = choose(out["variants"])
    return out


def rule_cost(rows: list, shipped: InjectionDetector, kinds: QuoteKinds, n: int = 400) -> dict:
    """Clause (e): the rules' time per 700-character window, as shipped and quote-aware (p50 over
    calibration passage windows of >= 600 characters, best of 5 per window)."""
    wins = [w for r in rows if r.split == "calibration" and r.route == pb.ROUTE for w in plain_windows(r.text)]
    wins = [w for w in wins if len(w) >= 600][:n]
    fulls = [normalize(w).views() for w in wins]
    ship = InjectionDetector(shipped.model, embed=lambda t: np.zeros((len(t), 384)), lexical=False, quotes=False)
    cand = InjectionDetector(shipped.model, embed=lambda t: np.zeros((len(t), 384)), lexical=False, quotes=kinds)

    def per(det: InjectionDetector) -> list[float]:
        times = []
        for f in fulls:
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                det.evidence(f, pb.ROUTE)
                best = min(best, time.perf_counter() - t0)
            times.append(best * 1000)
        return times

    a, b = per(ship), per(cand)
    return {"windows": len(wins), "mean_chars": round(float(np.mean([len(w) for w in wins])), 1),
            "shipped_p50_ms": round(statistics.median(a), 4), "candidate_p50_ms": round(statistics.median(b), 4),
            "added_p50_ms": round(statistics.median([y - x for x, y in zip(a, b, strict=True)]), 4),
            "holds": statistics.median([y - x for x, y in zip(a, b, strict=True)]) <= 0.5}  # fmt: skip


def write_model(models: Path, unit_path: Path, kinds: QuoteKinds, pts: dict, chosen: str) -> None:
    src = load(models / "injection.npz")
    meta = json.loads(json.dumps(src.metadata))
    meta["operating_points"][pb.ROUTE] = pts
    meta["thresholds"] = meta["operating_points"]
    meta["passage_quotes"] = kinds.value
    meta["inj17r"] = {"config": chosen, "note": "scripts/inj17r_quotes.py; user unit and user points as shipped"}
    MODEL_OUT.mkdir(parents=True, exist_ok=True)
    LinearModel(src.weights, src.bias, src.classes, meta).save(MODEL_OUT / "injection.npz")
    unit = load(unit_path)
    pmeta = {**unit.metadata, "operating_points": meta["operating_points"], "thresholds": meta["operating_points"],
             "passage_quotes": kinds.value}  # fmt: skip
    LinearModel(unit.weights, unit.bias, ["injection"], pmeta).save(MODEL_OUT / "injection_passages.npz")
    shutil.copy(models / "injection_ngrams.npz", MODEL_OUT / "injection_ngrams.npz")


def _project(r: object) -> bool:
    """A benign passage row of the project's test split as it stood before inj17q."""
    src = r.source  # type: ignore[attr-defined]
    return not getattr(r, "extra", False) and src.startswith("passage/") and src != pb.QUOTED


def test_stage(rows: list, embed: VectorCache, shipped: InjectionDetector) -> dict:
    """Clause (d) on the project's test split: the candidate files as written vs the shipped files."""
    cand = InjectionDetector(MODEL_OUT / "injection.npz", embed=embed)
    pts, own = cand.operating_points(pb.ROUTE), shipped.operating_points(pb.ROUTE)
    test = [r for r in rows if r.split == "test" and r.route == pb.ROUTE]
    sc_c, sc_s = pb.scores_by_source(cand, test), pb.scores_by_source(shipped, test)
    out: dict = {"points": pts, "shipped_points": own,
                 "test_all": {"candidate": pb.hit_table(sc_c, pts), "shipped": pb.hit_table(sc_s, own)}}  # fmt: skip
    proj = [r for r in test if _project(r) and r.label == 0]
    pc_src, ps_src = pb.scores_by_source(cand, proj), pb.scores_by_source(shipped, proj)
    per = {}
    for s, v in pc_src.items():
        c, b = float((v >= pts[pb.DROP]).mean()), float((ps_src[s] >= own[pb.DROP]).mean())
        per[s] = {"n": len(v), "candidate": round(c, 4), "shipped": round(b, 4), "ok": c <= b + 0.01 + 1e-9}
    planted = [r for r in test if r.source.startswith("planted/")]
    texts, srcs = [r.text for r in planted], [pb.ROUTE] * len(planted)
    pc = float(np.mean([x.score >= pts[pb.DROP] for x in cand.score_many(texts, srcs)]))
    ps = float(np.mean([x.score >= own[pb.DROP] for x in shipped.score_many(texts, srcs)]))
    user = [r for r in rows if r.split == "test" and r.route == "user"]
    us = [x.score for x in shipped.score_many([r.text for r in user], ["user"] * len(user))]
    uc = [x.score for x in cand.score_many([r.text for r in user], ["user"] * len(user))]
    out["clause_d"] = {
        "per_source": per, "planted": {"n": len(planted), "candidate": round(pc, 4), "shipped": round(ps, 4),
                                       "ok": pc >= ps - 0.03 - 1e-9},
        "user": {"n": len(user), "identical_scores": bool(np.array_equal(us, uc))},
    }  # fmt: skip
    d = out["clause_d"]
    d["holds"] = all(v["ok"] for v in per.values()) and d["planted"]["ok"] and d["user"]["identical_scores"]
    return out


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    embed = VectorCache(args.cache)
    shipped = InjectionDetector(args.models / "injection.npz", embed=embed, quotes=False)
    rows = pb.all_rows(args.data or default_data_dir(), args.models / "injection_splits.json", embed)
    if args.stage == "test":
        out = test_stage(rows, embed, shipped)
        (RESULTS / "inj17r-test.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        print(json.dumps(out["clause_d"], indent=1))
        return
    unit_paths = {"shipped": args.models / "injection_passages.npz",
                  "inj17q": RESULTS / "inj17q-model" / "injection_passages.npz"}  # fmt: skip
    units = {u: load(p) for u, p in unit_paths.items()}
    cal = calibrate(rows, embed, shipped, units)
    ch = cal["variants"][cal["chosen"]]
    kinds = QuoteKinds(ch["kinds"])
    cal["rule_cost"] = rule_cost(rows, shipped, kinds)
    print(f"chosen: {cal['chosen']}; rule cost {cal['rule_cost']}", flush=True)
    write_model(args.models, unit_paths[ch["unit"]], kinds, ch["points"], cal["chosen"])
    (RESULTS / "inj17r-calibration.json").write_text(json.dumps(cal, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS / 'inj17r-calibration.json'} and {MODEL_OUT}")


if __name__ == "__main__":
    main()
