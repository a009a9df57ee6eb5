"""The query embedding for the semantic tier: the process-wide MiniLM, one text at a time.

``llmgw.embedder.encode`` is built for batches; for one short question its sentence-transformers
wrapper costs more than the model. This calls the same tokenizer and transformer directly (same
vectors, mean pooling, normalised). A question longer than the model's window returns None: the
model would silently cut it, and two questions differing after the cut would look identical.
Blocking: call it on a worker thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmgw import embedder


def _parts() -> tuple[Any, Any, int]:
    model = embedder.load(embedder.model_path())
    return model.tokenizer, model[0].auto_model, int(model.max_seq_length or 256)


def embed(text: str) -> np.ndarray | None:
    import torch

    tokenizer, transformer, window = _parts()
    with embedder._lock, torch.inference_mode():
        batch = tokenizer([text], return_tensors="pt", truncation=False)
        if batch["input_ids"].shape[1] > window:
            return None
        hidden = transformer(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vector = torch.nn.functional.normalize(pooled, dim=1)[0]
    return np.asarray(vector.numpy(), dtype=np.float32)


def warm() -> None:
    embed("warm up")
