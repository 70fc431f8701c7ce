#!/usr/bin/env bash
# One short check of gencli on a GPU: install, the GPU-marked tests, then the
# text, batch (dynamic and static KV cache) and image benchmarks on that
# device with small settings. Every step is time-boxed (`timeout`) within a
# whole budget (default 470 s, under 8 minutes); each step's output goes to
# RESULTS/NN-step.txt, and RESULTS/summary.txt lists every step's exit code
# and seconds. RESULTS is $OUT when set, else ./gpu-check-<date>/.
#
#   benchmarks/gpu_check.sh                        # CUDA
#   benchmarks/gpu_check.sh --device mps           # Apple
#   benchmarks/gpu_check.sh --device cpu --skip-install --budget 900   # a dry run on a CPU machine
#
# Exit 0 when every step passed, 1 otherwise (the summary says which).
set -uo pipefail

device=cuda
install=1
budget=${GPU_CHECK_BUDGET:-470}
results=${OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --skip-install) install=; shift ;;
    --budget) budget=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$device" in
  cuda|cuda:[0-9]*|mps|cpu) ;;
  *) echo "gpu_check.sh: --device takes cuda, cuda:N, mps or cpu, not '$device'" >&2; exit 2 ;;
esac
results=${results:-gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results" && results=$(cd "$results" && pwd) || exit 2
cd "$(dirname "$0")/.."
PY=.venv/bin/python
started=$(date +%s)
scale=1
failed=0
number=0

# step NAME LIMIT CMD...: run CMD for at most LIMIT seconds (less if the whole budget is nearly spent).
step() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - ($(date +%s) - started)))
  number=$((number + 1))
  local file
  file=$(printf '%s/%02d-%s.txt' "$results" "$number" "$name")
  if [ "$left" -lt 15 ]; then
    printf '%-24s skipped: the %ss budget is spent\n' "$name" "$budget" | tee -a "$results/summary.txt"
    failed=1
    return
  fi
  limit=$((limit * scale))
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (at most ${limit}s): $*" | tee "$file"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >>"$file" 2>&1
  rc=$?
  local verdict=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMED OUT"; elif [ "$rc" -ne 0 ]; then verdict=FAILED; fi
  [ "$verdict" = ok ] || failed=1
  printf '%-24s %-9s rc %3d  %4ds  (limit %ss)  %s\n' "$name" "$verdict" "$rc" $((SECONDS - t0)) "$limit" \
    "$(basename "$file")" | tee -a "$results/summary.txt"
}

{
  echo "gencli gpu_check.sh, device $device, budget ${budget}s, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with changes)')"
  echo "host $(uname -srm), $(nproc) CPUs"
} | tee "$results/summary.txt"

if [ -n "$install" ]; then
  step install 240 make install
elif [ ! -x "$PY" ]; then
  echo "gpu_check.sh: --skip-install, but there is no $PY: run make install" >&2
  exit 2
fi

# The machine as gencli sees it, and the GPU as its driver does.
if command -v nvidia-smi >/dev/null 2>&1; then step nvidia-smi 15 nvidia-smi; fi
step env 30 .venv/bin/gencli env --json --device "$device"

# Small settings: the GPU gets the real shapes, a CPU dry run smaller ones (minutes on 2 cores).
scale=1  # the steps' limits are a GPU's; a CPU dry run gets three times as long for smaller work
if [ "$device" = cpu ]; then
  scale=3
  text=(--modes fp32 --runs 1)
  batch=(--prompts 8 --sizes 8 --new-tokens 16 --dtype fp32)
  image=(--size 128 -n 1 --calls 2 --runs 1)
else
  text=(--modes fp32,bf16 --runs 2)
  batch=(--prompts 64 --sizes 16,64 --new-tokens 64 --dtype auto)
  image=(--calls 3 --runs 1)
fi

step gpu-tests 90 "$PY" -m pytest -q -m gpu -p no:cacheprovider
step bench-text 90 "$PY" benchmarks/bench_text.py --device "$device" "${text[@]}"
step bench-batch 60 "$PY" benchmarks/bench_batch.py --device "$device" "${batch[@]}"
step bench-image 150 "$PY" benchmarks/bench_image.py --device "$device" "${image[@]}"
# What would decide a static KV cache (transformers 5 compiles the decode step with it on CUDA):
# the same batch run with it, first call (compiling) and steady rate beside the dynamic run's.
step bench-batch-static 90 "$PY" benchmarks/bench_batch.py --device "$device" "${batch[@]}" --cache static

echo "total $(($(date +%s) - started))s; results in $results" | tee -a "$results/summary.txt"
exit "$failed"
