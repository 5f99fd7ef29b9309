#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# diagnose device DN: one planted cause per scenario, and the diagnosis must name it first.
#   - the device log (iotfleet-sim fleetlog): a shared identity, keepalive 300 s behind NAT, flaky
#     signal, firmware that disconnects; a device that only rebooted is not called a duplicate;
#   - the cloud (iotfleet-sim cloud): a ProductKey typed in another letter case, a disabled
#     device, an unknown one; a healthy device has no cause;
#   - the module (iotfleet-sim modules): the IMEI never written, a label IMEI that differs, a
#     secret changed on the module after a healthy-time snapshot.
# Every run says which sources it used and which were missing.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1DiagDev01

first_cause() { # first_cause: the first finding's cause in $out (JSON)
  python3 -c 'import json,sys; f=json.load(sys.stdin); print(f[0]["cause"] if f else "")' <<<"$out"
}
expect_first() { # expect_first CAUSE LABEL
  local got
  got=$(first_cause)
  if [ "$got" = "$1" ]; then ok; else fail "$2: first cause '$got', want '$1': $out $err"; fi
}
truth_device() { # truth_device PROBLEM: the first device planted with it
  awk -F, -v p="$1" '$2 == p { print $1; exit }' log.csv.truth.csv
}

# --- the device log ---------------------------------------------------------------------------
"$IOTFLEET_SIM" fleetlog --devices 2000 --days 7 --seed 5 --product-key "$pk" \
  --plant duplicate=3,nat-keepalive=3,flaky=3,disconnect=3,reboot=3 -O log.csv
head -1 log.csv.truth.csv | grep -q '^device_name,problem' && ok || fail "truth file header"
declare -A want=([duplicate]=duplicate-identity [nat-keepalive]=keepalive-too-long
  [flaky]=frequent-connection-resets [disconnect]=frequent-device-disconnect)
for problem in duplicate nat-keepalive flaky disconnect; do
  dn=$(truth_device "$problem")
  run "$IOTFLEET" diagnose device "$dn" --log log.csv --no-cloud --no-ledger -o json
  expect_rc 6 "$problem: a cause found"
  expect_first "${want[$problem]}" "$problem ($dn)"
done
expect_err 'source cloud: not used — --no-cloud' "names the sources not used"
expect_err 'source module: not used — give --port' "says how to add the module"
expect_err 'source log: used — log.csv: [0-9]+ records' "counts the device's records"
dn=$(truth_device reboot)
run "$IOTFLEET" diagnose device "$dn" --log log.csv --no-cloud --no-ledger -o json
if grep -q duplicate-identity <<<"$out"; then fail "a reboot was called a duplicate: $out"; else ok; fi
healthy=$(python3 - <<'PY'
import csv
planted = {r["device_name"] for r in csv.DictReader(open("log.csv.truth.csv"))}
for row in csv.DictReader(open("log.csv")):
    dn = row.get("DeviceName") or row.get("deviceName")
    if dn and dn not in planted:
        print(dn)
        break
PY
)
run "$IOTFLEET" diagnose device "$healthy" --log log.csv --no-cloud --no-ledger -o json
expect_rc 0 "a healthy device: no cause"
run "$IOTFLEET" diagnose device "$healthy" --no-cloud --no-ledger
expect_rc 2 "no source at all"
expect_err 'no source could be used.*--log FILE' "says which sources to give"
run "$IOTFLEET" diagnose device "$healthy" --log missing.csv --no-cloud
expect_rc 2 "a missing log"

# --- the cloud --------------------------------------------------------------------------------
cat >scenario.json <<EOF
{"access_keys": [{"id": "LTAI5tDiagKey001", "secret": "diagAccessSecret001"}],
 "products": [{"product_key": "$pk", "devices": [
   {"name": "dev-ok", "status": "ONLINE"}, {"name": "dev-off", "status": "DISABLE"},
   {"name": "dev-new"}]}]}
EOF
cloud_start "$IOT_TMP/cloud" scenario.json --seed 2
printf 'diagAccessSecret001' >ak.txt
chmod 600 ak.txt
cloud=(--endpoint "$cloud_url" --access-key-id LTAI5tDiagKey001 --access-key-secret-file ak.txt)
run "$IOTFLEET" "${cloud[@]}" diagnose device dev-ok --product-key A1DIAGDEV01 -o json
expect_rc 6 "ProductKey letter case"
expect_first product-key-case "ProductKey in another case"
expect_out "$pk" "the fix names the real ProductKey"
run "$IOTFLEET" "${cloud[@]}" diagnose device dev-off --product-key "$pk" -o json
expect_first device-disabled "a disabled device"
run "$IOTFLEET" "${cloud[@]}" diagnose device dev-nope --product-key "$pk" -o json
expect_first device-not-found "an unknown device"
run "$IOTFLEET" "${cloud[@]}" diagnose device dev-new --product-key "$pk" -o json
expect_first never-activated "a device that never connected"
run "$IOTFLEET" "${cloud[@]}" diagnose device dev-ok --product-key "$pk" -o json
expect_rc 0 "a healthy online device"
expect_err 'source cloud: used — status ONLINE' "the cloud's record"
run "$IOTFLEET" --endpoint "$cloud_url" diagnose device dev-ok --product-key "$pk" --log log.csv
expect_err 'source cloud: not used — no Alibaba Cloud AccessKey' "no AccessKey: the cloud is skipped, said"
cloud_stop

# --- the module --------------------------------------------------------------------------------
sim_start "$IOT_TMP/bad" --count 1 --module luat --placeholder-imei
bad_port=${sim_ports[0]}
sim_start "$IOT_TMP/line" --count 2 --module luat --seed 7 --control "$IOT_TMP/control2"
port0=${sim_ports[0]}
imei0=${sim_ids[0]}
imei1=${sim_ids[1]}
{
  echo "ProductKey,DeviceName,DeviceSecret"
  echo "$pk,$imei0,0123456789abcdef0123456789abcdef"
  echo "$pk,$imei1,00112233445566778899aabbccddeeff"
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null
run "$IOTFLEET" provision --port "$port0" --port "${sim_ports[1]}" -m luat
expect_rc 0 "burn the two modules"
cp pool.csv snapshot.csv # the healthy-time snapshot: what the cloud held

run "$IOTFLEET" diagnose device 352099001761481 --port "$bad_port" -m luat --no-cloud -o json
expect_rc 6 "the placeholder IMEI"
expect_first imei-not-written "IMEI never written"
run "$IOTFLEET" diagnose device "$imei0" --port "$port0" -m luat --no-cloud --snapshot snapshot.csv -o json
expect_rc 0 "a healthy burned module: no cause"
expect_err 'source ledger: used — .*burned to IMEI' "the ledger's record"
run "$IOTFLEET" diagnose device "$imei0" --port "$port0" -m luat --no-cloud --label-imei "$imei1" -o json
expect_first label-imei-differs "the label says another IMEI"
# The simulator acknowledges the control command on its stderr once the SN is changed.
acks=$(grep -c '^control: set-sn 0$' "$IOT_TMP/line/sim.err" || true)
echo "set-sn 0 ffffffffffffffffffffffffffffffff" >"$IOT_TMP/control2"
deadline=$((SECONDS + 30))
until [ "$(grep -c '^control: set-sn 0$' "$IOT_TMP/line/sim.err" || true)" -gt "$acks" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    fail "set-sn not acknowledged in 30 s: $(cat "$IOT_TMP/line/sim.err")"
    break
  fi
  sleep 0.05
done
run "$IOTFLEET" diagnose device "$imei0" --port "$port0" -m luat --no-cloud --snapshot snapshot.csv -o json
expect_rc 6 "the module's secret changed"
expect_first secret-changed-on-module "module-side secret change"
expect_no_out 'ffffffffffffffffffffffffffffffff|0123456789abcdef0123456789abcdef' "no secret printed"
finish
