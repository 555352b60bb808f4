#!/usr/bin/env bash
# PDP decision latency, side by side in one run: the sharing engine
# (in-process C++), Cedar's WASM build and casbin (node), on the same model.
# Medians of RUNS runs. Usage: bench/pdp/run.sh [build dir] (default build/release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build/release}"
runs="${RUNS:-5}"
bench="$build/plugins/sharing/pdp_bench"
[ -x "$bench" ] || { echo "build pdp_bench first (cmake --build $build --target pdp_bench)" >&2; exit 1; }
[ -d "$here/node_modules/@cedar-policy/cedar-wasm" ] || (cd "$here" && npm ci --no-audit --no-fund >/dev/null)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$bench" --dump "$out/model.json" --queries 1000 >/dev/null
for i in $(seq "$runs"); do
  "$bench" --queries 200000 >>"$out/vellum.jsonl"
  node "$here/peers.mjs" "$out/model.json" "${CEDAR_QUERIES:-2000}" "${CASBIN_QUERIES:-100}" >>"$out/peers.jsonl"
done
python3 - "$out/vellum.jsonl" "$out/peers.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["engine"], []).append(r)
med = {e: {k: statistics.median(x[k] for x in rs) for k in ("p50_us", "p99_us")} | {"runs": len(rs), "queries": rs[0]["queries"], "permit_rate": rs[0]["permit_rate"]} for e, rs in by.items()}
base = med.get("vellum-sharing")
print("| engine | runs | queries/run | permit rate | p50 µs | p99 µs | p50 ratio | p99 ratio |")
print("|---|---|---|---|---|---|---|---|")
for e, m in med.items():
    r50 = m["p50_us"] / base["p50_us"]; r99 = m["p99_us"] / base["p99_us"]
    print(f"| {e} | {m['runs']} | {m['queries']} | {m['permit_rate']} | {m['p50_us']:.2f} | {m['p99_us']:.2f} | {r50:.1f}× | {r99:.1f}× |")
PY
