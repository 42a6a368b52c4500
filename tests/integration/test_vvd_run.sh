#!/usr/bin/env bash
# vvd run end to end: results, artifacts, paths, budgets, bad input, stop.
# Usage: test_vvd_run.sh VVD SOURCE_ROOT.  Speaks TAP.
set -u
VVD=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/vvd-run-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }

# jq-like field access with the standard library only.
last() { tail -n 1 "$1"; }
field() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(eval("d"+sys.argv[1]))' "$2" <<<"$(last "$1")"; }

# A .npy writer for test inputs (float32 or float64, C order).
npy() { # npy FILE DTYPE(f4|f8) ROWS COLS PYEXPR(i,j)
  python3 - "$@" <<'PY'
import struct, sys, math
path, dt, rows, cols, expr = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
hdr = "{'descr': '<%s', 'fortran_order': False, 'shape': (%d, %d), }" % (dt, rows, cols)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
fmt = "<%d%s" % (cols, "f" if dt == "f4" else "d")
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    for i in range(rows):
        f.write(struct.pack(fmt, *[eval(expr, {"math": math, "i": i, "j": j}) for j in range(cols)]))
PY
}

# 1. A generated problem, one lambda.
cat >gen.json <<'J'
{"kind": "lasso", "generate": {"n": 4000, "k": 64, "d": 4, "seed": 1}, "lambda_ratio": 0.1, "tol": 1e-8}
J
"$VVD" run gen.json --out out1 >ev1.ndjson 2>err1.log
rc=$?
check "vvd run exits 0 on a good spec" '[ $rc = 0 ]'
check "the last line is a FINISHED result" '[ "$(field ev1.ndjson "[\"state\"]")" = FINISHED ]'
check "stop_reason converged" '[ "$(field ev1.ndjson "[\"stop_reason\"]")" = converged ]'
check "rel_gap <= tol" 'python3 -c "import json,sys; d=json.loads(open(\"ev1.ndjson\").read().splitlines()[-1]); sys.exit(0 if d[\"rel_gap\"]<=1e-8 and d[\"gap\"]>=-1e-12 else 1)"'
check "every line is JSON, metric steps increase, keys present" 'python3 - ev1.ndjson <<PY
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l["step"] for l in lines if l["event"] == "metric"]
keys = {"objective", "gap", "rel_gap", "active", "mse", "group_norm", "lambda", "time"}
ok = len(steps) > 1 and all(b > a for a, b in zip(steps, steps[1:]))
ok = ok and all(keys <= set(l) for l in lines if l["event"] == "metric")
ok = ok and lines[0]["event"] == "start" and lines[-1]["event"] == "result"
res = lines[-1]
ok = ok and all(k in res for k in ["state","stop_reason","objective","gap","rel_gap","active","iterations","seconds","lambda","outputs"])
sys.exit(0 if ok else 1)
PY'
check "V.npy is D x K float32 and kept.npy lists the active neurons" 'python3 - out1 ev1.ndjson <<PY
import ast, json, struct, sys
def hdr(p):
    b = open(p, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + n].decode())
    return h, b[10 + n:]
h, data = hdr(sys.argv[1] + "/V.npy")
hk, kd = hdr(sys.argv[1] + "/kept.npy")
res = json.loads(open(sys.argv[2]).read().splitlines()[-1])
d, k = h["shape"]
V = struct.unpack("<%df" % (d * k), data)
norms = [sum(V[i * k + c] ** 2 for i in range(d)) ** 0.5 for c in range(k)]
kept = list(struct.unpack("<%dq" % hk["shape"][0], kd))
ok = h["descr"] == "<f4" and (d, k) == (4, 64) and hk["descr"] == "<i8"
ok = ok and kept == [c for c in range(k) if norms[c] > 1e-7] and len(kept) == res["active"] == res["kept"]
ok = ok and 0 < len(kept) < k
sys.exit(0 if ok else 1)
PY'
check "result.json is written" '[ -s out1/result.json ]'
check "the OpenBLAS kernel is logged" 'grep -q "OpenBLAS kernel" err1.log'

# 2. Files, a bias file, refit, fista, the paper's lambda.
"$VVD" gen --n 3000 --k 48 --d 3 --seed 2 --out data >/dev/null 2>&1
npy bias.npy f8 1 3 "0.1*j"
cat >files.json <<'J'
{"kind": "lasso", "phi": "data/phi.npy", "psi": {"path": "data/psi.npy"}, "bias": "bias.npy",
 "lambda_paper": 0.02, "solver": "fista", "refit": true, "tol": 1e-7}
J
"$VVD" run files.json --out out2 >ev2.ndjson 2>/dev/null
check "files + bias + refit run" '[ "$(field ev2.ndjson "[\"state\"]")" = FINISHED ] && [ -s out2/V_refit.npy ]'
check "lambda_paper converts to lambda = lambda_paper * D / 2" 'python3 -c "import json; d=json.loads(open(\"ev2.ndjson\").read().splitlines()[-1]); exit(0 if abs(d[\"lambda\"]-0.03)<1e-15 else 1)"'
check "refit mse is reported and not above the lasso mse" 'python3 -c "import json; d=json.loads(open(\"ev2.ndjson\").read().splitlines()[-1]); exit(0 if d[\"refit\"][\"mse\"] <= d[\"mse\"] else 1)"'

# 3. A path with warm starts.
cat >path.json <<'J'
{"kind": "lasso", "phi": "data/phi.npy", "psi": "data/psi.npy", "path": {"n": 6, "min_ratio": 0.01}}
J
"$VVD" run path.json --out out3 >ev3.ndjson 2>/dev/null
check "a path runs every point, lambdas decreasing, V per point" 'python3 - ev3.ndjson out3 <<PY
import json, os, sys
res = json.loads(open(sys.argv[1]).read().splitlines()[-1])
p = res["path"]
ok = len(p) == 6 and all(a["lambda"] > b["lambda"] for a, b in zip(p, p[1:]))
ok = ok and abs(p[0]["lambda_ratio"] - 1) < 1e-12 and abs(p[-1]["lambda_ratio"] - 0.01) < 1e-12
ok = ok and all(q["stop_reason"] == "converged" for q in p) and p[0]["active"] == 0
ok = ok and all(os.path.exists(os.path.join(sys.argv[2], q["V"])) for q in p)
ok = ok and p[-1]["active"] >= p[1]["active"]
sys.exit(0 if ok else 1)
PY'

# 4. A neuron budget.
cat >budget.json <<'J'
{"kind": "lasso", "phi": "data/phi.npy", "psi": "data/psi.npy", "target_active": 10}
J
"$VVD" run budget.json --out out4 >ev4.ndjson 2>/dev/null
check "target_active keeps at most the budget, near it" 'python3 -c "
import json; d=json.loads(open(\"ev4.ndjson\").read().splitlines()[-1])
exit(0 if d[\"state\"]==\"FINISHED\" and 7 <= d[\"active\"] <= 10 and len(d[\"search\"])>2 else 1)"'

# 5. Bad input: exit 2, a FAILED line naming the field, no crash.
bad() { # bad NAME SPEC ERROR_CODE FIELD
  printf '%s\n' "$2" >bad.json
  "$VVD" run bad.json --out outbad >evb.ndjson 2>/dev/null
  local rc=$? code=$3 fld=$4
  check "$1: exit 2, $3 at '$4'" '[ $rc = 2 ] && [ "$(field evb.ndjson "[\"state\"]")" = FAILED ] && [ "$(field evb.ndjson "[\"error\"][\"error_code\"]")" = "$code" ] && [ "$(field evb.ndjson "[\"error\"][\"field\"]")" = "$fld" ]'
}
bad "broken JSON" '{"kind": "lasso",' MALFORMED_JSON ""
bad "unknown field" '{"kind":"lasso","phi":"data/phi.npy","psi":"data/psi.npy","lambda":1,"alpha":2}' UNKNOWN_FIELD /alpha
bad "missing file" '{"kind":"lasso","phi":"nope.npy","psi":"data/psi.npy","lambda":1}' FILE_NOT_FOUND /phi
head -c 1000 data/phi.npy >trunc.npy
bad "truncated file" '{"kind":"lasso","phi":"trunc.npy","psi":"data/psi.npy","lambda":1}' BAD_FILE_FORMAT /phi
check "the truncation error names the file" 'grep -q trunc.npy evb.ndjson'
npy short.npy f4 10 3 "1.0"
bad "different N" '{"kind":"lasso","phi":"data/phi.npy","psi":"short.npy","lambda":1}' SHAPE_MISMATCH /psi
npy nan.npy f4 3000 3 "float(\"nan\") if (i, j) == (2500, 1) else 1.0"
bad "NaN in psi" '{"kind":"lasso","phi":"data/phi.npy","psi":"nan.npy","lambda":0.01}' NON_FINITE_VALUE /psi
check "the NaN error names file, row and column" 'grep -q "nan.npy" evb.ndjson && grep -q "2500" evb.ndjson'
bad "bias of the wrong length" '{"kind":"lasso","phi":"data/phi.npy","psi":"data/psi.npy","lambda":1,"bias":[1,2]}' SHAPE_MISMATCH /bias
npy w.npy f4 2 48 "0.0"
bad "init of the wrong shape" '{"kind":"lasso","phi":"data/phi.npy","psi":"data/psi.npy","lambda":1,"init":"w.npy"}' SHAPE_MISMATCH /init
echo "not a spec" >notjson.json
"$VVD" run missing-spec.json >evm.ndjson 2>/dev/null
check "a missing spec file exits 2" '[ $? = 2 ]'
"$VVD" run >/dev/null 2>&1
check "no spec is a usage error (2)" '[ $? = 2 ]'

# 6. Ctrl-C stops at the next iteration and saves V.
cat >long.json <<'J'
{"kind": "lasso", "generate": {"n": 20000, "k": 256, "d": 8, "seed": 3}, "lambda_ratio": 0.01,
 "solver": "adam_prox", "mu": 1e-6, "tol": 1e-12, "max_iter": 1000000000, "max_seconds": 120}
J
# The events file exists before the run starts: the background job opens it
# only after the fork, and tail must not race it.
: >ev6.ndjson
"$VVD" run long.json --out out6 >>ev6.ndjson 2>/dev/null &
pid=$!
# Wait (bounded) until the solver reports iterations, then interrupt.
timeout 120 tail -n +1 -f ev6.ndjson | awk '/"event":"metric"/ { if (++n == 3) exit }'
kill -INT $pid
wait $pid
rc=$?
check "an interrupted run exits 0" '[ $rc = 0 ]'
check "state STOPPED, stop_reason user" '[ "$(field ev6.ndjson "[\"state\"]")" = STOPPED ] && [ "$(field ev6.ndjson "[\"stop_reason\"]")" = user ]'
check "V is saved when stopped" '[ -s out6/V.npy ]'

# 7. The exact problem (kind interpolate): certificate, artifacts, brute force, budget.
cat >interp.json <<'J'
{"kind": "interpolate", "generate": {"kind": "gaussian", "n": 10, "k": 200, "d": 5, "seed": 3}}
J
"$VVD" run interp.json --out out9 >ev9.ndjson 2>/dev/null
check "interpolate: optimal, certified gap, every count in [N, N*D]" 'python3 -c "
import json; d=json.loads(open(\"ev9.ndjson\").read().splitlines()[-1])
exit(0 if d[\"status\"]==\"optimal\" and d[\"rel_gap\"]<=1e-9 and d[\"dual\"]<=d[\"objective\"]+1e-12 and d[\"primal_residual\"]<1e-8 and 10<=d[\"active\"]<=50 else 1)"'
check "interpolate writes V (D x K), Y (N x D) and kept" 'python3 - out9 <<PY
import ast, struct, sys
def shape(p):
    b = open(p, "rb").read(); n = struct.unpack("<H", b[8:10])[0]
    return ast.literal_eval(b[10:10 + n].decode())["shape"]
sys.exit(0 if shape(sys.argv[1] + "/V.npy") == (5, 200) and shape(sys.argv[1] + "/Y.npy") == (10, 5) else 1)
PY'
echo '{"kind": "interpolate", "generate": {"n": 3, "k": 8, "d": 2, "seed": 5}, "brute_force": true}' >brute.json
"$VVD" run brute.json --out out10 >ev10.ndjson 2>/dev/null
check "brute force: the sparsest optimal support has between N=3 and N*D=6 columns" 'python3 -c "
import json; d=json.loads(open(\"ev10.ndjson\").read().splitlines()[-1])[\"brute_force\"]
exit(0 if 3<=d[\"sparsest\"]<=6 and len(d[\"support\"])==d[\"sparsest\"] and d[\"subproblems\"]>1 else 1)"'
echo '{"kind": "interpolate", "generate": {"n": 10, "k": 60, "d": 2}, "brute_force": true}' >big.json
"$VVD" run big.json --out out11 >ev11.ndjson 2>/dev/null
check "brute force over budget is refused (exit 2, field /brute_force)" '[ $? = 2 ] && [ "$(field ev11.ndjson "[\"error\"][\"field\"]")" = /brute_force ]'

# 8. The BLAS kernel: the user's choice is honoured.
OPENBLAS_CORETYPE=Haswell "$VVD" run gen.json --out out7 >/dev/null 2>err7.log
check "a user's OPENBLAS_CORETYPE is honoured and logged" 'grep -q "OPENBLAS_CORETYPE=Haswell set by the user" err7.log'
if grep -q avx512bw /proc/cpuinfo; then
  env -u OPENBLAS_CORETYPE "$VVD" run gen.json --out out8 >/dev/null 2>err8.log
  check "on an AVX-512 CPU vvd chooses SkylakeX kernels" 'grep -q "OpenBLAS kernel SkylakeX (OPENBLAS_CORETYPE=SkylakeX chosen by vvd" err8.log'
else
  env -u OPENBLAS_CORETYPE "$VVD" run gen.json --out out8 >/dev/null 2>err8.log
  check "without AVX-512 vvd logs its kernel" 'grep -q "OpenBLAS kernel" err8.log'
fi

echo "1..$n"
[ $fails = 0 ]
