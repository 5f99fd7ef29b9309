#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A line of stations on one PostgreSQL ledger (a server of this test's own, scripts/pg-local.sh):
# two stations import the same batch (the second is a no-op); two stations × 8 simulated fixtures
# burn from one pool at once; a module burned at station A and plugged into station B is
# recognised there, nothing consumed; `pool status` per station; kill -9 of a station mid-burn,
# and a restart of the server mid-run (the fixtures wait for it), each followed by a re-run; a
# station role (scripts/ledger-roles.sql) that burns but cannot touch the audit trail; `pool
# migrate --from` a station's SQLite ledger, again (a no-op) and with planted conflicts. After
# every run the ledger,
# read with psql, is checked against the simulators' NVM files (ledger_check.py): no triplet in
# two modules, none lost, every burned module holds its ledger secret.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
pk=a1PgLine0001

# The server: its own cluster, in a directory the postgres user can reach when this runs as root.
pgdir=$(mktemp -d /tmp/iotfleet-pg.XXXXXX)
iot_cleanup_hooks+=("'$here/../../scripts/pg-local.sh' stop '$pgdir' >/dev/null 2>&1; rm -rf '$pgdir'")
url=$(IOTFLEET_PG_NO_SYNC=1 "$here/../../scripts/pg-local.sh" start "$pgdir") ||
  {
    fail "the PostgreSQL test server did not start"
    finish
  }
export IOTFLEET_LEDGER=$url

secret_for() { printf 'P%031d' "$1"; }
ports_of() { local p; for p in $(cut -d' ' -f1 "$1/sim.out"); do printf -- '--port\n%s\n' "$p"; done; }
count_in() { grep -c "\"event\":\"$2\"" "$1" || true; }
# modules DIR COUNT [ARGS…]: a simulator of its own (a station's fixtures), its pid in sims[DIR].
declare -A sims
modules() {
  local dir=$1 count=$2
  shift 2
  sim_start "$dir" --count "$count" --module quectel --urc-rate 0 "$@" || fail "simulator $dir"
  sims[$dir]=$sim_pid
}
modules_stop() { kill "${sims[$1]}" 2>/dev/null && wait "${sims[$1]}" 2>/dev/null || true; }
# station NAME DIR OUT [ARGS…]: provision every fixture of DIR as station NAME, NDJSON to OUT.
station() {
  local name=$1 dir=$2 out=$3
  shift 3
  mapfile -t ports < <(ports_of "$dir")
  IOTFLEET_STATION=$name "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson "$@" >"$out" 2>"$out.err"
}
# start_station NAME DIR OUT: the same in the background; $station_pid is iotfleet's own pid.
start_station() {
  local name=$1 dir=$2 out=$3
  mapfile -t ports < <(ports_of "$dir")
  IOTFLEET_STATION=$name "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson >"$out" 2>"$out.err" &
  station_pid=$!
}

# --- the same batch imported by two stations: the second is a no-op ----------------------
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 120); do echo "$pk,line-$(printf %04d "$n"),$(secret_for "$n")"; done
} >batch.csv
run env IOTFLEET_STATION=station-a "$IOTFLEET" pool import batch.csv -o json
expect_rc 0 "station A imports the batch into the shared ledger"
expect_out '"added": 120' "120 added"
run env IOTFLEET_STATION=station-b "$IOTFLEET" pool import batch.csv -o json
expect_rc 0 "station B imports the same batch"
expect_out '"added": 0' "nothing added twice"
expect_out '"already_present": 120' "all 120 already present"
expect_no_out "$(secret_for 1)" "no secret in the import table"
# Both at once, a second batch: each row once.
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 121 200); do echo "$pk,line-$(printf %04d "$n"),$(secret_for "$n")"; done
} >batch2.csv
IOTFLEET_STATION=station-a "$IOTFLEET" pool import batch2.csv -o json >imp-a.json 2>imp-a.err &
pa=$!
IOTFLEET_STATION=station-b "$IOTFLEET" pool import batch2.csv -o json >imp-b.json 2>imp-b.err &
pb=$!
wait $pa && wait $pb && ok || fail "concurrent imports: $(cat imp-a.err imp-b.err)"
added=$(($(jq .added imp-a.json) + $(jq .added imp-b.json)))
[ "$added" = 80 ] && ok || fail "concurrent imports added $added, not 80: $(cat imp-a.json imp-b.json)"
count=$(psql "$url" -X -Atc "SELECT count(*) FROM triplets")
[ "$count" = 200 ] && ok || fail "the ledger holds $count triplets, not 200"

# --- two stations × 8 fixtures burn from one pool at once ----------------------------------
modules "$IOT_TMP/a1" 8 --seed 1
modules "$IOT_TMP/b1" 8 --seed 2
start_station station-a "$IOT_TMP/a1" a1.out
pa=$station_pid
start_station station-b "$IOT_TMP/b1" b1.out
pb=$station_pid
wait $pa && ok || fail "station A: $(cat a1.out.err)"
wait $pb && ok || fail "station B: $(cat b1.out.err)"
[ "$(count_in a1.out burned)" = 8 ] && [ "$(count_in b1.out burned)" = 8 ] && ok ||
  fail "8 burned at each station: $(cat a1.out b1.out)"
check_ledger "two stations at once" "$IOT_TMP"/{a1,b1}/state --total 200 --all-burned
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,station-a,0,0,0,8\$" "status: 8 burned at station A"
expect_out "^$pk,station-b,0,0,0,8\$" "status: 8 burned at station B"
expect_out "^$pk,,184,0,0,0\$" "status: 184 available to the whole line"

# --- a module burned at A, plugged into B: recognised, nothing consumed ----------------------
station station-b "$IOT_TMP/a1" moved.out
[ "$(count_in moved.out already-provisioned)" = 8 ] && ok ||
  fail "station B recognises A's 8 modules: $(cat moved.out moved.out.err)"
[ "$(count_in moved.out claimed)" = 0 ] && ok || fail "nothing claimed for moved modules"
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,,184,0,0,0\$" "still 184 available"
modules_stop "$IOT_TMP/a1"
modules_stop "$IOT_TMP/b1"

# --- kill -9 of a station mid-burn, then both run again ---------------------------------------
RANDOM=${IOT_CRASH_SEED:-4242}
dirs=("$IOT_TMP"/{a1,b1}/state)
killed_with_work=0
in_doubt_at_a() {
  psql "$url" -X -Atc "SELECT count(*) FROM triplets WHERE station = 'station-a' AND state IN ('claimed', 'bound')"
}
for trial in 1 2 3 4 5 6; do
  modules "$IOT_TMP/ka$trial" 4 --seed $((10 + trial)) --nvm-latency-ms 1000-2000
  modules "$IOT_TMP/kb$trial" 4 --seed $((20 + trial)) --nvm-latency-ms 1000-2000
  dirs+=("$IOT_TMP/ka$trial/state" "$IOT_TMP/kb$trial/state")
  start_station station-a "$IOT_TMP/ka$trial" "ka$trial.out"
  victim=$station_pid
  start_station station-b "$IOT_TMP/kb$trial" "kb$trial.out"
  other=$station_pid
  # The kill lands once station A holds a claim in the ledger (on any machine's speed), at a
  # random moment of the writes that follow (each takes 1-2 s).
  for _ in $(seq 600); do
    [ "$(in_doubt_at_a)" -gt 0 ] && break
    kill -0 "$victim" 2>/dev/null || break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 600 + 100))"
  kill -9 "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  [ "$(in_doubt_at_a)" -gt 0 ] && killed_with_work=$((killed_with_work + 1))
  wait "$other" && ok || fail "trial $trial: station B beside a killed station: $(cat "kb$trial.out.err")"
  check_ledger "after killing station A in trial $trial" "${dirs[@]}" --total 200
  # Station A again: what was in doubt is read back first; everything ends burned.
  station station-a "$IOT_TMP/ka$trial" "ka$trial.rerun.out" && ok ||
    fail "trial $trial: the re-run: $(cat "ka$trial.rerun.out.err")"
  check_ledger "after the re-run of trial $trial" "${dirs[@]}" --total 200 --all-burned
  modules_stop "$IOT_TMP/ka$trial"
  modules_stop "$IOT_TMP/kb$trial"
done
echo "kills with station A's work in doubt: $killed_with_work of 6" >&2
[ "$killed_with_work" -ge 4 ] && ok || fail "only $killed_with_work of 6 kills left work in doubt"

# --- the server restarts mid-run: nothing lost or doubled, the re-run finishes ------------------
modules "$IOT_TMP/r" 8 --seed 99 --nvm-latency-ms 1500-3000
dirs+=("$IOT_TMP/r/state")
start_station station-a "$IOT_TMP/r" r.out
runner=$station_pid
for _ in $(seq 500); do
  [ -s r.out ] && break
  sleep 0.02
done
"$here/../../scripts/pg-local.sh" stop "$pgdir" && ok || fail "stopping the server"
sleep 3 # long enough that fixtures reach a ledger step while it is down
restarted=$(IOTFLEET_PG_NO_SYNC=1 "$here/../../scripts/pg-local.sh" start "$pgdir") &&
  [ "$restarted" = "$url" ] && ok || fail "restarting the server at $url (got: $restarted)"
runner_rc=0
wait "$runner" || runner_rc=$?
# The fixtures wait for the ledger ("ledger offline", backoff) and finish once it is back.
[ "$runner_rc" = 0 ] && ok || fail "the run across the restart exited $runner_rc: $(cat r.out.err)"
grep -q "ledger offline, waiting for it" r.out.err && ok ||
  fail "the operator is told the ledger is offline: $(cat r.out.err)"
[ "$(count_in r.out burned)" = 8 ] && ok || fail "8 burned across the restart: $(cat r.out)"
check_ledger "after the server restart" "${dirs[@]}" --total 200
station station-a "$IOT_TMP/r" r.rerun.out && ok || fail "the re-run after the restart: $(cat r.rerun.out.err)"
[ "$(count_in r.rerun.out already-provisioned)" = 8 ] && ok || fail "the re-run finds all 8 burned"
check_ledger "after the re-run" "${dirs[@]}" --total 200 --all-burned
burned=$(psql "$url" -X -Atc "SELECT count(*) FROM triplets WHERE state = 'burned'")
[ "$burned" = $((16 + 6 * 8 + 8)) ] && ok || fail "$burned burned, expected $((16 + 6 * 8 + 8))"

# --- a station role (scripts/ledger-roles.sql) burns, and cannot touch what is recorded ------
run psql "$url" -X -q -v station_role=line1_st9 -f "$here/../../scripts/ledger-roles.sql"
expect_rc 0 "the station role is created and granted"
station_url=${url/iotfleet@/line1_st9@}
modules "$IOT_TMP/role" 2 --seed 7
dirs+=("$IOT_TMP/role/state")
IOTFLEET_LEDGER=$station_url station line1-st9 "$IOT_TMP/role" role.out && ok ||
  fail "the station role burns: $(cat role.out.err)"
[ "$(count_in role.out burned)" = 2 ] && ok || fail "2 burned by the station role: $(cat role.out)"
check_ledger "after the station role's run" "${dirs[@]}" --total 200 --all-burned
for sql in "DELETE FROM events" "UPDATE events SET detail = 'x'" "DELETE FROM triplets" \
  "TRUNCATE registrations" "DROP TABLE events" "CREATE TABLE mine (x int)"; do
  if psql "$station_url" -X -qc "$sql" >/dev/null 2>err.txt; then
    fail "the station role could: $sql"
  else
    grep -Eq "permission denied|must be owner" err.txt && ok || fail "$sql: $(cat err.txt)"
  fi
done
modules_stop "$IOT_TMP/role"
# Readers on the shared ledger: export (masked) and the audit trail.
run env IOTFLEET_LEDGER="$station_url" "$IOTFLEET" pool export -o csv
[ "$(grep -c ",burned," <<<"$out")" = 74 ] && ok || fail "74 burned records exported: $out"
expect_no_out "$(secret_for 3)" "the export to stdout is masked"
run env IOTFLEET_LEDGER="$station_url" "$IOTFLEET" pool log --limit 5 -o csv
expect_rc 0 "pool log on the shared ledger"
expect_out "line1-st9" "the audit trail names the station"

# --- pool migrate: a station's own SQLite ledger into the shared one ---------------------------
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 301 310); do echo "$pk,solo-$n,$(secret_for "$n")"; done
} >solo.csv
run env IOTFLEET_LEDGER="$IOT_TMP/solo.db" "$IOTFLEET" pool import solo.csv
expect_rc 0 "a lone station's SQLite ledger"
modules "$IOT_TMP/solo" 4 --seed 31
dirs+=("$IOT_TMP/solo/state")
IOTFLEET_LEDGER="$IOT_TMP/solo.db" station solo-st "$IOT_TMP/solo" solo.out && ok ||
  fail "the lone station burns: $(cat solo.out.err)"
run "$IOTFLEET" pool migrate --from "$IOT_TMP/solo.db" -o json
expect_rc 0 "pool migrate --from the station's file"
expect_out '"triplets_added": 10' "its 10 triplets copied"
run "$IOTFLEET" pool migrate --from "$IOT_TMP/solo.db" -o json
expect_rc 0 "pool migrate again"
expect_out '"triplets_added": 0' "nothing copied twice"
expect_out '"events_added": 0' "no event copied twice"
check_ledger "after pool migrate" "${dirs[@]}" --total 210
station station-b "$IOT_TMP/solo" solo-moved.out
[ "$(count_in solo-moved.out already-provisioned)" = 4 ] && ok ||
  fail "the migrated modules are known at station B: $(cat solo-moved.out solo-moved.out.err)"
modules_stop "$IOT_TMP/solo"
# Planted conflicts: a DeviceName with another secret, an IMEI the shared ledger binds to another
# DeviceName; and a new row, which must not be copied either.
cp "$IOT_TMP/solo.db" conflict.db
taken_imei=$(psql "$url" -X -Atc "SELECT imei FROM triplets WHERE station = 'station-a' AND state = 'burned' LIMIT 1")
python3 - conflict.db "$taken_imei" "$pk" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE triplets SET secret = 'Zz000000000000000000000000000305' WHERE device_name = 'solo-305'")
db.execute("UPDATE triplets SET state = 'bound', imei = ? WHERE device_name = 'solo-306'", (sys.argv[2],))
db.execute("INSERT INTO triplets (product_key, device_name, secret, scheme, state, imported_at, updated_at) "
           "VALUES (?, 'solo-311', 'P0000000000000000000000000000311', 'device', 'available', 1, 1)", (sys.argv[3],))
db.commit()
PY
run "$IOTFLEET" pool migrate --from conflict.db
expect_rc 2 "conflicts refuse the copy"
expect_err "conflict: $pk/solo-305 is in this ledger with a different secret" "the secret conflict named"
expect_err "conflict: IMEI $taken_imei" "the IMEI conflict named"
expect_err "2 rows of conflict.db conflict" "the count, and nothing copied"
expect_no_err "Zz000000000000000000000000000305" "no secret in the conflict report"
count=$(psql "$url" -X -Atc "SELECT count(*) FROM triplets WHERE device_name = 'solo-311'")
[ "$count" = 0 ] && ok || fail "a conflicting copy copied a row"

# --- the audit trail cannot be rewritten, even by the ledger's owner ------------------------
if psql "$url" -X -qc "DELETE FROM events" >/dev/null 2>err.txt; then
  fail "events could be deleted"
else
  grep -q "append-only" err.txt && ok || fail "refusal names the rule: $(cat err.txt)"
fi
finish
