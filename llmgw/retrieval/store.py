"""The interface both stores implement, and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from llmgw.retrieval.chunking import Chunk

Mode = Literal["hybrid", "dense", "bm25"]
#: field → value, or a list of accepted values; all fields must match
Filters = dict[str, Any]
SHARED_TENANT = "*"  # a chunk every tenant may see


@dataclass(slots=True)
class StoredChunk:
    id: str
    doc_id: str
    doc_hash: str
    ord: int
    title: str
    heading: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, chunk: Chunk, doc_hash: str, metadata: dict[str, Any]) -> StoredChunk:
        """A chunk with its own copy of the document's ``metadata``: what is stored per chunk (the
        ingest screen's verdict) must not land on every chunk of the document."""
        chunk_id = f"{chunk.doc_id}#{doc_hash[:12]}-{chunk.ord}"
        return cls(chunk_id, chunk.doc_id, doc_hash, chunk.ord, chunk.title, chunk.heading, chunk.text, dict(metadata))

    @property
    def search_text(self) -> str:
        head = " > ".join(p for p in (self.title, self.heading) if p)
        return f"{head}\n{self.text}" if head else self.text


@dataclass(slots=True)
class Hit:
    chunk: StoredChunk
    score: float
    dense: float | None = None
    bm25: float | None = None

    def public(self) -> dict[str, Any]:
        """What the client sees about a source (ids, title, scores; never the whole text)."""
        out: dict[str, Any] = {
            "id": self.chunk.id,
            "doc_id": self.chunk.doc_id,
            "title": self.chunk.title,
            "score": round(self.score, 6),
        }
        if self.chunk.heading:
            out["section"] = self.chunk.heading
        if "source" in self.chunk.metadata:
            out["source"] = self.chunk.metadata["source"]
        return out


@dataclass(slots=True)
class Query:
    text: str
    vector: np.ndarray | None
    k: int
    mode: Mode = "hybrid"
    filters: Filters = field(default_factory=dict)  # the tenant restriction is one of them
    candidates: int = 50
    fusion: Literal["rrf", "min_max"] = "min_max"
    rrf_k: int = 60
    dense_weight: float = 0.3

    @property
    def per_side(self) -> int:
        """Hits taken from each side of a hybrid search: ``candidates``, and never fewer than ``k``.

        Fewer than ``k`` per side caps the fused list at the size of the two lists' union, which
        is short of ``k`` whenever the sides agree (100 asked with 50 per side gave about 60).
        """
        return max(self.candidates, self.k)


class Store(Protocol):
    def manifest(self) -> dict[str, str]:
        """doc_id → content hash of every document stored completely."""
        ...

    def upsert(self, doc_id: str, doc_hash: str, chunks: list[StoredChunk], vectors: np.ndarray) -> None:
        """Replace a document's chunks; readers never see it half-written."""
        ...

    def delete(self, doc_ids: list[str]) -> None: ...

    def search(self, query: Query) -> list[Hit]: ...

    def version(self) -> str:
        """Changes whenever the stored chunks change (the semantic cache keys on it)."""
        ...

    def count(self) -> int: ...

    def refresh(self) -> bool:
        """Load what changed since the last call (blocking); True when something did."""
        ...

    def close(self) -> None: ...


def matches(metadata: dict[str, Any], filters: Filters) -> bool:
    for name, wanted in filters.items():
        value = metadata.get(name)
        if isinstance(wanted, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True
