#!/usr/bin/env bash
# vvd's certified lasso on a GPU vs the paper's Adam-prox loop in PyTorch on
# the same GPU and the same data, in one run.  Not run in CI: it needs an
# NVIDIA GPU (tests/gpu/device-check.sh runs it after its own checks).
#
#   bash bench/bench_gpu.sh LASSO_BENCH [DATA_DIR] [ADAM_SECONDS]
#
# LASSO_BENCH: tests/gpu/lasso_bench.c built for CUDA (device-check.sh builds
# it with cc and nvcc alone; a meson build with CUDA has it as
# build/tests/lasso_bench).  Problem: the AlexNet first layer's size, N=50000
# samples of K=9216 post-ReLU features, D=4096 outputs; lambda = 0.1
# lambda_max.  vvd: statistics accumulated on the device in float64, FISTA
# resident there to rel_gap 1e-6, each phase timed.  PyTorch: the paper's
# loop (float32, Adam(lr=1e-3), shrink after each step) for ADAM_SECONDS
# (default 150) of Adam time on the float32 rows vvd used, its certificate
# computed every 100 iterations with vvd's formula.  Prints both and the
# ratio of the times to vvd's certificate (or that Adam-prox never got
# there).  The rows (2.6 GB) go to DATA_DIR (default a temporary folder) and
# are removed at the end.  LASSO_ARGS adds options to lasso_bench (e.g.
# "--sim --n 4000 --k 600 --d 300" tries the script without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${1:?usage: bench_gpu.sh LASSO_BENCH [DATA_DIR] [ADAM_SECONDS]}
DATA=${2:-$(mktemp -d)}
SECS=${3:-150}
log=${OUT:-$DATA}
mkdir -p "$DATA"
trap 'rm -f "$DATA/phi.f32" "$DATA/psi.f32"' EXIT
echo "== vvd: AlexNet-first-layer lasso from the rows to rel_gap 1e-6 on the device"
rc=0
# shellcheck disable=SC2086  # LASSO_ARGS: extra options, e.g. "--sim --n 4000 --k 600 --d 300"
"$BENCH" --write "$DATA" ${LASSO_ARGS:-} | tee "$log/lasso_bench.txt" || rc=$?
echo "== the paper's Adam-prox in PyTorch on the same data and GPU (${SECS} s)"
if python3 -c 'import torch, numpy' 2>/dev/null; then
  python3 tests/gpu/adam_prox_torch.py "$DATA" --seconds "$SECS" --json "$log/adam_prox.json" |
    tee "$log/adam_prox.txt" || echo "bench_gpu: Adam-prox failed"
else
  echo "bench_gpu: no torch/numpy here: the Adam-prox comparison is skipped"
fi
exit "$rc"
