#!/usr/bin/env bash
# Sets up vvd and runs the lasso example: a multi-task
# lasso on a VGG-like last-layer problem (50000 samples, 512 neurons, 10
# outputs), solved to a certified relative duality gap of 1e-6.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
spec=${1:-schema/examples/vgg-like.json}
echo "== vvd run $spec"
build/vvd run "$spec" --out vvd-out/vgg-like | python3 deploy/show_run.py
