#!/usr/bin/env bash
# Installs the Debian 12 packages Vellum needs to build, test and benchmark.
# Idempotent and quick when everything is present. Runs apt as root (or via sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  libboost1.81-dev libssl-dev libsqlite3-dev libsqlitecpp-dev nlohmann-json3-dev
  libspdlog-dev libtomlplusplus-dev libargon2-dev catch2 clang-format
)
# Benchmarks compare against nginx with wrk (bench/).
if [ "${VELLUM_BENCH_DEPS:-0}" = 1 ]; then packages+=(wrk nginx-light); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
