#!/usr/bin/env bash
# Experiment 1 (neuron sharing, vv/shallow.h) in vvd's C kernel vs PyTorch
# CPU, in one run.  Not run in CI.
#
#   bash bench/bench_neuron_sharing.sh [STEPS]        (default 1000000, the paper's)
#
# Both sides train the paper's prox_vv run on the paper's exact data and
# initialisation (PyTorch seeds 43 and 49, exported by
# neuron_sharing_torch.py as float64 .npy so the C side starts from the very
# same weights): width 100, full-batch SGD lr 0.2, reg 5e-5 (tau 1e-5),
# float32 on both sides.  Times are of the training loop alone (C: the best
# of 3 runs).  PyTorch
# runs with its default intra-op thread count (printed).  Checks that C is
# at least 20x faster and that both reach the paper's outcome (<= 12
# active neurons, all shared).  PyTorch at 10^6 steps takes ~6 minutes.
# Needs: /usr/bin/python3 with python3-torch and python3-numpy (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1000000}
PY=/usr/bin/python3
OUT=bench/out/neuron_sharing
mkdir -p "$OUT"

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null 2>&1 || echo "note: ninja -C build failed; using build/libvv.a as it is" >&2
extra=()
if ! nm build/libvv.a 2>/dev/null | grep -q ' T vv_shallow_train$'; then
  extra=(core/shallow.c core/shallow_data.c core/shallow_svg.c)   # not in libvv.a yet
fi
gcc -O3 -std=gnu11 -D_GNU_SOURCE -Icore/include bench/neuron_sharing_driver.c "${extra[@]}" build/libvv.a \
  -lcjson -lm -ldl -lpthread -o "$OUT/neuron_sharing_driver"
DRV=$OUT/neuron_sharing_driver

jget() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d'"$1"')'; }
kernel() { OPENBLAS_VERBOSE=2 "$PY" -c 'import numpy, torch; torch.ones(64,64) @ torch.ones(64,64)' 2>&1 | grep -o 'Core: [A-Za-z0-9]*' | head -1 | cut -d' ' -f2; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; SIMD: $(if grep -qw avx512f /proc/cpuinfo; then echo AVX-512; elif grep -qw avx2 /proc/cpuinfo; then echo AVX2; else echo SSE2; fi); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "torch $("$PY" -c 'import torch; print(torch.__version__, "threads", torch.get_num_threads())'); OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null) (kernels '$(kernel)'); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

"$PY" bench/neuron_sharing_torch.py paper "$OUT" >/dev/null
echo
echo "== prox_vv, paper data and init, $steps steps, float32 on both sides"
# C: best of 3 runs (identical results; the machine may be shared).
c=$(for r in 1 2 3; do "$DRV" train_from "$OUT" prox_vv "$steps" "$OUT/prox_vv_c.svg"; done |
    "$PY" -c 'import json,sys; print(json.dumps(min((json.loads(l) for l in sys.stdin), key=lambda d: d["seconds"])))')
printf 'vvd C   : %8.3f s (best of 3)  active %s, shared %s, used %s, MSE %.4e, VV norm %.6f\n' \
  "$(echo "$c" | jget '["seconds"]')" "$(echo "$c" | jget '["active"]')" "$(echo "$c" | jget '["shared"]')" \
  "$(echo "$c" | jget '["used"]')" "$(echo "$c" | jget '["mse"]')" "$(echo "$c" | jget '["vv_norm"]')"
t=$("$PY" bench/neuron_sharing_torch.py train "$OUT/x.npy" "$OUT/y.npy" "$steps" 49 prox_vv)
printf 'PyTorch : %8.3f s  active %s, shared %s, used %s, MSE %.4e, VV norm %.6f (torch %s, %s thread(s))\n' \
  "$(echo "$t" | jget '["seconds"]')" "$(echo "$t" | jget '["active"]')" "$(echo "$t" | jget '["shared"]')" \
  "$(echo "$t" | jget '["used"]')" "$(echo "$t" | jget '["mse"]')" "$(echo "$t" | jget '["vv_norm"]')" \
  "$(echo "$t" | jget '["torch"]')" "$(echo "$t" | jget '["threads"]')"
echo "paper   :             active 10, shared 10, MSE 2.9286e-05, VV norm 1.45632 (10^6 steps)"
"$PY" - "$c" "$t" <<'PYEOF'
import json, sys
c, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = t["seconds"] / c["seconds"]
ok_c = c["active"] <= 12 and c["shared"] == c["active"]
ok_t = t["active"] <= 12 and t["shared"] == t["active"]
print("ratio: C is %.0fx faster (%.2f us/step vs %.1f us/step)"
      % (ratio, 1e6 * c["seconds"] / c["steps"], 1e6 * t["seconds"] / t["steps"]))
ok = ratio >= 20 and (c["steps"] < 1000000 or (ok_c and ok_t))
print("RESULT: %s (>= 20x faster: %s; paper outcome C: %s, torch: %s)"
      % ("PASS" if ok else "FAIL", ratio >= 20, ok_c, ok_t))
sys.exit(0 if ok else 1)
PYEOF
