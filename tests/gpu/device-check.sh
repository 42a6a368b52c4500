#!/usr/bin/env bash
# The device check of the CUDA backend, for a machine with an NVIDIA GPU
# (run from the repository root; needs only a C compiler, nvcc and python3,
# so it builds the GPU parts directly instead of through meson, whose other
# dependencies such a machine may lack):
#   1. builds gpu/ (kernels fatbin + backend) with the backend-equivalence
#      test and the statistics benchmark;
#   2. runs the equivalence test: every backend operation on the GPU against
#      its textbook definition, per-operation tolerances;
#   3. runs the statistics benchmark: an AlexNet-first-layer-sized problem
#      (N=50000, K=9216, D=4096, synthetic post-ReLU features) streamed
#      through the device in float64, phase times and GFLOP/s.
# Exit status 0 when all of it passed.  Writes logs to $OUT when set.
# Not yet in this check (open in issue 8): the solve to rel_gap 1e-6 on the
# device and the paper's Adam-prox in PyTorch beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD_GPU:-build-gpu-check}
mkdir -p "$B"
NVCC=/usr/local/cuda/bin/nvcc
[ -x "$NVCC" ] || NVCC=$(command -v nvcc)
CUDA=$(python3 gpu/cuda_root.py "$NVCC")
[ -n "$CUDA" ] || { echo "device-check: no CUDA Toolkit with cublas_v2.h for $NVCC" >&2; exit 1; }
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$NVCC" --version | tail -1
echo "== build"
"$NVCC" -fatbin -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 -o "$B/kernels.fatbin" gpu/kernels.cu
python3 gpu/embed_fatbin.py "$B/kernels.fatbin" "$B/cuda_fatbin.c"
CFLAGS=(-O2 -std=gnu11 -D_GNU_SOURCE -DVV_HAVE_CUDA "-DVV_CUDA_LIBDIR=\"$CUDA/lib64\""
        -Icore/include -Igpu/include -Itests "-I$CUDA/include")
SRC=(gpu/backend_cuda.c "$B/cuda_fatbin.c" core/err.c)
cc "${CFLAGS[@]}" tests/unit/test_gpu_backend.c "${SRC[@]}" -ldl -lpthread -lm -o "$B/test_gpu_backend"
cc "${CFLAGS[@]}" tests/gpu/gram_bench.c "${SRC[@]}" -ldl -lpthread -lm -o "$B/gram_bench"
echo "== backend equivalence (GPU against the definitions)"
log=${OUT:-$B}
"$B/test_gpu_backend" | tee "$log/equivalence.tap"
grep -q '^not ok' "$log/equivalence.tap" && { echo "device-check: equivalence FAILED"; exit 1; }
grep -q '^1\.\.0 # SKIP' "$log/equivalence.tap" && { echo "device-check: no usable GPU"; exit 1; }
echo "== statistics of an AlexNet-first-layer-sized problem on the device"
"$B/gram_bench" | tee "$log/gram_bench.txt"
echo "device-check: passed"
