#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Crash consistency: `iotfleet provision` is killed with SIGKILL at random moments while it burns
# 8 fixtures (20 trials). After every kill the ledger invariants hold (no triplet in two modules,
# none lost, every module's credential matches its ledger row or the row is in doubt), and a
# re-run on the same modules finishes the job with every triplet burned or back in the pool.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1B2c3D4e5F
trials=${IOT_CRASH_TRIALS:-20}
fixtures=8
total=$((trials * fixtures + 10))

{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 "$total"); do printf '%s,crash%04d,K%031d\n' "$pk" "$n" "$n"; done
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null

check_ledger() { # check_ledger LABEL ARGS...
  local label=$1
  shift
  if python3 "$here/ledger_check.py" "$IOTFLEET_LEDGER" "$@" >"$IOT_TMP/.check" 2>&1; then
    ok
  else
    fail "$label: $(cat "$IOT_TMP/.check")"
  fi
}

RANDOM=${IOT_CRASH_SEED:-4242}
dirs=()
killed_mid_run=0
for trial in $(seq 1 "$trials"); do
  module=quectel
  [ $((trial % 2)) = 0 ] && module=luat
  sim_start "$IOT_TMP/t$trial" --count "$fixtures" --module "$module" --seed "$trial" --urc-rate 6 \
    --nvm-latency-ms 250-600
  dirs+=("$IOT_TMP/t$trial/state")
  args=()
  for p in "${sim_ports[@]}"; do args+=(--port "$p"); done
  [ "$module" = luat ] && args+=(--layout triplet)

  "$IOTFLEET" provision "${args[@]}" -m "$module" -o ndjson >"run$trial.out" 2>"run$trial.err" &
  victim=$!
  delay_ms=$((RANDOM % 450 + 20))
  sleep "$(printf '0.%03d' "$delay_ms")"
  kill -9 "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  # Mid-run: it had not printed its summary (it prints it after the last module).
  grep -q '"event":"summary"' "run$trial.out" || killed_mid_run=$((killed_mid_run + 1))

  check_ledger "trial $trial: right after SIGKILL at ${delay_ms} ms" "${dirs[@]}" --total "$total"
  in_doubt=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
    "select count(*) from triplets where state in (\"claimed\",\"bound\")").fetchone()[0])' "$IOTFLEET_LEDGER")
  listed=$("$IOTFLEET" pool status --in-doubt -o csv | tail -n +2 | grep -c . || true)
  [ "$in_doubt" = "$listed" ] && ok || fail "trial $trial: pool status --in-doubt lists $listed, ledger has $in_doubt"

  run "$IOTFLEET" provision "${args[@]}" -m "$module" -o ndjson
  expect_rc 0 "trial $trial: the re-run finishes the job"
  done_count=$(grep -cE '"event":"(burned|already-provisioned)"' <<<"$out" || true)
  [ "$done_count" = "$fixtures" ] && ok || fail "trial $trial: $done_count of $fixtures done: $out $err"
  check_ledger "trial $trial: after the re-run" "${dirs[@]}" --total "$total" --all-burned
  kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true
done

echo "killed mid-run: $killed_mid_run of $trials"
# Most kills must land mid-run, or the test proves nothing.
[ "$killed_mid_run" -ge $((trials * 3 / 4)) ] && ok ||
  fail "only $killed_mid_run of $trials kills happened while provision was running"
run "$IOTFLEET" pool status -o csv
burned=$(awk -F, -v pk="$pk" '$1 == pk && $6 > 0 { s += $6 } END { print s + 0 }' <<<"$out")
[ "$burned" = $((trials * fixtures)) ] && ok || fail "burned $burned, want $((trials * fixtures)): $out"

finish
