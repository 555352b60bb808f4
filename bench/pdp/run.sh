#!/usr/bin/env bash
# PDP decision latency, side by side in one run: the sharing engine
# (in-process C++, one thread and two at once), Cedar's WASM build and casbin
# (node), on the same model — with the 1,000 ABAC policies and without them
# (grants only). Medians of RUNS runs. See README.md.
# Usage: bench/pdp/run.sh [build dir] (default build/release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build/release}"
runs="${RUNS:-5}"
bench="$build/plugins/sharing/pdp_bench"
[ -x "$bench" ] || { echo "build pdp_bench first (cmake --build $build --target pdp_bench)" >&2; exit 1; }
[ -d "$here/node_modules/@cedar-policy/cedar-wasm" ] || (cd "$here" && npm ci --no-audit --no-fund >/dev/null)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$bench" --dump "$out/model.json" --queries 20000 >/dev/null
"$bench" --dump "$out/model0.json" --queries 20000 --policies 0 >/dev/null
for i in $(seq "$runs"); do
  echo "run $i/$runs" >&2
  "$bench" --queries 200000 >>"$out/rows.jsonl"
  "$bench" --queries 200000 --threads 2 >>"$out/rows.jsonl"
  "$bench" --queries 200000 --policies 0 >>"$out/rows.jsonl"
  node "$here/peers.mjs" "$out/model.json" "${CEDAR_QUERIES:-1000}" "${CASBIN_QUERIES:-300}" >>"$out/rows.jsonl"
  node "$here/peers.mjs" "$out/model0.json" "${CEDAR_QUERIES:-1000}" "${CASBIN_QUERIES:-300}" >>"$out/rows.jsonl"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out/rows.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["engine"], []).append(r)
med = {e: {"p50": statistics.median(x["p50_us"] for x in rs), "p99": statistics.median(x["p99_us"] for x in rs),
           "runs": len(rs), "queries": rs[0]["queries"], "policies": rs[0].get("policies", ""),
           "permit": rs[0]["permit_rate"]} for e, rs in by.items()}
# Each row against the sharing engine on the same model.
def ratio(x):
    return f"{x:.1f}×" if x < 10 else f"{x:,.0f}×"
def base(e):
    return med["vellum-sharing (grants only)" if e.endswith("(grants only)") else "vellum-sharing"]
print("| engine | policies | runs | queries/run | permit rate | p50 µs | p99 µs | p50 ÷ sharing | p99 ÷ sharing |")
print("|---|---|---|---|---|---|---|---|---|")
for e, m in med.items():
    b = base(e)
    print(f"| {e} | {m['policies']} | {m['runs']} | {m['queries']} | {m['permit']} | {m['p50']:.2f} | {m['p99']:.2f} | "
          f"{ratio(m['p50'] / b['p50'])} | {ratio(m['p99'] / b['p99'])} |")
PY
