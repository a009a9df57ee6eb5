"""The task router's own encoder: all-MiniLM-L6-v2 tuned on the task exemplars, read beside the shared one.

Why a second encoder. The shared MiniLM (:mod:`llmgw.encoders`: guards, cache, retrieval) places
sentences by what they are about; "write a poem about Python" sits near Python code. A copy of it
tuned on pairs of exemplars (same task or not, SetFit-style) places requests by what they ask for.
Its vectors alone lost requests the shared ones got right (route25: chat −4 of 50 on a fresh set),
so the classifier reads both side by side (route26): on a fresh set written blind, 85.1 → 90.3 %
routed right, no task down by more than one request of 50 (docs/benchmarks.md; rule and figures in
``docs/experiments/route26-rule.md``, ``bench/results/route26-*.json``).

What ships is the adapter, not a model: rank-8 LoRA matrices for the query and value projections of
the six layers (``models/task_lora.npz``, 295 KB; trained by ``python -m bench.routing_setfit24 --fit
--name route25``). On first use they are merged into a private copy of the base weights
(W + 2·B·A: no extra cost per pass), saved in the encoder cache beside the ONNX exports and exported
like the shared encoder (its export key hashes the weights' content, so it never reuses the base
model's file). Vectors of the reference texts are committed (``models/task_encoder_reference.npz``) and
checked at load, as for the shared encoder: on drift the export is rebuilt once, then torch is used.

Cost: one more MiniLM pass (a few ms, one thread) per request whose task is inferred, and a second
ONNX session (~90 MB). ``routing.task_encoder: shared`` reads the shared vector alone (the one the
guards and the cache computed already), at the accuracy before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from llmgw import embedder, encoders

log = logging.getLogger("llmgw.routing.encoder")

MODELS = Path(__file__).with_name("models")
#: LoRA matrices by the name of the Linear they adapt: ``<name>.a`` (rank × in) and ``<name>.b`` (out × rank)
ADAPTER = MODELS / "task_lora.npz"
#: how the adapter was trained and how it is merged (``scale`` = alpha / rank)
ADAPTER_META = MODELS / "task_lora.json"
#: the tuned encoder's vectors of :data:`llmgw.encoders.REFERENCE`'s texts (torch, merged weights)
REFERENCE = MODELS / "task_encoder_reference.npz"
_build_lock = threading.Lock()


def adapter_digest() -> str:
    """Changes with the adapter and the base model, so a merged copy of other weights is never reused."""
    h = hashlib.sha256(ADAPTER.read_bytes())
    h.update(ADAPTER_META.read_bytes())
    h.update(embedder.model_path().encode())
    return h.hexdigest()[:16]


def merged_dir() -> Path:
    """The base weights with the adapter merged in, built once per machine into the encoder cache."""
    target = encoders.cache_dir() / f"task-minilm-{adapter_digest()}"
    with _build_lock:
        if not (target / "config.json").is_file():
            log.info("merging the task router's adapter into a copy of all-MiniLM-L6-v2 at %s, once", target)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            merged_model().save(str(tmp))
            try:
                tmp.rename(target)
            except OSError:  # another process merged it first: the same bytes
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def merged_model() -> Any:
    """A private SentenceTransformer of the base weights plus ``scale · B A`` on every adapted Linear."""
    import torch
    from sentence_transformers import SentenceTransformer

    scale = float(json.loads(ADAPTER_META.read_text())["scale"])
    model = SentenceTransformer(embedder.model_path(), device="cpu")  # not embedder.load's: that one is shared
    bert: Any = model[0].auto_model
    with np.load(ADAPTER) as arrays, torch.no_grad():
        names = [key[: -len(".a")] for key in arrays.files if key.endswith(".a")]
        if not names or sorted(arrays.files) != sorted([f"{n}.a" for n in names] + [f"{n}.b" for n in names]):
            raise ValueError(f"{ADAPTER}: not a LoRA adapter of '<linear>.a' / '<linear>.b' pairs")
        for name in names:
            linear = bert.get_submodule(name)
            linear.weight += scale * (torch.from_numpy(arrays[name + ".b"]) @ torch.from_numpy(arrays[name + ".a"]))
    bert.eval()
    return model


@lru_cache(maxsize=1)
def tuned() -> encoders.OnnxEncoder | encoders.TorchEncoder:
    """The process-wide tuned encoder (blocking on first use: merge and export once per machine)."""
    return encoders.encoder("float", str(merged_dir()), REFERENCE)


def encode(text: str) -> np.ndarray:
    """One normalised vector of the tuned encoder (read-only; a text longer than the window is cut)."""
    vector = tuned().encode(text)
    assert vector is not None  # truncating encoders always answer
    return vector


def write_reference() -> None:
    """Rebuild :data:`REFERENCE` from torch on the merged weights (maintainers, after a new adapter):
    the ONNX export is then checked against torch's vectors, as the shared encoder's is."""
    import torch

    texts = encoders.reference_texts()
    vectors = encoders.TorchEncoder(str(merged_dir()))(texts)
    meta = {"torch": torch.__version__, "adapter": adapter_digest(), "tolerance": encoders.TOLERANCE, "by": "torch"}
    meta_array = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(REFERENCE, texts=np.array(texts), meta=meta_array, float=vectors)


if __name__ == "__main__":
    write_reference()
    print(f"wrote {REFERENCE}")
