#!/usr/bin/env bash
# One training step (SGD with momentum, cross-entropy, batch BATCH) of vvd's
# trainer against PyTorch CPU, on the fmnist MLP and a narrow VGG-19: the
# same kernels as the forward pass serve training.  Best of STEPS steps.
# Not run in CI.
#
#   bash bench/bench_train_step.sh [BATCH] [STEPS] [VGG_DIV]
#       defaults: 128 10 8;  BUILD=DIR picks the build directory (build)
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-128} steps=${2:-10} div=${3:-8}
PY=/usr/bin/python3
OUT=bench/out/train_step
BUILD=${BUILD:-build}
mkdir -p "$OUT"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null
gcc -O2 -std=gnu11 -D_GNU_SOURCE -Icore/include bench/train_step_driver.c "$BUILD/libvv.a" \
  -lcjson -lz $(pkg-config --libs openblas) -lm -lpthread -o "$OUT/train_step_driver"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for arch in fmnist-mlp vgg19_cifar; do
  v=$("$OUT/train_step_driver" "$arch" "$div" "$batch" "$steps")
  t=$("$PY" bench/train_step_torch.py "$arch" "$div" "$batch" "$steps")
  "$PY" - "$v" "$t" "$arch" "$div" "$batch" <<'PY'
import json, sys
v, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
arch, div, batch = sys.argv[3:]
name = arch if arch != "vgg19_cifar" else f"vgg19_cifar widths/{div}"
print(f"{name}, batch {batch}: vvd {1e3 * v['seconds']:.1f} ms/step, "
      f"PyTorch {1e3 * t['seconds']:.1f} ms/step ({t['threads']} threads); "
      f"ratio {t['seconds'] / v['seconds']:.2f}x")
PY
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
