#!/usr/bin/env bash
# Builds vvd in BUILD_DIR (default build) and runs every test; the last line
# of output is "N passed, N failed", counting TAP test points (skipped test
# binaries are counted on the line before).
# Options: --sanitize (AddressSanitizer + UndefinedBehaviorSanitizer build in
# build-asan).  Exit status: 0 when nothing failed and something ran.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
setup_args=()
if [ "${1:-}" = "--sanitize" ]; then
  build=${BUILD_DIR:-build-asan}
  setup_args=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export VV_TEST_QUICK=1 # long experiment tests run smaller under the sanitizers
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "${setup_args[@]}" >/dev/null
fi
ninja -C "$build" >/dev/null
set +e
meson test -C "$build" --num-processes 2 --print-errorlogs >"$build/meson-test.out" 2>&1
mrc=$?
set -e
cat "$build/meson-test.out" | grep -vE '^ *(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' || true
python3 - "$build/meson-logs/testlog.json" "$mrc" <<'PY'
import json, re, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = t.get("stdout") or ""
    points = re.findall(r"^(ok|not ok) \d+", out, re.M)
    if t["result"] == "SKIP":
        skipped += 1
        continue
    p = sum(1 for r in points if r == "ok")
    f = sum(1 for r in points if r == "not ok")
    if t["result"] not in ("OK", "EXPECTEDFAIL") and f == 0:
        f = 1  # crashed, timed out or a bad exit with no failing point
    passed += p
    failed += f
if skipped:
    print(f"({skipped} test binaries skipped, e.g. the GPU tests on a machine without a GPU)")
print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and passed > 0 and sys.argv[2] == "0" else 1)
PY
