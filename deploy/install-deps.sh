#!/usr/bin/env bash
# Installs everything vvd's build and tests need on Debian 12 (idempotent).
# Run as root (or with sudo available).
set -euo pipefail
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
pkgs=(
  build-essential meson ninja-build pkg-config
  libopenblas-dev libcjson-dev libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev
  python3 python3-numpy zlib1g-dev
  # The Python package (python/): its tests run Debian's torch under
  # /usr/bin/python3 and `pip install ./python` into a venv.
  python3-torch python3-pip python3-venv
  dataset-fashion-mnist
  # MPI: `mpirun -np P vvd run` (meson -Dmpi=auto) and its test.
  openmpi-bin libopenmpi-dev
)
# The Debian packaging (debian/) and its test (tests/integration/test_package.py:
# dpkg-buildpackage, lintian; VV_PACKAGE_DEPS=0: not needed).
if [ "${VV_PACKAGE_DEPS:-1}" = 1 ]; then
  pkgs+=(dpkg-dev debhelper fakeroot lintian man-db)
fi
# The dashboard's uPlot comes from npm (VV_WEB_DEPS=0: no dashboard); its
# browser tests need Debian's Chromium and playwright-core (VV_BROWSER_TESTS=0:
# not needed, as for deploy/quickstart.sh).
if [ "${VV_WEB_DEPS:-1}" = 1 ]; then
  command -v npm >/dev/null || pkgs+=(nodejs npm)
  [ "${VV_BROWSER_TESTS:-1}" = 1 ] && pkgs+=(chromium)
fi
# Optional: reference tools used by bench/ and to regenerate test fixtures.
if [ "${VV_BENCH_DEPS:-0}" = 1 ]; then
  pkgs+=(python3-sklearn python3-cvxopt)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${#pkgs[@]} packages present"
# The dashboard's uPlot (web/node_modules, served by vvd) and the browser
# tests' playwright-core (tests/web/node_modules), from the npm registry at the
# versions of the committed package-lock.json files.  npm ci runs only when
# node_modules does not already hold exactly what the lock file names.
if [ "${VV_WEB_DEPS:-1}" = 1 ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  dirs=(web)
  [ "${VV_BROWSER_TESTS:-1}" = 1 ] && dirs+=(tests/web)
  for dir in "${dirs[@]}"; do
    if node -e '
      const fs = require("fs");
      const want = JSON.parse(fs.readFileSync(process.argv[1] + "/package-lock.json", "utf8")).packages;
      let have;
      try { have = JSON.parse(fs.readFileSync(process.argv[1] + "/node_modules/.package-lock.json", "utf8")).packages; }
      catch (e) { process.exit(1); }
      const keys = Object.keys(want).filter((k) => k !== "");
      const same = keys.length === Object.keys(have).length && keys.every((k) => have[k] &&
        have[k].version === want[k].version && have[k].integrity === want[k].integrity &&
        fs.existsSync(process.argv[1] + "/" + k + "/package.json"));
      process.exit(same ? 0 : 1);' "$root/$dir"; then
      echo "install-deps: $dir/node_modules matches its package-lock.json"
    else
      (cd "$root/$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
      echo "install-deps: npm ci in $dir"
    fi
  done
fi
