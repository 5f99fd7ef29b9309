#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: `iotfleet diagnose fleet` over a generated device log of >= 1 GB (MB/s, target
# >= 100 MB/s, and peak RSS, which must stay flat as the log grows), and the ratio to `jq`
# answering the same question on the same file.
#
# The logs come from `iotfleet-sim fleetlog` (a fleet with planted problems, the console's export
# shape): one JSON-lines log and one CSV log, each >= TARGET_MB (default 1000) MB. The question
# both tools answer on the JSON-lines log: disconnects per device (ranked) and the DeviceNames
# seen from two or more client IPs. diagnose fleet answers far more (every rule of
# docs/diagnose.md), so the ratio is conservative.
#
# The jq side: `jq -r` extracts DeviceName, status and client IP as TSV and awk counts (jq's own
# `reduce` into one object is impractically slow on jq 1.6); jq alone is timed too.
# Each measurement runs RUNS times (default 3; jq JQ_RUNS, default 2) on a warm file (one
# unmeasured run first); reported: the median wall time, MB/s (file size / time) and the median
# peak RSS from `/usr/bin/time -v`. Flat memory: the RSS over the first quarter of the log next
# to the RSS over all of it. The logs are deleted at the end.
# Usage: bench/diagnose.sh [BUILD_DIR]   (prints a Markdown table; see bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
iotfleet=$(realpath "$build_dir/iotfleet")
sim=$(realpath "$build_dir/iotfleet-sim")
runs=${RUNS:-3}
jq_runs=${JQ_RUNS:-2}
target_mb=${TARGET_MB:-1000}
export LC_ALL=C
work=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME"

mb() { echo $(($(stat -c %s "$1") / 1000000)); }

# --- the logs ------------------------------------------------------------------------------------
# 14 days of a large fleet: healthy devices (a session of 48 h on average, as in the tests) and
# planted problems, which write most of the records (a shared identity ~400 a day, a NAT
# keepalive device ~360, a flaky one ~100, a disconnecting one ~140).
gen() { # gen FORMAT DEVICES FILE
  "$sim" fleetlog --devices "$2" --days 14 --seed 42 \
    --plant duplicate=200,nat-keepalive=300,flaky=300,disconnect=300,reboot=2000 \
    --format "$1" -O "$3"
}
echo "generating the logs in $work" >&2
start=$(date +%s)
gen jsonl ${JSONL_DEVICES:-150000} "$work/log.jsonl"
gen csv ${CSV_DEVICES:-450000} "$work/log.csv"
echo "generated in $(($(date +%s) - start)) s: $(mb "$work/log.jsonl") MB jsonl, $(mb "$work/log.csv") MB csv" >&2
for f in log.jsonl log.csv; do
  if [ "$(mb "$work/$f")" -lt "$target_mb" ]; then
    echo "bench: $f is $(mb "$work/$f") MB, below $target_mb MB" >&2
    exit 1
  fi
done
head -c $(($(stat -c %s "$work/log.csv") / 4)) "$work/log.csv" | sed '$d' >"$work/quarter.csv"

# measure LABEL RUNS CMD...: median wall seconds and peak RSS (MB) of CMD (stdout discarded).
measure() {
  local label=$1 n=$2 i
  shift 2
  "$@" >/dev/null 2>&1 || true # warm the page cache
  : >"$work/times"
  for i in $(seq "$n"); do
    local out="$work/out.$label"
    if [ "$label" = jq-only ]; then out=/dev/null; fi
    /usr/bin/time -v -o "$work/tv" "$@" >"$out" 2>/dev/null || true
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + p[k]; print s }' "$work/tv")
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$work/tv")
    echo "$wall $rss" >>"$work/times"
    echo "  $label run $i: ${wall}s, ${rss} MB" >&2
  done
  sort -n "$work/times" | awk '{ w[NR] = $1; r[NR] = $2 } END { m = int((NR + 1) / 2); print w[m], r[m] }'
}

# The jq way: jq parses each line and extracts the fields, awk counts. (A pure-jq `reduce` into one
# object keyed by DeviceName is far slower with jq 1.6: over 15 minutes for 136 MB.)
jq_pipeline() { # jq_pipeline FILE: "D count name" per device, "M name" for >= 2 client IPs
  jq -r '[.deviceName, .status, .clientIp] | @tsv' "$1" |
    awk -F'\t' '{ if ($2 == "offline") d[$1]++; k = $1 SUBSEP $3
                  if (!(k in seen)) { seen[k] = 1; n[$1]++ } }
                END { for (x in d) print "D", d[x], x; for (x in n) if (n[x] >= 2) print "M", x }'
}
export -f jq_pipeline

read -r t_json rss_json < <(measure diag-jsonl "$runs" "$iotfleet" diagnose fleet --log "$work/log.jsonl" -o json -q)
read -r t_csv rss_csv < <(measure diag-csv "$runs" "$iotfleet" diagnose fleet --log "$work/log.csv" -o json -q)
read -r t_quarter rss_quarter < <(measure diag-quarter "$runs" "$iotfleet" diagnose fleet --log "$work/quarter.csv" -o json -q)
read -r t_jq rss_jq < <(measure jq "$jq_runs" bash -c 'jq_pipeline "$0"' "$work/log.jsonl")
read -r t_jqonly rss_jqonly < <(measure jq-only "$jq_runs" jq -r '[.deviceName, .status, .clientIp] | @tsv' "$work/log.jsonl")

# Both answered the question: jq's multi-IP DeviceNames include every duplicate identity found.
python3 - "$work/out.diag-jsonl" "$work/out.jq" <<'PY'
import json, sys
found = {f["subject"] for f in json.load(open(sys.argv[1])) if f["finding"] == "duplicate-identity"}
multi = {line.split()[1] for line in open(sys.argv[2]) if line.startswith("M ")}
assert found and found <= multi, (len(found), len(multi))
print(f"check: {len(found)} duplicate identities, all among jq's {len(multi)} multi-IP names", file=sys.stderr)
PY

size_json=$(stat -c %s "$work/log.jsonl")
size_csv=$(stat -c %s "$work/log.csv")
size_quarter=$(stat -c %s "$work/quarter.csv")
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f", b / 1e6 / t }'; }
echo
echo "| tool | log | size (MB) | wall time, median (s) | MB/s | peak RSS (MB) |"
echo "|---|---|---|---|---|---|"
echo "| \`iotfleet diagnose fleet\` | JSON lines | $((size_json / 1000000)) | $t_json | $(rate "$size_json" "$t_json") | $rss_json |"
echo "| \`iotfleet diagnose fleet\` | CSV | $((size_csv / 1000000)) | $t_csv | $(rate "$size_csv" "$t_csv") | $rss_csv |"
echo "| \`iotfleet diagnose fleet\` | CSV, first quarter | $((size_quarter / 1000000)) | $t_quarter | $(rate "$size_quarter" "$t_quarter") | $rss_quarter |"
echo "| \`jq -r … @tsv \| awk\` (disconnects per device, DNs with ≥ 2 IPs) | JSON lines | $((size_json / 1000000)) | $t_jq | $(rate "$size_json" "$t_jq") | $rss_jq |"
echo "| \`jq -r … @tsv\` alone (the parsing) | JSON lines | $((size_json / 1000000)) | $t_jqonly | $(rate "$size_json" "$t_jqonly") | $rss_jqonly |"
echo
awk -v a="$t_jq" -v b="$t_json" 'BEGIN { printf "jq / iotfleet on the JSON-lines log: %.1fx\n", a / b }'
