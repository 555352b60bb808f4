#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what is missing, build the
# release and the ASan+UBSan configurations, and run every test in both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
start=$(date +%s)
for preset in release asan; do
  echo "== $preset: configure and build"
  cmake --preset "$preset" -DVELLUM_BUILD_TESTS=ON >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: test"
  ctest --preset "$preset"
done
echo "== all tests passed in both configurations ($(( $(date +%s) - start )) s)"
