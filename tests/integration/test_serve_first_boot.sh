#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The second way of seed §7 end to end: simulated Luat modules with nothing burned boot with
# `iotfleet-sim modules --first-boot URL`, fetch their DeviceSecret from `iotfleet serve` over
# verified TLS and store it in SN; `secrets compare` then finds every module holding the cloud's
# secret; a module whose SN went bad is told to `refetch` and holds it again; a clone asking for
# a name that is bound is refused and the alert shows.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
export IOTFLEET_STATION=serve-fb
pk=a1FirstBoot1
product_secret=EnrollSecret-firstboot-0123456
secret_for() { printf 'F%031d' "$1"; }

imeis=()
for n in 1 2 3 4; do imeis+=("$(imei_of $((700 + n)))"); done
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in 1 2 3 4; do echo "$pk,${imeis[$((n - 1))]},$(secret_for "$n")"; done
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null && ok || fail "pool import"
printf 'product_key,scheme,secret\n%s,product,%s\n' "$pk" "$product_secret" >enrollment.csv
printf '%s\n' "$product_secret" >firmware.secret
chmod 600 enrollment.csv firmware.secret
test_cert
"$IOTFLEET" serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
  --access-log access.ndjson 2>serve.err &
server=$!
iot_cleanup_hooks+=("kill $server 2>/dev/null")
wait_ready "$server" serve.err "iotfleet serve" "listening on" || finish
url=$(grep -o 'https://127.0.0.1:[0-9]*' serve.err | head -n1)

# Four modules with an empty SN boot and fetch their secret.
imei_args=()
for imei in "${imeis[@]}"; do imei_args+=(--imei "$imei"); done
sim_start "$IOT_TMP/line" --count 4 --module luat --urc-rate 0 "${imei_args[@]}" --control "$IOT_TMP/control" \
  --first-boot "$url" --first-boot-product "$pk" --first-boot-secret-file firmware.secret \
  --first-boot-ca cert.pem || finish
[ "$(grep -c 'fetched its DeviceSecret into SN' "$IOT_TMP/line/sim.err")" = 4 ] && ok ||
  fail "4 modules fetched their secret at first boot: $(cat "$IOT_TMP/line/sim.err")"
for i in 0 1 2 3; do
  run "$IOTFLEET" --show-secrets module at --port "${sim_ports[$i]}" 'AT+WISN?'
  expect_out "^info +$(secret_for $((i + 1)))\$" "module $i holds its own secret in SN"
done
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,serve-fb,0,0,0,4\$" "the ledger has the four bound to their modules"

# secrets compare: every module holds the cloud's secret (the snapshot is what the cloud holds).
{
  echo "product_key,device_name,device_secret,status,iot_id"
  for n in 1 2 3 4; do echo "$pk,${imeis[$((n - 1))]},$(secret_for "$n"),ONLINE,id$n"; done
} >snapshot.csv
ports=()
for p in "${sim_ports[@]}"; do ports+=(--port "$p"); done
run "$IOTFLEET" secrets compare --snapshot snapshot.csv "${ports[@]}" -m luat --with-ledger -o csv
expect_rc 0 "every module matches the cloud and the ledger"

# Module 2's SN goes bad; told to fetch again, it holds its secret again.
echo "set-sn 2 ffffffffffffffffffffffffffffffff" >"$IOT_TMP/control"
for _ in $(seq 100); do grep -q '^control: set-sn 2$' "$IOT_TMP/line/sim.err" && break; sleep 0.05; done
run "$IOTFLEET" secrets compare --snapshot snapshot.csv "${ports[@]}" -m luat -o csv
expect_rc 6 "the corrupted module differs"
echo "refetch 2" >"$IOT_TMP/control"
for _ in $(seq 100); do grep -q '^control: refetch 2: ' "$IOT_TMP/line/sim.err" && break; sleep 0.05; done
grep -q "^control: refetch 2: ${imeis[2]} fetched its DeviceSecret into SN" "$IOT_TMP/line/sim.err" && ok ||
  fail "refetch 2: $(grep refetch "$IOT_TMP/line/sim.err")"
run "$IOTFLEET" secrets compare --snapshot snapshot.csv "${ports[@]}" -m luat --with-ledger -o csv
expect_rc 0 "after the refetch every module matches again"
grep -c '"outcome":"again"' access.ndjson | grep -qx 1 && ok || fail "the refetch was an 'again'"

# What the server issued, and when, is what the support desk's commands read.
run "$IOTFLEET" pool log "${imeis[1]}" -o csv
expect_out "serve-fb,serve,${imeis[1]},$pk,${imeis[1]},serve-issue,issued,from 127.0.0.1" "pool log: the issue"
run "$IOTFLEET" diagnose device "${imeis[1]}" --port "${sim_ports[1]}" -m luat --no-cloud -o json
expect_err "source ledger: used — .*${imeis[1]} burned to IMEI ${imeis[1]}" "diagnose device: the served record"

# A clone: another module asking for module 0's name is refused, and the alert shows.
clone=$(imei_of 799)
body=$(python3 "$here/serve_client.py" body "$product_secret" productKey=$pk deviceName="${imeis[0]}" random=c imei="$clone")
r=$(curl -sS --cacert cert.pem -X POST --data-binary "$body" "$url/auth/register/device")
[ "$(jq -r .code <<<"$r")" = 6289 ] && ok || fail "the clone is refused: $r"
grep -q "clone alert: $pk/${imeis[0]} asked for by IMEI $clone" serve.err && ok || fail "the alert: $(cat serve.err)"
if grep -qE "$(secret_for 1)|$(secret_for 3)|$product_secret" "$IOT_TMP/line/sim.err" serve.err access.ndjson; then
  fail "a secret in a log"
else
  ok
fi

# Without the server's CA the modules cannot verify it and fetch nothing.
sim_start "$IOT_TMP/untrusted" --count 1 --module luat --urc-rate 0 --imei "$(imei_of 790)" \
  --first-boot "$url" --first-boot-product "$pk" --first-boot-secret-file firmware.secret || finish
grep -q "got no secret" "$IOT_TMP/untrusted/sim.err" && ok ||
  fail "no secret over an unverified TLS: $(cat "$IOT_TMP/untrusted/sim.err")"
finish
