"""Semantic-cache lookup latency at 10k and 100k entries in one scope, query embedding included.

    OMP_NUM_THREADS=1 python -m bench.cache_latency [--sizes 10000 100000] [--queries 300]

One scope holds all the entries (the worst case: lookups only ever search their own scope). The
entries are the COVID questions' vectors plus noisy copies of them (so neighbourhoods look like
real questions, not random points). A lookup is what the gateway does on its worker thread:
embed the question (float ONNX MiniLM, the shipped encoder), search the scope (exact below ``ann_min_entries``, HNSW
above), verify and match the candidates (``llmgw.cache.match``: the verifier, the answer check, the margin),
and parse the question for the role alignment (``llmgw.cache.roles``) as a lookup does when a
candidate passes the threshold and the word verifier: always here, the worst case (the stored
questions' signatures are parsed at insertion, off the lookup path). ``vector_given_*`` is the same
lookup without the embedding: what it costs when the input guards already embedded the turn.
Wall and thread-CPU times are reported: the machine is shared, and
CPU time shows the cost without the neighbours' load.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache_quality import DEFAULT_DATA
from llmgw import encoders
from llmgw.cache import roles
from llmgw.cache.align import verify
from llmgw.cache.bounds import threshold_for
from llmgw.cache.embed import embed as memoised
from llmgw.cache.lexicon import lexicon
from llmgw.cache.match import Rule, match
from llmgw.cache.store import Entry, MemoryStore

#: The shipped rule (the default error bound's threshold, the verifier, the margin), and the same with the
#: opt-in answer check on too (every entry has an answer vector): the worst case.
RULES = {
    "shipped": Rule(threshold=threshold_for(0.01), margin=0.06),
    "answer+margin": Rule(threshold=threshold_for(0.01), answer_threshold=0.62, answer_drop=0.12, margin=0.06),
}


def embed(text: str) -> np.ndarray | None:
    """Every lookup pays for its embedding: repeated questions must not be free here (neither the
    cache's memo nor the encoder's kept vectors answer it)."""
    encoders.encoder("float").forget()
    return memoised.__wrapped__(text)


def questions(path: Path) -> tuple[list[str], list[str]]:
    with open(path / "eval_question_similarity_en.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    stored = sorted({r["question_1"] for r in rows})
    asked = sorted({r["question_2"] for r in rows})
    return stored, asked


def fill(n: int, base: np.ndarray, texts: list[str], ann_min: int, seed: int = 1) -> MemoryStore:
    rng = np.random.default_rng(seed)
    store = MemoryStore(ann_min=ann_min)
    now = time.time()
    for i in range(n):
        if i < len(base):
            vector, text = base[i], texts[i]
        else:
            noisy = base[i % len(base)] + rng.normal(0, 0.06, base.shape[1]).astype(np.float32)
            vector, text = noisy / np.linalg.norm(noisy), f"{texts[i % len(texts)]} (variant {i})"
        store.add(Entry(key=f"k{i}", scope="s", route="r", question=text, completion={}, created=now,
                        expires=now + 3600, vector=vector.astype(np.float32),
                        answer_vector=vector.astype(np.float32)), max_entries=n + 1)  # fmt: skip
    index = store.indexes["s"]
    while n >= ann_min and (index.graph is None or index.graph.ntotal != len(index.keys)):
        time.sleep(0.2)  # the HNSW graph is built in the background
    return store


def measure(store: MemoryStore, asked: list[str], rule: Rule) -> dict[str, Any]:
    walls, cpus, matches, parses, given = [], [], [], [], []
    for i, text in enumerate(asked):
        tag = "".join(chr(97 + int(d)) for d in str(i))  # letters, not a number: the verifier's full path
        text = f"{text} {tag}"  # a question the verifier has not parsed yet
        wall, cpu = time.perf_counter(), time.thread_time()
        vector = embed(text)
        assert vector is not None
        embedded = time.perf_counter()
        found = store.nearest("s", vector, 4)
        started = time.thread_time()
        match(text, vector, found, rule, verify)
        matches.append(time.thread_time() - started)
        started = time.thread_time()
        roles.signature.__wrapped__(text)  # not memoised: every lookup pays for its parse
        parses.append(time.thread_time() - started)
        walls.append(time.perf_counter() - wall)
        given.append(time.perf_counter() - embedded)
        cpus.append(time.thread_time() - cpu)
    ms = 1000.0
    return {
        "p50_ms": float(np.percentile(walls, 50) * ms),
        "p99_ms": float(np.percentile(walls, 99) * ms),
        # the same lookup when the question's vector is already known: with input guards on, the
        # injection guard embedded the same turn and the encoder kept its vector (llmgw.encoders)
        "vector_given_p50_ms": float(np.percentile(given, 50) * ms),
        "vector_given_p99_ms": float(np.percentile(given, 99) * ms),
        "cpu_p50_ms": float(np.percentile(cpus, 50) * ms),
        "cpu_p99_ms": float(np.percentile(cpus, 99) * ms),
        "match_cpu_p50_ms": float(np.percentile(matches, 50) * ms),
        "match_cpu_p99_ms": float(np.percentile(matches, 99) * ms),
        "parse_cpu_p50_ms": float(np.percentile(parses, 50) * ms),
        "parse_cpu_p99_ms": float(np.percentile(parses, 99) * ms),
    }


def recall(store: MemoryStore, vectors: np.ndarray) -> float:
    """Share of queries whose HNSW top-1 is the exact top-1."""
    index = store.indexes["s"]
    n = len(index.keys)
    agree = 0
    for v in vectors:
        exact = index.keys[int(np.argmax(index.matrix[:n] @ v))]
        agree += index.search(v, 1)[0][0] == exact
    return agree / len(vectors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--ann-min", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "cache_latency.json")
    args = parser.parse_args()
    stored, asked = questions(DEFAULT_DATA)
    asked = (asked * (args.queries // len(asked) + 1))[: args.queries]
    base = np.stack([embed(t) for t in stored])  # also warms the encoder
    lexicon()  # the verifier's WordNet, loaded at start-up in the gateway
    roles.warm()  # and the parser
    embed_only = []
    for text in asked[:100]:
        t = time.perf_counter()
        embed(text)
        embed_only.append(time.perf_counter() - t)
    result: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.ctime(),
                              "rules": {name: str(rule) for name, rule in RULES.items()},
                              "embed_p50_ms": float(np.percentile(embed_only, 50) * 1000), "sizes": {}}  # fmt: skip
    for n in args.sizes:
        started = time.perf_counter()
        store = fill(n, base, stored, args.ann_min)
        built = time.perf_counter() - started
        row: dict[str, Any] = {name: measure(store, asked, rule) for name, rule in RULES.items()}
        index = store.indexes["s"]
        row["search"] = "hnsw" if index.graph is not None else "exact"
        row["load_average_1m"] = round(os.getloadavg()[0], 2)  # the machine is shared: how busy it was
        row["fill_s"] = round(built, 1)
        query_vectors = np.stack([embed(t) for t in asked[:100]])
        if index.graph is not None:
            row["hnsw_top1_recall"] = recall(store, query_vectors)
        t = time.perf_counter()
        for v in query_vectors:
            index.matrix[: len(index.keys)] @ v
        row["exact_matvec_ms"] = (time.perf_counter() - t) * 1000 / len(query_vectors)
        result["sizes"][str(n)] = row
        print(n, json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
