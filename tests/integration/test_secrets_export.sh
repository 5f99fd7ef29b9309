#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# secrets export against iotfleet-sim cloud over real HTTP and HTTPS: 50 000 devices with 5 %
# injected 5xx and throttling (plus resets and truncated bodies) give exactly the emulator's set
# (read from its SQLite state with Python, not through iotfleet); every strategy agrees; the
# file is 0600 and appears only complete; wrong credentials, a bad CA and Ctrl-C leave no file.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?}"
pk=a1ExportPk1
cat >scenario.json <<JSON
{"region": "cn-shanghai",
 "access_keys": [{"id": "LTAI5tExportTest0001", "secret": "exportTestSecret00000000000001"}],
 "products": [
   {"product_key": "$pk", "name": "export test",
    "generate": {"count": 50000, "names": "sequence", "prefix": "dev-", "digits": 6,
                 "status": {"ONLINE": 55, "OFFLINE": 30, "UNACTIVE": 12, "DISABLE": 3}}},
   {"product_key": "a1EmptyProd", "name": "no devices"}]}
JSON
printf '%s' exportTestSecret00000000000001 >ak.secret
chmod 600 ak.secret
export ALIBABA_CLOUD_REGION_ID=cn-shanghai

cloud_start() { # cloud_start NAME ARGS...: sets $url
  local name=$1
  shift
  exchange_log_args
  "$IOTFLEET_SIM" cloud --state-dir "$IOT_TMP/cloud" --scenario scenario.json --seed 7 \
    "${exchange_args[@]}" "$@" \
    >"$name.url" 2>"$name.err" &
  cloud_pid=$!
  iot_cleanup_hooks+=("kill $cloud_pid 2>/dev/null")
  wait_ready "$cloud_pid" "$name.err" "the cloud emulator ($name)" || return 1
  url=$(head -1 "$name.url")
}
cloud_stop() { kill "$cloud_pid" && wait "$cloud_pid" 2>/dev/null || true; }
export_args() { echo --endpoint "$url" --access-key-id LTAI5tExportTest0001 --access-key-secret-file ak.secret; }

cloud_start plain --latency-ms 2-6
python3 - "$IOT_TMP/cloud/cloud.db" "$pk" >expected.txt <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for row in sorted(db.execute(
        "select product_key, device_name, device_secret, status, iot_id from devices "
        "where product_key = ?", (sys.argv[2],))):
    print(",".join(row))
PY
[ "$(wc -l <expected.txt)" = 50000 ] && ok || fail "the emulator holds $(wc -l <expected.txt) devices"

for strategy in auto sequential status; do
  run "$IOTFLEET" $(export_args) secrets export --product-key $pk -O "$strategy.csv" \
    --strategy $strategy -o json
  expect_rc 0 "export ($strategy)"
  expect_out '"devices": 50000' "$strategy: count"
  head -1 "$strategy.csv" | grep -qx 'product_key,device_name,device_secret,status,iot_id' && ok ||
    fail "$strategy: header"
  tail -n +2 "$strategy.csv" | sort | cmp -s - expected.txt && ok ||
    fail "$strategy: not exactly the emulator's devices"
done
ls -l auto.csv | grep -q '^-rw-------' && ok || fail "export file is not 0600"
expect_no_err 'dev-' "no device data on stderr"

run "$IOTFLEET" $(export_args) secrets export --product-key a1EmptyProd -O empty.json --format json
expect_rc 0 "a product without devices"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' empty.json && ok ||
  fail "empty JSON export: $(cat empty.json)"
run "$IOTFLEET" $(export_args) secrets export --product-key a1NoSuchPk1 -O none.csv
expect_rc 4 "unknown product"
expect_err 'iot.prod.NotExistedProduct' "the cloud's code is named"
[ ! -e none.csv ] && ok || fail "a failed export left a file"
printf '%s' wrongSecret000000000000000000 >bad.secret
chmod 600 bad.secret
run "$IOTFLEET" --endpoint "$url" --access-key-id LTAI5tExportTest0001 --access-key-secret-file bad.secret secrets export --product-key $pk -O bad.csv
expect_rc 4 "wrong AccessKey secret"
expect_err 'SignatureDoesNotMatch' "signature refused, not retried"
expect_err 'the AccessKey LTAI…0001 from flag --access-key-id was used: check it with `iotfleet config show`' \
  "the refusal names which AccessKey, from where (masked, no secret)"
expect_no_err 'wrongSecret' "the secret itself is never printed"
run "$IOTFLEET" $(export_args) secrets export --product-key $pk
expect_rc 0 "to stdout"
expect_out "^$pk +dev-" "rows on stdout"
if grep -q "$(sed -n 1p expected.txt | cut -d, -f3)" <<<"$out"; then fail "secret on stdout"; else ok; fi

# Ctrl-C: nothing written.
"$IOTFLEET" $(export_args) secrets export --product-key $pk -O interrupted.csv --strategy sequential \
  >/dev/null 2>interrupted.err &
victim=$!
wait_caught "$victim" || fail "secrets export never installed its signal handlers"
sleep 1
kill -INT "$victim"
set +e
wait "$victim"
rc=$?
set -e
[ "$rc" = 130 ] && ok || fail "Ctrl-C: exit $rc ($(cat interrupted.err))"
[ ! -e interrupted.csv ] && ok || fail "an interrupted export left a file"
[ -z "$(ls -A | grep '\.tmp\.')" ] && ok || fail "temporary file left behind: $(ls -A)"
cloud_stop

# HTTPS with the emulator's CA, and faults: 5 % 5xx, 5 % throttling, resets, truncated bodies.
cloud_start faults --tls --latency-ms 2-10 --fail-5xx 0.05 --throttle-burst 0.05 --reset 0.01 \
  --truncate 0.01
case $url in https://*) ok ;; *) fail "--tls gave $url" ;; esac
run "$IOTFLEET" $(export_args) secrets export --product-key $pk -O nope.csv
expect_rc 4 "the emulator's certificate is not trusted without --ca-file"
expect_err 'ca-file' "the fix is named"
run "$IOTFLEET" $(export_args) --ca-file "$IOT_TMP/cloud/ca.pem" secrets export --product-key $pk \
  -O faults.json --format json -o json
expect_rc 0 "export over HTTPS with faults"
python3 - faults.json expected.txt <<'PY' && ok || fail "faults: not exactly the emulator's devices"
import json, sys
rows = json.load(open(sys.argv[1]))
got = sorted(",".join([r["product_key"], r["device_name"], r["device_secret"], r["status"],
                       r["iot_id"]]) for r in rows)
want = open(sys.argv[2]).read().split("\n")[:-1]
sys.exit(0 if got == want else 1)
PY
cloud_stop

finish
