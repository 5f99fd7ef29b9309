#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# devices recreate (seed FAQ §3.3) against iotfleet-sim cloud: --dry-run reads and changes
# nothing; --yes is required; an ONLINE device is refused; the device comes back with its
# nickname, tags and static groups (and its dynamic group by its tags) under a new IotId and
# secret; the ledger's burned triplet becomes bound with the new secret and `provision` burns it
# into the simulated module, whose secret a real mosquitto (the test broker) then accepts: the
# whole repair loop. A recreation killed (SIGKILL) between DeleteDevice and RegisterDevice is
# journaled at 'deleted' and `--resume` finishes it; a second start of it is refused.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1Recreate1
s1=RecreateSecretOne00000000000001a
s2=RecreateSecretTwo00000000000002b

cat >scenario.json <<JSON
{"access_keys": [{"id": "LTAI5tRecreate01", "secret": "recreateAccessSecret1"}],
 "groups": [{"name": "factory-a", "description": "line A"},
            {"name": "north", "dynamic_tag": "site=north"}],
 "products": [{"product_key": "$pk", "devices": [
   {"name": "dev-r1", "status": "OFFLINE", "secret": "$s1", "nickname": "Pump_01",
    "tags": {"site": "north", "line": "L2"}, "groups": ["factory-a"]},
   {"name": "dev-r2", "status": "OFFLINE", "secret": "$s2", "tags": {"site": "north"}},
   {"name": "dev-on", "status": "ONLINE"}]}]}
JSON
cloud_start "$IOT_TMP/cloud" scenario.json --seed 9 --latency-ms 250
printf 'recreateAccessSecret1' >ak.txt
chmod 600 ak.txt
cloud=(--endpoint "$cloud_url" --access-key-id LTAI5tRecreate01 --access-key-secret-file ak.txt)
cli() { "$IOTFLEET" "${cloud[@]}" "$@" --product-key "$pk"; }
run_cli() { run cli "$@"; }
db=$IOT_TMP/cloud/cloud.db
iot_id_of() { python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("select iot_id from devices where device_name=?", (sys.argv[2],)).fetchone(); print(r[0] if r else "")' "$db" "$1"; }
jfield() { jq -r "$1" <<<"$out"; }

# --- a module burned with dev-r1's triplet, and the broker that knows its secret -----------------
printf 'ProductKey,DeviceName,DeviceSecret\n%s,dev-r1,%s\n' "$pk" "$s1" >pool.csv
run "$IOTFLEET" pool import pool.csv
expect_rc 0 "pool import"
sim_start "$IOT_TMP/sim" --count 1 --module luat --urc-rate 0
port=${sim_ports[0]}
run "$IOTFLEET" provision --port "$port" -m luat --layout triplet
expect_rc 0 "dev-r1 burned into the module"
mqtt_lab_start "$IOT_TMP/mqtt" "$pk" "dev-r1=$s1" && ok || fail "mosquitto did not start"
probe=(creds probe --port "$port" -m luat --layout triplet --mqtt-endpoint "127.0.0.1:$mqtt_port"
  --ca-file "$mqtt_ca")
run_cli "${probe[@]}"
expect_rc 0 "the module's secret is accepted before"

# --- dry run, --yes, ONLINE ----------------------------------------------------------------------
old1=$(iot_id_of dev-r1)
run_cli -o json devices recreate dev-r1 --dry-run
expect_rc 0 "--dry-run"
[ "$(jfield '.[0].result')" = "would re-create" ] && ok || fail "dry run: $out"
[ "$(jfield '.[0].tags')" = "line=L2, site=north" ] && ok || fail "the tags are read: $out"
[ "$(jfield '.[0].groups')" = "factory-a, north (dynamic)" ] && ok || fail "the groups are read: $out"
[ "$(jfield '.[0].nickname')" = Pump_01 ] && ok || fail "the nickname is read: $out"
[ "$(iot_id_of dev-r1)" = "$old1" ] && ok || fail "a dry run changes nothing"
run_cli devices recreate dev-r1
expect_rc 2 "no --yes"
expect_err 'add --yes' "says what to add"
run_cli devices recreate dev-on --yes
expect_rc 2 "an ONLINE device"
expect_err 'dev-on is ONLINE.*--force' "says why and the way out"
[ -n "$(iot_id_of dev-on)" ] && ok || fail "the ONLINE device was not deleted"

# --- the repair ----------------------------------------------------------------------------------
run_cli -o json --show-secrets devices recreate dev-r1 --yes
expect_rc 0 "dev-r1 re-created"
new1=$(iot_id_of dev-r1)
[ -n "$new1" ] && [ "$new1" != "$old1" ] && ok || fail "a new IotId: $old1 -> $new1"
[ "$(jfield '.[0].new_iot_id')" = "$new1" ] && ok || fail "the new IotId is reported: $out"
secret1=$(jfield '.[0].device_secret')
[ "${#secret1}" -ge 16 ] && [ "$secret1" != "$s1" ] && ok || fail "a new secret: $out"
expect_out 'iotfleet provision --port P' "the next step is named"
run_cli -o json devices show dev-r1
[ "$(jfield .nickname)" = Pump_01 ] && ok || fail "the nickname is back: $out"
[ "$(jfield .tags)" = "line=L2, site=north" ] && ok || fail "the tags are back: $out"
[ "$(jfield .groups)" = "factory-a, north (dynamic)" ] && ok || fail "the groups are back: $out"
[ "$(jfield .status)" = UNACTIVE ] && ok || fail "the re-created device is not activated: $out"
expect_no_out "$secret1" "devices show masks the new secret"
run "$IOTFLEET" -o json pool status
run "$IOTFLEET" -o json pool log --device-name dev-r1
expect_out '"action": "recreate"' "the audit trail has the steps"
expect_no_out "$secret1" "no secret in the audit trail"
expect_no_out "$s1" "not the old one either"

# The module still holds the old secret: the endpoint refuses it once it knows only the new one.
mqtt_lab_set dev-r1 "$secret1"
run_cli "${probe[@]}"
expect_rc 6 "the old secret is refused"
run "$IOTFLEET" provision --port "$port" -m luat --layout triplet
expect_rc 0 "provision burns the new secret (the triplet is bound to the module)"
run_cli "${probe[@]}"
expect_rc 0 "the repaired module's secret is accepted"

# --- killed between DeleteDevice and RegisterDevice, then --resume -------------------------------
old2=$(iot_id_of dev-r2)
"$IOTFLEET" "${cloud[@]}" devices recreate dev-r2 --yes --product-key "$pk" >kill.out 2>kill.err &
victim=$!
# One process polls the emulator's state every 5 ms and kills at the first moment dev-r2 is gone.
python3 - "$db" "$victim" <<'PY' || fail "dev-r2 never disappeared"
import os, signal, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=5)
for _ in range(3000):
    if db.execute("select 1 from devices where device_name='dev-r2'").fetchone() is None:
        os.kill(int(sys.argv[2]), signal.SIGKILL)
        sys.exit(0)
    time.sleep(0.005)
sys.exit(1)
PY
wait "$victim" 2>/dev/null || true
[ "$(iot_id_of dev-r2)" = "" ] && ok || fail "killed after DeleteDevice, before RegisterDevice ($(cat kill.err))"
step=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select step from recreations where device_name=? order by id desc", ("dev-r2",)).fetchone()[0])' "$IOTFLEET_LEDGER")
# The kill lands after the cloud deleted it: journaled at deleted, or still at planned when it
# came before the client recorded the answer (the in-doubt window --resume checks the cloud for).
[ "$step" = deleted ] || [ "$step" = planned ] && ok || fail "journaled unfinished: $step"
run_cli devices recreate dev-r2 --yes
expect_rc 2 "a second start while one is unfinished"
expect_err 'unfinished recreation.*--resume' "names --resume"
run_cli -o json devices recreate --resume
expect_rc 0 "--resume finishes it"
[ "$(jfield '.[0].result')" = "resumed, re-created" ] && ok || fail "resumed: $out"
new2=$(iot_id_of dev-r2)
[ -n "$new2" ] && [ "$new2" != "$old2" ] && ok || fail "dev-r2 exists again: $new2"
run_cli -o json devices show dev-r2
[ "$(jfield .tags)" = "site=north" ] && ok || fail "its tags are back: $out"
[ "$(jfield .groups)" = "north (dynamic)" ] && ok || fail "the dynamic group holds it again: $out"
run_cli devices recreate --resume
expect_rc 0 "nothing left to resume"
expect_err 'nothing unfinished' "said so"

# --- bad input -----------------------------------------------------------------------------------
run_cli devices recreate
expect_rc 2 "no names"
expect_err 'give the DeviceNames' "names what to give"
run_cli devices recreate dev-gone --yes
expect_rc 4 "a device the cloud does not know"
expect_err 'does not exist on the cloud' "named"
run_cli devices recreate dev-r1 --resume --dry-run
expect_rc 2 "--resume with --dry-run"

finish
