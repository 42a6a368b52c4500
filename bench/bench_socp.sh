#!/usr/bin/env bash
# vvd's exact multi-task lasso solver (vv/socp.h) vs cvxopt on the paper's
# Fig. 3 instance, in one run.  Not run in CI.
#
#   bash bench/bench_socp.sh [SEED]          (default seed 1)
#
# Instance: N=40 samples, D=10 outputs, K=500 columns, Phi and Psi i.i.d.
# N(0,1) (vv_socp_gen_gaussian, written as float64 .npy so both sides read
# the same numbers).  vvd: primal-dual interior point to rel_gap 1e-9
# (median of 5 solves, in-process wall time).  cvxopt: solvers.socp with
# abstol = reltol = feastol = 1e-9 and its default KKT solver (one solve;
# about 3-4 minutes on 2 cores), time of the socp() call alone.  Both use
# the same OpenBLAS and the same kernels.  Checks that the objectives agree
# to 1e-7 relative and that vvd is at least 5x faster.
# Needs: python3-cvxopt (apt-get install -y python3-cvxopt).
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
PY=/usr/bin/python3
OUT=bench/out/socp
mkdir -p "$OUT"

# The driver (bench/socp_driver.c) stands in for a `vvd socp` command.
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null 2>&1 || echo "note: ninja -C build failed; using build/libvv.a as it is" >&2
extra=()
if ! nm build/libvv.a 2>/dev/null | grep -q ' T vv_socp_solve$'; then
  extra=(core/socp.c core/socp_ipm.c core/socp_brute.c)   # not in libvv.a yet
fi
gcc -O2 -std=gnu11 -D_GNU_SOURCE -Icore/include bench/socp_driver.c "${extra[@]}" build/libvv.a \
  -lcjson $(pkg-config --libs openblas) -lm -lpthread -o "$OUT/socp_driver"
DRV=$OUT/socp_driver

jget() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d'"$1"')'; }
kernel() { OPENBLAS_VERBOSE=2 "$PY" -c 'import cvxopt.base' 2>&1 | grep -o 'Core: [A-Za-z0-9]*' | head -1 | cut -d' ' -f2; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
echo "OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null); cvxopt $("$PY" -c 'import cvxopt; print(cvxopt.__version__)') links $(ldd "$("$PY" -c 'import cvxopt.base as b; print(b.__file__)')" | grep -o 'libopenblas[^ ]*' | head -1) (kernels '$(kernel)'); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

"$DRV" gen gaussian 40 10 500 "$seed" "$OUT" >/dev/null
echo
echo "== Fig. 3 instance: N=40 D=10 K=500, Gaussian, seed $seed; target relative accuracy 1e-9"
v=$("$DRV" solve "$OUT/phi.npy" "$OUT/psi.npy" 5)
v1=$(OPENBLAS_NUM_THREADS=1 "$DRV" solve "$OUT/phi.npy" "$OUT/psi.npy" 5)
vt=$(echo "$v" | jget '["seconds"]')
printf 'vvd    (%s kernels, %s threads): %.4f s (median of 5; 1 thread: %.4f s), %s iterations, status %s, objective %.12f, certified rel_gap %.1e, pres %.1e, %s active\n' \
  "$(echo "$v" | jget '["blas"]')" "$(echo "$v" | jget '["threads"]')" "$vt" "$(echo "$v1" | jget '["seconds"]')" \
  "$(echo "$v" | jget '["iterations"]')" "$(echo "$v" | jget '["status"]')" "$(echo "$v" | jget '["primal"]')" \
  "$(echo "$v" | jget '["rel_gap"]')" "$(echo "$v" | jget '["pres"]')" "$(echo "$v" | jget '["active"]')"
c=$("$PY" bench/socp_reference.py "$OUT/phi.npy" "$OUT/psi.npy" 1)
ct=$(echo "$c" | jget '["seconds"]')
printf 'cvxopt (solvers.socp, default KKT solver): %.2f s, %s iterations, status %s, objective %.12f (sum ||v_k|| %.12f), pres %.1e, %s active\n' \
  "$ct" "$(echo "$c" | jget '["iterations"]')" "$(echo "$c" | jget '["status"]')" "$(echo "$c" | jget '["primal_cvxopt"]')" \
  "$(echo "$c" | jget '["primal"]')" "$(echo "$c" | jget '["pres"]')" "$(echo "$c" | jget '["active"]')"
"$PY" - "$v" "$c" <<'EOF'
import json, sys
v, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = c["seconds"] / v["seconds"]
diff = abs(v["primal"] - c["primal_cvxopt"]) / c["primal_cvxopt"]
ok_obj = diff <= 1e-7 and v["status"] == "optimal" and c["status"] == "optimal"
print("ratio: vvd is %.0fx faster; objectives differ by %.1e relative (%s 1e-7)"
      % (ratio, diff, "<=" if diff <= 1e-7 else ">"))
print("RESULT: %s (objectives agree: %s; >= 5x faster: %s)"
      % ("PASS" if ok_obj and ratio >= 5 else "FAIL", ok_obj, ratio >= 5))
sys.exit(0 if ok_obj and ratio >= 5 else 1)
EOF
