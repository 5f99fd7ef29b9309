#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet-sim load, the load generator of bench/serve.sh, against a real iotfleet serve: every
# request it counts was answered (the server's own request counter agrees), the statuses are the
# server's (200 for the pool's devices, 429 once the per-device limit bites), the open loop keeps
# its rate, a server it cannot verify is a failure with the certificate's reason (exit 1), and a
# bad URL or bodies file is a usage error (exit 2).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1LoadTest01
secret=EnrollSecret-load-0123456789
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 20); do printf '%s,dev-%04d,S%031d\n' "$pk" "$n" "$n"; done
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null && ok || fail "pool import"
printf 'product_key,scheme,secret\n%s,product,%s\n' "$pk" "$secret" >enrollment.csv
chmod 600 enrollment.csv
for n in $(seq 1 20); do
  python3 "$here/serve_client.py" body "$secret" productKey=$pk deviceName="dev-$(printf %04d "$n")" \
    random="r$n" imei="$(imei_of "$n")"
done >bodies.txt
test_cert
start_serve() { # start_serve ERR_FILE ARGS...: a server of the pool; sets $server and $url
  local err=$1
  shift
  "$IOTFLEET" serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
    --access-log /dev/null --per-address 0 "$@" 2>"$err" &
  server=$!
  iot_cleanup_hooks+=("kill $server 2>/dev/null")
  wait_ready "$server" "$err" "iotfleet serve" "listening on" || finish
  url=$(grep -o 'https://127.0.0.1:[0-9]*' "$err" | head -n1)
}
start_serve serve.err --per-device 0
served() { curl -sS --cacert cert.pem "$url/metrics" | awk '/^iotfleet_serve_requests_total/ { n += $2 } END { print n + 0 }'; }

# Closed loop: 8 connections for a second.
before=$(served)
run "$IOTFLEET_SIM" load "$url/auth/register/device" --bodies bodies.txt --ca cert.pem --concurrency 8 --duration 1
expect_rc 0 "a closed-loop run"
n=$(jq .requests <<<"$out")
[ "$n" -gt 20 ] && ok || fail "requests answered: $out"
expect_eq "$(jq '.statuses."200"' <<<"$out")" "$n" "every answer a 200"
expect_eq "$(jq .failures <<<"$out")" 0 "no failure"
# The server counted the registrations the load generator did.
expect_eq "$(($(served) - before))" "$n" "the server's count of requests"
jq -e '.p50_ms > 0 and .p99_ms >= .p50_ms and .max_ms >= .p99_ms' <<<"$out" >/dev/null && ok ||
  fail "percentiles in order: $out"
jq -e '.cpu_seconds > 0 and .cpu_seconds < 10' <<<"$out" >/dev/null && ok || fail "its own CPU time: $out"

# Open loop at 50/s for 2 s: 100 requests, started on schedule.
run "$IOTFLEET_SIM" load "$url/healthz" --ca cert.pem --concurrency 20 --duration 2 --rate 50
expect_rc 0 "an open-loop run"
n=$(jq .requests <<<"$out")
[ "$n" -ge 99 ] && [ "$n" -le 101 ] && ok || fail "50/s for 2 s: $out"
expect_eq "$(jq .rate <<<"$out")" 50 "the rate reported"

# The per-device limit's 429s are counted as answers with their status.
kill "$server"
wait "$server" 2>/dev/null
start_serve serve2.err --per-device 2
run "$IOTFLEET_SIM" load "$url/auth/register/device" --bodies bodies.txt --ca cert.pem --concurrency 4 --duration 1
expect_rc 0 "a run with refusals"
expect_eq "$(jq '.statuses."200"' <<<"$out")" 40 "two answers a minute for each of 20 devices"
[ "$(jq '.statuses."429"' <<<"$out")" -gt 0 ] && ok || fail "the rest 429: $out"

# A server whose certificate the load generator does not trust: failures, with the reason.
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 -subj /CN=other \
  >/dev/null 2>&1
run "$IOTFLEET_SIM" load "$url/healthz" --ca other.pem --concurrency 2 --duration 0.3
expect_rc 1 "an untrusted server"
expect_err "certificate" "says the certificate failed"
[ "$(jq .failures <<<"$out")" -gt 0 ] && ok || fail "failures counted: $out"

run "$IOTFLEET_SIM" load "ftp://127.0.0.1/" --duration 0.1
expect_rc 2 "a URL that is not HTTP"
expect_err "http:// or https://" "names the schemes"
run "$IOTFLEET_SIM" load "$url/x" --bodies missing.txt --duration 0.1
expect_rc 2 "a missing bodies file"
expect_err "missing.txt" "names the file"
finish
