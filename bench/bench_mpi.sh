#!/usr/bin/env bash
# The statistics pass (G, B, c) over 1 and 2 MPI ranks on one machine.  Not
# run in CI.
#
#   bash bench/bench_mpi.sh [REPEATS]     (default 3; the best of each is kept)
#
# Problem: vvd gen N=200000 K=512 D=64 (float32 .npy, 410 MB + 51 MB, in
# the page cache after the first read).  Each run solves one cheap lambda
# (lambda_ratio 0.5, max_iter 1), so the time that matters is the result's
# stats_seconds: the pass (the slowest rank's share) plus the Allreduce of
# G, B, c.  Runs: plain `vvd run` (one process, its usual workers),
# `mpirun -np 1` and `mpirun -np 2` with --bind-to none (each rank a share
# of the cores: mpi_run.h par_workers), and `mpirun -np 1 --bind-to core`
# (one rank on one core: what each of 2 ranks has on a 2-core machine).  Needs a vvd built with
# MPI (libopenmpi-dev, meson -Dmpi=enabled) in BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
build=${BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" vvd >/dev/null
VVD=$PWD/$build/vvd
PY=python3
OUT=bench/out/mpi
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (apt-get install openmpi-bin)"; exit 1; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "OpenMPI $(mpirun --version 2>/dev/null | head -1 | grep -o '[0-9.]*$'); vvd $("$VVD" --version | cut -d' ' -f2)"
# The kernel OpenBLAS uses in vvd: VV_BLAS_PREINIT chooses OPENBLAS_CORETYPE
# before OpenBLAS starts (README, "BLAS kernels"); vvd logs it and
# OPENBLAS_VERBOSE=2 makes OpenBLAS say it too.
echo "OpenBLAS: $(OPENBLAS_VERBOSE=2 "$VVD" run /dev/null 2>&1 | grep -o 'Core: [A-Za-z0-9]*' | head -1)," \
  "$("$VVD" run /dev/null 2>&1 | grep -o 'OpenBLAS kernel .*' | head -1)"

if [ ! -f "$OUT/phi.npy" ]; then
  "$VVD" gen --n 200000 --k 512 --d 64 --seed 1 --out "$OUT" >/dev/null 2>&1
fi
cat >"$OUT/spec.json" <<J
{"kind": "lasso", "phi": "$PWD/$OUT/phi.npy", "psi": "$PWD/$OUT/psi.npy",
 "lambda_ratio": 0.5, "max_iter": 1, "solver": "fista"}
J
cat "$OUT/phi.npy" "$OUT/psi.npy" >/dev/null # into the page cache

stats() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("%.3f %d %s" % (d["stats_seconds"], d["n"], d.get("ranks", 1)))'; }
calc() { "$PY" -c "print($1)"; }
best() { # label command...
  local label=$1 b="" bw="" t0 t1 wall out s
  shift
  for _ in $(seq "$reps"); do
    t0=$(date +%s.%N)
    out=$("$@" "$VVD" run "$OUT/spec.json" --out "$OUT/run" 2>"$OUT/err.log" | stats)
    t1=$(date +%s.%N)
    wall=$(calc "$t1 - $t0")
    s=${out%% *}
    if [ -z "$b" ] || [ "$(calc "int($s < $b)")" = 1 ]; then b=$s; bw=$wall; fi
  done
  printf '%-28s stats pass %7.3f s   (whole run %6.2f s; N=%s, ranks %s)\n' "$label" "$b" "$bw" \
    "$(echo "$out" | cut -d' ' -f2)" "$(echo "$out" | cut -d' ' -f3)" >&2
  echo "$b"
}
echo "N=200000 K=512 D=64 float32, best of $reps:"
t0=$(best "vvd run (no MPI)" env)
t1=$(best "mpirun -np 1" mpirun -np 1 --bind-to none)
t1c=$(best "mpirun -np 1 --bind-to core" mpirun -np 1 --bind-to core)
t2=$(best "mpirun -np 2" mpirun -np 2 --oversubscribe --bind-to none)
echo "ratio 1 rank / 2 ranks (mpirun): $(calc "round($t1 / $t2, 2)")x (the same $(nproc) cores);" \
  "1 rank on 1 core / 2 ranks: $(calc "round($t1c / $t2, 2)")x;" \
  "plain vvd run / 2 ranks: $(calc "round($t0 / $t2, 2)")x"
