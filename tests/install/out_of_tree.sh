#!/usr/bin/env bash
# Installs the build, builds sdk/examples/hello out of tree against the
# INSTALLED SDK only, and has the INSTALLED vellumd load and serve it.
set -euo pipefail
build_dir=$1
src_dir=$2
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
for f in bin/vellumd include/vellum/abi.h include/vellum/sdk.hpp lib/cmake/VellumSDK/VellumSDKConfig.cmake \
         share/vellum/config/vellum.toml; do
  [ -e "$work/prefix/$f" ] || { echo "install is missing $f"; exit 1; }
done

# Only the installed prefix is visible to this build: no source tree includes.
cmake -S "$src_dir/sdk/examples/hello" -B "$work/hello" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/hello" >/dev/null
cmake --install "$work/hello" >/dev/null
[ -f "$work/prefix/lib/vellum/plugins/vellum_hello.so" ] || { echo "plugin not installed"; exit 1; }

cat > "$work/vellum.toml" <<TOML
[server]
tls = false
[plugins.hello]
greeting = "Hi"
TOML
"$work/prefix/bin/vellumd" check-config --config "$work/vellum.toml"
"$work/prefix/bin/vellumd" --config "$work/vellum.toml" --data-dir "$work/data" --listen 127.0.0.1:0 \
  --ready-file "$work/ready" 2>"$work/log" &
pid=$!
for _ in $(seq 1 600); do [ -f "$work/ready" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
[ -f "$work/ready" ] || { echo "vellumd did not become ready"; cat "$work/log"; exit 1; }
url=$(cat "$work/ready")
body=$(curl -fsS "$url/v1/hello?name=tester")
[ "$body" = "Hi, tester (#1)" ] || { echo "unexpected body: $body"; exit 1; }
body=$(curl -fsS "$url/v1/hello")
[ "$body" = "Hi, world (#2)" ] || { echo "unexpected body: $body"; exit 1; }
curl -fsS "$url/v1/plugins" | grep -q '"name":"hello"'
kill -TERM $pid
wait $pid
pid=""
grep -q "plugin 'hello' stopped" "$work/log"
echo "out-of-tree plugin built against the installed SDK and served by the installed vellumd: OK"
