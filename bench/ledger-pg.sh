#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: a line of stations on one PostgreSQL ledger against one station on its SQLite file.
#
# Each run burns a fresh simulated line of 16 Luat modules per station (`iotfleet-sim modules`,
# 115200 baud emulation, fixed NVM latency), the stations started together, each a separate
# `iotfleet provision` process with its own IOTFLEET_STATION, all drawing from one pool.
# Configurations: SQLite 1 × 16, PostgreSQL 1, 2 and 4 × 16, and 4 × 16 with a SQLite file per
# station (the peer: today's factory, the same load on the machine, no shared pool), which tells
# the shared ledger's cost from the cost of 64 simulated modules on one machine. Reported, as
# medians over RUNS runs (default 5):
#   - modules per minute of the whole line: modules burned / the wall time of the slowest station;
#   - per-module time p50 / p99 (sync -> verified burn, the burned events' elapsed_ms: it holds
#     the claim, the attempt and the burn, so the ledger's latency is in it), and the p50's
#     difference to SQLite 1 × 16;
#   - claim latency p50 / p99 (the burned events' claim_ms: the claim step as the station saw it,
#     locks and round trips included), and the p50 of ledger_ms (claim + attempt + burn);
#   - scaling on the shared ledger from 1 to 2 to 4 stations.
# The PostgreSQL server is the tests' own (scripts/pg-local.sh, fsync on), on this machine.
# Usage: bench/ledger-pg.sh [BUILD_DIR]   (prints a Markdown table; see bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
iotfleet="$PWD/$build_dir/iotfleet"
sim="$PWD/$build_dir/iotfleet-sim"
runs=${RUNS:-5}
nvm_ms=${NVM_MS:-150}
per_station=16
work=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-bench.XXXXXX")
pgdir=$(mktemp -d /tmp/iotfleet-bench-pg.XXXXXX)
sims=()
cleanup() {
  for p in "${sims[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/pg-local.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work" "$pgdir"
}
trap cleanup EXIT
export HOME="$work/home"
mkdir -p "$HOME"
url=$(scripts/pg-local.sh start "$pgdir")

start_line() { # start_line DIR SEED
  "$sim" modules --count "$per_station" --module luat --state-dir "$1" --seed "$2" --urc-rate 0 \
    --nvm-latency-ms "$nvm_ms" --baud 115200 >"$1.out" 2>"$1.err" &
  sims+=($!)
  for _ in $(seq 200); do grep -qx ready "$1.err" 2>/dev/null && return 0; sleep 0.05; done
  echo "simulator not ready" >&2
  exit 1
}
import_line() { # import_line LEDGER DIR: a triplet per module, DeviceName = IMEI
  {
    echo "ProductKey,DeviceName,DeviceSecret"
    cut -d' ' -f2 "$2.out" | while read -r imei; do
      echo "a1BenchPK01,$imei,$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    done
  } >"$2.csv"
  IOTFLEET_LEDGER=$1 "$iotfleet" pool import "$2.csv" -q >/dev/null
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ms() { date +%s%3N; }

ledger_of() { if [ "$1" = separate ]; then echo "$work/station$2.db"; else echo "$1"; fi; }
p99() { sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; print v[i] }'; }
declare -A rate per_module tail_module claim_p50 claim_p99 ledger_p50
seed=500
run_config() { # run_config NAME LEDGER STATIONS (LEDGER "separate": a SQLite file per station)
  local name=$1 shared=$2 stations=$3 rates=() r s ledger
  for r in $(seq "$runs"); do
    local dirs=() pids=()
    for s in $(seq "$stations"); do
      seed=$((seed + 1))
      dirs+=("$work/$name-r$r-s$s")
      start_line "${dirs[-1]}" "$seed"
      import_line "$(ledger_of "$shared" "$s")" "${dirs[-1]}"
    done
    sleep 1 # the modules finish booting (RDY …) before the clock starts
    local t0 t1
    t0=$(now_ms)
    for s in $(seq "$stations"); do
      local dir=${dirs[$((s - 1))]} args=()
      while read -r port _; do args+=(--port "$port"); done <"$dir.out"
      ledger=$(ledger_of "$shared" "$s")
      IOTFLEET_LEDGER=$ledger IOTFLEET_STATION="st$s" "$iotfleet" provision "${args[@]}" -m luat \
        -o ndjson >"$dir.ndjson" 2>"$dir.log" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(now_ms)
    local burned=0
    for dir in "${dirs[@]}"; do
      burned=$((burned + $(grep -c '"event":"burned"' "$dir.ndjson")))
      jq -r 'select(.event == "burned") | .elapsed_ms' "$dir.ndjson" >>"$work/elapsed-$name"
      jq -r 'select(.event == "burned") | .claim_ms' "$dir.ndjson" >>"$work/claim-$name"
      jq -r 'select(.event == "burned") | .ledger_ms' "$dir.ndjson" >>"$work/ledger-$name"
    done
    [ "$burned" = $((stations * per_station)) ] || {
      echo "$name run $r: $burned burned, not $((stations * per_station))" >&2
      exit 1
    }
    rates+=("$(awk -v n="$burned" -v ms="$((t1 - t0))" 'BEGIN { printf "%.1f", n * 60000 / ms }')")
    for p in "${sims[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    sims=()
  done
  rate[$name]=$(printf '%s\n' "${rates[@]}" | median)
  per_module[$name]=$(median <"$work/elapsed-$name")
  tail_module[$name]=$(p99 <"$work/elapsed-$name")
  claim_p50[$name]=$(median <"$work/claim-$name")
  claim_p99[$name]=$(p99 <"$work/claim-$name")
  ledger_p50[$name]=$(median <"$work/ledger-$name")
}

run_config sqlite-1x16 "$work/ledger.db" 1
run_config pg-1x16 "$url" 1
run_config pg-2x16 "$url" 2
run_config pg-4x16 "$url" 4
run_config sqlite-4x16 separate 4

echo "| ledger | stations × fixtures | modules/min, whole line (median of $runs runs) | per-module time p50 / p99 (ms) | p50 vs SQLite 1 × 16 (ms) | claim p50 / p99 (ms) | all ledger steps p50 (ms) |"
echo "|---|---|---|---|---|---|---|"
for name in sqlite-1x16 pg-1x16 pg-2x16 sqlite-4x16 pg-4x16; do
  awk -v n="$name" -v r="${rate[$name]}" -v p="${per_module[$name]}" -v t="${tail_module[$name]}" -v base="${per_module[sqlite-1x16]}" \
    -v c50="${claim_p50[$name]}" -v c99="${claim_p99[$name]}" -v l50="${ledger_p50[$name]}" \
    'BEGIN { split(n, a, "-"); sub("x", " × ", a[2]); printf "| %s | %s | %s | %s / %s | %+.1f | %s / %s | %s |\n", (a[1] == "pg" ? "PostgreSQL, shared" : (a[2] ~ /^4/ ? "SQLite, a file per station" : "SQLite")), a[2], r, p, t, p - base, c50, c99, l50 }'
done
echo
awk -v a="${rate[pg-4x16]}" -v b="${rate[sqlite-4x16]}" 'BEGIN { printf "4 stations on one PostgreSQL ledger / 4 stations on a SQLite file each: %.2f× (target ≥ 0.95×)\n", a / b }'
awk -v a="${rate[pg-1x16]}" -v b="${rate[pg-2x16]}" -v c="${rate[pg-4x16]}" 'BEGIN { printf "scaling on the shared ledger, 1 → 2 → 4 stations: 1 : %.2f : %.2f\n", b / a, c / a }'
