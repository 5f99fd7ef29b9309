#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: `iotfleet secrets compare --snapshot A --devices B` on ROWS (default 1 000 000)
# devices each, against the same question answered with `sort | join | awk`.
#
# A is a snapshot as `secrets export` writes it (product_key,device_name,device_secret,status,
# iot_id); B is records read from modules (device_name,device_secret). DeviceNames are IMEIs
# (Luat: DeviceName = IMEI), secrets 32 hex digits. Planted in B: SECRETS_CHANGED (default 300)
# devices whose secret differs and MISSING (default 100) devices that A does not have; A also has
# MISSING devices that B does not list. Both files are shuffled (independently).
#
# Each tool runs RUNS times (default 5) on warm files (after one unmeasured run); reported: the
# median wall time, the median peak RSS (`/usr/bin/time -v`, "Maximum resident set size"; for
# the pipeline the sum over its sort, join and awk processes, which overlap in time), the
# differences each found (they must agree with what was planted), and the ratio sort|join time
# / iotfleet time. Both run with LC_ALL=C (join needs the collation sort used; C is also sort's
# fastest). GNU sort uses both cores, as iotfleet does.
# Usage: bench/compare.sh [BUILD_DIR]   (prints a Markdown table; see bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
iotfleet=$(realpath "$build_dir/iotfleet")
rows=${ROWS:-1000000}
runs=${RUNS:-5}
changed=${SECRETS_CHANGED:-300}
missing=${MISSING:-100}
export LC_ALL=C
work=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME"

# --- the files -------------------------------------------------------------------------------
# Row i (0-based) of the fleet: IMEI-like DeviceName and a secret, both derived from i. Rows
# [0, rows) are in B; A has rows [missing, rows + missing): B's first `missing` rows are not in A,
# A's last `missing` rows are not in B. B's rows missing+1, missing+1+step, … get another secret.
echo "generating $rows + $rows rows in $work" >&2
awk -v rows="$rows" -v missing="$missing" -v changed="$changed" -v a="$work/A.csv" \
  -v b="$work/B.csv" 'BEGIN {
    srand(42)
    step = int((rows - missing) / (changed + 1))
    for (i = 0; i < rows + missing; i++) {
      dn = sprintf("86%013.0f", 1000000000 + i * 7919) # %.0f: %d stops at 2^31 in mawk
      ds = ""
      for (k = 0; k < 8; k++) ds = ds sprintf("%04x", int(rand() * 65536))
      if (i >= missing) {
        status = (i % 10 == 0) ? "OFFLINE" : "ONLINE"
        printf "a1BenchPK01,%s,%s,%s,a1BenchPK01%s00%07x\n", dn, ds, status, dn, i > a ".body"
      }
      if (i < rows) {
        if (i > missing && (i - missing) % step == 0 && n < changed) {
          ds = sprintf("%032.0f", i)
          n++
        }
        printf "%s,%s\n", dn, ds > b ".body"
      }
    }
  }'
{ echo "product_key,device_name,device_secret,status,iot_id"; shuf --random-source=<(yes) "$work/A.csv.body"; } >"$work/A.csv"
{ echo "device_name,device_secret"; shuf --random-source=<(yes 1) "$work/B.csv.body"; } >"$work/B.csv"
rm -f "$work"/*.body
expected=$((changed + missing))
sizes="A $(du -m "$work/A.csv" | cut -f1) MB, B $(du -m "$work/B.csv" | cut -f1) MB"
echo "files: $sizes; planted differences: $expected" >&2

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_timed NAME CMD: runs the bash snippet CMD RUNS times (after a warm-up run) and keeps the
# median wall seconds, the median peak RSS in MB (the sum of the "Maximum resident set size" of
# every process CMD runs through $T: an upper bound for a pipeline, whose processes overlap) and
# the number of lines CMD printed (the differences found).
declare -A wall rss found
if [ -x /usr/bin/time ]; then
  T="/usr/bin/time -v -a -o $work/rss.txt"
else
  T=""
  echo "note: /usr/bin/time missing: peak RSS not measured" >&2
fi
run_timed() {
  local name=$1 cmd=$2 t=() m=() start end
  T="$T" bash -c "$cmd" >/dev/null 2>&1 || true # warm-up: the files in the page cache
  for _ in $(seq "$runs"); do
    rm -f "$work/rss.txt"
    start=$(date +%s.%N)
    T="$T" bash -c "$cmd" >"$work/out.txt" 2>"$work/err.txt" || true
    end=$(date +%s.%N)
    t+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')")
    if [ -n "$T" ]; then
      m+=("$(awk -F': ' '/Maximum resident set size/ { kb += $2 } END { printf "%.0f", kb / 1024 }' "$work/rss.txt")")
    else
      m+=(0)
    fi
  done
  wall[$name]=$(printf '%s\n' "${t[@]}" | median)
  rss[$name]=$(printf '%s\n' "${m[@]}" | median)
  found[$name]=$(wc -l <"$work/out.txt")
}

cd "$work"
# iotfleet: -o csv prints a header and one row per difference.
run_timed iotfleet "\$T '$iotfleet' secrets compare --snapshot A.csv --devices B.csv -o csv -q | tail -n +2"
# sort | join: B's rows left outer joined with A's on the DeviceName, then the rows whose secret
# differs or that A lacks.
run_timed join "\$T join -t, -1 1 -2 2 -a 1 -e '' -o 0,1.2,2.3 \
  <(tail -n +2 B.csv | \$T sort -t, -k1,1) <(tail -n +2 A.csv | \$T sort -t, -k2,2) |
  \$T awk -F, '\$2 != \$3 { print \$1 }'"

ratio=$(awk -v a="${wall[join]}" -v b="${wall[iotfleet]}" 'BEGIN { printf "%.1f", a / b }')
echo
echo "$rows vs $rows rows ($sizes), $expected planted differences, median of $runs runs:"
echo
echo "| tool | wall time (s) | peak RSS (MB) | differences found |"
echo "|---|---|---|---|"
echo "| \`iotfleet secrets compare\` | ${wall[iotfleet]} | ${rss[iotfleet]} | ${found[iotfleet]} |"
echo "| \`sort \| join \| awk\` | ${wall[join]} | ${rss[join]} | ${found[join]} |"
echo
echo "sort | join takes ${ratio}× as long as iotfleet."
if [ "${found[iotfleet]}" != "$expected" ] || [ "${found[join]}" != "$expected" ]; then
  echo "MISMATCH: expected $expected differences" >&2
  exit 1
fi
