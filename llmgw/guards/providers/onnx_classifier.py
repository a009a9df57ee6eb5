"""A local ONNX sequence classifier as a guard provider (Llama Prompt Guard 2, a DeBERTa injection
model, anything exported to ONNX with its ``tokenizer.json``).

The folder at ``path`` holds ``model.onnx`` and ``tokenizer.json`` (the tokenizers library's
format: no transformers needed at run time). The model takes ``input_ids`` and
``attention_mask`` (and ``token_type_ids`` if it declares them, as zeros) and gives one row of
logits per text; ``labels`` names its outputs in order, ``positive`` says which of them mean
"flag". The score is the positive labels' summed softmax probability (``sigmoid``: the highest
positive one), flagged at ``threshold`` (or the source's entry of ``source_thresholds``: one model
read at each source's own operating point). ``prefixes`` puts a source tag before each text, for a
model trained with them (``scripts/train_injection_finetune.py``). Loading and inference run on the
provider's own thread, never on the event loop; the session is loaded at start-up
(GuardRuntime.warm), else on first use.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from llmgw.guards.policy import OnnxClassifier
from llmgw.guards.providers import Verdict


class OnnxClassifierProvider:
    def __init__(self, name: str, spec: OnnxClassifier) -> None:
        self.name = name
        self.spec = spec
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, set[str]] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"onnx-guard-{name}")

    def _load(self) -> tuple[Any, Any, set[str]]:
        with self._lock:
            if self._loaded is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                folder = Path(self.spec.path).expanduser()
                for file in (self.spec.tokenizer_file, self.spec.model_file):
                    # the tokenizers library says only "No such file or directory": name what is missing
                    if not (folder / file).is_file():
                        raise FileNotFoundError(f"guard provider {self.name!r}: no {file} in {folder}")
                tokenizer = Tokenizer.from_file(str(folder / self.spec.tokenizer_file))
                tokenizer.enable_truncation(max_length=self.spec.max_length)
                padding = tokenizer.padding
                if padding is None:
                    pad = next((t for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), None)
                    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad) if pad else 0, pad_token=pad or "[PAD]")
                elif padding.get("length") is not None:
                    # a fixed length (sentence-transformers' MiniLM tokenizer.json pads to 128) leaves a
                    # longer text unpadded, so a batch mixing both is ragged: pad to the batch's longest
                    tokenizer.enable_padding(
                        pad_id=padding["pad_id"], pad_token=padding["pad_token"],
                        pad_type_id=padding["pad_type_id"], direction=padding["direction"],
                    )  # fmt: skip
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.spec.threads
                options.inter_op_num_threads = 1
                session = ort.InferenceSession(
                    str(folder / self.spec.model_file), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (tokenizer, session, {i.name for i in session.get_inputs()})
            return self._loaded

    def warm(self) -> None:
        """Load the model and read with it once (blocking), so that what does not fit fails at
        start-up (``/readyz`` says ``guards: false``, the log names the provider) rather than on
        every request: a ``labels`` list of the wrong length, an input the model wants and is not
        given, a ``tokenizer.json`` of another model (its highest token id, read alone, is outside
        the model's vocabulary), a ``max_length`` beyond the model's positions."""
        tokenizer, _, _ = self._load()
        self._classify(["warm up"])
        top = tokenizer.get_vocab_size(with_added_tokens=True) - 1
        try:
            self._run([[top]], [[1]])
        except Exception as exc:
            raise ValueError(
                f"guard provider {self.name!r}: the model cannot read token id {top} of its "
                f"{self.spec.tokenizer_file} (a tokenizer of another model?): {type(exc).__name__}: {exc}"
            ) from exc
        length = self.spec.max_length  # a longer text is cut to this: the model must read that many
        try:
            self._run([[0] * length], [[1] * length])
        except Exception as exc:
            raise ValueError(
                f"guard provider {self.name!r}: the model cannot read max_length={length} tokens (its "
                f"own limit is lower?): {type(exc).__name__}: {exc}"
            ) from exc

    def _classify(self, texts: list[str]) -> np.ndarray:
        tokenizer, _, _ = self._load()
        encodings = tokenizer.encode_batch(texts)
        return self._run([e.ids for e in encodings], [e.attention_mask for e in encodings])

    def _run(self, ids: list[list[int]], mask: list[list[int]]) -> np.ndarray:
        _, session, inputs = self._load()
        feed = {"input_ids": np.array(ids, dtype=np.int64), "attention_mask": np.array(mask, dtype=np.int64)}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        logits = np.asarray(session.run(None, {k: v for k, v in feed.items() if k in inputs})[0], dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != len(self.spec.labels):
            raise ValueError(
                f"guard provider {self.name!r}: the model gives {logits.shape} logits for "
                f"{len(self.spec.labels)} labels {self.spec.labels}"
            )
        if self.spec.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    async def check(self, texts: list[str], source: str) -> list[Verdict]:
        prefix = self.spec.prefixes.get(source, "")
        tagged = [prefix + t for t in texts] if prefix else texts
        probabilities = await asyncio.get_running_loop().run_in_executor(self._executor, self._classify, tagged)
        threshold = self.spec.source_thresholds.get(source, self.spec.threshold)
        positive = [i for i, label in enumerate(self.spec.labels) if label in self.spec.positive]
        verdicts = []
        for row in probabilities:
            by_label = {label: round(float(p), 4) for label, p in zip(self.spec.labels, row, strict=True)}
            picked = row[positive]
            score = float(picked.max() if self.spec.activation == "sigmoid" else picked.sum())
            top = self.spec.labels[positive[int(picked.argmax())]]
            flagged = score >= threshold
            verdicts.append(Verdict(flagged, round(score, 4), by_label, top if flagged else ""))
        return verdicts
