#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# secrets compare: a snapshot against a devices file with planted differences (verdicts, exit 6,
# exit 0 when all match, no secret printed without --show-secrets, bad input named by line),
# against simulated Luat modules on ptys (--port: SN set with `module at`), and against the factory
# ledger filled by `pool import` + `provision` (--ledger), and the seed's whole story against
# `iotfleet-sim cloud` (--cloud): export while healthy, a device re-registered and one deleted on
# the cloud side, then compare.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1B2c3D4e5F
secret_for() { printf 'S%031d' "$1"; } # 32 characters, unique per n
verdict_of() { grep -E "^$1,[^,]*," <<<"$out" | cut -d, -f2; } # verdict_of DN (in -o csv $out)
no_secret_anywhere() { # no_secret_anywhere LABEL N...: none of secret_for N in stdout or stderr
  local label=$1 n
  shift
  for n in "$@"; do
    if grep -q "$(secret_for "$n")" <<<"$out$err"; then fail "$label: secret $n printed"; else ok; fi
  done
}

# --- files ------------------------------------------------------------------------------------
{
  echo "product_key,device_name,device_secret,status,iot_id"
  echo "$pk,dev0001,$(secret_for 1),ONLINE,iot1"
  echo "$pk,dev0002,$(secret_for 2),OFFLINE,iot2"
  echo "$pk,dev0003,$(secret_for 3),UNACTIVE,iot3"
  echo "$pk,dev0004,$(secret_for 4),ONLINE,iot4"
  echo "$pk,dev0005,$(secret_for 5),ONLINE,iot5"
} >snap.csv
{
  echo "device_name,device_secret"
  echo "dev0004,$(secret_for 4)"
  echo "dev0002,$(secret_for 22)" # the module's secret changed
  echo "dev0001,$(secret_for 1)"
  echo "dev0009,$(secret_for 9)" # not in the snapshot
  echo "dev0003,$(secret_for 3)" # never connected: a note
  echo "dev0005"                 # no secret: presence only
} >devices.csv

run "$IOTFLEET" secrets compare --snapshot snap.csv --devices devices.csv -o csv
expect_rc 6 "planted differences"
[ "$(verdict_of dev0002)" = module-side ] && ok || fail "dev0002 module-side: $out"
[ "$(verdict_of dev0009)" = not-in-snapshot ] && ok || fail "dev0009 not-in-snapshot: $out"
[ "$(verdict_of dev0003)" = unactivated ] && ok || fail "dev0003 unactivated: $out"
expect_no_out '^dev000[145],' "matching devices are not listed"
[ "$(wc -l <<<"$out")" = 4 ] && ok || fail "header + 3 rows: $out"
expect_out '^dev0002,module-side,devices.csv:3,OFFLINE,[0-9a-f]{8},[0-9a-f]{8},,,.*re-burn' \
  "module-side row: source line, status, fingerprints, what to do"
expect_err '6 devices checked against snap.csv \(5 devices, csv, product a1B2c3D4e5F\): 3 match, 1 module-side, 1 not-in-snapshot, 1 unactivated; 2 differ' \
  "count summary on stderr"
expect_err 'error: 2 of 6 devices differ' "the exit reason"
no_secret_anywhere "without --show-secrets" 1 2 3 4 9 22

run "$IOTFLEET" secrets compare --snapshot snap.csv --devices devices.csv -o json --show-secrets
expect_rc 6 "--show-secrets"
expect_out "\"module_secret\": \"$(secret_for 22)\"" "the module's secret in full"
expect_out "\"snapshot_secret\": \"$(secret_for 2)\"" "the snapshot's secret in full"

# The same snapshot as `secrets export --format json` writes it.
{
  echo "["
  sed 1d snap.csv | awk -F, '{ printf "%s{\"product_key\":\"%s\",\"device_name\":\"%s\",\"device_secret\":\"%s\",\"status\":\"%s\",\"iot_id\":\"%s\"}", (NR > 1 ? ",\n" : ""), $1, $2, $3, $4, $5 } END { print "" }'
  echo "]"
} >snap.json
run "$IOTFLEET" secrets compare --snapshot snap.json --devices devices.csv -o csv
expect_rc 6 "json snapshot"
[ "$(verdict_of dev0002)" = module-side ] && ok || fail "json: dev0002 module-side: $out"
expect_err '\(5 devices, json, ' "json format detected"

# All match: exit 0 and nothing listed (the console's batch CSV as the snapshot).
{ echo "ProductKey,DeviceName,DeviceSecret"; sed 1d snap.csv | cut -d, -f1-3; } >console.csv
printf 'device_name,device_secret\ndev0001,%s\ndev0004,%s\n' "$(secret_for 1)" "$(secret_for 4)" >good.csv
run "$IOTFLEET" secrets compare --snapshot console.csv --devices good.csv -o csv
expect_rc 0 "all match"
[ "$out" = "device_name,verdict,source,status,module_fp,snapshot_fp,cloud_fp,ledger_fp,explanation,action" ] &&
  ok || fail "all match: only the header: $out"
expect_err '2 match; 0 differ' "summary when all match"
run "$IOTFLEET" secrets compare --snapshot console.csv --devices good.csv --all -o csv
expect_out '^dev0001,match,good.csv:2,' "--all lists the matches"

# A list of DeviceNames from stdin: presence and status.
run bash -c "printf 'dev0001\ndev0007\n' | '$IOTFLEET' secrets compare --snapshot snap.csv --devices - -o csv"
expect_rc 6 "names from stdin"
expect_out '^dev0007,not-in-snapshot,stdin:2,' "unknown name"

# Bad input: exit 2 naming the file, the line and the fix.
{ head -3 snap.csv; echo "$pk,dev0006,$(secret_for 6)=x,ONLINE,iot6"; } >bad.csv
run "$IOTFLEET" secrets compare --snapshot bad.csv --devices devices.csv
expect_rc 2 "a bad snapshot row"
expect_err 'snapshot bad.csv: line 4: DeviceSecret contains' "file and line named"
no_secret_anywhere "bad row" 6
printf 'pk;dn;ds\nx;y;z\n' >notcsv.txt
run "$IOTFLEET" secrets compare --snapshot notcsv.txt --devices devices.csv
expect_rc 2 "not a snapshot"
expect_err 'line 1: the first line is not one of the formats: .*secrets export -O FILE' "the fix"
printf 'device_name,device_secret\ndev0001,S000…0001\n' >masked.csv
run "$IOTFLEET" secrets compare --snapshot snap.csv --devices masked.csv
expect_rc 2 "a masked devices file"
expect_err 'masked.csv: line 2: .*masked.*--show-secrets' "masked secrets named"
run "$IOTFLEET" secrets compare --snapshot snap.csv
expect_rc 2 "no source"
expect_err 'at least one of --port' "says what to give"

# --- modules on ports: Luat, SN = DeviceSecret, DeviceName = IMEI -------------------------------
sim_start "$IOT_TMP/luat" --count 3 --module luat --urc-rate 0
imei0=${sim_ids[0]} imei1=${sim_ids[1]} imei2=${sim_ids[2]}
{
  echo "product_key,device_name,device_secret,status,iot_id"
  echo "$pk,$imei0,$(secret_for 100),ONLINE,i0"
  echo "$pk,$imei1,$(secret_for 101),ONLINE,i1"
  echo "$pk,$imei2,$(secret_for 102),OFFLINE,i2"
} >modules.csv
run "$IOTFLEET" module at --port "${sim_ports[0]}" "AT+WISN=\"$(secret_for 100)\""
expect_rc 0 "SN of module 0 written"
run "$IOTFLEET" module at --port "${sim_ports[1]}" "AT+WISN=\"$(secret_for 111)\""
expect_rc 0 "SN of module 1 written (another secret)"
run "$IOTFLEET" secrets compare --snapshot modules.csv --port "${sim_ports[0]}" -m luat -o csv
expect_rc 0 "module 0 matches"
expect_err '1 device checked.*1 match' "one module counted"
run "$IOTFLEET" secrets compare --snapshot modules.csv --port "${sim_ports[0]}" \
  --port "${sim_ports[1]}" --port "${sim_ports[2]}" -m luat --layout secret --all -o csv
expect_rc 6 "module 1 differs"
[ "$(verdict_of "$imei0")" = match ] && ok || fail "module 0 match: $out"
[ "$(verdict_of "$imei1")" = module-side ] && ok || fail "module 1 module-side: $out"
[ "$(verdict_of "$imei2")" = no-secret-on-module ] && ok || fail "module 2 holds no SN: $out"
expect_out "^$imei1,module-side,${sim_ports[1]//\//\\/}," "the port is the source"
no_secret_anywhere "--port" 100 101 102 111
sim_stop() { kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true; }
sim_stop

# --- the ledger: pool import + provision, then compare -----------------------------------------
sim_start "$IOT_TMP/line" --count 3 --module luat --urc-rate 0
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for i in 0 1 2; do echo "$pk,${sim_ids[$i]},$(secret_for $((200 + i)))"; done
} >pool.csv
run "$IOTFLEET" pool import pool.csv
expect_rc 0 "pool import"
run "$IOTFLEET" provision --port "${sim_ports[0]}" --port "${sim_ports[1]}" --port "${sim_ports[2]}" \
  -m luat --layout secret -o ndjson
expect_rc 0 "provision"
# The cloud's snapshot: module 1's device has another secret there (re-registered after burning).
{
  echo "product_key,device_name,device_secret,status,iot_id"
  echo "$pk,${sim_ids[0]},$(secret_for 200),ONLINE,l0"
  echo "$pk,${sim_ids[1]},$(secret_for 299),ONLINE,l1"
  echo "$pk,${sim_ids[2]},$(secret_for 202),ONLINE,l2"
} >line.csv
# Module 2's SN changes after the burn.
run "$IOTFLEET" module at --port "${sim_ports[2]}" "AT+WISN=\"$(secret_for 222)\""
expect_rc 0 "SN of module 2 overwritten"
run "$IOTFLEET" secrets compare --snapshot line.csv --port "${sim_ports[0]}" --port "${sim_ports[1]}" \
  --port "${sim_ports[2]}" -m luat --with-ledger -o csv
expect_rc 6 "ledger differences"
expect_no_out "^${sim_ids[0]}," "module 0 matches snapshot and ledger"
[ "$(verdict_of "${sim_ids[1]}")" = ledger-differs ] && ok || fail "module 1 ledger-differs: $out"
expect_out "^${sim_ids[1]},ledger-differs,.*holds the secret the factory burned" "explained"
[ "$(verdict_of "${sim_ids[2]}")" = module-side ] && ok || fail "module 2 module-side: $out"
expect_out "^${sim_ids[2]},module-side,.*changed after burning" "the ledger confirms the snapshot"
no_secret_anywhere "--with-ledger" 200 201 202 222 299
# The same from a list of names (no module reading): the ledger against the snapshot.
printf '%s\n' "${sim_ids[@]}" >names.txt
run "$IOTFLEET" --ledger "$IOTFLEET_LEDGER" secrets compare --snapshot line.csv --devices names.txt --with-ledger -o csv
expect_rc 6 "names + ledger"
[ "$(verdict_of "${sim_ids[1]}")" = ledger-differs ] && ok || fail "names: ledger-differs: $out"
[ "$(wc -l <<<"$out")" = 2 ] && ok || fail "names: one difference: $out"
run "$IOTFLEET" secrets compare --snapshot line.csv --with-ledger --ledger "$IOT_TMP/none.db"
expect_rc 2 "a ledger that does not exist"
[ -e "$IOT_TMP/none.db" ] && fail "compare created a ledger" || ok
sim_stop

# --- the live cloud: iotfleet-sim cloud -------------------------------------------------------
cpk=a1CompareP1
cat >scenario.json <<JSON
{"region": "cn-shanghai",
 "access_keys": [{"id": "LTAI5tCompareTest001", "secret": "compareTestSecret0000000000001"}],
 "products": [{"product_key": "$cpk", "name": "compare test",
   "generate": {"count": 250, "names": "sequence", "prefix": "dev-", "digits": 4,
                "status": {"ONLINE": 80, "OFFLINE": 20}}}]}
JSON
printf '%s' compareTestSecret0000000000001 >ak.secret
chmod 600 ak.secret
export ALIBABA_CLOUD_REGION_ID=cn-shanghai
exchange_log_args
"$IOTFLEET_SIM" cloud --state-dir "$IOT_TMP/cloud" --scenario scenario.json --seed 3 \
  "${exchange_args[@]}" >cloud.url 2>cloud.err &
cloud_pid=$!
iot_cleanup_hooks+=("kill $cloud_pid 2>/dev/null")
wait_ready "$cloud_pid" cloud.err "the cloud emulator"
cloud=(--endpoint "$(head -1 cloud.url)" --access-key-id LTAI5tCompareTest001 --access-key-secret-file ak.secret)
run "$IOTFLEET" "${cloud[@]}" secrets export --product-key $cpk -O healthy.csv
expect_rc 0 "the healthy-time snapshot"
run "$IOTFLEET" "${cloud[@]}" secrets compare --snapshot healthy.csv --cloud -o csv
expect_rc 0 "right after the export the cloud matches"
expect_err '250 devices checked .*: 250 match; 0 differ' "every device asked"
# What the modules hold: the secrets of the healthy time.
cut -d, -f2,3 healthy.csv >modules.csv
run "$IOTFLEET" "${cloud[@]}" devices delete dev-0003 dev-0007 --product-key $cpk --yes
expect_rc 0 "two devices deleted on the cloud side"
run "$IOTFLEET" "${cloud[@]}" devices register dev-0003 --product-key $cpk
expect_rc 0 "dev-0003 registered again (a new secret)"
run "$IOTFLEET" "${cloud[@]}" secrets compare --snapshot healthy.csv --devices modules.csv --cloud -o csv
expect_rc 6 "cloud-side differences"
[ "$(verdict_of dev-0003)" = cloud-side ] && ok || fail "dev-0003 cloud-side: $out"
[ "$(verdict_of dev-0007)" = not-in-cloud ] && ok || fail "dev-0007 not-in-cloud: $out"
expect_out '^dev-0003,cloud-side,modules.csv:[0-9]+,UNACTIVE,([0-9a-f]{8}),\1,[0-9a-f]{8},,.*re-register' \
  "module = snapshot, the live cloud differs"
[ "$(wc -l <<<"$out")" = 3 ] && ok || fail "only the two: $out"
if grep -qF "$(grep '^dev-0003,' modules.csv | cut -d, -f2)" <<<"$out$err"; then
  fail "a secret was printed"
else
  ok
fi
kill "$cloud_pid" && wait "$cloud_pid" 2>/dev/null || true

finish
