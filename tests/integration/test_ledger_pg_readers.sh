#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The commands that read or fill the ledger, on a PostgreSQL ledger (a server of this test's own)
# exactly as on a file: `dynreg --devices` writes each secret the cloud issues into the shared
# pool (compared with the cloud emulator's own database), a re-run sends nothing; `provision`
# burns; `secrets compare --with-ledger` finds the module whose SN changed and the device the
# cloud re-registered; `diagnose device` shows the ledger's record; `creds mqtt` signs from it;
# `pool export` writes what `pool import` reads back.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
pk=a1PgReader01
ps=PgReaderProductSecret1

pg_start # the ledger: a PostgreSQL server of this test's own
sql() { psql "$url" -X -At -F, -c "$1"; }
secret_for() { printf 'R%031d' "$1"; }
verdict_of() { grep -E "^$1,[^,]*," <<<"$out" | cut -d, -f2; }

# --- dynreg: every issued secret in the shared pool, equal to the cloud's ----------------------
cat >scenario.json <<EOF
{"access_keys": [{"id": "LTAI5tPgReaderKey01", "secret": "pgReaderAccessSecret01"}],
 "products": [
   {"product_key": "$pk", "product_secret": "$ps", "dynamic_register": true,
    "generate": {"count": 40, "names": "sequence", "prefix": "reg-", "digits": 4}}]}
EOF
printf '%s\n' "$ps" >ps.txt
chmod 600 ps.txt
for n in $(seq 1 40); do printf 'reg-%04d\n' "$n"; done >names.txt
cloud_start "$IOT_TMP/cloud" scenario.json --seed 5 --fail-5xx 0.1
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --product-key "$pk" --devices names.txt \
  --product-secret-file ps.txt --qps 1000 --concurrency 4 -o ndjson
expect_rc 0 "dynreg into the shared ledger"
expect_err 'registered 40, skipped 0, failed 0, in doubt 0' "40 registered through 5xx answers"
expect_no_out "\"device_secret\":\"[0-9a-f]{32}\"" "secrets masked"
sql "SELECT device_name, secret FROM triplets WHERE product_key = '$pk' ORDER BY 1" >ledger.csv
python3 - "$IOT_TMP/cloud/cloud.db" "$pk" ledger.csv >cmp.txt 2>&1 <<'PY'
import csv, sqlite3, sys
cloud = dict(sqlite3.connect(sys.argv[1]).execute(
    "SELECT device_name, device_secret FROM devices WHERE product_key = ?", (sys.argv[2],)))
ledger = dict(csv.reader(open(sys.argv[3])))
bad = [dn for dn in cloud if ledger.get(dn) != cloud[dn]]
print(f"{len(ledger)} in the ledger, {len(bad)} differ from the cloud: {bad[:5]}")
sys.exit(0 if len(ledger) == 40 and not bad else 1)
PY
[ $? = 0 ] && ok || fail "the ledger holds the cloud's secrets: $(cat cmp.txt)"
issued=$(sql "SELECT count(*) FROM registrations WHERE product_key = '$pk' AND status = 'issued'")
[ "$issued" = 40 ] && ok || fail "40 issued registrations, not $issued"
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --product-key "$pk" --devices names.txt \
  --product-secret-file ps.txt -o csv
expect_rc 0 "the re-run"
[ "$(grep -c ',skipped,' <<<"$out")" = 40 ] && ok || fail "40 skipped: $out"

# --- provision, then secrets compare --with-ledger ----------------------------------------------
sim_start "$IOT_TMP/line" --count 3 --module luat --urc-rate 0
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for i in 0 1 2; do echo "$pk,${sim_ids[$i]},$(secret_for $((200 + i)))"; done
} >pool.csv
run "$IOTFLEET" pool import pool.csv
expect_rc 0 "pool import"
run "$IOTFLEET" provision --port "${sim_ports[0]}" --port "${sim_ports[1]}" --port "${sim_ports[2]}" \
  -m luat --layout secret -o ndjson
expect_rc 0 "provision on the shared ledger"
{
  echo "product_key,device_name,device_secret,status,iot_id"
  echo "$pk,${sim_ids[0]},$(secret_for 200),ONLINE,l0"
  echo "$pk,${sim_ids[1]},$(secret_for 299),ONLINE,l1"
  echo "$pk,${sim_ids[2]},$(secret_for 202),ONLINE,l2"
} >line.csv
run "$IOTFLEET" module at --port "${sim_ports[2]}" "AT+WISN=\"$(secret_for 222)\""
expect_rc 0 "SN of module 2 overwritten"
run "$IOTFLEET" secrets compare --snapshot line.csv --port "${sim_ports[0]}" --port "${sim_ports[1]}" \
  --port "${sim_ports[2]}" -m luat --with-ledger -o csv
expect_rc 6 "ledger differences"
expect_no_out "^${sim_ids[0]}," "module 0 matches snapshot and ledger"
[ "$(verdict_of "${sim_ids[1]}")" = ledger-differs ] && ok || fail "module 1 ledger-differs: $out"
[ "$(verdict_of "${sim_ids[2]}")" = module-side ] && ok || fail "module 2 module-side: $out"
expect_no_out "$(secret_for 200)|$(secret_for 222)|$(secret_for 299)" "no secret in the report"

# --- diagnose device and creds mqtt read the shared ledger --------------------------------------
run "$IOTFLEET" diagnose device "${sim_ids[0]}" --port "${sim_ports[0]}" -m luat --no-cloud -o json
expect_rc 0 "diagnose device: a healthy burned module"
expect_err 'source ledger: used — .*burned to IMEI' "the ledger's record"
run "$IOTFLEET" creds mqtt "${sim_ids[0]}" --timestamp 1700000000000 -o csv
expect_rc 0 "creds mqtt from the shared ledger"
expect_out "${sim_ids[0]}&$pk" "the MQTT username"
expect_no_out "$(secret_for 200)" "the secret stays masked"
sim_stop() { kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true; }
sim_stop

# --- pool export writes what pool import reads back ---------------------------------------------
run "$IOTFLEET" pool export -O burned.csv --format csv
expect_rc 0 "pool export -O from the shared ledger"
[ "$(stat -c %a burned.csv)" = 600 ] && ok || fail "the export file is 0600"
grep -q "$(secret_for 201)" burned.csv && ok || fail "the file holds the secrets in full"
run env IOTFLEET_LEDGER="$IOT_TMP/copy.db" "$IOTFLEET" pool import burned.csv -o json
expect_rc 0 "imported into a SQLite ledger"
expect_out '"added": 3' "the three burned triplets"

# --- an unreachable server: every reader says so, the password masked, once -------------------
down='postgresql://st:hunter2@127.0.0.1:1/iotfleet'
run "$IOTFLEET" --ledger "$down" creds mqtt dev01 --product-key "$pk"
expect_rc 4 "creds mqtt: the ledger server is unreachable"
expect_err "^iotfleet: error: ledger postgresql://st:\*\*\*@127.0.0.1:1/iotfleet: cannot reach" "named once, masked"
expect_no_err "hunter2" "no password in the message"
run "$IOTFLEET" --ledger "$down" diagnose device dev01 --no-cloud
expect_rc 2 "diagnose device with nothing it could use"
expect_err "ledger failed: ledger postgresql://st:\*\*\*@127.0.0.1:1/iotfleet: cannot reach" "says the ledger failed, and why"
expect_no_err "hunter2" "no password in diagnose's message"
finish
