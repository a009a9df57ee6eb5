"""Token-aware chunking that follows the document's structure.

Sections (markdown headings, HTML headings and blocks) are never mixed in one chunk; inside a
section, paragraphs then sentences are packed up to ``max_tokens`` of the embedding model's own
tokenizer, so no chunk is silently truncated by the model. Consecutive chunks of a section share
``overlap_tokens`` so that an answer spanning a boundary is still found whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llmgw.retrieval.collection import ChunkingSpec
from llmgw.retrieval.documents import Document

PARAGRAPHS = re.compile(r"\n\s*\n")
SENTENCES = re.compile(r"(?<=[.!?。])\s+(?=\S)")
WORD = re.compile(r"\S+")

#: text → character offsets (start, end) of each token
Tokenize = Callable[[str], list[tuple[int, int]]]


def word_tokenize(text: str) -> list[tuple[int, int]]:
    """A stand-in when the embedding model's tokenizer is not local (provider embeddings)."""
    return [m.span() for m in WORD.finditer(text)]


def model_tokenizer(path: str | None = None) -> Tokenize:
    """The local embedding model's word pieces, with their character offsets."""
    from llmgw import embedder

    tokenizer = embedder.load(path or embedder.model_path()).tokenizer

    def tokenize(text: str) -> list[tuple[int, int]]:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(span) for span in encoded["offset_mapping"]]

    return tokenize


@dataclass(slots=True)
class Chunk:
    doc_id: str
    ord: int
    title: str
    heading: str
    text: str
    tokens: int

    @property
    def search_text(self) -> str:
        """What is embedded and indexed: the text under its title and heading."""
        head = " > ".join(p for p in (self.title, self.heading) if p)
        return f"{head}\n{self.text}" if head else self.text


def _pieces(text: str, spec: ChunkingSpec, tokenize: Tokenize) -> list[tuple[str, list[tuple[int, int]]]]:
    """Units no longer than ``max_tokens``: paragraphs, else sentences, else token windows."""
    out: list[tuple[str, list[tuple[int, int]]]] = []
    for paragraph in PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        spans = tokenize(paragraph)
        if len(spans) <= spec.max_tokens:
            out.append((paragraph, spans))
            continue
        for sentence in SENTENCES.split(paragraph):
            spans = tokenize(sentence)
            if len(spans) <= spec.max_tokens:
                out.append((sentence, spans))
                continue
            for start in range(0, len(spans), spec.max_tokens):
                window = spans[start : start + spec.max_tokens]
                piece = sentence[window[0][0] : window[-1][1]]
                out.append((piece, [(a - window[0][0], b - window[0][0]) for a, b in window]))
    return out


def _tail(text: str, spans: list[tuple[int, int]], n: int) -> str:
    """The last ``n`` tokens of ``text``, starting at a word boundary."""
    if n <= 0 or not spans:
        return ""
    start = spans[max(0, len(spans) - n)][0]
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:].strip()


def chunk_document(doc: Document, spec: ChunkingSpec, tokenize: Tokenize) -> list[Chunk]:
    chunks: list[Chunk] = []
    overlap = min(spec.overlap_tokens, spec.max_tokens // 2)
    sections = doc.sections if spec.follow_structure else _merged(doc)
    for section in sections:
        parts: list[str] = []
        count = 0
        last: tuple[str, list[tuple[int, int]]] | None = None
        for piece, spans in _pieces(section.text, spec, tokenize):
            if parts and count + len(spans) > spec.max_tokens:
                chunks.append(Chunk(doc.id, len(chunks), doc.title, section.heading, "\n\n".join(parts), count))
                carried = _tail(*last, overlap) if last else ""
                carried_tokens = len(tokenize(carried)) if carried else 0
                if carried and carried_tokens + len(spans) <= spec.max_tokens:
                    parts, count = [carried], carried_tokens
                else:
                    parts, count = [], 0
            parts.append(piece)
            count += len(spans)
            last = (piece, spans)
        if parts:
            chunks.append(Chunk(doc.id, len(chunks), doc.title, section.heading, "\n\n".join(parts), count))
    return chunks


def _merged(doc: Document) -> list:
    from llmgw.retrieval.documents import Section

    return [Section("", "\n\n".join(s.text for s in doc.sections))] if doc.sections else []
