"""Retrieval quality, latency and ingest throughput of the local store, on COVID-QA.

    OMP_NUM_THREADS=2 .venv/bin/python -m bench.retrieval [--data ../shared/data/rag/covid_qa]
        [--sizes 10000,100000] [--latency-queries 300] [--out bench/results/retrieval.json]

* ingest: the 2,284 passages through ``llmgw.retrieval.ingest`` (chunking with the model's tokenizer,
  all-MiniLM-L6-v2 embeddings on every core, SQLite writes): chunks per second;
* quality: recall@5, nDCG@10 and MRR@10 of dense, BM25 and hybrid (RRF and min-max) search; a
  passage ranks where its best chunk ranks (binary relevance from qrels.tsv). The questions are
  split in two by a hash of their id: the fusion weight is chosen on the ``dev`` half and every
  reported number is on the ``test`` half, which no choice looked at;
* latency: search p50/p99 excluding the query embedding at each size, the store scaled up with
  synthetic neighbours of the real chunks (vectors = real vector + Gaussian noise, text = the real
  text with 30% of its words dropped); query embedding p50/p99 on one thread.

Chunking and the models are the shipped defaults, chosen before looking at this data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from llmgw.retrieval import bm25, fusion
from llmgw.retrieval.chunking import model_tokenizer
from llmgw.retrieval.collection import CollectionSpec
from llmgw.retrieval.documents import Document, Section
from llmgw.retrieval.embeddings import Embedder, LocalBackend
from llmgw.retrieval.ingest import ingest
from llmgw.retrieval.local import LocalStore, Snapshot
from llmgw.retrieval.store import Query, StoredChunk

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "rag" / "covid_qa"
MODES = {
    "dense": ("dense", "rrf"),
    "bm25": ("bm25", "rrf"),
    "hybrid_rrf": ("hybrid", "rrf"),
    "hybrid_min_max": ("hybrid", "min_max"),
}


def load(data: Path) -> tuple[list[Document], list[dict[str, Any]], dict[str, set[str]]]:
    docs = []
    for line in (data / "passages.jsonl").read_text().splitlines():
        p = json.loads(line)
        docs.append(
            Document(
                p["_id"], p.get("title") or "", [Section("", p["text"])], "passages.jsonl", {"article": p["doc_id"]}
            )
        )
    queries = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines()]
    qrels: dict[str, set[str]] = {}
    for line in (data / "qrels.tsv").read_text().splitlines()[1:]:
        qid, pid, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(pid)
    return docs, [q for q in queries if q["_id"] in qrels], qrels


def metrics(ranked: list[str], relevant: set[str]) -> dict[str, float]:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    rr = next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if d in relevant), 0.0)
    return {"recall@5": len(relevant & set(ranked[:5])) / len(relevant), "ndcg@10": dcg / ideal, "mrr@10": rr}


def split(query_id: str) -> str:
    """Half the questions tune the fusion weight, the other half is reported (stable, by hash)."""
    return "dev" if hashlib.sha256(query_id.encode()).digest()[0] % 2 == 0 else "test"


def passages(hits: list[tuple[str, float]], doc_of: dict[str, str]) -> list[str]:
    seen: list[str] = []
    for chunk_id, _ in hits:
        doc = doc_of[chunk_id]
        if doc not in seen:
            seen.append(doc)
    return seen[:10]


def mean_metrics(rankings: list[list[str]], relevant: list[set[str]]) -> dict[str, float]:
    sums = {"recall@5": 0.0, "ndcg@10": 0.0, "mrr@10": 0.0}
    for ranked, rel in zip(rankings, relevant, strict=True):
        for key, value in metrics(ranked, rel).items():
            sums[key] += value
    return {k: round(v / max(1, len(rankings)), 4) for k, v in sums.items()}


def quality(
    store: LocalStore, queries: list[dict[str, Any]], vectors: np.ndarray, qrels: dict[str, set[str]]
) -> dict[str, Any]:
    """Dense, BM25 and hybrid; the hybrid weight chosen on the dev half, every number on the test half."""
    candidates = CollectionSpec().search.candidates
    sides = []  # per query: (dense top candidates, bm25 top candidates) as chunk id → score
    doc_of: dict[str, str] = {}
    for q, v in zip(queries, vectors, strict=True):
        per = []
        for mode in ("dense", "bm25"):
            hits = store.search(Query(q["text"], v, candidates, mode))  # type: ignore[arg-type]
            doc_of.update({h.chunk.id: h.chunk.doc_id for h in hits})
            per.append({h.chunk.id: h.score for h in hits})
        sides.append(per)
    halves = {name: [i for i, q in enumerate(queries) if split(q["_id"]) == name] for name in ("dev", "test")}

    def fused(i: int, technique: str, w: float) -> list[str]:
        dense, keyword = sides[i]
        if technique == "rrf":
            rank = lambda d: [k for k, _ in sorted(d.items(), key=lambda item: -item[1])]  # noqa: E731
            scores = fusion.rrf([rank(dense), rank(keyword)], 60, [w, 1 - w])
        else:
            scores = fusion.min_max([dense, keyword], [w, 1 - w])
        return passages(fusion.top(scores, 40), doc_of)

    out: dict[str, Any] = {"questions": {k: len(v) for k, v in halves.items()}}
    relevant = {k: [qrels[queries[i]["_id"]] for i in idx] for k, idx in halves.items()}
    for name in ("dense", "bm25"):
        side = 0 if name == "dense" else 1
        rankings = [passages(fusion.top(sides[i][side], 40), doc_of) for i in halves["test"]]
        out[name] = mean_metrics(rankings, relevant["test"])
    grid = [round(0.1 * i, 1) for i in range(1, 10)]
    for technique in ("rrf", "min_max"):
        dev = {
            w: mean_metrics([fused(i, technique, w) for i in halves["dev"]], relevant["dev"])["ndcg@10"] for w in grid
        }
        best = max(grid, key=lambda w: (dev[w], -abs(w - 0.5)))
        for w, label in ((0.5, "equal weights"), (best, "weight chosen on dev")):
            key = f"hybrid_{technique}_w{w}"
            out[key] = {
                **mean_metrics([fused(i, technique, w) for i in halves["test"]], relevant["test"]),
                "dense_weight": w,
                "how": label,
            }
        out[f"dev_ndcg_{technique}"] = dev
    for key, value in out.items():
        print(key, value)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_ms": round(s[len(s) // 2] * 1000, 3),
        "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 3),
    }


def scaled(snapshot: Snapshot, size: int, rng: np.random.Generator) -> Snapshot:
    """``size`` chunks: the real ones, then noisy neighbours of them."""
    real = len(snapshot.chunks)
    chunks: list[StoredChunk] = list(snapshot.chunks[:size])
    vectors = [snapshot.vectors[: min(size, real)]]
    extra = size - min(size, real)
    if extra > 0:
        source = rng.integers(0, real, extra)
        noisy = snapshot.vectors[source] + rng.normal(0, 0.04, (extra, snapshot.vectors.shape[1])).astype(np.float32)
        vectors.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        pyrng = random.Random(7)
        for n, i in enumerate(source):
            c = snapshot.chunks[int(i)]
            words = [w for w in c.text.split() if pyrng.random() > 0.3]
            chunks.append(StoredChunk(f"syn{n}", f"syn{n}", "h", 0, c.title, "", " ".join(words), {"article": "syn"}))
    matrix = np.ascontiguousarray(np.concatenate(vectors), dtype=np.float32)
    return Snapshot(f"scaled-{size}", chunks, matrix, bm25.BM25Index([c.search_text for c in chunks]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    parser.add_argument("--store", type=Path, help="keep the ingested store here and reuse it (ingest then skips)")
    parser.add_argument("--skip-quality", action="store_true", help="latency only")
    parser.add_argument(
        "--local-index", choices=["exact", "hnsw"], default="exact", help="store.local_index (auto = hnsw at 100k)"
    )
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # as in the gateway (llmgw.retrieval.service)

    docs, queries, qrels = load(args.data)
    spec = CollectionSpec(name="covid")
    embedder = Embedder(LocalBackend(spec.embedding), cache_size=0)
    tokenize = model_tokenizer()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "chunking": spec.chunking.model_dump(),
    }

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(args.store or Path(tmp) / "store", index=args.local_index)
        result["local_index"] = args.local_index
        embedder.documents(["warm up"])
        load_before = os.getloadavg()[0]
        summary = ingest(spec, store, embedder, tokenize, docs)
        result["ingest"] = {
            "documents": summary.added,
            "chunks": summary.chunks,
            "seconds": round(summary.seconds, 1),
            "chunks_per_s": round(summary.chunks_per_s, 1),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
        }
        print("ingest:", result["ingest"])
        store.refresh()

        texts = [q["text"] for q in queries]
        vectors = embedder.documents(texts)
        if not args.skip_quality:
            result["quality"] = quality(store, queries, vectors, qrels)
        torch.set_num_threads(1)
        sample = random.Random(1).sample(range(len(queries)), min(args.latency_queries, len(queries)))
        timings = []
        for i in sample:
            started = time.perf_counter()
            embedder.backend.embed([texts[i]])
            timings.append(time.perf_counter() - started)
        result["query_embedding_1_thread"] = percentiles(timings)
        print("query embedding:", result["query_embedding_1_thread"])

        rng = np.random.default_rng(0)
        result["latency"] = {}
        for size in [int(s) for s in args.sizes.split(",")]:
            store._snapshot = scaled(store.snapshot(), size, rng)
            built = time.perf_counter()
            store._snapshot.graph = store._graph(store._snapshot.vectors)
            result.setdefault("graph_build_s", {})[str(size)] = round(time.perf_counter() - built, 1)
            row: dict[str, Any] = {}
            for name, (mode, fusion) in MODES.items():
                samples = []
                for i in sample:
                    started = time.perf_counter()
                    store.search(Query(texts[i], vectors[i], 5, mode, {}, 50, fusion))  # type: ignore[arg-type]
                    samples.append(time.perf_counter() - started)
                row[name] = percentiles(samples)
            filtered = []
            for i in sample:
                started = time.perf_counter()
                store.search(Query(texts[i], vectors[i], 5, "hybrid", {"article": ["630", "syn"]}, 50, "rrf"))
                filtered.append(time.perf_counter() - started)
            row["hybrid_rrf_filtered"] = percentiles(filtered)
            result["latency"][str(size)] = row
            print(size, row)
        store.close()
    result["load_at_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
