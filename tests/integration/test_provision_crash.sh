#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Crash consistency: `iotfleet provision` is killed with SIGKILL at random moments while it burns
# 8 fixtures (20 trials). After every kill the ledger invariants hold (no triplet in two modules,
# none lost, every module's credential matches its ledger row or the row is in doubt), and a
# re-run on the same modules finishes the job with every triplet burned or back in the pool.
# Half the trials kill at a random time from the start (on a slow machine that may be before any
# write); the other half (trials 3-4, 7-8, …: both module kinds) at a random time after the ledger
# recorded the first write attempt, so that a quarter of the trials at least are killed with
# writes begun and the job unfinished.
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


# attempts: how many write attempts the ledger has recorded (its audit events).
attempts() {
  python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
    "select count(*) from events where action = ?", ("attempt",)).fetchone()[0])' "$IOTFLEET_LEDGER"
}
# wait_attempt PID N: until the ledger has more than N write attempts, while PID runs (120 s at
# most); 1 if PID ended first or the time ran out.
wait_attempt() {
  python3 - "$IOTFLEET_LEDGER" "$1" "$2" <<'PY'
import sqlite3, sys, time
ledger, pid, before = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        n = db.execute("select count(*) from events where action = 'attempt'").fetchone()[0]
        db.close()
        if n > before:
            sys.exit(0)
    except sqlite3.Error:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit(1)  # exited, not yet reaped
    except OSError:
        sys.exit(1)
    time.sleep(0.02)
sys.exit(1)
PY
}

RANDOM=${IOT_CRASH_SEED:-4242}
dirs=()
killed_mid_run=0
killed_writing=0
for trial in $(seq 1 "$trials"); do
  module=quectel
  [ $((trial % 2)) = 0 ] && module=luat
  sim_start "$IOT_TMP/t$trial" --count "$fixtures" --module "$module" --seed "$trial" --urc-rate 6 \
    --nvm-latency-ms 250-600
  dirs+=("$IOT_TMP/t$trial/state")
  args=()
  for p in "${sim_ports[@]}"; do args+=(--port "$p"); done
  [ "$module" = luat ] && args+=(--layout triplet)

  before=$(attempts)
  "$IOTFLEET" provision "${args[@]}" -m "$module" -o ndjson >"run$trial.out" 2>"run$trial.err" &
  victim=$!
  from=start
  if [ $(((trial - 1) / 2 % 2)) -eq 1 ]; then
    wait_attempt "$victim" "$before" && from="the first write" ||
      fail "trial $trial: no write attempt recorded before provision ended: $(cat "run$trial.err")"
  fi
  delay_ms=$((RANDOM % 450 + 20))
  sleep "$(printf '0.%03d' "$delay_ms")"
  kill -9 "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  # Mid-run: it had not printed its summary (it prints it after the last module); with writes
  # begun: the ledger recorded an attempt in this run.
  begun=$(($(attempts) - before))
  if ! grep -q '"event":"summary"' "run$trial.out"; then
    killed_mid_run=$((killed_mid_run + 1))
    [ "$begun" -gt 0 ] && killed_writing=$((killed_writing + 1))
  fi
  echo "trial $trial: killed ${delay_ms} ms after $from, $begun write(s) begun" >&2

  check_ledger "trial $trial: right after SIGKILL ${delay_ms} ms after $from" "${dirs[@]}" --total "$total"
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

echo "killed mid-run: $killed_mid_run of $trials, $killed_writing of them with writes begun"
# Most kills must land mid-run, and enough of them with writes under way, or the test proves
# nothing (a kill before the first write only tests claims).
[ "$killed_mid_run" -ge $((trials * 3 / 4)) ] && ok ||
  fail "only $killed_mid_run of $trials kills happened while provision was running"
[ "$killed_writing" -ge $(((trials / 2 + 1) / 2)) ] && ok ||
  fail "only $killed_writing of $trials kills happened with writes under way"
run "$IOTFLEET" pool status -o csv
burned=$(awk -F, -v pk="$pk" '$1 == pk && $6 > 0 { s += $6 } END { print s + 0 }' <<<"$out")
[ "$burned" = $((trials * fixtures)) ] && ok || fail "burned $burned, want $((trials * fixtures)): $out"

finish
