"""Retrieval parts on their own: reading, chunking, BM25, fusion, the local store and ingest."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from llmgw.retrieval import bm25, fusion
from llmgw.retrieval.chunking import chunk_document, model_tokenizer, word_tokenize
from llmgw.retrieval.collection import ChunkingSpec, CollectionError, CollectionSpec, SourceSpec, load_collection
from llmgw.retrieval.documents import Document, Section, SourceError, html_sections, markdown_sections, read_sources
from llmgw.retrieval.embeddings import Embedder
from llmgw.retrieval.ingest import ingest
from llmgw.retrieval.local import LocalStore
from llmgw.retrieval.service import Collection
from llmgw.retrieval.store import Query, StoredChunk

MARKDOWN = """# Guide

Intro paragraph.

## Install

Run the setup script.

```bash
# not a heading inside a fence
./setup.sh
```

### Offline

Set HF_HUB_OFFLINE.

## Use

Call the API.
"""


class HashBackend:
    """Deterministic vectors from word hashes: stands in for a model where the test is about bookkeeping."""

    name = "hash"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail_after: int | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # an interrupted ingest
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in bm25.analyze(text):
                out[row, hash(word) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_markdown_sections_follow_headings_not_fenced_comments() -> None:
    title, sections = markdown_sections(MARKDOWN)
    assert title == "Guide"
    assert [s.heading for s in sections] == ["Guide", "Guide > Install", "Guide > Install > Offline", "Guide > Use"]
    assert "# not a heading inside a fence" in sections[1].text


def test_html_sections_skip_scripts_and_follow_headings() -> None:
    html = (
        "<html><head><title>Page</title><script>var x = '<h1>no</h1>';</script></head><body>"
        "<h1>Top</h1><p>First &amp; foremost.</p><nav>menu</nav><h2>Sub</h2><ul><li>one</li><li>two</li></ul>"
        "</body></html>"
    )
    title, sections = html_sections(html)
    assert title == "Page"
    assert [(s.heading, s.text) for s in sections] == [("Top", "First & foremost."), ("Top > Sub", "one\n\ntwo")]


def test_chunks_respect_the_token_limit_sections_and_overlap() -> None:
    words = " ".join(f"w{i}." for i in range(300))
    doc = Document("d", "T", [Section("A", words), Section("B", "short section")], "d")
    spec = ChunkingSpec(max_tokens=50, overlap_tokens=10)
    chunks = chunk_document(doc, spec, word_tokenize)
    assert all(c.tokens <= 50 for c in chunks)
    assert chunks[-1].heading == "B" and chunks[-1].text == "short section"  # sections never mixed
    a = [c for c in chunks if c.heading == "A"]
    assert len(a) >= 6
    for before, after in itertools.pairwise(a):
        assert after.text.split()[0] in before.text.split()  # overlap: the next starts inside the previous
    every = set()
    for c in a:
        every.update(c.text.split())
    assert every == set(words.split())  # nothing lost


def test_model_tokenizer_counts_word_pieces() -> None:
    tokenize = model_tokenizer()
    spans = tokenize("Tokenization isn't trivial")
    assert len(spans) > 3  # word pieces, more than the 3 words
    doc = Document("d", "", [Section("", "antidisestablishmentarianism " * 100)], "d")
    chunks = chunk_document(doc, ChunkingSpec(max_tokens=64, overlap_tokens=0), tokenize)
    assert all(len(tokenize(c.text)) <= 64 for c in chunks)


def test_read_sources_formats_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(MARKDOWN)
    (tmp_path / "b.txt").write_text("plain text")
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "r1", "title": "R", "text": "record", "lang": "en"}) + "\n")
    docs = {d.id: d for d in read_sources([SourceSpec(path=".", metadata={"team": "x"})], tmp_path)}
    assert set(docs) == {"a.md", "b.txt", "r1"}
    assert docs["r1"].metadata == {"team": "x", "source": "c.jsonl", "lang": "en"}
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(SourceError, match=r"bad.jsonl:1: not JSON"):
        list(read_sources([SourceSpec(path="bad.jsonl")], tmp_path))
    with pytest.raises(SourceError, match="no such file"):
        list(read_sources([SourceSpec(path="missing/*.md")], tmp_path))


def test_document_ids_are_relative_to_the_collection_file_however_the_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source outside the collection's folder (``../shared``) and the same file named on the
    command line (from another working directory) give one id, never an absolute server path."""
    root = tmp_path / "retrieval"
    (tmp_path / "shared").mkdir(parents=True)
    root.mkdir()
    (tmp_path / "shared" / "a.md").write_text(MARKDOWN)
    sources = [SourceSpec(path="../shared", metadata={"kind": "guide"})]
    declared = list(read_sources(sources, root))
    assert [d.id for d in declared] == ["../shared/a.md"]
    monkeypatch.chdir(tmp_path / "shared")
    named = list(read_sources(sources, root, ["a.md"]))
    assert [d.id for d in named] == ["../shared/a.md"] and named[0].metadata["source"] == "../shared/a.md"
    assert str(tmp_path) not in named[0].id
    assert named[0].content_hash == declared[0].content_hash, "the declared source's metadata applies"


def test_collection_file_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("store: {kind: elastic}\nchunking: {max_tokens: 3}\n")
    with pytest.raises(CollectionError) as info:
        load_collection(tmp_path, "c")
    assert "store.kind" in str(info.value) and "chunking.max_tokens" in str(info.value)
    with pytest.raises(CollectionError, match="invalid collection name"):
        load_collection(tmp_path, "../etc")


def test_bm25_scores_as_lucene_does() -> None:
    texts = ["the cat sat", "the dog sat on the cat", "birds fly"]
    index = bm25.BM25Index(texts)
    scores = index.scores("cat")
    n, df, avgdl = 3, 2, (3 + 6 + 2) / 3

    def expected(tf: int, dl: int) -> float:
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))

    assert scores[0] == pytest.approx(expected(1, 3), rel=1e-5)
    assert scores[1] == pytest.approx(expected(1, 6), rel=1e-5)
    assert scores[2] == 0
    assert index.scores("CAT!")[0] == pytest.approx(scores[0])  # same analyzer: lower-cased words


def test_bm25_index_survives_save_and_load(tmp_path: Path) -> None:
    index = bm25.BM25Index(["alpha beta", "beta gamma", "gamma delta"])
    bm25.save(index, str(tmp_path / "i.npz"))
    loaded = bm25.load(str(tmp_path / "i.npz"))
    assert np.allclose(loaded.scores("beta gamma"), index.scores("beta gamma"))


def test_fusion_rrf_and_min_max() -> None:
    fused = fusion.rrf([["a", "b", "c"], ["b", "c", "d"]], rank_constant=60)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert [k for k, _ in fusion.top(fused, 2)] == ["b", "c"]
    weighted = fusion.rrf([["a", "b"], ["b", "a"]], rank_constant=1, weights=[0.9, 0.1])
    assert weighted["a"] == pytest.approx(0.9 / 2 + 0.1 / 3) and weighted["a"] > weighted["b"]
    mm = fusion.min_max([{"a": 0.9, "b": 0.5}, {"b": 10.0, "c": 2.0}], [0.5, 0.5])
    assert mm == {"a": pytest.approx(0.5), "b": pytest.approx(0.5), "c": pytest.approx(0.0)}


def _store_with(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    rows = [
        ("d1", "cats purr and sleep", {"team": "a", "lang": "en"}),
        ("d2", "dogs bark at cats", {"team": "b", "lang": "en"}),
        ("d3", "les chats dorment", {"team": "*", "lang": "fr"}),
    ]
    backend = HashBackend()
    for doc_id, text, meta in rows:
        chunk = StoredChunk(f"{doc_id}#h-0", doc_id, "h", 0, doc_id.upper(), "", text, meta)
        store.upsert(doc_id, "h", [chunk], backend.embed([chunk.search_text]))
    return store


def test_local_store_filters_modes_and_versions(tmp_path: Path) -> None:
    store = _store_with(tmp_path)
    vector = HashBackend().embed(["cats"])[0]
    hits = store.search(Query("cats", vector, 5, "bm25"))
    assert [h.chunk.doc_id for h in hits] == ["d1", "d2"] or [h.chunk.doc_id for h in hits] == ["d2", "d1"]
    only_b = store.search(Query("cats", vector, 5, "hybrid", {"team": ["b", "*"]}))
    assert {h.chunk.doc_id for h in only_b} <= {"d2", "d3"} and "d2" in {h.chunk.doc_id for h in only_b}
    assert store.search(Query("cats", vector, 5, "dense", {"lang": "de"})) == []
    dense = store.search(Query("cats", vector, 3, "dense"))
    assert all(0.0 <= h.score <= 1.0 for h in dense)  # OpenSearch's cosinesimil score (1 + cos) / 2
    before = store.version()
    store.delete(["d2"])
    assert store.version() != before
    assert store.refresh() is True
    assert "d2" not in {h.chunk.doc_id for h in store.search(Query("cats", vector, 5, "hybrid"))}
    store.close()
    reopened = LocalStore(tmp_path / "store")  # persisted on disk, BM25 cache included
    assert reopened.manifest() == {"d1": "h", "d3": "h"}
    assert {h.chunk.doc_id for h in reopened.search(Query("cats", vector, 5, "bm25"))} == {"d1"}


def test_a_refresh_crossing_an_ingest_labels_its_snapshot_with_the_version_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway read the store's version, then its rows, in two statements: an ingest (another
    process) committing between them gave a snapshot of the new rows under the old version, and a
    BM25 file of the new rows named for the old version, which a replica still at that version
    (sharing the directory) would load over its own, different rows."""
    ingest_side = _store_with(tmp_path)
    gateway_side = LocalStore(tmp_path / "store")
    assert gateway_side.refresh() is True
    ingest_side.delete(["d3"])
    read_version = gateway_side.version

    def version_then_an_ingest_commits() -> str:
        version = read_version()
        chunk = StoredChunk("d4#h-0", "d4", "h", 0, "D4", "", "parrots talk", {})
        ingest_side.upsert("d4", "h", [chunk], HashBackend().embed([chunk.search_text]))
        return version

    monkeypatch.setattr(gateway_side, "version", version_then_an_ingest_commits)
    assert gateway_side.refresh() is True
    snapshot = gateway_side.snapshot()
    assert {c.doc_id for c in snapshot.chunks} == {"d1", "d2", "d4"}
    assert snapshot.version == ingest_side.version(), "the new rows under the old version"
    assert [p.name for p in (tmp_path / "store").glob("bm25-*.npz")] == [f"bm25-{snapshot.version}.npz"]


def test_hybrid_returns_as_many_hits_as_asked_when_the_sides_agree(tmp_path: Path) -> None:
    """k above the candidates per side: each side gives k, so the fused list is k long, not the union of two
    short lists (100 asked with 50 candidates per side gave 60 here: dense 0..49 and BM25 0..59 overlap)."""
    store = LocalStore(tmp_path / "store")
    for i in range(300):
        angle = i * 0.005  # dense ranks chunk 0 first, then 1, 2, ...
        vector = np.array([[math.cos(angle), math.sin(angle)]], dtype=np.float32)
        text = ("apple " if i < 60 else "pear ") + " ".join(f"w{i}x{j}" for j in range(i % 7 + 1))
        chunk = StoredChunk(f"d{i}#h-0", f"d{i}", "h", 0, "", "", text, {"half": i % 2})
        store.upsert(f"d{i}", "h", [chunk], vector)
    query = np.array([1.0, 0.0], dtype=np.float32)
    for fusion_name in ("rrf", "min_max"):
        hits = store.search(Query("apple", query, 100, "hybrid", {}, 50, fusion_name))  # type: ignore[arg-type]
        assert len(hits) == 100 and len({h.chunk.id for h in hits}) == 100
        filtered = store.search(Query("apple", query, 100, "hybrid", {"half": 0}, 50, fusion_name))  # type: ignore[arg-type]
        assert len(filtered) == 100 and all(h.chunk.metadata["half"] == 0 for h in filtered)
    assert len(store.search(Query("apple", query, 10, "hybrid", {}, 50, "rrf"))) == 10  # k below candidates: k
    store.close()


def _docs(texts: dict[str, str]) -> list[Document]:
    return [Document(k, k, [Section("", v)], k) for k, v in texts.items()]


def test_ingest_is_idempotent_and_prunes(tmp_path: Path) -> None:
    spec = CollectionSpec(name="c", chunking=ChunkingSpec(max_tokens=20, overlap_tokens=0))
    store, backend = LocalStore(tmp_path / "s"), HashBackend()
    embedder = Embedder(backend)
    first = ingest(spec, store, embedder, word_tokenize, _docs({"a": "alpha " * 30, "b": "beta", "c": "gamma"}))
    assert (first.added, first.unchanged, first.chunks) == (3, 0, 4)
    again = ingest(spec, store, embedder, word_tokenize, _docs({"a": "alpha " * 30, "b": "beta", "c": "gamma"}))
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 3, 0)
    calls = len(backend.calls)
    changed = ingest(spec, store, embedder, word_tokenize, _docs({"a": "alpha " * 30, "b": "beta two"}))
    assert (changed.updated, changed.unchanged, changed.deleted) == (1, 1, 1)
    assert backend.calls[calls:] == [["b\nbeta two"]]  # only the changed document was embedded
    store.refresh()
    assert {c.doc_id for c in store.snapshot().chunks} == {"a", "b"}


def test_interrupted_ingest_resumes_without_redoing_finished_documents(tmp_path: Path) -> None:
    spec = CollectionSpec(name="c", chunking=ChunkingSpec(max_tokens=20, overlap_tokens=0))
    store, backend = LocalStore(tmp_path / "s"), HashBackend()
    docs = _docs({f"d{i}": f"text number {i}" for i in range(10)})
    backend.fail_after = 2
    with pytest.raises(KeyboardInterrupt):
        ingest(spec, store, Embedder(backend), word_tokenize, docs, batch_chunks=3)
    done = store.manifest()
    assert len(done) == 6  # two batches of three written whole, the third lost
    backend.fail_after = None
    resumed = ingest(spec, store, Embedder(backend), word_tokenize, docs, batch_chunks=3)
    assert (resumed.added, resumed.unchanged) == (4, 6)
    assert len(store.manifest()) == 10


def test_tenant_field_restricts_a_caller_to_its_own_and_shared_chunks(tmp_path: Path) -> None:
    store = _store_with(tmp_path)
    spec = CollectionSpec(name="c", tenant_field="team")
    collection = Collection(spec, Embedder(HashBackend()), store)
    seen_a = {h.chunk.doc_id for h in collection.search("cats chats", 5, tenant="a", mode="hybrid")}
    assert seen_a <= {"d1", "d3"} and "d1" in seen_a
    # a request's own filter cannot widen the tenant restriction
    assert "d2" not in {h.chunk.doc_id for h in collection.search("dogs", 5, {"team": "b"}, tenant="a", mode="bm25")}
    assert {h.chunk.doc_id for h in collection.search("cats chats dogs", 5, mode="bm25")} <= {"d3"}


def test_hnsw_local_index_finds_what_exact_search_finds(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [StoredChunk(f"c{i}", "all", "h", i, "", "", f"text {i}", {"even": i % 2 == 0}) for i in range(3000)]
    exact, hnsw = LocalStore(tmp_path / "e", index="exact"), LocalStore(tmp_path / "h", index="hnsw")
    for store in (exact, hnsw):
        store.upsert("all", "h", chunks, vectors)
        store.refresh()
    assert exact.snapshot().graph is None and hnsw.snapshot().graph is not None
    agree = 0
    for q in vectors[:50]:
        a = [h.chunk.id for h in exact.search(Query("", q, 5, "dense"))]
        b = [h.chunk.id for h in hnsw.search(Query("", q, 5, "dense"))]
        agree += a[0] == b[0]
        assert exact.search(Query("", q, 1, "dense"))[0].score == pytest.approx(1.0)  # itself, cos 1 → 1.0
    assert agree >= 48
    filtered = hnsw.search(Query("", vectors[1], 3, "dense", {"even": False}))  # filters search exactly
    assert filtered[0].chunk.id == "c1" and all(int(h.chunk.id[1:]) % 2 == 1 for h in filtered)
