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
  dataset-fashion-mnist
)
# Browser tests of the dashboard: Debian's Chromium, driven by playwright-core.
if [ "${VV_WEB_DEPS:-1}" = 1 ]; then
  pkgs+=(chromium)
  command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
# Optional: reference tools used by bench/ and to regenerate test fixtures.
if [ "${VV_BENCH_DEPS:-0}" = 1 ]; then
  pkgs+=(python3-sklearn python3-torch python3-cvxopt)
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
