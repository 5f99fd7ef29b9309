#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet serve --cloud-lookup against iotfleet-sim cloud: a device the pool does not have is
# looked up with QueryDeviceDetail and served the cloud's secret, which the ledger then keeps
# (a second request is a pool hit); a device the cloud does not know is 6100, a disabled one
# 6204; with --cloud-queue 1 a second device waiting for the cloud is answered 429 with
# Retry-After, never queued without bound; /metrics counts the lookups; --allow limits the
# lookups to the names it lists; --register-unknown registers a new name matching its glob, at
# most --register-rate a minute; --status-refresh: a pool device disabled in the cloud after its
# import (DisableThing) is refused 6204 with nothing bound, and served again once a later check
# finds it enabled; with the cloud gone the check fails and the last known statuses stay in
# force; /healthz and /metrics report the checks.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
export IOTFLEET_STATION=serve-cloud
pk=a1ServeCloud
product_secret=EnrollSecret-cloud-0123456789
client() { python3 "$here/serve_client.py" "$@"; }
sql_count() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$IOTFLEET_LEDGER" "$1"; }
cloud_secret() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT device_secret FROM devices WHERE product_key = ? AND device_name = ?", (sys.argv[2], sys.argv[3])).fetchone()[0])' "$IOT_TMP/cloud/cloud.db" "$pk" "$1"; }

cat >scenario.json <<EOF2
{"access_keys": [{"id": "LTAI5tServeCloud01", "secret": "serveCloudAccessSecret01"}],
 "products": [{"product_key": "$pk", "product_secret": "ProductSecret0001",
   "devices": [{"name": "dev-disabled", "status": "DISABLE"}],
   "generate": {"count": 10, "names": "sequence", "prefix": "cloud-", "digits": 2}}]}
EOF2
printf 'serveCloudAccessSecret01\n' >ak.secret
chmod 600 ak.secret
cloud_start "$IOT_TMP/cloud" scenario.json --seed 3 --latency-ms 300
# The pool holds one device of the product; the others are only in the cloud.
printf 'ProductKey,DeviceName,DeviceSecret\n%s,cloud-01,%s\n' "$pk" "$(cloud_secret cloud-01)" >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null && ok || fail "pool import"
printf 'product_key,scheme,secret\n%s,product,%s\n' "$pk" "$product_secret" >enrollment.csv
chmod 600 enrollment.csv
test_cert

"$IOTFLEET" --endpoint "$cloud_url" --access-key-id LTAI5tServeCloud01 --access-key-secret-file ak.secret \
  serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
  --cloud-lookup --cloud-queue 1 --access-log access.ndjson 2>serve.err &
server=$!
iot_cleanup_hooks+=("kill $server 2>/dev/null")
wait_ready "$server" serve.err "iotfleet serve" "listening on" || finish
url=$(grep -o 'https://127.0.0.1:[0-9]*' serve.err | head -n1)
post() { curl -sS --cacert cert.pem -X POST --data-binary "$1" "$url/auth/register/device"; }
ask() { post "$(client body "$product_secret" productKey=$pk deviceName="$1" random=r imei="$2")"; }

r=$(ask cloud-02 "$(imei_of 2)")
[ "$(jq -r .code <<<"$r")" = 200 ] && [ "$(jq -r .data.deviceSecret <<<"$r")" = "$(cloud_secret cloud-02)" ] && ok ||
  fail "a device only the cloud has gets the cloud's secret: $r"
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,serve-cloud,0,0,0,1\$" "the ledger keeps it, burned to the module"
r=$(ask cloud-02 "$(imei_of 2)")
[ "$(jq -r .code <<<"$r")" = 200 ] && ok || fail "asked again: $r"
r=$(ask cloud-01 "$(imei_of 1)")
[ "$(jq -r .code <<<"$r")" = 200 ] && ok || fail "a pool device: $r"
run curl -sS --cacert cert.pem "$url/metrics"
expect_out '^iotfleet_serve_cloud_lookups_total 1$' "one cloud lookup: the refetch and the pool device were pool hits"
expect_out '^iotfleet_serve_pool_hits_total 2$' "two pool hits"
r=$(ask nobody-here "$(imei_of 3)")
[ "$(jq -r .code <<<"$r")" = 6100 ] && ok || fail "a device the cloud does not know: $r"
r=$(ask dev-disabled "$(imei_of 4)")
[ "$(jq -r .code <<<"$r")" = 6204 ] && ok || fail "a device the cloud disabled: $r"
expect_eq "$(sql_count "SELECT count(*) FROM triplets WHERE device_name = 'dev-disabled'")" 0 \
  "nothing of the disabled device kept"

# Two devices at once with room for one waiting: the other is told to come back.
printf 'cloud-05,%s\ncloud-06,%s\n' "$(imei_of 5)" "$(imei_of 6)" >two.csv
client batch "$url" cert.pem "$pk" product "$product_secret" two.csv 2 >two.ndjson && ok || fail "two at once"
[ "$(jq -r .code two.ndjson | sort | tr '\n' ' ')" = "200 429 " ] && ok ||
  fail "one served, one 429 with the queue full: $(cat two.ndjson)"
status=$(curl -sS -o /dev/null -D headers.txt -w '%{http_code}' --cacert cert.pem -X POST \
  --data-binary "$(client body "$product_secret" productKey=$pk deviceName=cloud-07 random=r imei="$(imei_of 7)")" \
  "$url/auth/register/device")
[ "$status" = 200 ] && ok || fail "the queue is free again: HTTP $status"
grep -q '"outcome":"throttled"' access.ndjson && ok || fail "the 429 is in the access log"
kill -TERM "$server"
wait "$server" && ok || fail "SIGTERM: exit $?"

# --allow: only the listed names are asked of the cloud.
printf '# the devices this server may look up\ncloud-08\n' >allow.txt
run "$IOTFLEET" serve --listen 127.0.0.1:0 --insecure-http --enrollment enrollment.csv --allow allow.txt
expect_rc 2 "--allow without --cloud-lookup"
expect_err "give --cloud-lookup too" "says what is missing"
"$IOTFLEET" --endpoint "$cloud_url" --access-key-id LTAI5tServeCloud01 --access-key-secret-file ak.secret \
  serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
  --cloud-lookup --allow allow.txt --access-log allow.ndjson 2>allow.err &
server=$!
iot_cleanup_hooks+=("kill $server 2>/dev/null")
wait_ready "$server" allow.err "iotfleet serve --allow" "listening on" || finish
url=$(grep -o 'https://127.0.0.1:[0-9]*' allow.err | head -n1)
r=$(ask cloud-09 "$(imei_of 9)")
[ "$(jq -r .code <<<"$r")" = 6100 ] && ok || fail "a cloud device not in --allow: $r"
r=$(ask cloud-08 "$(imei_of 8)")
[ "$(jq -r .code <<<"$r")" = 200 ] && [ "$(jq -r .data.deviceSecret <<<"$r")" = "$(cloud_secret cloud-08)" ] && ok ||
  fail "a device in --allow: $r"
run curl -sS --cacert cert.pem "$url/metrics"
expect_out '^iotfleet_serve_cloud_lookups_total 1$' "only the allowed device was looked up"
kill -TERM "$server"
wait "$server" && ok || fail "SIGTERM: exit $?"

# --register-unknown: a name the cloud does not know, matching the glob, is registered and served,
# at most --register-rate a minute.
"$IOTFLEET" --endpoint "$cloud_url" --access-key-id LTAI5tServeCloud01 --access-key-secret-file ak.secret \
  serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
  --cloud-lookup --register-unknown 'new-*' --register-rate 1 --access-log reg.ndjson 2>reg.err &
server=$!
iot_cleanup_hooks+=("kill $server 2>/dev/null")
wait_ready "$server" reg.err "iotfleet serve --register-unknown" "listening on" || finish
url=$(grep -o 'https://127.0.0.1:[0-9]*' reg.err | head -n1)
r=$(ask new-01 "$(imei_of 11)")
[ "$(jq -r .code <<<"$r")" = 200 ] && [ "$(jq -r .data.deviceSecret <<<"$r")" = "$(cloud_secret new-01)" ] && ok ||
  fail "an unknown name matching the glob is registered and served the cloud's new secret: $r"
grep -q "registered $pk/new-01 in the cloud (--register-unknown)" reg.err && ok || fail "says it registered"
r=$(ask other-01 "$(imei_of 12)")
[ "$(jq -r .code <<<"$r")" = 6100 ] && ok || fail "an unknown name not matching the glob: $r"
r=$(ask new-02 "$(imei_of 13)")
[ "$(jq -r .code <<<"$r")" = 429 ] && ok || fail "a second registration in the minute: $r"
kill -TERM "$server"
wait "$server" && ok || fail "SIGTERM: exit $?"

# --status-refresh: the cloud's status of the pool's own devices.
openapi() { # openapi ACTION K=V...: a signed call to the emulator; its answer on stdout
  curl -sS --data-binary "$(python3 "$here/openapi_sign.py" POST LTAI5tServeCloud01 \
    serveCloudAccessSecret01 "$@")" "$cloud_url/"
}
printf 'ProductKey,DeviceName,DeviceSecret\n%s,cloud-03,%s\n%s,cloud-04,%s\n' \
  "$pk" "$(cloud_secret cloud-03)" "$pk" "$(cloud_secret cloud-04)" >pool2.csv
"$IOTFLEET" pool import pool2.csv >/dev/null && ok || fail "pool import of two more"
wait_disabled() { # wait_disabled N: until a status check has found N devices disabled (10 s)
  for _ in $(seq 100); do
    curl -sS --cacert cert.pem "$url/metrics" | grep -q "^iotfleet_serve_status_devices{status=\"disabled\"} $1\$" && return
    sleep 0.1
  done
}
[ "$(openapi DisableThing ProductKey=$pk DeviceName=cloud-03 | jq -r .Success)" = true ] && ok ||
  fail "DisableThing in the emulator"
run "$IOTFLEET" serve --listen 127.0.0.1:0 --insecure-http --enrollment enrollment.csv --status-refresh 500ms
expect_rc 2 "a refresh under a second"
expect_err "status-refresh is 0 \(off\) or 1s or more" "says the bounds"
run "$IOTFLEET" serve --listen 127.0.0.1:0 --insecure-http --enrollment enrollment.csv --status-refresh 1m
[ "$rc" -ne 0 ] && ok || fail "--status-refresh without an AccessKey: exit $rc"
expect_err "status-refresh" "names the option that needs the cloud"
"$IOTFLEET" --endpoint "$cloud_url" --access-key-id LTAI5tServeCloud01 --access-key-secret-file ak.secret \
  serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
  --status-refresh 1s --access-log status.ndjson 2>status.err &
server=$!
iot_cleanup_hooks+=("kill $server 2>/dev/null")
wait_ready "$server" status.err "iotfleet serve --status-refresh" "listening on" || finish
url=$(grep -o 'https://127.0.0.1:[0-9]*' status.err | head -n1)
wait_ready "$server" status.err "the first status check" "cloud status of [0-9]* pool devices" || finish
pool_devices=$(sql_count "SELECT count(*) FROM triplets WHERE product_key = '$pk'")
grep -Eq "cloud status of $pool_devices pool devices checked in [0-9]+ ms: 1 disabled \(refused, 6204\); newly disabled: $pk/cloud-03\$" status.err &&
  ok || fail "the check names the disabled device: $(grep 'cloud status' status.err)"
r=$(ask cloud-03 "$(imei_of 21)")
[ "$(jq -r .code <<<"$r")" = 6204 ] && [ "$(jq -r '.data.deviceSecret // ""' <<<"$r")" = "" ] && ok ||
  fail "a pool device disabled in the cloud: $r"
expect_eq "$(sql_count "SELECT count(*) FROM triplets WHERE device_name = 'cloud-03' AND state = 'available'")" 1 \
  "the disabled device stays unbound"
r=$(ask cloud-04 "$(imei_of 22)")
[ "$(jq -r .data.deviceSecret <<<"$r")" = "$(cloud_secret cloud-04)" ] && ok || fail "an enabled pool device: $r"
run curl -sS --cacert cert.pem "$url/metrics"
expect_out '^iotfleet_serve_status_devices\{status="disabled"\} 1$' "metrics: one disabled"
expect_out '^iotfleet_serve_requests_total\{outcome="disabled"\} 1$' "metrics: one refused as disabled"
expect_no_out 'outcome=""' "metrics: every outcome named"
run curl -sS --cacert cert.pem "$url/healthz"
expect_out '"cloud":"ok"' "healthz: the cloud answered the last check"
[ "$(openapi EnableThing ProductKey=$pk DeviceName=cloud-03 | jq -r .Success)" = true ] && ok ||
  fail "EnableThing in the emulator"
wait_disabled 0
r=$(ask cloud-03 "$(imei_of 21)")
[ "$(jq -r .data.deviceSecret <<<"$r")" = "$(cloud_secret cloud-03)" ] && ok ||
  fail "enabled again, a later check lets it through: $r"
grep -q '"outcome":"disabled"' status.ndjson && ok || fail "the refusal is in the access log"
# The cloud gone: the check fails, the last known statuses stay in force.
[ "$(openapi DisableThing ProductKey=$pk DeviceName=cloud-04 | jq -r .Success)" = true ] && ok ||
  fail "DisableThing of a bound device"
wait_disabled 1
cloud_stop
wait_ready "$server" status.err "a failed status check" "cloud status check failed (the last known statuses stay in force" ||
  finish
r=$(ask cloud-04 "$(imei_of 22)")
[ "$(jq -r .code <<<"$r")" = 6204 ] && ok || fail "a bound device disabled before the cloud went away: $r"
run curl -sS --cacert cert.pem "$url/healthz"
expect_out '"status":"ok"' "healthz: still serving the pool"
expect_no_out '"cloud":"ok"' "healthz: says the cloud check fails"
run curl -sS --cacert cert.pem "$url/metrics"
expect_out '^iotfleet_serve_status_sweeps_total\{result="failed"\} [1-9]' "metrics: the failed check counted"
kill -TERM "$server"
wait "$server" && ok || fail "SIGTERM with the check's thread running: exit $?"
finish
