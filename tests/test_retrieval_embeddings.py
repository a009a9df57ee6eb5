"""Embedding backends a collection can choose: local, an OpenAI-compatible API, Bedrock Titan."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llmgw.retrieval.collection import EmbeddingSpec
from llmgw.retrieval.embeddings import BedrockBackend, Embedder, EmbeddingError, LocalBackend, OpenAIBackend
from tests.upstream import FakeUpstream


def test_local_backend_gives_normalised_minilm_vectors() -> None:
    vectors = LocalBackend(EmbeddingSpec()).embed(["a cat", "a kitten", "tax law"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # a real model, not noise


def test_query_vectors_are_cached() -> None:
    class Counting:
        name = "counting"
        calls = 0

        def embed(self, texts: list[str]) -> np.ndarray:
            Counting.calls += 1
            return np.ones((len(texts), 4), dtype=np.float32)

    embedder = Embedder(Counting(), cache_size=2)
    for text in ["a", "a", "b", "a", "c", "b"]:
        embedder.query(text)
    assert Counting.calls == 4  # a, b, c, then b again (evicted by c: least recently used)


def test_openai_compatible_backend_batches_and_normalises(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBED_KEY", "sk-embed")
    upstream.reset()
    spec = EmbeddingSpec(
        provider="openai",
        model="text-embed",
        base_url=upstream.base_url,
        api_key_env="EMBED_KEY",
        batch_size=2,
        dimensions=3,
    )
    vectors = OpenAIBackend(spec).embed(["one", "two", "three"])
    assert vectors.shape == (3, 3) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert [r["input"] for r in upstream.requests] == [["one", "two"], ["three"]]
    assert upstream.requests[0]["dimensions"] == 3 and upstream.headers[0]["Authorization"] == "Bearer sk-embed"


def test_openai_backend_reports_upstream_errors(upstream: FakeUpstream) -> None:
    spec = EmbeddingSpec(provider="openai", model="m", base_url=upstream.base_url.replace("/v1", "/nowhere"))
    with pytest.raises(EmbeddingError, match="answered 404"):
        OpenAIBackend(spec).embed(["x"])


def test_bedrock_titan_backend_calls_invoke_model() -> None:
    import boto3

    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    for vector in ([3.0, 4.0], [0.0, 2.0]):
        payload = json.dumps({"embedding": vector, "inputTextTokenCount": 2}).encode()
        stubber.add_response(
            "invoke_model",
            {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"},
            {
                "modelId": "amazon.titan-embed-text-v2:0",
                "body": json.dumps({"inputText": "hello", "normalize": True, "dimensions": 256}),
                "contentType": "application/json",
                "accept": "application/json",
            },
        )
    with stubber:
        backend = BedrockBackend(EmbeddingSpec(provider="bedrock", dimensions=256), client=client)
        first = backend.embed(["hello"])
        second = backend.embed(["hello"])
    assert np.allclose(first, [[0.6, 0.8]]) and np.allclose(second, [[0.0, 1.0]])  # normalised
    stubber.assert_no_pending_responses()  # both calls made, each with the expected model, body and types


def test_onnx_query_vectors_match_pytorch() -> None:
    from llmgw import embedder, encoders

    questions = ["What is the main cause of HIV-1 infection in children?", "é ü ß — unicode, too", "x"]
    assert encoders._query_encoder(None) is not None  # the fast path is really in use
    for question in questions:
        fast = encoders.encode_query(question)
        reference = embedder.encode([question])[0]
        assert fast.shape == (384,) and float(fast @ reference) > 0.99999


def test_onnx_query_encoder_is_safe_from_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from llmgw import embedder, encoders

    questions = [f"question number {i} about volcanoes and tea" for i in range(64)]
    with ThreadPoolExecutor(8) as pool:  # queries, and PyTorch encodes of the same model, at once
        fast = list(pool.map(encoders.encode_query, questions))
        slow = list(pool.map(lambda q: embedder.encode([q])[0], questions))
    assert all(float(a @ b) > 0.99999 for a, b in zip(fast, slow, strict=True))
