#!/usr/bin/env bash
# Builds vvd in BUILD_DIR (default build) and runs every test; the last line
# of output is "N passed, N failed", counting TAP test points (skipped test
# binaries are counted on the line before).
# Options: --sanitize (AddressSanitizer + UndefinedBehaviorSanitizer build in
# build-asan); --tsan (ThreadSanitizer build in build-tsan, running only the
# daemon's integration tests, the ones whose threads meet: a data race or a
# lock-order inversion in vvd fails the run, and each report is printed from
# build-tsan/tsan/).  Exit status: 0 when nothing failed and something ran.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
setup_args=()
test_args=(--num-processes 2)
tsan=0
if [ "${1:-}" = "--sanitize" ]; then
  build=${BUILD_DIR:-build-asan}
  setup_args=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export VV_TEST_QUICK=1 # long experiment tests run smaller under the sanitizers
elif [ "${1:-}" = "--tsan" ]; then
  build=${BUILD_DIR:-build-tsan}
  tsan=1
  # (core/shallow.c builds no target_clones under TSan: their resolvers run
  # before the TSan runtime is initialised.)
  setup_args=(-Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized)
  # Reports go to files (the daemons' own logs are in temporary data
  # directories that the tests remove); halt_on_error makes the daemon exit
  # at the first report, so the test that met it fails too.
  rm -rf "$build/tsan"
  mkdir -p "$build/tsan"
  tsan_dir=$(cd "$build/tsan" && pwd)
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp:log_path=$tsan_dir/report"
  export VV_TEST_QUICK=1
  # One at a time: TSan slows the daemon down several times, and the timing
  # and RSS checks of these tests want the cores to themselves.
  test_args=(--num-processes 1)
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "${setup_args[@]}" >/dev/null
fi
if [ "$tsan" = 1 ]; then
  # The event hub's unit test and the daemon's integration suites that
  # exercise its threads (those that exist).
  names=$(meson test -C "$build" --list --no-rebuild 2>/dev/null | sed -n 's|^[^ ]* / ||p')
  for t in hub daemon durability blobs hygiene tracking cluster daemon_load; do
    if grep -qx "$t" <<<"$names"; then test_args+=("$t"); fi
  done
  ninja -C "$build" vvd vvctl tests/test_hub >/dev/null
  test_args+=(--no-rebuild)
else
  ninja -C "$build" >/dev/null
fi
set +e
meson test -C "$build" "${test_args[@]}" --print-errorlogs >"$build/meson-test.out" 2>&1
mrc=$?
set -e
cat "$build/meson-test.out" | grep -vE '^ *(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' || true
if [ "$tsan" = 1 ]; then
  reports=$(find "$build/tsan" -type f -name 'report*' | sort)
  for f in $reports; do
    echo "== ThreadSanitizer: $f"
    cat "$f"
  done
  if [ -n "$reports" ]; then mrc=1; fi
fi
# A ThreadSanitizer report counts as a failure of its own.
python3 - "$build/meson-logs/testlog.json" "$mrc" "$(wc -w <<<"${reports:-}")" <<'PY'
import json, re, sys
passed = failed = skipped = 0
failed += int(sys.argv[3]) if len(sys.argv) > 3 else 0
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
