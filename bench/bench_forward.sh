#!/usr/bin/env bash
# The model runtime's forward pass (eval mode) against PyTorch CPU on the same
# network and inputs, in one run.  Not run in CI.
#
#   bash bench/bench_forward.sh [ARCH] [DIV] [N] [BATCH]
#       defaults: vgg19_cifar 16 4096 256 (the narrow VGG-19 of the tests)
#   BUILD=DIR picks the build directory (default build); NCMD (default 512)
#   images go through `vvd forward` and through a PyTorch script, each timed
#   as a whole process (start-up, loading, all images in one call, saving),
#   best of 3.
#
# vvd writes the seeded weights and random inputs; PyTorch loads them, so
# both run the same network on the same images; the logits must agree to
# 1e-4.  Times are the best of 3 passes over N images.  Both sides use the
# machine's cores (OpenBLAS threads for vvd, torch's intra-op threads) and
# both run Debian's OpenBLAS with the kernel printed (OPENBLAS_VERBOSE=2).
# Needs /usr/bin/python3 with python3-torch (VV_BENCH_DEPS=1
# deploy/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-vgg19_cifar} div=${2:-16} n=${3:-4096} batch=${4:-256}
PY=/usr/bin/python3
OUT=bench/out/forward
BUILD=${BUILD:-build} ncmd=${NCMD:-512}
mkdir -p "$OUT"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null
gcc -O2 -std=gnu11 -D_GNU_SOURCE -Icore/include bench/forward_driver.c "$BUILD/libvv.a" \
  -lcjson -lz $(pkg-config --libs openblas) -lm -lpthread -o "$OUT/forward_driver"
kernel() { OPENBLAS_VERBOSE=2 "$@" 2>&1 | grep -o 'Core: [A-Za-z0-9]*' | head -1 | cut -d' ' -f2; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "kernel used by vvd: $(kernel "$OUT/forward_driver" "$arch" "$div" 8 8 "$OUT")," \
     "by PyTorch: $(kernel "$PY" -c 'import torch; torch.ones(64,64) @ torch.ones(64,64)')"
v=$("$OUT/forward_driver" "$arch" "$div" "$n" "$batch" "$OUT")
t=$("$PY" bench/forward_torch.py "$arch" "$div" "$batch" "$OUT")
"$PY" - "$v" "$t" "$arch" "$div" "$n" "$batch" <<'PY'
import json, sys
v, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
arch, div, n, batch = sys.argv[3:]
print(f"== {arch} widths/{div}, {n} images, batch {batch}, {v['macs']/1e6:.1f} M multiply-adds per image")
print(f"vvd     : {v['seconds']:.3f} s  {v['images_per_s']:9.0f} images/s  (OpenBLAS {v['blas']}, {v['threads']} threads)")
print(f"PyTorch : {t['seconds']:.3f} s  {t['images_per_s']:9.0f} images/s  (torch {t['torch']}, {t['threads']} threads)")
print(f"ratio vvd/PyTorch: {v['images_per_s']/t['images_per_s']:.2f}x; logits agree to {t['rel_diff']:.1e} (relative)")
sys.exit(0 if t["rel_diff"] < 1e-4 else 1)
PY
# The command users run, as a process, against a PyTorch script doing the
# same (the weights and the first NCMD images written above).
mkdir -p "$OUT/cmd"
"$OUT/forward_driver" "$arch" "$div" "$ncmd" "$ncmd" "$OUT/cmd" >/dev/null
echo "{\"arch\": \"$arch\", \"width_div\": $div}" >"$OUT/cmd/model.json"
best() { # best wall seconds of 3 runs of "$@"
  local b=1e9 t
  for _ in 1 2 3; do
    /usr/bin/time -f %e -o "$OUT/time" "$@" >/dev/null 2>&1
    t=$(tail -1 "$OUT/time")
    b=$("$PY" -c "print(min($b, $t))")
  done
  echo "$b"
}
tv=$(best "$BUILD/vvd" forward "$OUT/cmd/model.json" "$OUT/cmd/w.safetensors" "$OUT/cmd/x.npy" "$OUT/cmd/y_vvd.npy")
tt=$(best "$PY" bench/forward_torch.py "$arch" "$div" "$ncmd" "$OUT/cmd" once)
"$PY" - "$tv" "$tt" "$ncmd" "$OUT/cmd" <<'PY'
import sys
import numpy as np
tv, tt, n, d = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
a, b = np.load(d + "/y_vvd.npy"), np.load(d + "/y_torch.npy")
err = float(np.abs(a - b).max() / np.abs(b).max())
print(f"vvd forward, {n} images, whole process: {tv:.2f} s; PyTorch script: {tt:.2f} s; "
      f"ratio {tt / tv:.2f}x; logits agree to {err:.1e}")
sys.exit(0 if err < 1e-4 else 1)
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
