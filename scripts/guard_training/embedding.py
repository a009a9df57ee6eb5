"""The sentence embedder used for training, with an on-disk cache (a cold run embeds ~100k windows)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np


class CachedEmbedder:
    """all-MiniLM-L6-v2 (float, torch, batched) with an on-disk cache keyed by the SHA-1 of the text.

    The guards read the float encoder of ``llmgw.encoders`` at run time, one text per run; batched
    torch vectors equal it to ~1e-7 (padding is masked out), so training, the near-duplicate grouping
    of the splits and run time all see the same vector, and each text is embedded once. ``guard`` is
    kept for the callers and changes nothing.
    """

    def __init__(self, cache_dir: Path | None, guard: bool = False) -> None:
        self.cache_dir = cache_dir
        self.vectors: dict[str, np.ndarray] = {}
        self._model = None
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            for f in sorted(cache_dir.glob("emb-*.npz")):
                with np.load(f, allow_pickle=False) as z:
                    for k, v in zip(z["keys"].tolist(), z["vectors"], strict=True):
                        self.vectors[str(k)] = v
        self._new: dict[str, np.ndarray] = {}

    @staticmethod
    def _k(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def model(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from llmgw.providers.local_embeddings import default_model_path

            self._model = SentenceTransformer(default_model_path(), device="cpu")
        return self._model

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [self._k(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items(), key=lambda kv: len(kv[1])
        )
        if missing:
            t0 = time.time()
            # shortest first, in parts written to the cache as they finish (a stopped run keeps its work)
            for start in range(0, len(missing), 512):
                part = missing[start : start + 512]
                vecs = self.model().encode(
                    [t for _, t in part], batch_size=32, normalize_embeddings=True, convert_to_numpy=True
                )
                for (k, _), v in zip(part, vecs, strict=True):
                    v = np.asarray(v, dtype=np.float32)
                    self.vectors[k] = v
                    self._new[k] = v
                self.flush()
                if len(missing) > 512:
                    print(f"  embedded {start + len(part)}/{len(missing)} texts, {time.time() - t0:.0f}s", flush=True)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def flush(self) -> None:
        if self.cache_dir is None or not self._new:
            return
        name = self.cache_dir / f"emb-{len(list(self.cache_dir.glob('emb-*.npz'))):04d}.npz"
        np.savez(name, keys=np.array(list(self._new)), vectors=np.stack(list(self._new.values())))
        self._new = {}
