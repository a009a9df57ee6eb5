"""Single short texts (search queries) through ONNX Runtime instead of PyTorch: 2–3× faster.

For one 15-token question, PyTorch's per-operator overhead dominates: all-MiniLM-L6-v2 took
~19 ms on one busy core, the same graph in ONNX Runtime ~7.5 ms (measured in bench/retrieval.py).
Batches of long chunks are compute-bound and no faster here, so ingest stays on PyTorch. The
graph is exported once from the very model ``llmgw.embedder`` loads (vectors agree to 1e-7) and
cached under ``~/.cache/llmgw/onnx``. Where the export or ONNX Runtime is unavailable, or the
model is not a plain mean-pooled transformer, queries fall back to ``llmgw.embedder.encode``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from llmgw import embedder

log = logging.getLogger("llmgw.embedder")
_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmgw" / "onnx"


def _mean_pooled(model: Any) -> bool:
    names = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    mean = getattr(pooling, "pooling_mode", None) == "mean" or getattr(pooling, "pooling_mode_mean_tokens", False)
    return names[:2] == ["Transformer", "Pooling"] and bool(mean)


class OnnxQueryEncoder:
    def __init__(self, path: str) -> None:
        import onnxruntime as ort
        import torch

        model = embedder.load(path)
        if not _mean_pooled(model):
            raise ValueError(f"{path}: not a mean-pooled transformer")
        # its own tokenizer: a fast tokenizer used by two threads at once raises "Already borrowed",
        # and the shared model's is used under llmgw.embedder's lock by PyTorch encodes
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self._tokenizer_lock = threading.Lock()
        self.max_length = int(model.max_seq_length or 256)
        self.normalize = any(type(m).__name__ == "Normalize" for m in model)
        key = hashlib.sha256(f"{Path(path).resolve()}:{torch.__version__}".encode()).hexdigest()[:16]
        file = cache_dir() / f"{key}.onnx"
        if not file.is_file():
            self._export(model, file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one query, one core: the other is the event loop's
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _export(model: Any, file: Path) -> None:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        sample = model.tokenizer(["an example question"], return_tensors="pt")
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        axes = {0: "batch", 1: "tokens"}
        with _lock, torch.inference_mode():
            torch.onnx.export(
                Wrapped(model[0].auto_model.eval()),
                (sample["input_ids"], sample["attention_mask"]),
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=17,
                dynamo=False,
            )
        tmp.replace(file)

    def encode(self, text: str) -> np.ndarray:
        with self._tokenizer_lock:
            encoded = self.tokenizer([text], return_tensors="np", truncation=True, max_length=self.max_length)
        mask = encoded["attention_mask"].astype(np.int64)
        inputs = {"input_ids": encoded["input_ids"].astype(np.int64), "attention_mask": mask}
        hidden = self.session.run(None, inputs)[0]
        vector = (hidden * mask[..., None]).sum(axis=1)[0] / max(1, int(mask.sum()))
        if self.normalize:
            vector = vector / (np.linalg.norm(vector) or 1.0)
        return vector.astype(np.float32)


@lru_cache(maxsize=4)
def _encoder(path: str) -> OnnxQueryEncoder | None:
    try:
        return OnnxQueryEncoder(path)
    except Exception:  # any failure means "use PyTorch", which always works
        log.warning("ONNX query encoder unavailable for %s; using PyTorch", path, exc_info=True)
        return None


def encode_query(text: str, path: str | None = None) -> np.ndarray:
    """One normalised vector, as ``llmgw.embedder.encode([text], path)[0]`` gives, only faster."""
    path = path or embedder.model_path()
    encoder = _encoder(path)
    if encoder is None:
        return embedder.encode([text], path)[0]
    return encoder.encode(text)
