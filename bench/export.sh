#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: `iotfleet secrets export` of 200 000 devices from `iotfleet-sim cloud` (documented QPS
# limits, 5-15 ms latency per request, no faults).
#   - auto: median devices/s of RUNS runs (default 3), against the ceiling the limits allow:
#     QueryDevice and QueryDeviceByStatus each 50 QPS x 50 rows = 2 500 devices/s, 5 000 together
#     (QueryDevice's QPS 2 past 100 000 rows does not bind while the chain stays below it);
#   - status: the status partitions alone (ceiling 2 500/s);
#   - sequential: the naive pager, QueryDevice page after page with NextToken (one run; it takes
#     long: past 100 000 rows QueryDevice is limited to QPS 2). SKIP_SEQUENTIAL=1 skips it.
# Usage: bench/export.sh [BUILD_DIR]   (prints a Markdown table; see bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
iotfleet="$build_dir/iotfleet"
sim="$build_dir/iotfleet-sim"
runs=${RUNS:-3}
devices=${DEVICES:-200000}
work=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-bench-export.XXXXXX")
cloud_pid=
cleanup() {
  [ -n "$cloud_pid" ] && kill "$cloud_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" ALIBABA_CLOUD_REGION_ID=cn-shanghai
mkdir -p "$HOME"
cat >"$work/scenario.json" <<JSON
{"region": "cn-shanghai",
 "access_keys": [{"id": "LTAI5tBenchExport001", "secret": "benchExportSecret0000000000001"}],
 "products": [{"product_key": "a1BenchExpt", "name": "bench",
   "generate": {"count": $devices, "names": "imei",
                "status": {"ONLINE": 60, "OFFLINE": 28, "UNACTIVE": 10, "DISABLE": 2}}}]}
JSON
printf '%s' benchExportSecret0000000000001 >"$work/ak.secret"
chmod 600 "$work/ak.secret"
"$sim" cloud --state-dir "$work/cloud" --scenario "$work/scenario.json" --seed 1 \
  --latency-ms 5-15 >"$work/url" 2>"$work/cloud.err" &
cloud_pid=$!
for _ in $(seq 600); do grep -qx ready "$work/cloud.err" 2>/dev/null && break; sleep 0.1; done
url=$(head -1 "$work/url")

export_rate() { # export_rate STRATEGY: prints devices/s
  "$iotfleet" --endpoint "$url" --access-key-id LTAI5tBenchExport001 \
    --access-key-secret-file "$work/ak.secret" secrets export --product-key a1BenchExpt \
    -O "$work/out.csv" --strategy "$1" -o csv | tail -1 | awk -F, '{ printf "%.0f\n", $8 }'
  [ "$(($(wc -l <"$work/out.csv") - 1))" = "$devices" ] || { echo "wrong count" >&2; exit 1; }
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

auto=$(for _ in $(seq "$runs"); do export_rate auto; done | median)
status=$(export_rate status)
sequential="skipped"
[ "${SKIP_SEQUENTIAL:-0}" = 1 ] || sequential=$(export_rate sequential)

echo "| strategy | devices/s | ceiling (devices/s) | of the ceiling |"
echo "|---|---|---|---|"
awk -v r="$auto" 'BEGIN { printf "| auto (median of '"$runs"') | %d | 5000 | %.0f %% |\n", r, r / 50 }'
awk -v r="$status" 'BEGIN { printf "| status partitions alone | %d | 2500 | %.0f %% |\n", r, r / 25 }'
if [ "$sequential" != skipped ]; then
  awk -v r="$sequential" -v a="$auto" \
    'BEGIN { printf "| sequential NextToken pager (baseline) | %d | — | auto is %.1f× faster |\n", r, a / r }'
fi
echo
echo "$devices devices, iotfleet-sim cloud --latency-ms 5-15, documented QPS"
