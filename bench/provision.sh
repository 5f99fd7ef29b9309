#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: `iotfleet provision` against `iotfleet-sim modules` at 115200 baud emulation.
#
# For 1, 4 and 16 fixtures, RUNS runs (default 5) each burn ROUNDS (default 3) fresh modules per
# fixture (a new simulated line per round). Reported, as medians over the runs:
#   - modules per minute: modules burned / the provision processes' wall time;
#   - per-module time: the `elapsed_ms` of each burned event (sync -> verified burn);
#   - the serial floor per module: bytes on the wire (both directions, from a --trace of one burn,
#     framing included) x 10 bits / baud + the simulator's NVM write latency (fixed here), and the
#     ratio of the per-module time to it;
#   - scaling: 16-fixture modules/minute / 1-fixture modules/minute.
# Usage: bench/provision.sh [BUILD_DIR]   (prints a Markdown table; see bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
iotfleet="$build_dir/iotfleet"
sim="$build_dir/iotfleet-sim"
runs=${RUNS:-5}
rounds=${ROUNDS:-3}
nvm_ms=${NVM_MS:-150}
baud=115200
work=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-bench.XXXXXX")
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" IOTFLEET_LEDGER="$work/ledger.db"
mkdir -p "$HOME"

start_line() { # start_line COUNT DIR SEED
  "$sim" modules --count "$1" --module luat --state-dir "$2" --seed "$3" --urc-rate 0 \
    --nvm-latency-ms "$nvm_ms" --baud "$baud" >"$2.out" 2>"$2.err" &
  sim_pid=$!
  # "ready" comes when the ptys are open; the modules are still booting (RDY …) for a moment:
  # a station sees modules that are powered up, so wait that out of the measurement.
  for _ in $(seq 200); do grep -qx ready "$2.err" 2>/dev/null && sleep 1 && return 0; sleep 0.05; done
  echo "simulator not ready" >&2
  exit 1
}
stop_line() { kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true; sim_pid=; }
import_line() { # import_line DIR: a triplet per module, DeviceName = IMEI (Luat secret layout)
  {
    echo "ProductKey,DeviceName,DeviceSecret"
    cut -d' ' -f2 "$1.out" | while read -r imei; do
      echo "a1BenchPK01,$imei,$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    done
  } >"$1.csv"
  "$iotfleet" pool import "$1.csv" -q >/dev/null
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ms() { date +%s%3N; }

# The floor: bytes of one complete burn, from the AT trace (each line plus its CR LF framing:
# commands end in CR, answers are CR LF <line> CR LF).
start_line 1 "$work/floor" 1
import_line "$work/floor"
"$iotfleet" provision --port "$(cut -d' ' -f1 "$work/floor.out")" -m luat --trace -o ndjson \
  >"$work/floor.ndjson" 2>"$work/floor.trace"
stop_line
bytes=$(awk '/^trace .* >> / { sub(/^trace [^ ]+ >> /, ""); n += length($0) + 1 }
             /^trace .* << / { sub(/^trace [^ ]+ << /, ""); n += length($0) + 4 }
             END { print n }' "$work/floor.trace")
commands=$(grep -c '^trace .* >> ' "$work/floor.trace")
floor_ms=$(awk -v b="$bytes" -v baud="$baud" -v nvm="$nvm_ms" 'BEGIN { printf "%.1f", b * 10 * 1000 / baud + nvm }')

declare -A rate per_module
seed=100
for fixtures in 1 4 16; do
  rates=()
  elapsed_all=()
  for run in $(seq "$runs"); do
    wall=0
    burned=0
    for round in $(seq "$rounds"); do
      seed=$((seed + 1))
      dir="$work/f$fixtures-r$run-$round"
      start_line "$fixtures" "$dir" "$seed"
      import_line "$dir"
      args=()
      while read -r port _; do args+=(--port "$port"); done <"$dir.out"
      t0=$(now_ms)
      "$iotfleet" provision "${args[@]}" -m luat -o ndjson >"$dir.ndjson" 2>"$dir.log"
      t1=$(now_ms)
      stop_line
      wall=$((wall + t1 - t0))
      burned=$((burned + $(grep -c '"event":"burned"' "$dir.ndjson")))
      grep -o '"event":"burned".*"elapsed_ms":[0-9]*' "$dir.ndjson" | sed 's/.*"elapsed_ms"://' >>"$work/elapsed-$fixtures"
    done
    rates+=("$(awk -v n="$burned" -v ms="$wall" 'BEGIN { printf "%.1f", n * 60000 / ms }')")
  done
  rate[$fixtures]=$(printf '%s\n' "${rates[@]}" | median)
  per_module[$fixtures]=$(median <"$work/elapsed-$fixtures")
done

echo "| fixtures | modules/min (median of $runs runs × $rounds rounds) | per-module time, median (ms) | floor (ms) | ratio to floor |"
echo "|---|---|---|---|---|"
for fixtures in 1 4 16; do
  awk -v f="$fixtures" -v r="${rate[$fixtures]}" -v p="${per_module[$fixtures]}" -v fl="$floor_ms" \
    'BEGIN { printf "| %d | %s | %s | %s | %.2f |\n", f, r, p, fl, p / fl }'
done
echo
awk -v a="${rate[16]}" -v b="${rate[1]}" 'BEGIN { printf "16 fixtures / 1 fixture: %.1f×\n", a / b }'
echo "floor: $bytes bytes on the wire in $commands commands at $baud baud + ${nvm_ms} ms NVM write"
