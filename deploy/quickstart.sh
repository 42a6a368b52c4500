#!/usr/bin/env bash
# vvd's main job on a fresh Debian machine: installs what vvd needs, builds
# it, starts `vvd serve` in the background (or reuses the one running),
# makes sure the embedded default model exists (fmnist-mlp, 784-1024-1024-10,
# trained by vvd on Fashion-MNIST on first use and cached in the data
# directory), then queues a sweep over lambda that compresses the model's
# two hidden layers, shows live progress and ends with a table of neurons
# kept, parameters and accuracy before and after.  vvd keeps serving; the
# script prints the dashboard URL and the command that stops it.
#
#   bash deploy/quickstart.sh
#
# Environment: VVD_PORT (default 8470), VVD_DATA_DIR (default ./vvd-data),
# VVD_LAMBDAS (the lambda_ratio grid, default "0.06 0.045 0.03 0.015").
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
VV_BROWSER_TESTS=0 VV_PACKAGE_DEPS=0 bash deploy/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
port=${VVD_PORT:-8470}
data=${VVD_DATA_DIR:-$PWD/vvd-data}
mkdir -p "$data"
url=http://127.0.0.1:$port
if python3 deploy/quickstart.py --server "$url" --ping; then
  echo "== reusing the vvd serving at $url"
else
  echo "== starting vvd serve at $url (data directory $data, log $data/vvd.log)"
  nohup build/vvd serve --listen "127.0.0.1:$port" --data-dir "$data" --web-dir "$PWD/web" \
    >>"$data/vvd.log" 2>&1 </dev/null &
  echo $! >"$data/vvd.pid"
  python3 deploy/quickstart.py --server "$url" --ping --wait 30
fi
python3 deploy/quickstart.py --server "$url" --lambdas "${VVD_LAMBDAS:-0.06 0.045 0.03 0.015}"
echo
echo "done in $(( $(date +%s) - t0 )) s.  vvd keeps serving:"
echo "  dashboard:  $url/"
if [ -f "$data/vvd.pid" ] && kill -0 "$(cat "$data/vvd.pid")" 2>/dev/null; then
  echo "  stop it:    kill $(cat "$data/vvd.pid")"
else
  echo "  stop it:    pkill -f 'vvd serve --listen 127.0.0.1:$port'"
fi
