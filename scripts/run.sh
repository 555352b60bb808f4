#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install what is missing, build
# (release), and run vellumd on the embedded default configuration
# (https://127.0.0.1:8443, SQLite in ./data). Extra arguments go to vellumd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release -DVELLUM_BUILD_TESTS=OFF -DVELLUM_BUILD_BENCH=OFF >/dev/null
cmake --build --preset release -j "$(nproc)"
# The crypto plugin (enabled by default) needs a root key. For a development
# run keep one beside the data; production keys live elsewhere (docs/operator-guide.md).
if [ -z "${VELLUM_ROOT_KEY:-}" ]; then
  mkdir -p data
  if [ ! -s data/root.key ]; then
    (umask 077 && openssl rand -base64 32 > data/root.key)
    echo "run.sh: generated a development root key in data/root.key (keep it: the data is sealed with it)"
  fi
  VELLUM_ROOT_KEY=$(cat data/root.key)
  export VELLUM_ROOT_KEY
fi
exec ./build/release/host/vellumd "$@"
