#!/usr/bin/env bash
# Builds the benchmark targets in build/release and runs every benchmark:
#   1. bench_abi_overhead  in-process cost of a plugin handler via the ABI
#   2. http_vs_nginx.sh    HTTP requests/s of vellumd next to nginx (wrk)
#   3. startup.sh          cold start time and idle RSS of vellumd
# See bench/README.md. Extra environment is passed through to the scripts
# (ROUNDS, DURATION, CONNS, BENCH_TLS=1, RUNS, PLUGINS, ...).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$root/build/release}"
JOBS="${JOBS:-2}"

cd "$root"
if [[ ! -f "$BUILD_DIR/build.ninja" && ! -f "$BUILD_DIR/Makefile" ]]; then
  cmake --preset release
fi
# Only our own targets: the benchmark, its plugin, vellumd and (when tests
# are configured) the testkit plugin that startup.sh loads.
cmake --build "$BUILD_DIR" --target vellum_bench -j"$JOBS"

echo
echo "######## machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "######## $(date -u '+%Y-%m-%d %H:%M UTC'), vellum $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
"$BUILD_DIR/bench/bench_abi_overhead" 2> >(grep -v 'no storage barrier' >&2)
echo
"$here/http_vs_nginx.sh"
echo
if [[ -e "$BUILD_DIR/plugins/vellum_testkit.so" ]]; then
  "$here/startup.sh"
else
  echo "(testkit is not built — tests are off in this build dir; startup with benchplug only)"
  PLUGINS="${PLUGINS:-benchplug}" "$here/startup.sh"
fi
