#!/usr/bin/env bash
# Sets up vvd on a fresh Debian machine and runs the main job: a multi-task
# lasso on a VGG-like last-layer problem (50000 samples, 512 neurons, 10
# outputs), solved to a certified relative duality gap of 1e-6.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
spec=${1:-schema/examples/vgg-like.json}
echo "== vvd run $spec"
build/vvd run "$spec" --out vvd-out/quickstart | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["event"] == "stats":
        print(f"statistics: {e[\"seconds\"]:.3f} s ({e[\"gflops\"]:.1f} GFLOP/s), lambda_max {e[\"lambda_max\"]:.4g}")
    elif e["event"] == "metric":
        print(f"  step {e[\"step\"]:5d}  objective {e[\"objective\"]:.10g}  rel_gap {e[\"rel_gap\"]:.2e}  active {e[\"active\"]}")
    elif e["event"] == "result":
        if e["state"] == "FAILED":
            print("FAILED:", e["error"]["detail"]); sys.exit(1)
        print(f"{e[\"state\"]} ({e[\"stop_reason\"]}): {e[\"kept\"]} of {e[\"k\"]} neurons kept, "
              f"rel_gap {e[\"rel_gap\"]:.2e}, {e[\"seconds\"]:.2f} s in all; V in {e[\"outputs\"][\"V\"]}")
'
