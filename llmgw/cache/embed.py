"""The query embedding for the semantic tier: all-MiniLM-L6-v2, one question at a time, fast.

Three encoders give the same kind of vector (mean-pooled, normalised MiniLM):

* ``onnx`` (default): the float encoder of :mod:`llmgw.encoders`, shared with the guards: the same
  vector on every CPU, ~2x faster than torch for one question.
* ``onnx_int8``: the int8 encoder of the same module, ~2x faster again, but its vectors depend on
  the CPU's int8 kernels (see that module): only for a deployment on one CPU model.
* ``torch``: the same model through torch (exactly ``llmgw.embedder``'s vectors).

A question longer than the model's window returns None: the model would silently cut it, and two
questions differing after the cut would look identical. Blocking: call on a worker thread.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np

from llmgw import embedder, encoders

log = logging.getLogger("llmgw.cache")
ENCODERS = ("onnx", "onnx_int8", "torch")
_ONNX: dict[str, encoders.Precision] = {"onnx": "float", "onnx_int8": "int8"}


@lru_cache(maxsize=1)
def _model_path() -> str:
    return embedder.model_path()  # asks the package each time (~1 ms): once is enough


def _model() -> tuple[Any, Any, int]:
    model = embedder.load(_model_path())
    return model.tokenizer, model[0].auto_model, int(model.max_seq_length or 256)


@lru_cache(maxsize=4096)
def embed(text: str, encoder: str = "onnx") -> np.ndarray | None:
    """The question's vector (read-only: it is shared by every caller asking the same text).

    Memoised: the same question from other tenants, and the store after the lookup, cost nothing.
    """
    if encoder in _ONNX:
        vector = encoders.encoder(_ONNX[encoder]).encode(text, truncate=False)
        if vector is not None:
            vector.flags.writeable = False
        return vector
    tokenizer, transformer, window = _model()
    import torch

    with embedder._lock, torch.inference_mode():
        batch = tokenizer([text], return_tensors="pt", truncation=False)
        if batch["input_ids"].shape[1] > window:
            return None
        pooled = _pool(transformer(**batch).last_hidden_state, batch["attention_mask"])[0]
    vector = np.array(pooled.numpy(), dtype=np.float32)
    vector.flags.writeable = False
    return vector


def embed_answer(text: str, encoder: str = "onnx") -> np.ndarray | None:
    """A stored answer's vector, for answer-aware matching (``llmgw.cache.match``).

    Unlike a question, an answer is cut to the model's window: its opening says what it answers.
    Not memoised (answers rarely repeat); called in the background after an answer is stored.
    """
    if not text.strip():
        return None
    if encoder in _ONNX:
        return encoders.encoder(_ONNX[encoder]).encode(text)
    tokenizer, transformer, window = _model()
    import torch

    with embedder._lock, torch.inference_mode():
        batch = tokenizer([text], return_tensors="pt", truncation=True, max_length=window)
        pooled = _pool(transformer(**batch).last_hidden_state, batch["attention_mask"])[0]
    return np.array(pooled.numpy(), dtype=np.float32)


def warm(encoder: str = "onnx") -> None:
    embed("warm up", encoder)


def _pool(hidden: Any, mask: Any) -> Any:
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1)
