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


def test_vectors_match_the_committed_reference() -> None:
    texts, vectors, meta = encoders.load_reference()
    assert len(texts) >= 30 and texts == encoders.reference_texts()  # the .txt and the vectors agree
    got = encoders.OnnxEncoder("float")(texts)
    worst = np.abs(got - vectors["float"]).max(axis=1)
    assert worst.max() <= encoders.TOLERANCE, (HOW_TO_FIX, texts[int(worst.argmax())], float(worst.max()))
    assert meta["tolerance"] == encoders.TOLERANCE


def test_torch_meets_the_same_reference() -> None:
    """The fallback is only a fallback if it gives the vectors the guards were calibrated on."""
    assert encoders.check_reference(encoders.TorchEncoder()).ok, HOW_TO_FIX


def test_the_float_encoder_is_the_torch_model() -> None:
    texts = encoders.reference_texts()[:8]
    fast = encoders.encoder("float")(texts)
    exact = embedder.encode(texts)
    assert np.abs(fast - exact).max() < 1e-5


def test_the_int8_encoder_is_close_to_float_but_not_the_same() -> None:
    """int8 stays available as a parameter (one CPU model, a benchmark); it is not pinned, since its
    vectors differ by CPU (see llmgw/encoders.py)."""
    texts = encoders.reference_texts()
    int8, exact = encoders.encoder("int8")(texts), encoders.encoder("float")(texts)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (int8 * exact).sum(axis=1).min() > 0.95  # 0.972 at worst on the reference texts (7-bit weights)
    assert not np.allclose(int8, exact, atol=1e-4)


def test_a_text_gets_the_same_vector_alone_or_with_others() -> None:
    enc = encoders.encoder("float")
    texts = encoders.reference_texts()[:5]
    assert np.array_equal(enc(texts), np.concatenate([enc([t]) for t in texts]))
    assert enc([]).shape == (0, 384)


def test_a_long_question_is_refused_rather_than_cut() -> None:
    enc = encoders.encoder("float")
    long = "why " * 400
    assert enc.encode(long, truncate=False) is None
    assert enc.encode(long).shape == (384,)


def test_a_long_turn_is_cut_without_the_tokenizers_too_long_warning() -> None:
    """The tokenizer warns ("Token indices sequence length is longer than the specified maximum
    ...") once per process when a whole text is tokenized past the window: on every first start,
    for the routing exemplars and the first long turn. The encoder asks for one piece past the window
    instead, which says the same (cut or not) without the warning."""
    enc = encoders.encoder("float")
    tokenizer = enc.tokenizer
    key = "sequence-length-is-longer-than-the-specified-maximum"
    tokenizer.deprecation_warnings.pop(key, None)
    assert enc.encode("how " * 500 + "now?", truncate=False) is None  # too long: refused
    assert enc.encode("how " * 501 + "then?").shape == (384,)  # cut to the window
    assert not tokenizer.deprecation_warnings.get(key)


def test_the_export_is_cached_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = encoders.OnnxEncoder("float")
    monkeypatch.setattr(encoders, "_export_float", lambda *a: pytest.fail("exported again"))
    again = encoders.OnnxEncoder("float")
    assert again.path == first.path and again.path.parent == encoders.cache_dir()


def test_the_export_key_follows_the_weights_not_their_size(tmp_path: Path) -> None:
    """A tuned copy of a model (a LoRA merged in) has every file the size of the original: the export
    key must still differ, or the copy silently runs the original's ONNX graph."""
    dirs = [tmp_path / name for name in ("base", "tuned", "copy")]
    for d, weights in zip(dirs, (b"\x00" * 64, b"\x01" * 64, b"\x00" * 64), strict=True):
        d.mkdir()
        (d / "model.safetensors").write_bytes(weights)
        (d / "config.json").write_text('{"hidden_size": 384}')
    base, tuned, copy = (encoders._export_key(str(d), "float") for d in dirs)
    assert base != tuned
    assert base == copy


def test_drift_rebuilds_the_export_then_falls_back_to_torch_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An ONNX model that no longer gives the reference vectors (as int8 did on AVX2 CPUs): the
    gateway logs an error, rebuilds the export once, then uses torch, which does give them."""
    real_file = encoders.encoder("float").path
    exports: list[str] = []
    monkeypatch.setattr(encoders, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(encoders, "_export_float", lambda _dir, path: exports.append(shutil.copy(real_file, path)))
    skewed = encoders.OnnxEncoder.encode
    monkeypatch.setattr(encoders.OnnxEncoder, "encode", lambda self, text, truncate=True: skewed(self, text) + 0.01)
    monkeypatch.setattr(encoders, "drift_found", [])
    encoders.encoder.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="llmgw.encoders"):
            chosen = encoders.encoder("float")
        assert isinstance(chosen, encoders.TorchEncoder)
        assert len(exports) == 2  # the first export, then one rebuild before giving up on ONNX
        assert [round(d.max_difference, 3) for d in encoders.drift_found] == [0.01]
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "rebuilding the export once" in messages and "torch is used instead" in messages
        assert "verdicts would silently shift" in messages
        texts, vectors, _ = encoders.load_reference()
        assert np.abs(chosen(["ok"])[0] - vectors["float"][texts.index("ok")]).max() < 1e-5
    finally:
        encoders.encoder.cache_clear()


def test_a_reference_that_nothing_meets_makes_the_guards_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    texts, vectors, meta = encoders.load_reference()
    skewed = tmp_path / "reference.npz"
    np.savez(skewed, texts=np.array(texts), float=vectors["float"] + 0.01, meta=np.array(json.dumps(meta)))
    real_file = encoders.encoder("float").path
    monkeypatch.setattr(encoders, "REFERENCE", skewed)
    monkeypatch.setattr(encoders, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(encoders, "_export_float", lambda _dir, path: shutil.copy(real_file, path))
    monkeypatch.setattr(encoders, "drift_found", [])
    encoders.encoder.cache_clear()
    try:
        with pytest.raises(encoders.EncoderDrift, match="torch does not give the reference vectors either"):
            encoders.encoder("float")
    finally:
        encoders.encoder.cache_clear()


def test_threads_can_embed_at_once() -> None:
    """The guards' threads, the cache's and retrieval's share nothing that breaks under concurrent use."""
    from concurrent.futures import ThreadPoolExecutor

    texts = encoders.reference_texts()[:6]
    enc = encoders.encoder("float")
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


def test_an_export_that_fails_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(encoders, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(encoders, "_export_float", broken)
    encoders.encoder.cache_clear()
    try:
        assert isinstance(encoders.encoder("float"), encoders.TorchEncoder)
    finally:
        encoders.encoder.cache_clear()
