"""Do the MiniLM encoders give the same vectors on an AVX2-only CPU as on this one?

    apt-get install qemu-user   # once
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.encoder_cpus [--cpu Haswell]

Exports three ONNX variants of all-MiniLM-L6-v2 (float; int8 with 8-bit weights, as shipped until
2026-12-03; int8 with 7-bit weights, as shipped since), runs the reference texts
(``guardrails/models/encoder_reference.txt``) through each natively and under ``qemu-x86_64 -cpu
Haswell`` (AVX2/FMA, no AVX-512, no VNNI: onnxruntime picks its AVX2 kernels there), and prints the
largest component difference between the two CPUs and the cosine to torch's vectors. The emulated
half takes several minutes. The run under qemu imports only numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

VARIANTS = ("float", "int8-8bit", "int8-7bit")
_RUN = """
import json, sys
import numpy as np, onnxruntime as ort
work = sys.argv[1]
data = np.load(work + "/tokens.npz")
n = len(data.files) // 3
for name in VARIANTS_HERE:
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession(f"{work}/{name}.onnx", o, providers=["CPUExecutionProvider"])
    out = []
    for i in range(n):
        v = s.run(None, {k: data[f"{k}_{i}"] for k in ("input_ids", "attention_mask", "token_type_ids")})[0][0].mean(0)
        out.append(v / np.linalg.norm(v))
    np.save(f"{work}/{sys.argv[2]}-{name}.npy", np.array(out, dtype=np.float32))
""".replace("VARIANTS_HERE", repr(VARIANTS))


def prepare(work: Path) -> list[str]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from llmgw import embedder, encoders

    model_dir = embedder.model_path()
    encoders._export_float(model_dir, work / "float.onnx")
    for name, reduce in (("int8-8bit", False), ("int8-7bit", True)):
        quantize_dynamic(
            str(work / "float.onnx"), str(work / f"{name}.onnx"), weight_type=QuantType.QInt8, per_channel=True,
            reduce_range=reduce,
        )  # fmt: skip
    texts = encoders.reference_texts()
    tokenizer = embedder.load(model_dir).tokenizer
    tokens = {}
    for i, text in enumerate(texts):
        enc = tokenizer([text], truncation=True, max_length=256, return_tensors="np")
        tokens.update({f"{k}_{i}": enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})
    np.savez(work / "tokens.npz", **tokens)
    np.save(work / "torch.npy", embedder.encode(texts))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="Haswell", help="qemu CPU model without AVX-512 (default Haswell)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        texts = prepare(work)
        script = work / "run.py"
        script.write_text(_RUN)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, str(script), tmp, "native"], check=True, env=env)
        emulated = ["qemu-x86_64", "-cpu", args.cpu, sys.executable, str(script), tmp, "emulated"]
        subprocess.run(emulated, check=True, env=env, stderr=subprocess.DEVNULL)
        reference = np.load(work / "torch.npy")
        rows = []
        for name in VARIANTS:
            native, other = np.load(work / f"native-{name}.npy"), np.load(work / f"emulated-{name}.npy")
            diff = np.abs(native - other).max(axis=1)
            rows.append({
                "model": name, "texts": len(texts), "max_difference": float(diff.max()),
                "identical": int((diff == 0).sum()), "min_cosine_to_torch": float((native * reference).sum(1).min()),
            })  # fmt: skip
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
