#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# provision --loop on a simulated production line: operators swap modules on each fixture
# (iotfleet-sim modules --control FIFO), a module with another fixture's IMEI and one with the
# placeholder IMEI are refused, Ctrl-C ends the shift with exit 130 and a consistent ledger.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1B2c3D4e5F

{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 30); do printf '%s,loop%04d,L%031d\n' "$pk" "$n" "$n"; done
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null

sim_start "$IOT_TMP/line" --count 4 --module quectel --seed 9 --urc-rate 3 \
  --control "$IOT_TMP/control" --swap-gap-ms 200
args=()
for p in "${sim_ports[@]}"; do args+=(--port "$p"); done

"$IOTFLEET" provision "${args[@]}" -m quectel --loop --poll 100ms -o ndjson >events.ndjson 2>provision.err &
provision_pid=$!
iot_cleanup_hooks+=("kill $provision_pid 2>/dev/null")

wait_events() { # wait_events EVENT COUNT LABEL: up to 20 s
  local i
  for i in $(seq 200); do
    if [ "$(grep -c "\"event\":\"$1\"" events.ndjson)" -ge "$2" ]; then ok; return 0; fi
    sleep 0.1
  done
  fail "$3: fewer than $2 $1 events after 20 s: $(cat events.ndjson) $(cat provision.err)"
}
control() { echo "$*" >"$IOT_TMP/control"; }

wait_events burned 4 "the first four modules"
control swap all
wait_events burned 8 "after the operators swapped every module"
control swap 1
wait_events burned 9 "one more swap on fixture 2"

# A module with the IMEI of the one now on fixture 2 (already burned), and a placeholder IMEI.
imei_on_2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"][1]["imei"])' \
  "$IOT_TMP/line/state/ports.json")
control swap 0 "$imei_on_2"
control swap 3 352099001761481
wait_events refused 2 "duplicate and placeholder IMEIs"
grep '"event":"refused"' events.ndjson | grep -q 'IMEI not written' && ok ||
  fail "placeholder refused with the rework action: $(cat events.ndjson)"
grep '"event":"refused"' events.ndjson | grep -q "\"imei\":\"$imei_on_2\".*does not hold it" && ok ||
  fail "duplicate refused: $(cat events.ndjson)"

kill -INT "$provision_pid"
set +e
wait "$provision_pid"
rc=$?
set -e
[ "$rc" = 130 ] && ok || fail "Ctrl-C: exit $rc, want 130 ($(cat provision.err))"
grep -q '"event":"summary","burned":9,' events.ndjson && ok || fail "summary: $(tail -1 events.ndjson)"
grep -q 'finishing work in flight' provision.err && ok || fail "interrupt acknowledged: $(cat provision.err)"

if python3 "$here/ledger_check.py" "$IOTFLEET_LEDGER" "$IOT_TMP/line/state" --total 30 --all-burned \
  >check.txt 2>&1; then ok; else fail "ledger vs modules: $(cat check.txt)"; fi
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,[^,]+,0,0,0,9\$" "nine burned"
expect_out "^$pk,,21,0,0,0\$" "the refused modules consumed nothing"

finish
