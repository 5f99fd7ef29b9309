#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# serve --status-refresh with two instances on one shared PostgreSQL ledger: each period one of
# them checks the cloud (BatchGetDeviceState, counted at the emulator) and the other reads the
# result from the ledger, so two instances make no more calls than one; both refuse a device
# disabled in the cloud (6204), the one that never checked it too; with the last check's maker
# killed with -9, the other checks by itself. (A check abandoned half-way waits for its lease:
# tests/unit/store/test_ledger_status.cpp.) A check that takes longer than its lease renews it:
# the other server does not start a second one meanwhile (then on a SQLite ledger).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
pk=a1SharedStat
product_secret=EnrollSecret-shared-0123456789
client() { python3 "$here/serve_client.py" "$@"; }
# cloud DIR PK COUNT PREFIX DIGITS ARGS...: an emulator in DIR with one product of COUNT devices
# (PREFIX + DIGITS-digit numbers), ARGS for iotfleet-sim cloud; the ledger gets every device.
cloud() {
  local dir=$1 product=$2 count=$3 prefix=$4 digits=$5
  shift 5
  cat >"$dir.json" <<EOF2
{"access_keys": [{"id": "LTAI5tSharedStat01", "secret": "sharedStatAccessSecret01"}],
 "products": [{"product_key": "$product", "product_secret": "ProductSecret0001",
   "generate": {"count": $count, "names": "sequence", "prefix": "$prefix", "digits": $digits}}]}
EOF2
  cloud_start "$dir" "$dir.json" --verbose "$@"
  calls_log=$dir/cloud.err
  python3 -c 'import sqlite3, sys
print("ProductKey,DeviceName,DeviceSecret")
for r in sqlite3.connect(sys.argv[1]).execute("SELECT product_key, device_name, device_secret FROM devices ORDER BY device_name"):
    print(",".join(r))' "$dir/cloud.db" >"$dir.pool.csv"
  "$IOTFLEET" pool import "$dir.pool.csv" >/dev/null && ok || fail "pool import of $count"
}
openapi() { # openapi ACTION K=V...: a signed call to the emulator; its answer on stdout
  curl -sS --data-binary "$(python3 "$here/openapi_sign.py" POST LTAI5tSharedStat01 \
    sharedStatAccessSecret01 "$@")" "$cloud_url/"
}
checks_at_cloud() { grep -c ' BatchGetDeviceState 200 OK' "$calls_log" || true; }

pg_start
printf 'sharedStatAccessSecret01\n' >ak.secret
chmod 600 ak.secret
cloud "$IOT_TMP/cloud" "$pk" 4 dev- 2 --seed 5
printf 'product_key,scheme,secret\n%s,product,%s\n' "$pk" "$product_secret" >enrollment.csv
chmod 600 enrollment.csv
test_cert
[ "$(openapi DisableThing ProductKey=$pk DeviceName=dev-01 | jq -r .Success)" = true ] && ok ||
  fail "DisableThing in the emulator"

declare -A pid_of url_of
start() { # start NAME ARGS...: a server of $IOTFLEET_LEDGER, station NAME, serve ARGS too
  local name=$1
  shift
  IOTFLEET_STATION=$name "$IOTFLEET" --endpoint "$cloud_url" --access-key-id LTAI5tSharedStat01 \
    --access-key-secret-file ak.secret serve --listen 127.0.0.1:0 --tls-cert cert.pem \
    --tls-key key.pem --enrollment enrollment.csv --access-log /dev/null "$@" 2>"$name.err" &
  pid_of[$name]=$!
  iot_cleanup_hooks+=("kill ${pid_of[$name]} 2>/dev/null")
  wait_ready "${pid_of[$name]}" "$name.err" "iotfleet serve $name" "listening on" || finish
  url_of[$name]=$(grep -o 'https://127.0.0.1:[0-9]*' "$name.err" | head -n1)
}
metric() { # metric NAME SERIES: one value of a server's /metrics
  curl -sS --cacert cert.pem "${url_of[$1]}/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}
ask() { # ask NAME DEVICE N: the code a device gets from a server
  curl -sS --cacert cert.pem -X POST --data-binary \
    "$(client body "$product_secret" productKey=$pk deviceName="$2" random="r$3" imei="$(imei_of "$3")")" \
    "${url_of[$1]}/auth/register/device" | jq -r .code
}
wait_disabled() { # wait_disabled NAME N [SECONDS]: until the server knows N devices disabled
  for _ in $(seq $((${3:-15} * 10))); do
    [ "$(metric "$1" 'iotfleet_serve_status_devices{status="disabled"}')" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
own_checks() { metric "$1" 'iotfleet_serve_status_sweeps_total{result="ok"}'; }

start serve-a --status-refresh 2s
start serve-b --status-refresh 2s
wait_disabled serve-a 1 && ok || fail "serve-a knows dev-01 is disabled: $(cat serve-a.err)"
wait_disabled serve-b 1 && ok || fail "serve-b knows dev-01 is disabled: $(cat serve-b.err)"
grep -Eq 'cloud status of 4 pool devices (checked in [0-9]+ ms|read from the ledger \(checked by serve-[ab]/[0-9]+\)): 1 disabled \(refused, 6204\); newly disabled: a1SharedStat/dev-01$' serve-b.err &&
  ok || fail "serve-b says what it learnt: $(grep 'cloud status' serve-b.err)"

# Ten seconds, a 2 s period: one check every period between the two, never one each.
before=$(checks_at_cloud)
sleep 10
calls=$(($(checks_at_cloud) - before))
echo "two servers, 2 s period: $calls BatchGetDeviceState calls in 10 s" >&2
# At most one check a period between them (each its own would make about twice as many).
[ "$calls" -ge 2 ] && [ "$calls" -le 6 ] && ok ||
  fail "BatchGetDeviceState calls in 10 s at a 2 s period, two servers: $calls, want 2..6"
made=$(($(own_checks serve-a) + $(own_checks serve-b)))
expect_eq "$made" "$(checks_at_cloud)" "the servers' own checks are the cloud's calls"
shared_a=$(metric serve-a 'iotfleet_serve_status_sweeps_total{result="shared"}')
shared_b=$(metric serve-b 'iotfleet_serve_status_sweeps_total{result="shared"}')
[ $((shared_a + shared_b)) -ge 2 ] && ok || fail "checks read from the ledger: $shared_a + $shared_b"

# Both refuse the disabled device, and serve the others.
expect_eq "$(ask serve-a dev-01 1)" 6204 "serve-a refuses the disabled device"
expect_eq "$(ask serve-b dev-01 1)" 6204 "serve-b refuses the disabled device"
expect_eq "$(ask serve-b dev-02 2)" 200 "an enabled device is served"
# A device disabled now reaches both through one check.
[ "$(openapi DisableThing ProductKey=$pk DeviceName=dev-03 | jq -r .Success)" = true ] && ok ||
  fail "DisableThing of dev-03"
wait_disabled serve-a 2 && wait_disabled serve-b 2 && ok || fail "both learn dev-03 is disabled"
expect_eq "$(ask serve-a dev-03 3)" 6204 "serve-a refuses dev-03"
expect_eq "$(ask serve-b dev-03 3)" 6204 "serve-b refuses dev-03"

# kill -9 the server that made the last check: the other goes on checking by itself.
holder=$(psql "$url" -X -Atc "SELECT split_part(holder, '/', 1) FROM status_checks WHERE product_key = '$pk'")
case $holder in
  serve-a) other=serve-b ;;
  serve-b) other=serve-a ;;
  *) fail "the ledger names a holder: '$holder'"; finish ;;
esac
kill -9 "${pid_of[$holder]}"
wait "${pid_of[$holder]}" 2>/dev/null || true
mine=$(own_checks "$other")
[ "$(openapi EnableThing ProductKey=$pk DeviceName=dev-01 | jq -r .Success)" = true ] && ok ||
  fail "EnableThing of dev-01"
wait_disabled "$other" 1 30 && ok || fail "$other learns dev-01 is enabled again"
[ "$(own_checks "$other")" -gt "$mine" ] && ok || fail "$other checks itself once $holder is gone"
expect_eq "$(ask "$other" dev-01 1)" 200 "enabled again: served"
kill -TERM "${pid_of[$other]}"
wait "${pid_of[$other]}" && ok || fail "SIGTERM: exit $?"

# A check longer than its lease (10 s at this period): 2 000 devices, 40 calls of 50 names one
# at a time, 300 ms each, so about 12 s. The holder renews its lease as it goes, so the other
# server, looking every 5 s, never starts a second check: one check, 40 calls, between the two.
# On a SQLite ledger this time: the sharing is the same on both databases.
cloud_stop
export IOTFLEET_LEDGER=$IOT_TMP/long.db
cloud "$IOT_TMP/cloud2" a1SharedLong 2000 big- 4 --seed 6 --latency-ms 300
printf 'product_key,scheme,secret\na1SharedLong,product,%s\n' "$product_secret" >enrollment.csv
# One cloud call at a time (--cloud-queue is the cloud client's concurrency).
start long-a --status-refresh 10s --cloud-queue 1
start long-b --status-refresh 10s --cloud-queue 1
complete() { # complete NAME: the server knows the status of all 2 000 devices
  [ "$(metric "$1" 'iotfleet_serve_status_devices{status="checked"}')" = 2000 ]
}
for _ in $(seq 300); do
  complete long-a && complete long-b && break
  sleep 0.1
done
complete long-a && complete long-b && ok || fail "both servers know the 2 000 devices' status"
expect_eq "$(checks_at_cloud)" 40 "one check of 2 000 devices: 40 calls"
expect_eq "$(($(own_checks long-a) + $(own_checks long-b)))" 1 "made by one of the two servers"
long_check_ms=$(grep -ho 'cloud status of 2000 pool devices checked in [0-9]* ms' long-a.err long-b.err |
  grep -o '[0-9]* ms')
echo "one check of 2 000 devices, one call at a time: $long_check_ms" >&2
finish
