#!/usr/bin/env bash
# HTTP throughput of vellumd next to nginx on the same machine, same client.
#
# Starts, on 127.0.0.1 only:
#   - vellumd: plain HTTP (tls = false), threads = 2, the benchplug plugin,
#     port 0 (the ready file tells the URL);
#   - nginx: worker_processes 2, access_log off, serving a 4-byte static
#     file "pong", on a free port, as the current user, every path in a
#     temp dir;
# then runs wrk against nginx's static file, vellumd's GET /healthz (a host
# route) and vellumd's GET /v1/bench/ping (a plugin route through the ABI),
# interleaved, ROUNDS times each, and prints median requests/s, the
# vellum/nginx ratios, the server's CPU time per request (utime + stime of
# the server processes during the run / requests: steadier than req/s on a
# shared machine), and any non-2xx responses or socket errors wrk saw.
#
# Environment (all optional):
#   BUILD_DIR   build tree with bin vellumd and plugins/   (default build/release)
#   ROUNDS      interleaved rounds                       (default 5)
#   DURATION    wrk duration per run                     (default 5s)
#   CONNS       wrk connections                          (default 32)
#   WRK_THREADS wrk threads                              (default 2)
#   BENCH_TLS=1 also measure HTTPS (vellumd TLS vs nginx ssl, same dev cert)
#
# wrk and both servers share the machine's cores: the numbers compare the
# servers under identical conditions, they are not absolute capacities.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$root/build/release}"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-32}"
WRK_THREADS="${WRK_THREADS:-2}"
BENCH_TLS="${BENCH_TLS:-0}"

vellumd="$BUILD_DIR/host/vellumd"
plugin_dir="$BUILD_DIR/plugins"
nginx_bin="$(command -v nginx || true)"
[[ -x "$nginx_bin" ]] || nginx_bin=/usr/sbin/nginx
for need in "$vellumd" "$plugin_dir/vellum_benchplug.so"; do
  [[ -e "$need" ]] || { echo "missing $need (run bench/run.sh, or build vellumd and vellum_benchplug)" >&2; exit 1; }
done
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[[ -x "$nginx_bin" ]] || { echo "missing nginx (apt-get install nginx-light)" >&2; exit 1; }

tmp="$(mktemp -d /tmp/vellum-http-bench.XXXXXX)"
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---- vellumd ---------------------------------------------------------------
# start_vellumd NAME TLS(true|false) -> sets VURL; pid appended to pids
start_vellumd() {
  local name="$1" tls="$2" dir="$tmp/$1"
  mkdir -p "$dir/data"
  cat >"$dir/vellum.toml" <<EOF
[server]
tls = $tls
threads = 2

[plugins]
dir = "$plugin_dir"

[plugins.benchplug]
EOF
  "$vellumd" --config "$dir/vellum.toml" --data-dir "$dir/data" --listen 127.0.0.1:0 \
    --ready-file "$dir/ready" 2>"$dir/vellumd.log" &
  pids+=($!)
  local pid=$!
  for _ in $(seq 1 300); do
    [[ -s "$dir/ready" ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "vellumd ($name) exited during startup:" >&2; cat "$dir/vellumd.log" >&2; exit 1; }
    sleep 0.05
  done
  [[ -s "$dir/ready" ]] || { echo "vellumd ($name) not ready after 15s" >&2; cat "$dir/vellumd.log" >&2; exit 1; }
  VURL="$(head -n1 "$dir/ready")"
  VPID=$pid
}

start_vellumd vellum false
vellum_url="$VURL"
vellum_pid="$VPID"

if [[ "$BENCH_TLS" == 1 ]]; then
  start_vellumd vellum-tls true
  vellum_tls_url="$VURL"
  vellum_tls_pid="$VPID"
fi

# ---- nginx -----------------------------------------------------------------
ng="$tmp/nginx"
mkdir -p "$ng/www" "$ng/logs"
printf 'pong' >"$ng/www/ping"
nginx_port="$(free_port)"
user_line=""
[[ "$(id -u)" == 0 ]] && user_line="user $(id -un) $(id -gn);"
tls_server=""
if [[ "$BENCH_TLS" == 1 ]]; then
  nginx_tls_port="$(free_port)"
  tls_server="
  server {
    listen 127.0.0.1:$nginx_tls_port ssl;
    ssl_certificate $tmp/vellum-tls/data/tls/dev-cert.pem;
    ssl_certificate_key $tmp/vellum-tls/data/tls/dev-key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $ng/www;
    location / { default_type text/plain; }
  }"
fi
cat >"$ng/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $ng/body;
  proxy_temp_path $ng/proxy;
  fastcgi_temp_path $ng/fastcgi;
  uwsgi_temp_path $ng/uwsgi;
  scgi_temp_path $ng/scgi;
  sendfile on;
  tcp_nodelay on;
  # vellumd has no per-connection request cap; keep nginx's connections open too.
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $ng/www;
    location / { default_type text/plain; }
  }$tls_server
}
EOF
"$nginx_bin" -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log" &
pids+=($!)
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$nginx_url/ping" 2>/dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null || { echo "nginx exited:" >&2; cat "$ng/logs/error.log" >&2; exit 1; }
  sleep 0.05
done

# ---- targets ---------------------------------------------------------------
# Server processes per target, for CPU accounting: nginx = master + workers.
nginx_pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
names=(nginx-static vellum-healthz vellum-plugin)
urls=("$nginx_url/ping" "$vellum_url/healthz" "$vellum_url/v1/bench/ping")
servers=("$nginx_pids" "$vellum_pid" "$vellum_pid")
if [[ "$BENCH_TLS" == 1 ]]; then
  names+=(nginx-static-tls vellum-plugin-tls)
  urls+=("https://127.0.0.1:$nginx_tls_port/ping" "$vellum_tls_url/v1/bench/ping")
  servers+=("$nginx_pids" "$vellum_tls_pid")
fi

echo "== HTTP throughput: nginx vs vellumd ($(nproc) CPUs, wrk -t$WRK_THREADS -c$CONNS -d$DURATION, $ROUNDS rounds interleaved)"
for i in "${!names[@]}"; do
  body="$(curl -ksS -w ' %{http_code}' "${urls[$i]}")"
  printf '  %-18s %-48s -> %s\n' "${names[$i]}" "${urls[$i]}" "$body"
  [[ "$body" == *" 200" ]] || { echo "target ${names[$i]} does not answer 200" >&2; exit 1; }
done

# One short warm-up per target.
for i in "${!names[@]}"; do
  wrk -t"$WRK_THREADS" -c"$CONNS" -d1s "${urls[$i]}" >/dev/null
done

# CPU time (user + system, clock ticks) used so far by the given processes.
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() {
  local pid total=0 f fields
  for pid in "$@"; do
    # Fields after the "(comm)" one: utime is the 12th, stime the 13th.
    f="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null)" || continue
    read -r -a fields <<<"$f"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# run_wrk IDX ROUND: stores the raw output, prints a one-line summary.
# Besides requests/s it records the server's CPU time per request, which
# the noise of a shared machine disturbs much less than throughput.
run_wrk() {
  local i="$1" r="$2" out="$tmp/wrk.${names[$1]}.$2"
  local c0 c1
  # shellcheck disable=SC2086
  c0="$(cpu_ticks ${servers[$i]})"
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "${urls[$i]}" >"$out" 2>&1 || true
  # shellcheck disable=SC2086
  c1="$(cpu_ticks ${servers[$i]})"
  local rps non2xx sock p50 p99 nreq cpu_us
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  nreq="$(awk '/requests in/ {print $1}' "$out")"
  cpu_us="$(awk -v t=$((c1 - c0)) -v hz="$clk_tck" -v n="${nreq:-0}" 'BEGIN {if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print 0}')"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")"
  sock="$(grep -m1 'Socket errors:' "$out" | sed 's/^ *Socket errors: //' || true)"
  p50="$(awk '$1 == "50%" {print $2}' "$out")"
  p99="$(awk '$1 == "99%" {print $2}' "$out")"
  printf '  round %d  %-18s %10s req/s  p50 %-8s p99 %-8s server CPU %6s us/req%s%s\n' "$r" "${names[$i]}" \
    "${rps:-?}" "${p50:-?}" "${p99:-?}" "$cpu_us" "${non2xx:+  NON-2XX: $non2xx}" "${sock:+  SOCKET ERRORS: $sock}"
  echo "${rps:-0}" >>"$tmp/rps.${names[$i]}"
  echo "$cpu_us" >>"$tmp/cpu.${names[$i]}"
  echo "${non2xx:-0}" >>"$tmp/non2xx.${names[$i]}"
  [[ -n "$sock" ]] && echo "$sock" >>"$tmp/sockerr.${names[$i]}"
  return 0
}

for r in $(seq 1 "$ROUNDS"); do
  # Rotate the order each round so no target always runs first.
  n=${#names[@]}
  for k in $(seq 0 $((n - 1))); do
    run_wrk $(((k + r - 1) % n)) "$r"
  done
  for pid in "$vellum_pid" "$nginx_pid" ${vellum_tls_pid:-}; do
    kill -0 "$pid" 2>/dev/null || { echo "a server (pid $pid) died during the benchmark" >&2; exit 1; }
  done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
sum() { awk '{s+=$1} END {print s+0}'; }

echo
echo "== Summary (median of $ROUNDS runs)"
printf '  %-18s %10s %10s %10s %14s %8s %s\n' target "req/s" min max "CPU us/req" non-2xx "socket errors"
declare -A med cpu
for name in "${names[@]}"; do
  med[$name]="$(median <"$tmp/rps.$name")"
  cpu[$name]="$(median <"$tmp/cpu.$name")"
  mn="$(sort -g "$tmp/rps.$name" | head -n1)"
  mx="$(sort -g "$tmp/rps.$name" | tail -n1)"
  bad="$(sum <"$tmp/non2xx.$name")"
  se="none"
  [[ -s "$tmp/sockerr.$name" ]] && se="$(paste -sd';' "$tmp/sockerr.$name")"
  printf '  %-18s %10.0f %10.0f %10.0f %14.2f %8s %s\n' "$name" "${med[$name]}" "$mn" "$mx" "${cpu[$name]}" "$bad" "$se"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
echo "  ratio vellum /healthz     / nginx static : $(ratio "${med[vellum-healthz]}" "${med[nginx-static]}")"
echo "  ratio vellum plugin route / nginx static : $(ratio "${med[vellum-plugin]}" "${med[nginx-static]}")"
echo "  ratio vellum plugin route / vellum /healthz : $(ratio "${med[vellum-plugin]}" "${med[vellum-healthz]}")"
if [[ "$BENCH_TLS" == 1 ]]; then
  echo "  ratio vellum plugin TLS   / nginx static TLS : $(ratio "${med[vellum-plugin-tls]}" "${med[nginx-static-tls]}")"
fi
echo "  server CPU per request, vellum plugin route / nginx static : $(ratio "${cpu[vellum-plugin]}" "${cpu[nginx-static]}")x"

# Host health after the load.
echo
echo "== vellumd after the load"
echo "  /readyz: $(curl -ksS -w ' %{http_code}' "$vellum_url/readyz")"
echo "  RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$vellum_pid/status")"
echo "  request counters (from /metrics):"
curl -ksS "$vellum_url/metrics" | grep -E '^vellum_http_requests_total' | sed 's/^/    /' || true
for log in "$tmp"/vellum*/vellumd.log; do
  n="$(grep -ciE ' (warning|error|critical) ' "$log" || true)"
  echo "  $(basename "$(dirname "$log")") log: $n warning/error line(s) (besides startup notices below)"
  grep -iE ' (warning|error|critical) ' "$log" | head -n 10 | sed 's/^/    /' || true
done
if [[ -s "$ng/logs/error.log" ]]; then
  echo "  nginx error log:"
  head -n 10 "$ng/logs/error.log" | sed 's/^/    /'
fi
