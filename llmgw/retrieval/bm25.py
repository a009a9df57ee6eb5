"""BM25 over chunks, scored as Lucene (and so OpenSearch) scores it.

Same analyzer as OpenSearch's ``standard``: Unicode word tokens, lower-cased, no stemming and
no stop words; same formula (k1 = 1.2, b = 0.75, idf = ln(1 + (N - n + 0.5) / (n + 0.5))). A
query is a sum of precomputed columns of a sparse matrix, so it costs the postings it touches.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from scipy import sparse

TOKEN = re.compile(r"\w+", re.UNICODE)
K1 = 1.2
B = 0.75


def analyze(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class BM25Index:
    """Immutable: built once from all texts of a store version."""

    def __init__(self, texts: list[str]) -> None:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            terms = analyze(text)
            lengths[row] = len(terms)
            for term, count in Counter(terms).items():
                rows.append(row)
                cols.append(vocab.setdefault(term, len(vocab)))
                tfs.append(count)
        self.vocab = vocab
        self.size = len(texts)
        r = np.asarray(rows, dtype=np.int32)
        c = np.asarray(cols, dtype=np.int32)
        tf = np.asarray(tfs, dtype=np.float32)
        df = np.bincount(c, minlength=len(vocab)).astype(np.float32) if len(c) else np.zeros(0, np.float32)
        n = float(max(1, self.size))
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avgdl = float(lengths.mean()) if self.size and lengths.mean() > 0 else 1.0
        norm = K1 * (1 - B + B * lengths[r] / avgdl) if len(r) else np.zeros(0, np.float32)
        weights = idf[c] * tf * (K1 + 1) / (tf + norm) if len(r) else tf
        self.matrix = sparse.csc_matrix((weights, (r, c)), shape=(self.size, len(vocab)), dtype=np.float32)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (0 where no query term occurs)."""
        counts = Counter(t for t in analyze(query) if t in self.vocab)
        if not counts or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        ids = [self.vocab[t] for t in counts]
        weights = np.asarray([counts[t] for t in counts], dtype=np.float32)
        return np.asarray(self.matrix[:, ids] @ weights).ravel()


def save(index: BM25Index, path: str) -> None:
    """Persist a built index (building one over 100k chunks takes seconds; loading it, milliseconds)."""
    import json

    terms = sorted(index.vocab, key=index.vocab.__getitem__)
    m = index.matrix
    np.savez(
        path,
        data=m.data,
        indices=m.indices,
        indptr=m.indptr,
        shape=np.asarray(m.shape),
        terms=np.asarray(json.dumps(terms)),
    )


def load(path: str) -> BM25Index:
    import json

    with np.load(path) as f:
        index = BM25Index.__new__(BM25Index)
        shape = tuple(int(x) for x in f["shape"])
        index.matrix = sparse.csc_matrix((f["data"], f["indices"], f["indptr"]), shape=shape)
        index.vocab = {t: i for i, t in enumerate(json.loads(str(f["terms"])))}
        index.size = shape[0]
    return index
