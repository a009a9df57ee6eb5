"""all-MiniLM-L6-v2 through ONNX Runtime: one export, the same vector on every CPU.

Every part of the gateway that embeds a short text at request time reads it from here (guards,
the semantic cache, retrieval queries, task routing, eval similarity): the float encoder, the
transformer exported once to ONNX, ~2x faster than torch for one text, its vectors equal to
``llmgw.embedder.encode`` (torch) to ~1e-7.

Why not int8. Until 2026-12-03 the guards and the cache read a dynamically quantised int8 copy
(~2.2x faster again). Its verdicts depended on the CPU: one prompt scored 0.485 on an AVX-512 VNNI
machine and 0.531 on an AVX2-only one, across the 0.5 threshold. Measured under ``qemu-x86_64 -cpu
Haswell`` (AVX2, no AVX-512) against the native VNNI kernels (``bench/encoder_cpus.py``):

* 8-bit weights: every vector differs, by up to 4e-2. On AVX2, ``vpmaddubsw`` adds pairs of
  products in int16 and saturates (onnxruntime's docs say so and suggest 7-bit weights).
* 7-bit weights (``reduce_range``): short texts agree to 3e-8, but longer ones still differ by up to
  1e-2. Dynamic quantisation rounds each activation to a step of ~range/255; the float ops between
  the products (GELU, softmax, layer norm) round differently in the AVX2 and AVX-512 kernels by
  ~1e-7, and once in a while that moves an activation across a rounding boundary, a whole step.
  Int8 with activations quantised at run time cannot be made exact across kernels.
* float: every vector agrees to ~1e-7: rounding differences stay the size of rounding differences.

So the float graph is the default and ``int8`` stays available as a parameter (for a benchmark or a
deployment on one CPU model). The export is deterministic for a given torch (two exports, one
sha256). ``encoder_reference.{txt,npz}`` beside the guard models holds vectors of a few dozen texts
for both precisions; a test and the first use of an encoder (:func:`encoder`) compare against them,
so a machine that would shift verdicts is caught instead of silently trusted.

One text per run (as the guards were trained): a text never gets a vector that depends on what it
was batched with. Blocking: call from a worker thread.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmgw import embedder

__all__ = [
    "REFERENCE",
    "TOLERANCE",
    "Drift",
    "EncoderDrift",
    "OnnxEncoder",
    "Precision",
    "cache_dir",
    "check_reference",
    "encode_query",
    "encoder",
]

log = logging.getLogger("llmgw.encoders")
Precision = Literal["int8", "float"]
#: the quantisation recipe; part of the export's file name, so a change never reuses an old file
RECIPE = {"int8": "dynamic-int8-per-channel-7bit-v2", "float": "float32-v2"}
#: committed reference vectors of the float encoder (texts, vectors, the export's sha256)
REFERENCE = Path(__file__).resolve().parents[1] / "guardrails" / "models" / "encoder_reference.npz"
#: largest difference of any vector component from the reference that still counts as the same
#: model: 100x the cross-CPU noise of the float graph, and far below what moves a guard verdict
#: (a classifier's logit moves by at most |w| * sqrt(384) * TOLERANCE, a few thousandths)
TOLERANCE = 1e-5
_export_lock = threading.Lock()


def cache_dir() -> Path:
    root = os.environ.get("LLMGW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llmgw"
    )
    return Path(root) / "encoders"


def _export_key(model_dir: str, precision: Precision) -> str:
    """Changes with the weights, torch, onnxruntime and the recipe, so a stale export is never used.

    The weights count by content, not by size: a fine-tuned copy of MiniLM (a LoRA merged into it)
    has every file the size of the original, and a key of names and sizes gave it the original's
    export, silently. Hashing ~90 MB costs ~0.2 s, once per encoder and process."""
    import onnxruntime
    import torch

    h = hashlib.sha256(f"{torch.__version__}|{onnxruntime.__version__}|{RECIPE[precision]}".encode())
    for f in sorted(Path(model_dir).rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            h.update(f"{f.relative_to(model_dir)}:{f.stat().st_size}:".encode())
            with f.open("rb") as stream:
                h.update(hashlib.file_digest(stream, "sha256").digest())
    return h.hexdigest()[:16]


def export(model_dir: str, precision: Precision) -> Path:
    """The ONNX file for ``precision``, built once per machine into :func:`cache_dir` (atomically)."""
    target = cache_dir() / f"minilm-{precision}-{_export_key(model_dir, precision)}.onnx"
    with _export_lock:
        if target.is_file():
            return target
        log.info("exporting the MiniLM at %s (%s) to %s, once", model_dir, precision, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        plain = target.with_suffix(f".float.{os.getpid()}.tmp")
        quantised = target.with_suffix(f".int8.{os.getpid()}.tmp")
        try:
            _export_float(model_dir, plain)
            if precision == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(
                    str(plain), str(quantised), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
                )
                quantised.replace(target)
            else:
                plain.replace(target)
        finally:
            plain.unlink(missing_ok=True)
            quantised.unlink(missing_ok=True)
    return target


def _export_float(model_dir: str, path: Path) -> None:
    import torch

    model = embedder.load(model_dir)

    class Transformer(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = model.tokenizer(["a short sample sentence"], return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    with embedder._lock, torch.inference_mode():
        torch.onnx.export(
            Transformer(model[0].auto_model).eval(),
            tuple(sample[n] for n in names),
            str(path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: axes for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )


def _mean_pooled(model: Any) -> bool:
    names = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    mean = getattr(pooling, "pooling_mode", None) == "mean" or getattr(pooling, "pooling_mode_mean_tokens", False)
    return names[:2] == ["Transformer", "Pooling"] and bool(mean)


#: texts whose vectors an encoder keeps (~1.5 KB each): see :class:`OnnxEncoder`
MEMO_SIZE = 2048


class OnnxEncoder:
    """Mean-pooled, normalised MiniLM vectors from one ONNX session (one thread, one text per run).

    The last :data:`MEMO_SIZE` texts' vectors are kept (read-only), so one text costs one pass
    however many parts of a request read it: the injection guard embeds the last user turn and the
    semantic cache looks the same turn up by its vector; history resent on every turn is read once.
    """

    def __init__(self, precision: Precision, model_dir: str | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        self.precision = precision
        model_dir = model_dir or embedder.model_path()
        model = embedder.load(model_dir)
        if not _mean_pooled(model):
            raise ValueError(f"{model_dir}: not a mean-pooled transformer; use llmgw.embedder (torch)")
        self.window = int(model.max_seq_length or 256)
        self.path = export(model_dir, precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        # a tokenizer of our own: a Rust tokenizer used by two threads at once raises "Already
        # borrowed", and the shared model's is used by torch encodes under llmgw.embedder's lock
        self.tokenizer = copy.deepcopy(model.tokenizer)
        self._tokenizer_lock = threading.Lock()
        #: text -> (read-only vector, whether the text was cut to the window), most recent last
        self._memo: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self._memo_lock = threading.Lock()
        self.passes = 0  # model runs so far (a memoised text costs none)

    def encode(self, text: str, truncate: bool = True) -> np.ndarray | None:
        """One normalised float32 vector (read-only: callers share it); None when ``truncate`` is False
        and the text is longer than the model's window (the model would silently drop the rest)."""
        with self._memo_lock:
            known = self._memo.get(text)
            if known is not None:
                self._memo.move_to_end(text)
        if known is None:
            known = self._run(text)
            with self._memo_lock:
                self._memo[text] = known
                if len(self._memo) > MEMO_SIZE:
                    self._memo.popitem(last=False)
        vector, cut = known
        return None if cut and not truncate else vector

    def forget(self) -> None:
        """Drop the kept vectors (a benchmark that times the model, not the memo)."""
        with self._memo_lock:
            self._memo.clear()

    def _run(self, text: str) -> tuple[np.ndarray, bool]:
        with self._tokenizer_lock:
            # one word piece past the window says whether the text is cut, without the tokenizer's
            # "sequence length is longer than the maximum" warning a whole-text pass logs for a long turn
            batch = self.tokenizer([text], truncation=True, max_length=self.window + 1, return_tensors="np")
            cut = batch["input_ids"].shape[1] > self.window
            if cut:
                batch = self.tokenizer([text], truncation=True, max_length=self.window, return_tensors="np")
        feed = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        pooled = self.session.run(None, feed)[0][0].mean(axis=0)  # one unpadded text: every token counts
        self.passes += 1
        vector = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        vector.flags.writeable = False
        return vector, cut

    def __call__(self, texts: list[str]) -> np.ndarray:
        """``(n, 384)`` vectors, each text run alone (so its vector never depends on its neighbours)."""
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.encode(text)
        return out


class TorchEncoder:
    """The fallback: the float model through torch (what the reference vectors were computed to equal)."""

    precision: Precision = "float"

    def __init__(self, model_dir: str | None = None) -> None:
        self.model_dir = model_dir or embedder.model_path()
        model = embedder.load(self.model_dir)
        self.window = int(model.max_seq_length or 256)
        self.tokenizer = copy.deepcopy(model.tokenizer)
        self._tokenizer_lock = threading.Lock()
        self.path = Path(self.model_dir)

    def forget(self) -> None:
        """Nothing to drop: the fallback keeps no vectors."""

    def encode(self, text: str, truncate: bool = True) -> np.ndarray | None:
        if not truncate:
            with self._tokenizer_lock:
                ids = self.tokenizer([text], truncation=True, max_length=self.window + 1)["input_ids"][0]
                if len(ids) > self.window:
                    return None
        return embedder.encode([text], self.model_dir)[0]

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([embedder.encode([t], self.model_dir)[0] for t in texts])


class EncoderDrift(RuntimeError):
    """Not even torch reproduces the reference vectors on this machine: the guards cannot give the
    verdicts they were calibrated for, and fail as their policy says (closed by default)."""


#: drift found at first use, if any (the ``llmgw_encoder_drift`` metric reports it)
drift_found: list[Drift] = []


@lru_cache(maxsize=4)
def encoder(
    precision: Precision = "float", model_dir: str | None = None, reference: Path | None = None
) -> OnnxEncoder | TorchEncoder:
    """The process-wide encoder of ``precision`` (built on first use; blocking).

    The default model is checked against the committed reference vectors first (another model
    against its own ``reference``: vectors of the same texts, e.g. the task router's tuned MiniLM).
    On drift the export is rebuilt once (a stale or damaged file); if it still drifts, torch is used
    instead (logged as an error; exact, about 2x slower), and if torch drifts too (other weights,
    another tokenizer), :class:`EncoderDrift` is raised.
    """
    default = not model_dir or Path(model_dir).resolve() == Path(embedder.model_path()).resolve()
    if precision == "int8" or (not default and reference is None):
        return OnnxEncoder(precision, model_dir)  # CPU-dependent by nature, or a model with no reference
    model_dir = None if default else model_dir
    reference = REFERENCE if default else reference
    try:
        enc = OnnxEncoder(precision, model_dir)
        drift = check_reference(enc, reference)
        if not drift.ok:
            log.error("%s; rebuilding the export once", drift.describe())
            enc.path.unlink(missing_ok=True)
            enc = OnnxEncoder(precision, model_dir)
            drift = check_reference(enc, reference)
        if drift.ok:
            return enc
        drift_found.append(drift)
        problem = f"{drift.describe()}. Guard and cache verdicts would silently shift on this machine"
    except Exception as exc:  # no onnxruntime, a failed export: torch gives the same vectors
        log.warning("ONNX encoder unavailable", exc_info=True)
        problem = f"the ONNX encoder is unavailable ({type(exc).__name__}: {exc})"
    fallback = TorchEncoder(model_dir)
    torch_drift = check_reference(fallback, reference)
    if torch_drift.ok:
        log.error("%s, so torch is used instead (the same vectors, about 2x slower). Run `python -m "
                  "llmgw.encoders` and report its output with `lscpu`.", problem)  # fmt: skip
        return fallback
    raise EncoderDrift(f"{problem}, and torch does not give the reference vectors either: {torch_drift.describe()}")


def encode_query(text: str, model_dir: str | None = None) -> np.ndarray:
    """One normalised float vector, as ``llmgw.embedder.encode([text], model_dir)[0]`` gives, ~2x faster.

    For retrieval queries, task routing and eval similarity. If ONNX is unavailable for the model
    (an export that fails, a model that is not a plain mean-pooled transformer), torch is used.
    """
    enc = _query_encoder(model_dir)
    vector = enc.encode(text) if enc is not None else None  # truncating: None only without an encoder
    return vector if vector is not None else embedder.encode([text], model_dir)[0]


@lru_cache(maxsize=4)
def _query_encoder(model_dir: str | None) -> OnnxEncoder | TorchEncoder | None:
    try:
        return encoder("float", model_dir)
    except EncoderDrift:
        raise
    except Exception:
        log.warning("ONNX encoder unavailable for %s; using torch", model_dir or "the default model", exc_info=True)
        return None


# -- the reference check --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Drift:
    """How far an encoder is from the committed reference vectors."""

    precision: str  # "float"; torch's vectors are checked against the same reference
    max_difference: float
    texts: int
    worst_text: str

    @property
    def ok(self) -> bool:
        return self.max_difference <= TOLERANCE

    def describe(self) -> str:
        return (
            f"the {self.precision} MiniLM encoder differs from the committed reference vectors by up to "
            f"{self.max_difference:.1e} (tolerance {TOLERANCE:.0e}; worst on {self.worst_text[:50]!r})"
        )


def reference_texts(path: Path = REFERENCE) -> list[str]:
    """The reference texts, one a line in the ``.txt`` beside the vectors (``\\n`` stands for a newline)."""
    lines = path.with_suffix(".txt").read_text(encoding="utf-8").splitlines()
    return [line.replace("\\n", "\n") for line in lines if line.strip()]


def load_reference(path: Path | None = None) -> tuple[list[str], dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path or REFERENCE, allow_pickle=False) as data:
        texts = [str(t) for t in data["texts"].tolist()]
        vectors = {"float": data["float"].astype(np.float32)}
        meta = json.loads(str(data["meta"]))
    return texts, vectors, meta


def check_reference(enc: OnnxEncoder | TorchEncoder, path: Path | None = None) -> Drift:
    """Embed the reference texts with ``enc`` and measure the largest difference from the reference."""
    texts, vectors, _ = load_reference(path or REFERENCE)
    diff = np.abs(enc(texts) - vectors["float"]).max(axis=1)
    worst = int(diff.argmax())
    return Drift(enc.precision, float(diff[worst]), len(texts), texts[worst])


def write_reference(texts: list[str], path: Path = REFERENCE) -> None:
    """Rebuild the reference vectors from this machine's encoders (maintainers, after a model change)."""
    import onnxruntime
    import torch

    encoders = {"float": OnnxEncoder("float")}
    meta = {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "recipe": RECIPE,
        "sha256": {p: hashlib.sha256(e.path.read_bytes()).hexdigest() for p, e in encoders.items()},
        "tolerance": TOLERANCE,
    }
    matrices: dict[str, Any] = {"float": encoders["float"](texts)}  # int8 differs by CPU: nothing to pin
    np.savez_compressed(path, texts=np.array(texts), meta=np.array(json.dumps(meta, sort_keys=True)), **matrices)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmgw.encoders``: check this machine's encoders against the reference (exit 1 on drift)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m llmgw.encoders", description=main.__doc__)
    parser.add_argument("--write", action="store_true", help="maintainers: rewrite the reference vectors")
    args = parser.parse_args(argv)
    if args.write:
        write_reference(reference_texts())
        print(f"wrote {REFERENCE}")
        return 0
    _, _, meta = load_reference()
    enc = OnnxEncoder("float")
    drift = check_reference(enc)
    sha = hashlib.sha256(enc.path.read_bytes()).hexdigest()
    same = "the same export file as the reference" if sha == meta["sha256"]["float"] else "ANOTHER export file"
    print(f"{'ok   ' if drift.ok else 'DRIFT'} {drift.describe()}; {same}")
    torch_drift = check_reference(TorchEncoder())
    print(f"{'ok   ' if torch_drift.ok else 'DRIFT'} torch: {torch_drift.describe()}")
    return 0 if drift.ok and torch_drift.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
