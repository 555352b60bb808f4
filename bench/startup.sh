#!/usr/bin/env bash
# vellumd cold start and idle memory.
#
# For each configuration, RUNS times with a fresh data dir each time:
#   cold start  ms from exec() of vellumd to its --ready-file appearing (the
#               host writes it after every plugin started and the listener is
#               open; it is written to a .tmp name and renamed, so "exists"
#               means "complete");
#   idle RSS    VmRSS from /proc/<pid>/status 1 s after ready, no traffic.
# Then SIGTERM, and the exit code must be 0.
#
# Configurations:
#   none        no plugins, plain HTTP on loopback
#   plugins     $PLUGINS (default: benchplug testkit), plain HTTP
#   plugins+tls $PLUGINS with TLS on: a fresh data dir also generates the
#               self-signed development certificate during startup
#   restart     $PLUGINS, plain HTTP, on an existing data dir (one untimed
#               start created it): the cost of the process itself, without
#               first-run initialisation (databases, keys — each fsynced)
#
# Environment: BUILD_DIR (default build/release), RUNS (default 10),
#   PLUGINS (default "benchplug testkit").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$root/build/release}"
RUNS="${RUNS:-10}"
PLUGINS="${PLUGINS:-benchplug testkit}"

vellumd="$BUILD_DIR/host/vellumd"
plugin_dir="$BUILD_DIR/plugins"
[[ -x "$vellumd" ]] || { echo "missing $vellumd (run bench/run.sh)" >&2; exit 1; }
for p in $PLUGINS; do
  [[ -e "$plugin_dir/vellum_$p.so" ]] || { echo "missing $plugin_dir/vellum_$p.so (run bench/run.sh)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 1; }

tmp="$(mktemp -d /tmp/vellum-startup-bench.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# write_config FILE TLS PLUGINS...
write_config() {
  local file="$1" tls="$2"
  shift 2
  {
    printf '[server]\ntls = %s\nthreads = 2\n\n[plugins]\ndir = "%s"\n' "$tls" "$plugin_dir"
    for p in "$@"; do printf '\n[plugins.%s]\n' "$p"; done
  } >"$file"
}
# shellcheck disable=SC2086
write_config "$tmp/none.toml" false
# shellcheck disable=SC2086
write_config "$tmp/plugins.toml" false $PLUGINS
# shellcheck disable=SC2086
write_config "$tmp/plugins-tls.toml" true $PLUGINS

echo "== vellumd cold start and idle RSS ($(nproc) CPUs, $RUNS runs each, fresh data dir per run)"
echo "   plugins: $PLUGINS"

# The timing loop is in Python for a monotonic clock and 0.5 ms polling; the
# clock starts right before fork+exec. The child is killed on any failure.
python3 - "$vellumd" "$tmp" "$RUNS" <<'EOF'
import os, signal, statistics, subprocess, sys, time

vellumd, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
configs = [("none", "no plugins, plain HTTP"),
           ("plugins", "plugins, plain HTTP"),
           ("plugins-tls", "plugins, TLS (generates dev cert)"),
           ("restart", "plugins, plain HTTP, existing data dir")]
config_file = {"none": "none", "plugins": "plugins", "plugins-tls": "plugins-tls", "restart": "plugins"}

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def start_stop(name, d, data_dir):
    ready = os.path.join(d, "ready")
    log = open(os.path.join(d, "vellumd.log"), "w")
    argv = [vellumd, "--config", os.path.join(tmp, f"{config_file[name]}.toml"), "--data-dir", data_dir,
            "--listen", "127.0.0.1:0", "--ready-file", ready]
    return run_one(name, argv, ready, log)

def run_one(name, argv, ready, log):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        deadline = t0 + 30
        while not os.path.exists(ready):
            if p.poll() is not None:
                sys.exit(f"vellumd ({name}) exited with {p.returncode} before ready; see {log.name}:\n"
                         + open(log.name).read())
            if time.monotonic() > deadline:
                sys.exit(f"vellumd ({name}) not ready after 30 s")
            time.sleep(0.0005)
        ms = (time.monotonic() - t0) * 1000
        time.sleep(1.0)
        rss = rss_kb(p.pid)
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=30)
        if code != 0:
            sys.exit(f"vellumd ({name}) exited with {code} after SIGTERM; see {log.name}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
    return ms, rss

# The restart configuration reuses one data dir, created by an untimed start.
warm_data = os.path.join(tmp, "restart-data")
os.makedirs(os.path.join(tmp, "restart-prime"))
start_stop("restart", os.path.join(tmp, "restart-prime"), warm_data)

results = {name: ([], []) for name, _ in configs}
for run in range(runs):
    for name, _ in configs:  # interleaved, so drift hits every config alike
        d = os.path.join(tmp, f"{name}-{run}")
        os.makedirs(d)
        data_dir = warm_data if name == "restart" else os.path.join(d, "data")
        ms, rss = start_stop(name, d, data_dir)
        results[name][0].append(ms)
        results[name][1].append(rss)
        print(f"  run {run + 1:2d}  {name:12s} ready in {ms:7.1f} ms   idle RSS {rss / 1024:6.1f} MiB", flush=True)

print()
print("== Summary (median of %d runs; min..max)" % runs)
print(f"  {'configuration':38s} {'cold start ms':>14s} {'min..max':>16s} {'idle RSS MiB':>13s} {'min..max':>14s}")
for name, label in configs:
    ms, rss = results[name]
    print(f"  {label:38s} {statistics.median(ms):14.1f} {min(ms):7.1f}..{max(ms):<7.1f} "
          f"{statistics.median(rss) / 1024:13.1f} {min(rss) / 1024:6.1f}..{max(rss) / 1024:<6.1f}")
EOF
