"""The guards' own copy of all-MiniLM-L6-v2: ONNX Runtime with int8 weights, about 2.5x faster on one core.

The guard classifiers need the embedding on every request (a 300-character message costs ~26 ms in
torch on one core here, more than the whole input-guard budget). The weights are exported once from
the process-wide model of :mod:`llmgw.embedder` to ONNX and quantised per channel (dynamic int8), in
``~/.cache/llmgw/guard-embedder/<key>/`` (about 23 MB, rebuilt in a few seconds when missing).
Its vectors differ slightly from the float model's (cosine >= 0.99 on 300-character passages), so
the classifiers are trained on these very vectors (``scripts/train_guards.py``). Retrieval keeps the
float vectors of :func:`llmgw.embedder.encode`, and the cache has its own int8 copy
(``llmgw/cache/embed.py``, thresholds tuned on its vectors): nothing here changes them.

Without ``onnxruntime`` (or if the export fails) the guards fall back to the float model.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GuardEmbedder", "cache_dir", "guard_embedder"]

log = logging.getLogger("llmgw.guards")
MAX_TOKENS = 256  # as sentence-transformers truncates all-MiniLM-L6-v2


def cache_dir() -> Path:
    root = os.environ.get("LLMGW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llmgw"
    )
    return Path(root) / "guard-embedder"


def _model_key(model_dir: str) -> str:
    """Changes with the weights, torch and onnxruntime, so a stale export is never used."""
    import onnxruntime
    import torch

    h = hashlib.sha256(f"{torch.__version__}|{onnxruntime.__version__}|int8-per-channel-v1".encode())
    for f in sorted(Path(model_dir).rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            h.update(f"{f.relative_to(model_dir)}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _export(model: Any, target: Path) -> None:
    """Export the transformer to ONNX and quantise its weights to int8 (per output channel)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Encoder(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_float = target.with_suffix(f".float.{os.getpid()}.onnx")
    tmp_int8 = target.with_suffix(f".{os.getpid()}.tmp")
    sample = model.tokenizer(["a short sample sentence"], return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    try:
        torch.onnx.export(
            Encoder(model[0].auto_model).eval(),
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(tmp_float),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: axes for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
            },
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(str(tmp_float), str(tmp_int8), weight_type=QuantType.QInt8, per_channel=True)
        tmp_int8.replace(target)  # atomic: a concurrent process sees the whole file or none
    finally:
        tmp_float.unlink(missing_ok=True)
        tmp_int8.unlink(missing_ok=True)


class GuardEmbedder:
    """``__call__(texts) -> (n, 384)`` normalised float32 vectors from the int8 ONNX model."""

    def __init__(self, path: str | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        from llmgw import embedder

        model_dir = path or embedder.model_path()
        self.model = embedder.load(model_dir)  # the shared float model: the export source
        target = cache_dir() / _model_key(model_dir) / "minilm-int8.onnx"
        if not target.is_file():
            log.info("exporting the guards' int8 embedding model to %s", target)
            _export(self.model, target)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        # a tokenizer of our own: a Rust tokenizer used from two threads at once (the float model's, by
        # retrieval) can fail with "Already borrowed"; the lock covers several guard threads
        self.tokenizer = copy.deepcopy(self.model.tokenizer)
        self._tokenizer_lock = threading.Lock()
        self.path = target

    def __call__(self, texts: list[str]) -> np.ndarray:
        """One text per run: dynamic int8 scales activations per run, so a text batched with
        others (and their padding) would get a slightly different vector. One at a time, a text
        always gets the same vector, in training as at run time, and no work is spent on padding."""
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            with self._tokenizer_lock:
                enc = self.tokenizer([text], truncation=True, max_length=MAX_TOKENS, return_tensors="np")
            feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            vector = self.session.run(None, feed)[0][0].mean(axis=0)
            out[i] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return out


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _build() -> Any:
    try:
        return GuardEmbedder()
    except Exception as exc:  # noqa: BLE001 - no onnxruntime, or the export failed: the float model still works
        log.warning("guards use the float embedding model (int8 ONNX unavailable: %s: %s)", type(exc).__name__, exc)
        from llmgw.embedder import encode

        return lambda texts: encode(texts, batch_size=32) if texts else np.zeros((0, 384), dtype=np.float32)


def guard_embedder() -> Any:
    """The process-wide guard embedder (built on first use; blocking)."""
    with _lock:
        return _build()
