#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# pool import/status/release/export and provision against simulated modules on real ptys:
# 16 fixtures over several rounds, duplicate and placeholder IMEIs refused, faults injected, and
# after every run the ledger (read with Python's sqlite3) matches what each module holds.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1B2c3D4e5F

secret_for() { printf 'S%031d' "$1"; } # 32 characters, unique per n
ports_args() { local p; for p in "${sim_ports[@]}"; do printf -- '--port\n%s\n' "$p"; done; }
count_events() { grep -c "\"event\":\"$1\"" <<<"$out" || true; }
sim_stop() { kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true; }

# --- pool import: validation, all-or-nothing, idempotent -----------------------------------
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 40); do echo "$pk,dev$(printf %04d "$n"),$(secret_for "$n")"; done
} >pool.csv
{ head -3 pool.csv; echo "$pk,bad\"name,$(secret_for 99)"; echo "$pk,dev0002,$(secret_for 2)"; } >bad.csv
run "$IOTFLEET" pool import bad.csv
expect_rc 2 "a file with bad rows"
expect_err 'bad.csv:4: ' "bad row named by line"
expect_err 'bad.csv:5: .*line 3' "duplicate DeviceName names the earlier line"
expect_err 'nothing imported' "all or nothing"
expect_no_err "$(secret_for 99)" "no secret in messages"
run "$IOTFLEET" pool status -o csv
expect_no_out "$pk" "nothing was imported"

run "$IOTFLEET" pool import pool.csv -o json
expect_rc 0 "import"
expect_out '"added": 40' "40 added"
expect_out '"format": "aliyun-csv"' "console format recognised"
run "$IOTFLEET" pool import pool.csv -o json
expect_out '"added": 0' "re-import is a no-op"
expect_out '"already_present": 40' "re-import counted"
sed "s/$(secret_for 7)/$(secret_for 700)/" pool.csv >changed.csv
run "$IOTFLEET" pool import changed.csv
expect_rc 2 "a DeviceName with another secret"
expect_err 'changed.csv:8: .*dev0007.*different DeviceSecret' "conflict named"
ls -l "$IOTFLEET_LEDGER" | grep -q '^-rw-------' && ok || fail "ledger is not 0600"

# --- round 1..3 on 16 quectel fixtures: the pool runs out in round 3 -----------------------
for round in 1 2 3; do
  sim_start "$IOT_TMP/q$round" --count 16 --module quectel --seed "$round" --urc-rate 2
  mapfile -t ports < <(ports_args)
  run "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson
  if [ "$round" -lt 3 ]; then
    expect_rc 0 "round $round: all burned"
    [ "$(count_events burned)" = 16 ] && ok || fail "round $round: 16 burned events: $out"
  else
    expect_rc 5 "round 3: some modules refused"
    [ "$(count_events burned)" = 8 ] && ok || fail "round 3: 8 burned: $out"
    [ "$(count_events refused)" = 8 ] && ok || fail "round 3: 8 refused: $out"
    expect_out '"action":"pool empty — import more triplets' "operator told what to do"
  fi
  expect_out '"event":"summary"' "summary line"
  expect_no_out "$(secret_for 1)" "secrets masked in events"
  sim_stop
done
check_ledger "after 3 rounds" "$IOT_TMP"/q{1,2,3}/state --total 40 --all-burned

# --- re-running on burned modules consumes nothing --------------------------------------------
sim_start "$IOT_TMP/q1" --count 16 --module quectel --urc-rate 0
mapfile -t ports < <(ports_args)
run "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson
expect_rc 0 "re-run on burned modules"
[ "$(count_events already-provisioned)" = 16 ] && ok || fail "16 already-provisioned: $out"
sim_stop
check_ledger "after the re-run" "$IOT_TMP"/q{1,2,3}/state --total 40 --all-burned

run "$IOTFLEET" pool status -o csv
expect_out "^$pk,[^,]+,0,0,0,40\$" "status: 40 burned on this station"
run "$IOTFLEET" pool export -o csv
expect_rc 0 "export to stdout"
[ "$(grep -c ",burned," <<<"$out")" = 40 ] && ok || fail "40 burned records: $out"
expect_no_out "$(secret_for 3)" "export to stdout is masked"
run "$IOTFLEET" pool export -O burned.csv
expect_rc 0 "export to a file"
ls -l burned.csv | grep -q '^-rw-------' && ok || fail "export file is not 0600"
grep -q "$(secret_for 3)" burned.csv && ok || fail "the export file holds the secrets"

# --- duplicate and placeholder IMEIs are refused, nothing is consumed ---------------------------
{ echo "ProductKey,DeviceName,DeviceSecret"; for n in $(seq 41 50); do echo "$pk,dev$n,$(secret_for "$n")"; done; } >more.csv
run "$IOTFLEET" pool import more.csv
expect_rc 0 "import more"
sim_start "$IOT_TMP/dup" --count 4 --module luat --duplicate-imei --urc-rate 0
mapfile -t ports < <(ports_args)
run "$IOTFLEET" provision "${ports[@]}" -m luat --layout triplet -o ndjson
expect_rc 5 "duplicate IMEIs"
[ "$(count_events burned)" = 1 ] && ok || fail "exactly one of four modules with one IMEI burned: $out"
[ "$(count_events refused)" = 3 ] && ok || fail "the other three refused: $out"
expect_out 'rework' "the operator is told to send them to rework"
sim_stop
sim_start "$IOT_TMP/dup" --count 4 --module luat --urc-rate 0
# One fixture at a time: run together, whichever module of the one IMEI comes first is the one
# judged, and the module holding the triplet may be refused as a concurrent duplicate instead.
all_out=
for p in "${sim_ports[@]}"; do
  run "$IOTFLEET" provision --port "$p" -m luat --layout triplet -o ndjson
  all_out+="$out"$'\n'
done
out=$all_out
[ "$(count_events already-provisioned)" = 1 ] && ok || fail "the burned one is recognised: $out"
[ "$(count_events refused)" = 3 ] && ok || fail "the other three refused: $out"
expect_out 'burned with dev.*does not hold it' "the others are named duplicates"
sim_stop
check_ledger "duplicate IMEIs" "$IOT_TMP"/q{1,2,3}/state "$IOT_TMP/dup/state" --total 50

sim_start "$IOT_TMP/ph" --count 2 --module luat --placeholder-imei --urc-rate 0
mapfile -t ports < <(ports_args)
run "$IOTFLEET" provision "${ports[@]}" -m luat --layout triplet -o ndjson
expect_rc 5 "placeholder IMEIs"
[ "$(count_events refused)" = 2 ] && ok || fail "both refused: $out"
expect_out 'IMEI not written — send the module to rework' "placeholder: rework"
sim_stop
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,,9,0,0,0\$" "nine left available: nothing consumed by refused modules"

# --- faults: every module ends burned and verified, or failed with a reason ---------------------
{ echo "ProductKey,DeviceName,DeviceSecret"; for n in $(seq 51 80); do echo "$pk,dev$n,$(secret_for "$n")"; done; } >faults.csv
"$IOTFLEET" pool import faults.csv >/dev/null
sim_start "$IOT_TMP/faults" --count 12 --module quectel --seed 42 --garble 0.05 --drop 0.04 \
  --reboot 0.02 --slow 0.02 --urc-rate 20
mapfile -t ports < <(ports_args)
run "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson
case $rc in 0 | 5) ok ;; *) fail "faults: exit $rc ($err)" ;; esac
[ "$(($(count_events burned) + $(count_events failed) + $(count_events refused)))" = 12 ] && ok ||
  fail "faults: one event per module: $out"
if grep '"event":"failed"' <<<"$out" | grep -qv '"action":"[^"]'; then fail "a failure without an action: $out"; else ok; fi
sim_stop
check_ledger "after faults" "$IOT_TMP"/q{1,2,3}/state "$IOT_TMP/dup/state" "$IOT_TMP/faults/state" --total 80
sim_start "$IOT_TMP/faults" --count 12 --module quectel --urc-rate 0
mapfile -t ports < <(ports_args)
run "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson
expect_rc 0 "re-run after faults finishes the job"
[ "$(($(count_events burned) + $(count_events already-provisioned)))" = 12 ] && ok || fail "all 12 done: $out"
sim_stop
check_ledger "after the re-run" "$IOT_TMP"/q{1,2,3}/state "$IOT_TMP/dup/state" "$IOT_TMP/faults/state" --total 80

# --- dry run, port errors, release ----------------------------------------------------------
sim_start "$IOT_TMP/dry" --count 1 --module luat --urc-rate 0
before=$("$IOTFLEET" pool status -o csv)
run "$IOTFLEET" provision --port "${sim_ports[0]}" -m luat --layout triplet --dry-run -o csv
expect_rc 0 "dry run"
expect_out "^1,.*,write SN,\"AT\\+WISN=\"\"$pk\\|dev[0-9]+\\|S000…00[0-9]{2}\"\"\"" "dry run shows the write, masked"
expect_out 'read back SN,AT\+WISN\?' "and the read-back"
run "$IOTFLEET" pool status -o csv
[ "$out" = "$before" ] && ok || fail "dry run changed the ledger: $before -> $out"
sim_stop

# --ports-from, and the live board when stderr is a terminal (script(1) gives it a pty).
sim_start "$IOT_TMP/board" --count 2 --module quectel --urc-rate 0
{ echo "# fixtures of station 1"; echo "${sim_ports[0]}"; echo; echo "  ${sim_ports[1]}  "; } >fixtures.txt
if command -v script >/dev/null; then
  script -qec "'$IOTFLEET' provision --ports-from fixtures.txt -m quectel -o csv" board.log >/dev/null
  grep -q '#  port' board.log && ok || fail "no board on a TTY: $(cat board.log)"
  grep -aqE "^[^,]*2 +${sim_ports[1]//\//\\/} +burned" board.log && ok || fail "board line of fixture 2: $(cat board.log)"
  grep -aq 'burned 2  already-provisioned 0' board.log && ok || fail "board footer: $(cat board.log)"
else
  run "$IOTFLEET" provision --ports-from fixtures.txt -m quectel -o csv
  expect_rc 0 "--ports-from"
fi
run "$IOTFLEET" provision --ports-from fixtures.txt -m quectel -o csv
expect_rc 0 "--ports-from, second run"
expect_out "^already-provisioned,.*,1,${sim_ports[0]}," "first port from the file"
expect_out "^already-provisioned,.*,2,${sim_ports[1]}," "second port, trimmed"
sim_stop

run "$IOTFLEET" provision --port /dev/does-not-exist -m luat
expect_rc 3 "a port that cannot be opened"
expect_err 'check the cable' "port error says what to do"

run "$IOTFLEET" pool release dev0001 --reason ""
expect_rc 2 "release needs a reason"
run "$IOTFLEET" pool release dev0001 --reason "module scrapped"
expect_rc 2 "a burned triplet needs --force"
expect_err 'burned into IMEI' "release explains"
run "$IOTFLEET" pool release dev0001 --reason "module scrapped" --force -o json
expect_rc 0 "forced release"
expect_out '"was": "burned"' "release reports the old state"
run "$IOTFLEET" pool log --device-name dev0001 -o csv
expect_out ',release,ok,module scrapped' "release audited with its reason"
expect_no_out "$(secret_for 1)" "no secret in the audit trail"

finish
