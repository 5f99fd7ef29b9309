#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# devices list/show/register/batch-register/delete/reset against iotfleet-sim cloud; the
# batch-register file goes straight into pool import.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?}"
pk=a1DevicesPk
cat >scenario.json <<JSON
{"region": "cn-shanghai",
 "access_keys": [{"id": "LTAI5tDevicesTest001", "secret": "devicesTestSecret0000000000001"}],
 "products": [{"product_key": "$pk", "name": "devices test",
   "devices": [{"name": "862345678901234", "status": "ONLINE", "firmware": "V409"}],
   "generate": {"count": 120, "names": "sequence", "prefix": "gen-", "digits": 4,
                "status": {"ONLINE": 50, "OFFLINE": 50}}}]}
JSON
printf '%s' devicesTestSecret0000000000001 >ak.secret
chmod 600 ak.secret
exchange_log_args
"$IOTFLEET_SIM" cloud --state-dir "$IOT_TMP/cloud" --scenario scenario.json --seed 3 \
  --batch-delay-ms 300 "${exchange_args[@]}" >cloud.url 2>cloud.err &
cloud_pid=$!
iot_cleanup_hooks+=("kill $cloud_pid 2>/dev/null")
wait_ready "$cloud_pid" cloud.err "the cloud emulator"
cli() { "$IOTFLEET" --endpoint "$(head -1 cloud.url)" --region cn-shanghai \
  --access-key-id LTAI5tDevicesTest001 --access-key-secret-file ak.secret "$@"; }
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"

run cli devices list --product-key $pk -o csv
expect_rc 0 "list"
[ "$(tail -n +2 <<<"$out" | wc -l)" = 121 ] && ok || fail "121 devices listed: $out"
expect_no_out "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select device_secret from devices limit 1").fetchone()[0])' "$IOT_TMP/cloud/cloud.db")" \
  "secrets masked in list"
run cli devices list --product-key $pk --status OFFLINE --limit 7 -o csv
[ "$(tail -n +2 <<<"$out" | grep -c ',OFFLINE,')" = 7 ] && ok || fail "--status --limit: $out"

run cli devices show 862345678901234 --product-key $pk -o json
expect_rc 0 "show"
expect_out '"status": "ONLINE"' "status"
expect_out '"firmware": "V409"' "firmware"
run cli devices show nosuchdevice --product-key $pk
expect_rc 4 "show an unknown device"
expect_err 'iot.device.NotExistedDevice' "the cloud's code"

run cli devices register reg-0001 reg-0002 --product-key $pk -O reg.csv -o csv
expect_rc 0 "register two"
[ "$(grep -c '^a1DevicesPk,reg-000[12],' reg.csv)" = 2 ] && ok || fail "reg.csv: $(cat reg.csv)"
expect_no_err 'deprecated' "devices register is not the old name of dynreg: no warning"
run cli register --help
expect_err "'iotfleet register' is deprecated.*'iotfleet dynreg'" "the old top-level name warns"
ls -l reg.csv | grep -q '^-rw-------' && ok || fail "reg.csv not 0600"
run cli devices register reg-0001 reg-0003 --product-key $pk -o csv
expect_rc 5 "one exists already"
expect_err 'reg-0001: .*AlreadyExistedDeviceName' "named with the cloud's code"
expect_out '^a1DevicesPk,reg-0003,' "the other one registered"

seq -f 'batch-%04g' 1 250 >names.txt
run cli devices batch-register --product-key $pk --devices names.txt -O batch.csv -o json
expect_rc 0 "batch-register"
expect_out '"registered": 250' "250 registered"
head -1 batch.csv | grep -qx 'ProductKey,DeviceName,DeviceSecret' && ok || fail "console header"
run "$IOTFLEET" pool import batch.csv -o json
expect_rc 0 "the batch file goes into the pool"
expect_out '"added": 250' "250 triplets in the pool"
python3 - "$IOT_TMP/cloud/cloud.db" batch.csv <<'PY' && ok || fail "batch.csv secrets are the cloud's"
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cloud = dict(db.execute("select device_name, device_secret from devices where device_name like 'batch-%'"))
rows = list(csv.DictReader(open(sys.argv[2])))
sys.exit(0 if len(rows) == 250 and all(cloud[r["DeviceName"]] == r["DeviceSecret"] for r in rows) else 1)
PY
run cli devices batch-register --product-key $pk --devices names.txt -O again.csv
expect_rc 4 "the same names again"
expect_err 'CHECK_FAILED' "check failed"
[ ! -e again.csv ] && ok || fail "a failed batch left a file"
printf 'ok-name\nbad name\n' >bad.txt
run cli devices batch-register --product-key $pk --devices bad.txt -O x.csv
expect_rc 2 "a bad name in the file"
expect_err 'bad.txt:2: ' "named by line"

# Every local precondition before the first cloud write (#13.1): an -O that cannot be written
# changes nothing in the cloud, and the same names still register afterwards.
cloud_devices() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from devices").fetchone()[0])' "$IOT_TMP/cloud/cloud.db"; }
before=$(cloud_devices)
printf 'pre-0001\npre-0002\n' >pre.txt
run cli devices batch-register --product-key $pk --devices pre.txt -O nodir/t.csv
expect_rc 1 "batch-register into a missing directory"
expect_err "nodir" "the path is named"
run cli devices register pre-0003 --product-key $pk -O nodir/t2.csv
expect_rc 1 "register into a missing directory"
[ "$(cloud_devices)" = "$before" ] && ok || fail "devices were created: $before -> $(cloud_devices)"
run cli devices batch-register --product-key $pk --devices pre.txt -O pre.csv
expect_rc 0 "the same names register once the path is right"
# Names on the command line and from stdin are the same as a list file.
run cli devices register --product-key $pk --device-name pre-0004 pre-0005 -o csv
expect_rc 0 "positional names and --device-name together"
expect_out '^a1DevicesPk,pre-0004,' "--device-name"
expect_out '^a1DevicesPk,pre-0005,' "positional"
printf 'pre-0006\n' >stdin.txt
run cli devices register --product-key $pk --devices - -o csv <stdin.txt
expect_rc 0 "--devices - reads stdin"
expect_out '^a1DevicesPk,pre-0006,' "the name from stdin"
run cli devices batch-register --product-key $pk --names pre.txt -O pre2.csv
expect_err "--names is deprecated and goes in the next release: use --devices" "the old spelling warns"

run cli devices delete reg-0002 --product-key $pk
expect_rc 2 "delete needs --yes"
run cli devices delete reg-0002 --product-key $pk --yes -o csv
expect_rc 0 "delete"
run cli devices show reg-0002 --product-key $pk
expect_rc 4 "deleted"
run cli devices reset 862345678901234 --product-key $pk -o csv
expect_rc 0 "reset"
expect_out 'JobId' "job id"

finish
