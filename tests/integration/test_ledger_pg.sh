#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A line of stations on one PostgreSQL ledger (a server of this test's own, scripts/pg-local.sh):
# two stations import the same batch (the second is a no-op); four stations × 8 simulated
# fixtures burn from one pool at once; a module burned at station A and plugged into station B
# is recognised there, nothing consumed; `pool status` per station and for the whole line; 20
# trials of kill -9 of random stations mid-burn, and a restart of the server mid-run (the
# fixtures wait for it) and an outage longer than --ledger-wait (they give up, nothing lost),
# each followed by a re-run; a station role (scripts/ledger-roles.sql) that burns but cannot
# touch the audit trail nor release; `pool migrate --from` a station's SQLite ledger, again (a
# no-op) and with planted conflicts. After every run the ledger, read with psql, is checked
# against the simulators' NVM files (ledger_check.py): no triplet in two modules, none lost,
# every burned module holds its ledger secret, the pool count exact.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
pk=a1PgLine0001

pg_start # the ledger: a PostgreSQL server of this test's own

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
# start_share NAME DIR K N OUT: station NAME on the K-th share of N of DIR's fixtures, in the
# background ($station_pid); one simulator is then the fixtures of N stations.
start_share() {
  local name=$1 dir=$2 k=$3 n=$4 out=$5 p i=0
  local -a ports=()
  for p in $(cut -d' ' -f1 "$dir/sim.out"); do
    [ $((i % n)) = "$k" ] && ports+=(--port "$p")
    i=$((i + 1))
  done
  IOTFLEET_STATION=$name "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson >"$out" 2>"$out.err" &
  station_pid=$!
}
# in_doubt_at NAME: triplets station NAME holds claimed or bound (work not recorded as finished).
in_doubt_at() {
  psql "$url" -X -Atc "SELECT count(*) FROM triplets WHERE station = '$1' AND state IN ('claimed', 'bound')"
}
stations=(station-a station-b station-c station-d)
total=400

# --- the same batch imported by two stations: the second is a no-op ----------------------
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 240); do echo "$pk,line-$(printf %04d "$n"),$(secret_for "$n")"; done
} >batch.csv
run env IOTFLEET_STATION=station-a "$IOTFLEET" pool import batch.csv -o json
expect_rc 0 "station A imports the batch into the shared ledger"
expect_out '"added": 240' "240 added"
run env IOTFLEET_STATION=station-b "$IOTFLEET" pool import batch.csv -o json
expect_rc 0 "station B imports the same batch"
expect_out '"added": 0' "nothing added twice"
expect_out '"already_present": 240' "all 240 already present"
expect_no_out "$(secret_for 1)" "no secret in the import table"
# Both at once, a second batch: each row once.
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 241 $total); do echo "$pk,line-$(printf %04d "$n"),$(secret_for "$n")"; done
} >batch2.csv
IOTFLEET_STATION=station-a "$IOTFLEET" pool import batch2.csv -o json >imp-a.json 2>imp-a.err &
pa=$!
IOTFLEET_STATION=station-b "$IOTFLEET" pool import batch2.csv -o json >imp-b.json 2>imp-b.err &
pb=$!
wait $pa && wait $pb && ok || fail "concurrent imports: $(cat imp-a.err imp-b.err)"
added=$(($(jq .added imp-a.json) + $(jq .added imp-b.json)))
[ "$added" = $((total - 240)) ] && ok ||
  fail "concurrent imports added $added, not $((total - 240)): $(cat imp-a.json imp-b.json)"
count=$(psql "$url" -X -Atc "SELECT count(*) FROM triplets")
[ "$count" = $total ] && ok || fail "the ledger holds $count triplets, not $total"

# --- four stations × 8 fixtures burn from one pool at once ----------------------------------
dirs=()
pids=()
for i in 0 1 2 3; do
  modules "$IOT_TMP/line$i" 8 --seed $((1 + i))
  dirs+=("$IOT_TMP/line$i/state")
done
for i in 0 1 2 3; do
  start_station "${stations[$i]}" "$IOT_TMP/line$i" "line$i.out"
  pids+=("$station_pid")
done
for i in 0 1 2 3; do
  wait "${pids[$i]}" && ok || fail "${stations[$i]}: $(cat "line$i.out.err")"
  [ "$(count_in "line$i.out" burned)" = 8 ] && ok ||
    fail "8 burned at ${stations[$i]}: $(cat "line$i.out")"
done
check_ledger "four stations at once" "${dirs[@]}" --total $total --all-burned
burned=32
run "$IOTFLEET" pool status -o csv
for st in "${stations[@]}"; do
  expect_out "^$pk,$st,0,0,0,8\$" "status: 8 burned at $st"
done
expect_out "^$pk,,$((total - burned)),0,0,0\$" "status: $((total - burned)) available to the whole line"
run "$IOTFLEET" pool status --by product -o csv
expect_out "^$pk,$((total - burned)),0,0,$burned\$" "status --by product: the whole line"
[ "$(wc -l <<<"$out")" = 2 ] && ok || fail "one row for the one product: $out"
run "$IOTFLEET" pool status --by line
expect_rc 2 "--by takes station or product"

# --- a module burned at A, plugged into B: recognised, nothing consumed ----------------------
station station-b "$IOT_TMP/line0" moved.out
[ "$(count_in moved.out already-provisioned)" = 8 ] && ok ||
  fail "station B recognises A's 8 modules: $(cat moved.out moved.out.err)"
[ "$(count_in moved.out claimed)" = 0 ] && ok || fail "nothing claimed for moved modules"
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,,$((total - burned)),0,0,0\$" "still $((total - burned)) available"
for i in 0 1 2 3; do modules_stop "$IOT_TMP/line$i"; done

# --- 20 trials: kill -9 of random stations mid-burn, then each killed station runs again -------
# One simulator of 8 fixtures per trial, 2 for each of the four stations; one or two of them
# (at random) are killed once they hold a claim in the ledger (on any machine's speed), at a
# random moment of the writes that follow (each takes 0.8-1.6 s). The others must finish.
RANDOM=${IOT_CRASH_SEED:-4242}
kills=0
killed_with_work=0
for trial in $(seq 1 20); do
  dir=$IOT_TMP/k$trial
  modules "$dir" 8 --seed $((10 + trial)) --nvm-latency-ms 800-1600
  dirs+=("$dir/state")
  pids=()
  for i in 0 1 2 3; do
    start_share "${stations[$i]}" "$dir" $i 4 "k$trial.$i.out"
    pids+=("$station_pid")
  done
  first=$((RANDOM % 4))
  victims=("$first")
  [ $((RANDOM % 2)) = 1 ] && victims+=($(((first + 1 + RANDOM % 3) % 4)))
  for v in "${victims[@]}"; do
    for _ in $(seq 600); do
      [ "$(in_doubt_at "${stations[$v]}")" -gt 0 ] && break
      kill -0 "${pids[$v]}" 2>/dev/null || break
      sleep 0.05
    done
    sleep "0.$((RANDOM % 500 + 100))"
    kill -9 "${pids[$v]}" 2>/dev/null || true
    wait "${pids[$v]}" 2>/dev/null || true
    kills=$((kills + 1))
    [ "$(in_doubt_at "${stations[$v]}")" -gt 0 ] && killed_with_work=$((killed_with_work + 1))
  done
  for i in 0 1 2 3; do
    [[ " ${victims[*]} " == *" $i "* ]] && continue
    wait "${pids[$i]}" && ok ||
      fail "trial $trial: ${stations[$i]} beside a killed station: $(cat "k$trial.$i.out.err")"
  done
  check_ledger "after killing ${victims[*]} in trial $trial" "${dirs[@]}" --total $total
  # Any station sees every station's work in doubt.
  in_doubt=$(psql "$url" -X -Atc "SELECT count(*) FROM triplets WHERE state IN ('claimed', 'bound')")
  listed=$(IOTFLEET_STATION=station-d "$IOTFLEET" pool status --in-doubt -o csv | grep -c "^$pk," || true)
  [ "$listed" = "$in_doubt" ] && ok || fail "trial $trial: --in-doubt lists $listed, the ledger has $in_doubt"
  # Each killed station again: what was in doubt is read back first; everything ends burned.
  for v in "${victims[@]}"; do
    start_share "${stations[$v]}" "$dir" "$v" 4 "k$trial.$v.rerun.out"
    wait "$station_pid" && ok ||
      fail "trial $trial: the re-run of ${stations[$v]}: $(cat "k$trial.$v.rerun.out.err")"
  done
  check_ledger "after the re-runs of trial $trial" "${dirs[@]}" --total $total --all-burned
  modules_stop "$dir"
done
burned=$((burned + 20 * 8))
echo "kills: $kills in 20 trials, $killed_with_work with the killed station's work in doubt" >&2
[ "$kills" -ge 20 ] && ok || fail "only $kills kills"
[ $((killed_with_work * 10)) -ge $((kills * 8)) ] && ok ||
  fail "only $killed_with_work of $kills kills left work in doubt"
run "$IOTFLEET" pool status --in-doubt -o csv
expect_rc 0 "pool status --in-doubt across the stations"
[ "$(grep -c "^$pk," <<<"$out")" = 0 ] && ok || fail "nothing left in doubt after the re-runs: $out"

# --- the server restarts while four stations burn: nothing lost or doubled --------------------
modules "$IOT_TMP/r" 16 --seed 99 --nvm-latency-ms 1500-3000
dirs+=("$IOT_TMP/r/state")
pids=()
for i in 0 1 2 3; do
  start_share "${stations[$i]}" "$IOT_TMP/r" $i 4 "r$i.out"
  pids+=("$station_pid")
done
for _ in $(seq 500); do
  [ -s r0.out ] && [ -s r3.out ] && break
  sleep 0.02
done
"$here/../../scripts/pg-local.sh" stop "$pgdir" && ok || fail "stopping the server"
sleep 3 # long enough that fixtures reach a ledger step while it is down
restarted=$(IOTFLEET_PG_NO_SYNC=1 "$here/../../scripts/pg-local.sh" start "$pgdir") &&
  [ "$restarted" = "$url" ] && ok || fail "restarting the server at $url (got: $restarted)"
offline_told=0
for i in 0 1 2 3; do
  # The fixtures wait for the ledger ("ledger offline", backoff) and finish once it is back.
  rc=0
  wait "${pids[$i]}" || rc=$?
  [ "$rc" = 0 ] && ok || fail "${stations[$i]} across the restart exited $rc: $(cat "r$i.out.err")"
  [ "$(count_in "r$i.out" burned)" = 4 ] && ok || fail "4 burned across the restart: $(cat "r$i.out")"
  grep -q "ledger offline, waiting for it" "r$i.out.err" && offline_told=$((offline_told + 1))
done
[ "$offline_told" -ge 1 ] && ok || fail "no station told its operator the ledger was offline"
check_ledger "after the server restart" "${dirs[@]}" --total $total --all-burned
station station-a "$IOT_TMP/r" r.rerun.out && ok || fail "the re-run after the restart: $(cat r.rerun.out.err)"
[ "$(count_in r.rerun.out already-provisioned)" = 16 ] && ok || fail "the re-run finds all 16 burned"
check_ledger "after the re-run" "${dirs[@]}" --total $total --all-burned
burned=$((burned + 16))
count=$(psql "$url" -X -Atc "SELECT count(*) FROM triplets WHERE state = 'burned'")
[ "$count" = $burned ] && ok || fail "$count burned, expected $burned"
modules_stop "$IOT_TMP/r"

# --- the server stays down longer than --ledger-wait: the fixtures give up, nothing lost -------
modules "$IOT_TMP/w" 2 --seed 98 --nvm-latency-ms 2000-3000
dirs+=("$IOT_TMP/w/state")
mapfile -t ports < <(ports_of "$IOT_TMP/w")
IOTFLEET_STATION=station-c "$IOTFLEET" provision "${ports[@]}" -m quectel -o ndjson --ledger-wait 2s \
  >w.out 2>w.out.err &
waiter=$!
for _ in $(seq 600); do
  [ "$(in_doubt_at station-c)" -gt 0 ] && break
  sleep 0.05
done
"$here/../../scripts/pg-local.sh" stop "$pgdir" && ok || fail "stopping the server"
stopped_at=$SECONDS
rc=0
wait "$waiter" || rc=$?
[ "$rc" = 5 ] && ok || fail "a ledger down longer than --ledger-wait: exit $rc, not 5: $(cat w.out.err)"
[ $((SECONDS - stopped_at)) -le 20 ] && ok || fail "the station gave up after $((SECONDS - stopped_at)) s"
grep -Eq "could not record it: run again on this module|stayed unreachable" w.out.err && ok ||
  fail "the operator is told what to do: $(cat w.out.err)"
restarted=$(IOTFLEET_PG_NO_SYNC=1 "$here/../../scripts/pg-local.sh" start "$pgdir") &&
  [ "$restarted" = "$url" ] && ok || fail "restarting the server at $url (got: $restarted)"
check_ledger "after giving up on the ledger" "${dirs[@]}" --total $total
station station-c "$IOT_TMP/w" w.rerun.out && ok || fail "the re-run once the server is back: $(cat w.rerun.out.err)"
check_ledger "after the re-run" "${dirs[@]}" --total $total --all-burned
burned=$((burned + 2))
modules_stop "$IOT_TMP/w"

# --- a station role (scripts/ledger-roles.sql) burns, and cannot touch what is recorded ------
run psql "$url" -X -q -v station_role=line1_st9 -f "$here/../../scripts/ledger-roles.sql"
expect_rc 0 "the station role is created and granted"
station_url=${url/iotfleet@/line1_st9@}
modules "$IOT_TMP/role" 2 --seed 7
dirs+=("$IOT_TMP/role/state")
IOTFLEET_LEDGER=$station_url station line1-st9 "$IOT_TMP/role" role.out && ok ||
  fail "the station role burns: $(cat role.out.err)"
[ "$(count_in role.out burned)" = 2 ] && ok || fail "2 burned by the station role: $(cat role.out)"
check_ledger "after the station role's run" "${dirs[@]}" --total $total --all-burned
burned=$((burned + 2))
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
[ "$(grep -c ",burned," <<<"$out")" = $burned ] && ok || fail "$burned burned records exported: $out"
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
check_ledger "after pool migrate" "${dirs[@]}" --total $((total + 10))
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

# --- only the admin role returns a bound or burned triplet to the pool ------------------------
scrapped=$(psql "$url" -X -Atc "SELECT device_name FROM triplets WHERE station = 'line1-st9' AND state = 'burned' LIMIT 1")
run env IOTFLEET_LEDGER="$station_url" "$IOTFLEET" pool release "$scrapped" --reason "module destroyed" --force
expect_rc 4 "a station role's pool release of a burned triplet is refused"
expect_err "needs the ledger's admin role" "the refusal names the role it needs"
state=$(psql "$url" -X -Atc "SELECT state FROM triplets WHERE device_name = '$scrapped'")
[ "$state" = burned ] && ok || fail "the refused release changed the triplet: $state"
if psql "$station_url" -X -qc "UPDATE triplets SET state = 'available', imei = '', iccid = '' WHERE state = 'burned'" >/dev/null 2>err.txt; then
  fail "the station role returned burned triplets to the pool with SQL"
else
  grep -q "needs the ledger's admin role" err.txt && ok || fail "the SQL refusal: $(cat err.txt)"
fi
run "$IOTFLEET" pool release "$scrapped" --reason "module destroyed" --force -o csv
expect_rc 0 "the admin role releases it, from any machine"
expect_out "^$pk,$scrapped,burned," "the released triplet and what it was"
run "$IOTFLEET" pool log --limit 3 -o csv
expect_out "release,ok,.*module destroyed" "the release is in the audit trail"

# --- the audit trail cannot be rewritten, even by the ledger's owner ------------------------
if psql "$url" -X -qc "DELETE FROM events" >/dev/null 2>err.txt; then
  fail "events could be deleted"
else
  grep -q "append-only" err.txt && ok || fail "refusal names the rule: $(cat err.txt)"
fi
finish
