#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what is missing, build
# (release), and run vellumd on the embedded default configuration
# (https://127.0.0.1:8443, SQLite in ./data). Extra arguments go to vellumd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release -DVELLUM_BUILD_TESTS=OFF -DVELLUM_BUILD_BENCH=OFF >/dev/null
cmake --build --preset release -j "$(nproc)"
exec ./build/release/host/vellumd "$@"
