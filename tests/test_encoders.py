"""The ONNX encoders give the committed reference vectors on whatever machine runs the suite.

Guard verdicts, cache hits and the audit log's recorded scores all read these vectors, so a
machine that computes them differently would shift every verdict. If ``test_vectors_match_the_
committed_reference`` fails on your machine, do not loosen the tolerance: run
``python -m llmgw.encoders`` and report its output with your CPU model (``lscpu``), torch and
onnxruntime versions. If you changed the model, the export or the quantisation on purpose, rewrite
the reference with ``python -m llmgw.encoders --write`` and retrain the guards on the new vectors
(``scripts/train_guards.py``), in the same commit.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from llmgw import embedder, encoders

HOW_TO_FIX = (
    "The MiniLM encoder on this machine does not reproduce the committed reference vectors, so guard and "
    "cache verdicts here would differ from everywhere else. Run `python -m llmgw.encoders` and report its "
    "output with `lscpu`; if you changed the model or its export on purpose, rewrite the reference with "
    "`python -m llmgw.encoders --write` and retrain the guards (scripts/train_guards.py)."
)


@pytest.mark.parametrize("precision", ["int8", "float"])
def test_vectors_match_the_committed_reference(precision: encoders.Precision) -> None:
    texts, vectors, meta = encoders.load_reference()
    assert len(texts) >= 30 and texts == encoders.reference_texts()  # the .txt and the vectors agree
    got = encoders.OnnxEncoder(precision)(texts)
    worst = np.abs(got - vectors[precision]).max(axis=1)
    assert worst.max() <= encoders.TOLERANCE, (HOW_TO_FIX, texts[int(worst.argmax())], float(worst.max()))
    assert meta["tolerance"] == encoders.TOLERANCE


def test_the_float_encoder_is_the_torch_model() -> None:
    texts = encoders.reference_texts()[:8]
    fast = encoders.encoder("float")(texts)
    exact = embedder.encode(texts)
    assert np.abs(fast - exact).max() < 1e-5


def test_the_int8_encoder_is_close_to_float_but_not_the_same() -> None:
    texts = encoders.reference_texts()
    int8, exact = encoders.encoder("int8")(texts), encoders.encoder("float")(texts)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (int8 * exact).sum(axis=1).min() > 0.95  # 0.972 at worst on the reference texts (7-bit weights)
    assert not np.allclose(int8, exact, atol=1e-4)  # a different model: the guards are trained on it


def test_a_text_gets_the_same_vector_alone_or_with_others() -> None:
    enc = encoders.encoder("int8")
    texts = encoders.reference_texts()[:5]
    assert np.array_equal(enc(texts), np.concatenate([enc([t]) for t in texts]))
    assert enc([]).shape == (0, 384)


def test_a_long_question_is_refused_rather_than_cut() -> None:
    enc = encoders.encoder("int8")
    long = "why " * 400
    assert enc.encode(long, truncate=False) is None
    assert enc.encode(long).shape == (384,)


def test_the_export_is_cached_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = encoders.OnnxEncoder("int8")
    monkeypatch.setattr(encoders, "_export_float", lambda *a: pytest.fail("exported again"))
    again = encoders.OnnxEncoder("int8")
    assert again.path == first.path and again.path.parent == encoders.cache_dir()


def test_drift_rebuilds_then_falls_back_to_float_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reference the int8 model cannot meet (as on a CPU whose kernels saturate): the gateway logs
    an error, rebuilds the export once, then uses the float model, which does meet its reference."""
    texts, vectors, meta = encoders.load_reference()
    skewed = tmp_path / "reference.npz"
    meta_json = np.array(json.dumps(meta))
    np.savez(skewed, texts=np.array(texts), int8=vectors["int8"] + 0.01, float=vectors["float"], meta=meta_json)
    float_file = encoders.encoder("float").path
    for f in encoders.cache_dir().glob("minilm-*.onnx"):
        shutil.copy(f, tmp_path / f.name)
    exports: list[Path] = []
    monkeypatch.setattr(encoders, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(encoders, "_export_float", lambda _dir, path: exports.append(shutil.copy(float_file, path)))
    monkeypatch.setattr(encoders, "REFERENCE", skewed)
    monkeypatch.setattr(encoders, "drift_found", [])
    encoders.encoder.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="llmgw.encoders"):
            chosen = encoders.encoder("int8")
        assert chosen.precision == "float"
        assert len(exports) == 1  # the int8 file was rebuilt once before giving up on it
        assert [d.precision for d in encoders.drift_found] == ["int8"]
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "rebuilding the export once" in messages and "float model is used instead" in messages
    finally:
        encoders.encoder.cache_clear()


def test_threads_can_embed_at_once() -> None:
    """The guards' threads, the cache's and retrieval's share nothing that breaks under concurrent use."""
    from concurrent.futures import ThreadPoolExecutor

    texts = encoders.reference_texts()[:6]
    enc = encoders.encoder("int8")
    expected = enc(texts)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(enc, texts) for _ in range(6)] + [pool.submit(embedder.encode, texts) for _ in range(2)]
        results = [f.result() for f in futures]
    assert all(np.array_equal(r, expected) for r in results[:6])


def test_query_encoding_falls_back_to_torch_when_onnx_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no onnxruntime here")

    encoders._query_encoder.cache_clear()
    monkeypatch.setattr(encoders, "encoder", broken)
    try:
        vector = encoders.encode_query("a question")
        assert float(vector @ embedder.encode(["a question"])[0]) > 0.99999
        assert encoders._query_encoder(None) is None
    finally:
        encoders._query_encoder.cache_clear()
