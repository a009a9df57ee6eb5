"""Embeddings for the moderation training, from the float encoder the guards read at run time
(``llmgw.encoders``), cached on disk by the SHA-1 of the text so each text is embedded once."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np


class VectorCache:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        for f in sorted(cache_dir.glob("vec-*.npz")):
            with np.load(f, allow_pickle=False) as z:
                self.vectors.update(zip(z["keys"].tolist(), z["vectors"], strict=True))
        self._encoder = None

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}
        if todo:
            if self._encoder is None:
                from llmgw.encoders import encoder

                self._encoder = encoder("float")
            t0, new = time.time(), {}
            for i, (k, t) in enumerate(sorted(todo.items())):
                new[k] = self._encoder([t])[0]
                if len(new) >= 2000 or i == len(todo) - 1:
                    self._save(new)
                    self.vectors.update(new)
                    print(f"  embedded {i + 1}/{len(todo)} in {time.time() - t0:.0f}s", flush=True)
                    new = {}
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def _save(self, new: dict[str, np.ndarray]) -> None:
        # the process id in the name: two runs sharing the folder never write the same file
        name = self.cache_dir / f"vec-{os.getpid()}-{len(list(self.cache_dir.glob('vec-*.npz'))):05d}.npz"
        np.savez(name, keys=np.array(list(new)), vectors=np.stack(list(new.values())))
