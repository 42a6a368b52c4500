#!/usr/bin/env bash
# vvd vs scikit-learn (and the paper's Adam-prox in PyTorch) on the same
# multi-task lasso problems, in one run.  Not run in CI.
#
#   bash bench/bench_lasso.sh [vgg|alexnet|all]     (default all)
#
# Problems (vvd gen: post-ReLU features of a random 2-layer net on
# correlated Gaussian inputs, float32 .npy): VGG-like N=50000 K=512 D=10,
# AlexNet-like N=50000 K=4096 D=10; lambda = 0.05 lambda_max; target
# rel_gap 1e-6.  Times are end to end: process start, reading the files,
# statistics and solve.  scikit-learn runs twice: as a user gets it (no
# OPENBLAS_CORETYPE: Debian's OpenBLAS 0.3.21 falls back to generic kernels
# on this CPU) and with OPENBLAS_CORETYPE=SkylakeX, the kernels vvd uses.
# Needs: VV_BENCH_DEPS=1 bash deploy/install-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
VVD=$PWD/build/vvd
PY=/usr/bin/python3
OUT=bench/out
mkdir -p "$OUT"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE   # the bench sets them explicitly per side

kernel() { OPENBLAS_VERBOSE=2 "$PY" -c 'import numpy' 2>&1 | grep -o 'Core: [A-Za-z0-9]*' | head -1; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
echo "OpenBLAS: $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null); kernels: default '$(kernel)', OPENBLAS_CORETYPE=SkylakeX '$(OPENBLAS_CORETYPE=SkylakeX kernel)'"
echo "scikit-learn $("$PY" -c 'import sklearn; print(sklearn.__version__)'), torch $("$PY" -c 'import torch; print(torch.__version__)')"
for n in 512 4096; do
  echo "numpy dgemm ${n}^3, SkylakeX kernels: $(OPENBLAS_CORETYPE=SkylakeX "$PY" bench/reference.py dgemm $n | "$PY" -c 'import json,sys; print("%.1f GFLOP/s" % json.load(sys.stdin)["dgemm_gflops"])')"
done

jget() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d'"$1"')'; }

run_problem() { # name n k d seed mu
  local name=$1 n=$2 k=$3 d=$4 seed=$5 mu=$6 dir=$OUT/$1
  echo
  echo "== $name: N=$n K=$k D=$d (float32 .npy), lambda = 0.05 lambda_max, target rel_gap 1e-6"
  if [ ! -f "$dir/phi.npy" ]; then "$VVD" gen --n "$n" --k "$k" --d "$d" --seed "$seed" --out "$dir"; fi
  cat >"$dir/spec.json" <<J
{"kind": "lasso", "phi": "$dir/phi.npy", "psi": "$dir/psi.npy", "lambda_ratio": 0.05, "tol": 1e-6}
J
  cat "$dir/phi.npy" "$dir/psi.npy" >/dev/null   # warm page cache for both sides alike
  # vvd runs three times (a fraction of a second each here): the median wall time counts.
  local t0 t1 walls=()
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    "$VVD" run "$dir/spec.json" --out "$dir/vvd" >"$dir/vvd.ndjson" 2>"$dir/vvd.log"
    t1=$(date +%s.%N)
    walls+=("$("$PY" -c "print($t1 - $t0)")")
  done
  local vt lam vobj vrel vact gfl sts kern
  vt=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n 2p)
  lam=$(jget '["lambda"]' <"$dir/vvd.ndjson")
  vobj=$(jget '["objective"]' <"$dir/vvd.ndjson")
  vrel=$(jget '["rel_gap"]' <"$dir/vvd.ndjson")
  vact=$(jget '["active"]' <"$dir/vvd.ndjson")
  sts=$(jget '["stats_seconds"]' <"$dir/vvd.ndjson")
  kern=$(jget '["blas"]' <"$dir/vvd.ndjson")
  gfl=$(grep '"event":"stats"' "$dir/vvd.ndjson" | jget '["gflops"]')
  local indep
  indep=$(OPENBLAS_CORETYPE=SkylakeX "$PY" bench/reference.py gap "$dir/phi.npy" "$dir/psi.npy" "$lam" "$dir/vvd/V.npy")
  printf 'vvd (%s kernels): %.3f s end to end (median of %s), statistics %.3f s, objective %.12g, rel_gap %.2e (numpy recomputes %.2e), %s neurons active\n' \
    "$kern" "$vt" "$(echo "${walls[@]}" | sed 's/\([0-9]*\.[0-9][0-9][0-9]\)[0-9]*/\1/g')" "$sts" "$vobj" "$vrel" "$(echo "$indep" | jget '["rel_gap"]')" "$vact"
  "$PY" -c "n,k=$n,$k; t=$sts; g=$gfl; print('Gram pass: %.1f GFLOP/s counting the N K (K+1) flops of the symmetric product, %.1f GFLOP/s gemm-equivalent (2 N K^2 = %.1f GFLOP)' % (g, 2*n*k*k/t*1e-9, 2*n*k*k*1e-9))"
  for ct in default SkylakeX; do
    local res
    if [ $ct = default ]; then
      res=$("$PY" bench/reference.py sklearn "$dir/phi.npy" "$dir/psi.npy" "$lam" 1e-6)
    else
      res=$(OPENBLAS_CORETYPE=$ct "$PY" bench/reference.py sklearn "$dir/phi.npy" "$dir/psi.npy" "$lam" 1e-6)
    fi
    local st sobj srel
    st=$(echo "$res" | jget '["seconds"]')
    sobj=$(echo "$res" | jget '["objective"]')
    srel=$(echo "$res" | jget '["rel_gap"]')
    printf 'scikit-learn (%s kernels): %.3f s, objective %.12g, rel_gap %.2e, %s active; vvd is %.1fx faster; objectives differ by %.1e (relative)\n' \
      "$ct" "$st" "$sobj" "$srel" "$(echo "$res" | jget '["active"]')" "$("$PY" -c "print($st / $vt)")" \
      "$("$PY" -c "print(abs($sobj - $vobj) / $vobj)")"
  done
  local ares
  ares=$(OPENBLAS_CORETYPE=SkylakeX "$PY" bench/reference.py adam "$dir/phi.npy" "$dir/psi.npy" "$lam" "$vt" "$mu")
  printf "paper's Adam-prox (PyTorch CPU, mu=%s) for the same %.3f s: %s iterations, rel_gap %.2e, objective %.12g, %s active\n" \
    "$mu" "$vt" "$(echo "$ares" | jget '["iterations"]')" "$(echo "$ares" | jget '["rel_gap"]')" \
    "$(echo "$ares" | jget '["objective"]')" "$(echo "$ares" | jget '["active"]')"
}

case $which in
  vgg) run_problem vgg-like 50000 512 10 1 0.03 ;;
  alexnet) run_problem alexnet-like 50000 4096 10 2 0.07 ;;
  all) run_problem vgg-like 50000 512 10 1 0.03; run_problem alexnet-like 50000 4096 10 2 0.07 ;;
  *) echo "usage: $0 [vgg|alexnet|all]" >&2; exit 2 ;;
esac
