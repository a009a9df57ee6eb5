"""The query embedding for the semantic tier: all-MiniLM-L6-v2, one question at a time, fast.

Two encoders give the same kind of vector (mean-pooled, normalised MiniLM):

* ``onnx_int8`` (default): the process-wide model exported once to ONNX with its matrix
  multiplications quantised to int8 per channel, run by onnxruntime on one thread: ~2-3 ms for a
  question instead of ~10 ms through torch. Its vectors differ from torch's by cosine ~0.995; the
  cache only compares its own vectors with each other, and the thresholds were tuned on these.
  The file is built on first use into ``$XDG_CACHE_HOME/llmgw/models`` (a few seconds, once).
* ``torch``: the same model through torch (exactly ``llmgw.embedder``'s vectors).

A question longer than the model's window returns None: the model would silently cut it, and two
questions differing after the cut would look identical. Blocking: call on a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from llmgw import embedder

log = logging.getLogger("llmgw.cache")
ENCODERS = ("onnx_int8", "torch")
_build_lock = threading.Lock()
_tokenizer_lock = threading.Lock()  # a fast tokenizer must not be used by two threads at once


@lru_cache(maxsize=1)
def _model_path() -> str:
    return embedder.model_path()  # asks the package each time (~1 ms): once is enough


def _model() -> tuple[Any, Any, int]:
    model = embedder.load(_model_path())
    return model.tokenizer, model[0].auto_model, int(model.max_seq_length or 256)


@lru_cache(maxsize=4096)
def embed(text: str, encoder: str = "onnx_int8") -> np.ndarray | None:
    """The question's vector (read-only: it is shared by every caller asking the same text).

    Memoised: the same question from other tenants, and the store after the lookup, cost nothing.
    """
    tokenizer, transformer, window = _model()
    if encoder == "onnx_int8":
        session = _session(_model_path())
        with _tokenizer_lock:  # its own tokenizer: never waits behind a batch on the shared model
            batch = _tokenizer(_model_path())([text], return_tensors="np", truncation=False)
        if batch["input_ids"].shape[1] > window:
            return None
        feed = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        vector = np.asarray(session.run(None, feed)[0][0], dtype=np.float32)
        vector.flags.writeable = False
        return vector
    import torch

    with embedder._lock, torch.inference_mode():
        batch = tokenizer([text], return_tensors="pt", truncation=False)
        if batch["input_ids"].shape[1] > window:
            return None
        pooled = _pool(transformer(**batch).last_hidden_state, batch["attention_mask"])[0]
    vector = np.array(pooled.numpy(), dtype=np.float32)
    vector.flags.writeable = False
    return vector


def embed_answer(text: str, encoder: str = "onnx_int8") -> np.ndarray | None:
    """A stored answer's vector, for answer-aware matching (``llmgw.cache.match``).

    Unlike a question, an answer is cut to the model's window: its opening says what it answers.
    Not memoised (answers rarely repeat); called in the background after an answer is stored.
    """
    if not text.strip():
        return None
    tokenizer, transformer, window = _model()
    if encoder == "onnx_int8":
        session = _session(_model_path())
        with _tokenizer_lock:
            batch = _tokenizer(_model_path())([text], return_tensors="np", truncation=True, max_length=window)
        feed = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        return np.asarray(session.run(None, feed)[0][0], dtype=np.float32)
    import torch

    with embedder._lock, torch.inference_mode():
        batch = tokenizer([text], return_tensors="pt", truncation=True, max_length=window)
        pooled = _pool(transformer(**batch).last_hidden_state, batch["attention_mask"])[0]
    return np.array(pooled.numpy(), dtype=np.float32)


def warm(encoder: str = "onnx_int8") -> None:
    embed("warm up", encoder)


def _pool(hidden: Any, mask: Any) -> Any:
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1)


@lru_cache(maxsize=2)
def _tokenizer(model_path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


@lru_cache(maxsize=2)
def _session(model_path: str) -> Any:
    import onnxruntime as ort

    path = _onnx_file(model_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_file(model_path: str) -> Path:
    """The quantised ONNX file for this model, built once per machine (atomically: rename into place)."""
    import onnxruntime

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmgw" / "models"
    tag = hashlib.sha256(f"{model_path}|{onnxruntime.__version__}|v1".encode()).hexdigest()[:12]
    target = cache / f"minilm-cache-{tag}-int8.onnx"
    with _build_lock:
        if target.exists():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        log.info("cache: building the int8 ONNX query encoder in %s (once)", target)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            plain = Path(tmp) / "plain.onnx"
            _export(plain)
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(tmp) / "int8.onnx"
            quantize_dynamic(str(plain), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])  # fmt: skip
            os.replace(quantized, target)
    return target


def _export(path: Path) -> None:
    import torch

    tokenizer, transformer, _ = _model()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.transformer(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return _pool(out.last_hidden_state, attention_mask)

    sample = tokenizer(["a sample question"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with embedder._lock, torch.inference_mode():
        torch.onnx.export(
            Pooled().eval(), tuple(sample[n] for n in names), str(path), input_names=names, output_names=["vector"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names}, opset_version=17, dynamo=False,
        )  # fmt: skip
