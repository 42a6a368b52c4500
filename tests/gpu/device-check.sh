#!/usr/bin/env bash
# The device check of the CUDA backend, for a machine with an NVIDIA GPU
# (run from the repository root; needs only a C compiler, nvcc and python3
# with numpy and torch, so it builds vvd's core and gpu/ directly instead of
# through meson, whose other dependencies such a machine may lack):
#   1. builds the kernels' fatbin, the backend, the core (no OpenBLAS needed
#      at run time: nothing here calls the CPU backend), the backend
#      equivalence test and the lasso benchmark;
#   2. the equivalence test: every backend operation on the GPU against its
#      textbook definition (per-operation tolerances), then a lasso through
#      the device path (statistics and FISTA on the GPU) graded by loops;
#   3. the benchmark: an AlexNet-first-layer-sized problem (N=50000,
#      K=9216, D=4096, synthetic post-ReLU features) from the rows to
#      rel_gap 1e-6, each phase timed (target: under 60 s on an H200);
#   4. the paper's Adam-prox loop on the same data in PyTorch on the same
#      GPU, its certificate printed as it goes (ADAM_SECONDS of Adam time);
#   5. (before 3) the forward pass of full-size VGG-19 and AlexNet on the
#      GPU against the CPU's and PyTorch's logits (to 1e-4), images/s.
# Exit status 0 when 2, 3 and 5 passed.  Logs go to $OUT when set; the 2.6 GB
# of rows stay in the build folder.  About 5 minutes on an H200.  The tests
# run it small on the CUDA emulator (tests/gpu/emu: VVD_CUDA_DRIVER,
# VVD_CUBLAS, LASSO_ARGS="--n 3000 --k 128 --d 64", ADAM_SECONDS=3), so it
# is known to work before a GPU is lent.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD_GPU:-build-gpu-check}
ADAM_SECONDS=${ADAM_SECONDS:-150}
mkdir -p "$B/data"
log=${OUT:-$B}
NVCC=/usr/local/cuda/bin/nvcc
[ -x "$NVCC" ] || NVCC=$(command -v nvcc)
CUDA=$(python3 gpu/cuda_root.py "$NVCC")
[ -n "$CUDA" ] || { echo "device-check: no CUDA Toolkit with cublas_v2.h for $NVCC" >&2; exit 1; }
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$NVCC" --version | tail -1
nproc
echo "== build"
t0=$(date +%s)
"$NVCC" -fatbin -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 -o "$B/kernels.fatbin" gpu/kernels.cu
python3 gpu/embed_fatbin.py "$B/kernels.fatbin" "$B/cuda_fatbin.c"
CFLAGS=(-O2 -std=gnu11 -D_GNU_SOURCE -DVV_HAVE_CUDA "-DVV_CUDA_LIBDIR=\"$CUDA/lib64\""
        -Icore/include -Icore -Igpu/include -Itests "-I$CUDA/include")
[ -f "$CUDA/include/nccl.h" ] && CFLAGS+=(-DVV_HAVE_NCCL)
CORE=(err cpu blas parts backend_cpu backend_sim gram groups stats solve solve_fista solve_fista_dev solve_bcd
      solve_adam array npy log synth)
SRC=(gpu/backend_cuda.c "$B/cuda_fatbin.c" tests/gpu/no_safetensors.c)
for f in "${CORE[@]}"; do SRC+=("core/$f.c"); done
objs=()
for s in "${SRC[@]}"; do
  o="$B/$(basename "${s%.c}").o"
  cc "${CFLAGS[@]}" -c "$s" -o "$o" &
  objs+=("$o")
done
wait
# libvv links OpenBLAS (the runtime library is enough: -l:libopenblas.so.0).
BLAS=$(pkg-config --libs openblas 2>/dev/null || echo -l:libopenblas.so.0)
cc "${CFLAGS[@]}" tests/unit/test_gpu_backend.c "${objs[@]}" $BLAS -ldl -lpthread -lm -o "$B/test_gpu_backend"
cc "${CFLAGS[@]}" tests/gpu/lasso_bench.c "${objs[@]}" $BLAS -ldl -lpthread -lm -o "$B/lasso_bench"
echo "built in $(( $(date +%s) - t0 )) s"

echo "== backend equivalence (GPU against the definitions)"
erc=0
"$B/test_gpu_backend" | tee "$log/equivalence.tap" || erc=$?
grep -q '^1\.\.0 # SKIP' "$log/equivalence.tap" && { echo "device-check: no usable GPU"; exit 1; }
if [ "$erc" != 0 ] || grep -q '^not ok' "$log/equivalence.tap"; then
  echo "device-check: equivalence FAILED (exit $erc)"
  exit 1
fi

# Two ranks under mpirun (where MPI is installed): their statistics summed
# between the GPUs with NCCL (tests/gpu/nccl_check.c, server/mpi_run.c's
# path) against one process.  With one GPU both ranks are on it, which NCCL
# refuses, so the sums must stay on the host.
if command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
  echo "== two ranks (mpirun; NCCL between the GPUs)"
  mpicc "${CFLAGS[@]}" -DVV_HAVE_MPI -Iserver tests/gpu/nccl_check.c server/mpi_run.c \
    "${objs[@]}" $BLAS -ldl -lpthread -lm -o "$B/nccl_check"
  ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  mrc=0
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMPI_MCA_btl_vader_single_copy_mechanism=none \
    mpirun -np 2 --oversubscribe --bind-to none "$B/nccl_check" ${NCCL_ARGS:-} \
    > "$log/nccl.txt" 2>&1 || mrc=$?
  cat "$log/nccl.txt"
  want="summed on the host"
  if [ -f "$CUDA/include/nccl.h" ] && { [ "${ngpu:-0}" -ge 2 ] || [ -n "${VVD_NCCL:-}" ]; }; then
    want="summed between the GPUs with NCCL"
  fi
  if [ "$mrc" != 0 ] || ! grep -q '^ok' "$log/nccl.txt" || ! grep -q "$want" "$log/nccl.txt"; then
    echo "device-check: two ranks FAILED (exit $mrc; expected \"$want\")"
    exit 1
  fi
  echo "two ranks: G and Bt $want"
else
  echo "== two ranks: skipped (no mpirun or mpicc)"
fi

# Full-size VGG-19 (CIFAR) and AlexNet (64x64) forward on the GPU (weights
# resident, each batch's images going up and logits coming down) against
# the CPU's pass and against PyTorch's (on the GPU when its torch has
# CUDA): the logits to 1e-4, the images/s of both.  FORWARD_DIV and
# FORWARD_N make them narrow and few (the emulator's run).
echo "== forward pass on the GPU: VGG-19 and AlexNet against PyTorch"
fobjs=()
for f in model model_forward model_winograd model_dev model_zoo safetensors_write; do
  cc "${CFLAGS[@]}" -c "core/$f.c" -o "$B/$f.o" &
  fobjs+=("$B/$f.o")
done
wait
cc "${CFLAGS[@]}" bench/forward_driver.c "${fobjs[@]}" "${objs[@]}" $BLAS -ldl -lpthread -lm \
  -o "$B/forward_driver"
fdiv=${FORWARD_DIV:-1} fn=${FORWARD_N:-4096}
havetorch=0
python3 -c 'import torch, numpy' 2>/dev/null && havetorch=1
for arch in vgg19_cifar alexnet_cifar64; do
  d="$B/forward-$arch"
  mkdir -p "$d"
  v=$("$B/forward_driver" "$arch" "$fdiv" "$fn" 256 "$d" cuda) ||
    { echo "device-check: the $arch forward pass FAILED"; exit 1; }
  t='{}'
  [ "$havetorch" = 1 ] && t=$(FORWARD_DEVICE=cuda python3 bench/forward_torch.py "$arch" "$fdiv" 256 "$d")
  python3 - "$arch" "$fdiv" "$fn" "$v" "$t" <<'PY' | tee -a "$log/forward.txt" ||
import json, sys
arch, div, n, v, t = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
print(f"{arch} widths/{div}, {n} images, batch 256: vvd on {v['device']} {v['images_per_s']:.0f} "
      f"images/s, logits against the CPU's to {v['cpu_rel_diff']:.1e}")
ok = v["cpu_rel_diff"] < 1e-4
if t:
    print(f"  PyTorch {t['torch']} on {t['device']}: {t['images_per_s']:.0f} images/s; ratio "
          f"vvd/PyTorch {v['images_per_s'] / t['images_per_s']:.2f}x; logits agree to "
          f"{t['rel_diff']:.1e}")
    ok = ok and t["rel_diff"] < 1e-4
else:
    print("  (no torch and numpy in this python3: the PyTorch comparison is skipped)")
sys.exit(0 if ok else 1)
PY
    { echo "device-check: the $arch logits differ by more than 1e-4"; exit 1; }
done

rc=0
OUT=$log bash bench/bench_gpu.sh "$B/lasso_bench" "$B/data" "$ADAM_SECONDS" || rc=$?
[ "$rc" = 0 ] || { echo "device-check: the lasso benchmark FAILED (exit $rc)"; exit 1; }
echo "device-check: passed"
