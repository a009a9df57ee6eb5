"""Keeping a store in step with a collection's sources.

Idempotent by content hash: an unchanged document costs a hash, a changed one is re-chunked and
re-embedded, and (on a run over the collection's declared sources) a document that disappeared
is deleted. Each document is written in one step, so an interrupted run resumes where it
stopped: finished documents are unchanged on the next run and are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from llmgw.retrieval.chunking import Tokenize, chunk_document
from llmgw.retrieval.collection import CollectionSpec
from llmgw.retrieval.documents import Document
from llmgw.retrieval.embeddings import Embedder
from llmgw.retrieval.store import Store, StoredChunk


@dataclass(slots=True)
class Summary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    seconds: float = 0.0
    skipped_empty: int = 0
    errors: list[str] = field(default_factory=list)
    screened: int = 0
    screen_seconds: float = 0.0
    #: chunks whose text reads like an instruction to a model (screened at ingest): their ids
    flagged: list[str] = field(default_factory=list)

    @property
    def embed_seconds(self) -> float:
        """The ingest's time without screening (reported apart)."""
        return self.seconds - self.screen_seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def line(self) -> str:
        screened = (
            f"; {self.screened} screened in {self.screen_seconds:.1f} s, {len(self.flagged)} flagged"
            if self.screened
            else ""
        )
        if self.skipped_empty:
            screened += f"; {self.skipped_empty} without text (nothing stored)"
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.deleted} deleted; "
            f"{self.chunks} chunks embedded in {self.embed_seconds:.1f} s "
            f"({self.chunks_per_s:.0f} chunks/s){screened}"
        )


@dataclass(slots=True)
class _Pending:
    doc: Document
    doc_hash: str
    chunks: list[StoredChunk]
    new: bool


def ingest(
    spec: CollectionSpec,
    store: Store,
    embedder: Embedder,
    tokenize: Tokenize,
    documents: Iterable[Document],
    *,
    prune: bool = True,
    progress: Callable[[int, int], None] | None = None,
    batch_chunks: int = 256,
    screen: Callable[[list[StoredChunk]], list[StoredChunk]] | None = None,
) -> Summary:
    """Bring ``store`` in line with ``documents``; ``prune`` deletes stored documents not among them.

    ``screen`` (``llmgw.retrieval.screening``) scores new chunks for hidden instructions before
    they are written, stores each result with its chunk and returns the ones it flags."""
    started = time.perf_counter()
    summary = Summary()
    stored = store.manifest()
    seen: set[str] = set()
    pending: list[_Pending] = []
    waiting = 0

    def flush() -> None:
        nonlocal waiting
        texts = [c.search_text for p in pending for c in p.chunks]
        vectors = embedder.documents(texts) if texts else np.zeros((0, 0), np.float32)
        if screen is not None:
            fresh = [c for p in pending for c in p.chunks]
            began = time.perf_counter()
            summary.flagged.extend(c.id for c in screen(fresh))
            summary.screen_seconds += time.perf_counter() - began
            summary.screened += len(fresh)
        at = 0
        for p in pending:
            n = len(p.chunks)
            store.upsert(p.doc.id, p.doc_hash, p.chunks, vectors[at : at + n])
            at += n
            summary.chunks += n
            if p.new:
                summary.added += 1
            else:
                summary.updated += 1
            if progress:
                progress(1, n)
        pending.clear()
        waiting = 0

    for doc in documents:
        if doc.id in seen:
            summary.errors.append(f"duplicate document id {doc.id!r} (from {doc.source}); the first one was kept")
            continue
        seen.add(doc.id)
        doc_hash = doc.content_hash
        if stored.get(doc.id) == doc_hash:
            summary.unchanged += 1
            if progress:
                progress(1, 0)
            continue
        chunks = chunk_document(doc, spec.chunking, tokenize)
        if not chunks:
            summary.skipped_empty += 1
            if doc.id not in stored:
                # nothing to store, and no store keeps a document without chunks (OpenSearch cannot:
                # its documents are their chunks): counting it "added" on every run would be a lie
                if progress:
                    progress(1, 0)
                continue
        metadata = dict(doc.metadata)
        if doc.title:
            metadata.setdefault("title", doc.title)
        stored_chunks = [StoredChunk.of(c, doc_hash, metadata) for c in chunks]
        pending.append(_Pending(doc, doc_hash, stored_chunks, doc.id not in stored))
        waiting += len(stored_chunks)
        if waiting >= batch_chunks:
            flush()
    flush()
    if prune:
        gone = sorted(set(stored) - seen)
        if gone:
            store.delete(gone)
            summary.deleted = len(gone)
    summary.seconds = time.perf_counter() - started
    return summary
