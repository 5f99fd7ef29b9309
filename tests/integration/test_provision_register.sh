#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# provision --register: 8 simulated fixtures register each module's IMEI on the fly with
# one-type-one-secret dynamic registration (iotfleet-sim cloud, losing some answers) and burn the
# DeviceSecret it returns. After the run (Python's sqlite3 on both databases, the modules' NVM
# files): each module holds exactly the secret the ledger and the cloud hold; the ProductSecret is
# in no module; a module whose IMEI is not in the cloud and one already active are refused with
# their fix; a re-run registers nothing; --loop registers the modules operators swap in.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1ProvReg01
ps=ProvRegProductSecret1
imei() { # imei N: a Luhn-valid IMEI 86…N…c
  python3 -c '
import sys
body = "86%012d" % int(sys.argv[1])
total = sum(int(c) if i % 2 == 0 else sum(divmod(2 * int(c), 10)) for i, c in enumerate(body))
print(body + str(-total % 10), end="")' "$1"
}
check_cloud() { # check_cloud LABEL NAMES_FILE
  if python3 "$here/register_check.py" check "$IOTFLEET_LEDGER" "$IOT_TMP/cloud/cloud.db" "$pk" \
    "$2" --all-issued >"$IOT_TMP/.check" 2>&1; then ok; else fail "$1: $(cat "$IOT_TMP/.check")"; fi
}
count_events() { grep -c "\"event\":\"$1\"" <<<"$out" || true; }
registrations() {
  python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM registrations').fetchone()[0])" "$IOTFLEET_LEDGER"
}

# Fixtures 1-6: pre-registered in the cloud; 7: not in the cloud (6100); 8: already active (6289).
# Fixtures 9-12 of the --loop part: modules swapped in later, pre-registered too.
{
  printf '{"access_keys": [{"id": "LTAI5tProvRegKey1", "secret": "provRegAccessSecret1"}],\n'
  printf ' "products": [{"product_key": "%s", "product_secret": "%s", "dynamic_register": true,\n' "$pk" "$ps"
  printf '   "devices": [{"name": "%s", "status": "ONLINE"}' "$(imei 8)"
  for n in 1 2 3 4 5 6 11 12 13 14; do printf ', {"name": "%s"}' "$(imei "$n")"; done
  printf ']}]}\n'
} >scenario.json
printf '%s\n' "$ps" >ps.txt
chmod 600 ps.txt
for n in 1 2 3 4 5 6; do imei "$n"; echo; done >burned.txt
cloud_start "$IOT_TMP/cloud" scenario.json --seed 3 --truncate 0.1 --reset 0.05 --fail-5xx 0.05

imeis=()
for n in $(seq 1 8); do imeis+=(--imei "$(imei "$n")"); done
sim_start "$IOT_TMP/line" --count 8 --module quectel --seed 4 "${imeis[@]}" --control "$IOT_TMP/control"
ports=()
for p in "${sim_ports[@]}"; do ports+=(--port "$p"); done
prov=("$IOTFLEET" provision "${ports[@]}" -m quectel --register --product-key "$pk"
  --endpoint "$cloud_url" --product-secret-file ps.txt)

run "${prov[@]}" --dry-run -o csv
expect_rc 0 "dry run"
expect_out "register,POST $cloud_url/auth/register/device" "the dry run says it would register"
[ "$(registrations)" = 0 ] && ok || fail "the dry run registered nothing"

run "$IOTFLEET" provision "${ports[@]}" -m quectel --register --product-key "$pk" --endpoint "$cloud_url"
expect_rc 2 "--register without a ProductSecret"
expect_err 'product-secret-file' "names the ways to give it"

run "${prov[@]}" -o ndjson
expect_rc 5 "two modules refused"
[ "$(count_events burned)" = 6 ] && ok || fail "6 burned: $out"
[ "$(count_events refused)" = 2 ] && ok || fail "2 refused: $out"
expect_out "\"imei\":\"$(imei 7)\".*6100.*devices register" "not in the cloud: 6100 with the fix"
expect_out "\"imei\":\"$(imei 8)\".*6289.*devices reset" "already active: 6289 with the fix"
expect_no_out '"device_secret":"[0-9a-f]{32}"' "secrets masked"
expect_out '"event":"summary".*"pool_available":0' "registered rows counted into the pool"
check_ledger "after --register" "$IOT_TMP/line/state"
check_cloud "modules, ledger and cloud agree" burned.txt
ps_hex=$(printf '%s' "$ps" | od -An -tx1 | tr -d ' \n')
if grep -rqiE "$ps|$ps_hex" "$IOT_TMP/line/state"; then fail "the ProductSecret reached a module"; else ok; fi

before=$(registrations)
run "${prov[@]}" -o ndjson
[ "$(count_events already-provisioned)" = 6 ] && ok || fail "re-run: 6 already provisioned: $out"
[ "$(registrations)" = "$((before + 2))" ] && ok || fail "re-run registered only the two refused again"

# --- --loop: modules swapped in are registered and burned as they arrive ------------------------
"${prov[@]}" --loop --poll 100ms -o ndjson >loop.ndjson 2>loop.err &
loop_pid=$!
iot_cleanup_hooks+=("kill $loop_pid 2>/dev/null")
wait_burned() { # wait_burned COUNT LABEL: up to 20 s
  local i
  for i in $(seq 200); do
    if [ "$(grep -c '"event":"burned"' loop.ndjson)" -ge "$1" ]; then ok; return 0; fi
    sleep 0.1
  done
  fail "$2: fewer than $1 burned after 20 s: $(cat loop.ndjson loop.err)"
}
sleep 1
for f in 0 1 2 3; do echo "swap $f $(imei $((f + 11)))" >"$IOT_TMP/control"; done
wait_burned 4 "four swapped-in modules registered and burned"
kill -INT "$loop_pid"
set +e
wait "$loop_pid"
status=$?
set -e
[ "$status" -eq 130 ] && ok || fail "--loop ends with 130 on Ctrl-C, got $status"
for n in 11 12 13 14; do imei "$n"; echo; done >>burned.txt
check_ledger "after --loop" "$IOT_TMP/line/state"
check_cloud "after --loop" burned.txt
finish
