#!/usr/bin/env bash
# Installs the Debian 12 packages Vellum needs to build, test and benchmark.
# Idempotent and quick when everything is present. Runs apt as root (or via sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  libboost1.81-dev libssl-dev libsqlite3-dev libsqlitecpp-dev nlohmann-json3-dev
  libspdlog-dev libtomlplusplus-dev libargon2-dev catch2 clang-format jq
  libqrencode-dev libpng-dev libmaxminddb-dev
)
# Benchmarks compare against nginx with wrk (bench/).
if [ "${VELLUM_BENCH_DEPS:-0}" = 1 ]; then packages+=(wrk nginx-light); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Real clients in tests (yjs, y-websocket) run on Node.js; Debian's nodejs
# and npm when the machine has no node of its own.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

install_node_modules() {
  # Test clients pinned by tests/node/package-lock.json; `npm ci` is
  # reproducible and quick when node_modules is already in place.
  local dir=tests/node
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
cd "$(dirname "$0")/.."

if [ ${#missing[@]} -eq 0 ]; then install_node_modules; exit 0; fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
install_node_modules
