#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet-sim cloud: one-type-one-secret dynamic registration (docs/aliyun-iot-protocol.md §4)
# over real HTTP and HTTPS. Forms are signed here (python3, from §4, checked against §4's
# vectors) and sent with curl; the OpenAPI side (QueryDeviceDetail, ResetThing) is signed per §1.
# Covers: the doc's vectors, repeat registration (newest secret wins), the error codes,
# /_emulator/activate → 6289, ResetThing → registrable again, lost answers that did register,
# refused ones that did not, counters at exit.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
state="$IOT_TMP/state"
ak=LTAI5tDynregKey01
sk=dynregAccessSecret01
pk=a1b2c3d4e5f # §4's synthetic vector: ProductSecret 0123456789ABCDEF, dn dev01
ps=0123456789ABCDEF

cat >"$IOT_TMP/scenario.json" <<EOF
{"access_keys": [{"id": "$ak", "secret": "$sk"}],
 "products": [
   {"product_key": "$pk", "product_secret": "$ps", "dynamic_register": true,
    "devices": [{"name": "dev01"}, {"name": "dev02"}, {"name": "dev03"},
                {"name": "dev-online", "status": "ONLINE"},
                {"name": "dev-disabled", "status": "DISABLE"}]},
   {"product_key": "a1NoDynReg01", "product_secret": "NoDynRegSecret01",
    "dynamic_register": false, "devices": [{"name": "dev01"}]}]}
EOF

# dynreg PK DN PRODUCT_SECRET RANDOM METHOD: the §4 form body.
cat >"$IOT_TMP/dynreg.py" <<'EOF'
import hashlib, hmac, sys, urllib.parse
pk, dn, ps, random, method = sys.argv[1:6]
alg = {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}[method.lower()]
msg = "deviceName" + dn + "productKey" + pk + "random" + random
sign = hmac.new(ps.encode(), msg.encode(), alg).hexdigest().upper()
print(urllib.parse.urlencode(dict(productKey=pk, deviceName=dn, random=random, sign=sign,
                                  signMethod=method)))
EOF
dynreg_form() { python3 "$IOT_TMP/dynreg.py" "$@"; }

# sign METHOD ACTION K=V...: an OpenAPI request signed per §1.

url=
cloud_pid=
start_cloud() { # start_cloud ARGS...: the emulator on $state, waits for "ready"
  rm -f "$IOT_TMP/cloud.out" "$IOT_TMP/cloud.err"
  exchange_log_args
  "$IOTFLEET_SIM" cloud --listen 127.0.0.1:0 --state-dir "$state" --scenario "$IOT_TMP/scenario.json" \
    "${exchange_args[@]}" "$@" >"$IOT_TMP/cloud.out" 2>"$IOT_TMP/cloud.err" &
  cloud_pid=$!
  iot_cleanup_hooks+=("kill $cloud_pid 2>/dev/null")
  local i
  for i in $(seq 150); do
    if grep -qx ready "$IOT_TMP/cloud.err" 2>/dev/null; then
      url=$(head -n1 "$IOT_TMP/cloud.out")
      return 0
    fi
    if ! kill -0 "$cloud_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  fail "emulator not ready: $(cat "$IOT_TMP/cloud.err")"
  return 1
}
stop_cloud() {
  kill -TERM "$cloud_pid"
  set +e
  wait "$cloud_pid"
  local status=$?
  set -e
  if [ "$status" -eq 0 ]; then ok; else fail "emulator exit $status after SIGTERM"; fi
}
curl_opts=()
# register BODY: POST /auth/register/device; body in $out, HTTP status in $http, curl exit in $rc.
register() {
  set +e
  http=$(curl -sS "${curl_opts[@]}" -o "$IOT_TMP/.body" -w '%{http_code}' -D "$IOT_TMP/.headers" \
    --data-binary "$1" "$url/auth/register/device" 2>"$IOT_TMP/.curl")
  rc=$?
  set -e
  out=$(cat "$IOT_TMP/.body" 2>/dev/null || true)
}
# api ACTION K=V...: a signed OpenAPI POST; body in $out.
api() {
  local action=$1
  shift
  out=$(curl -sS "${curl_opts[@]}" --data-binary \
    "$(python3 "$here/openapi_sign.py" POST "$ak" "$sk" "$action" "$@")" "$url/")
}
activate() { # activate DN [STATUS]
  out=$(curl -sS "${curl_opts[@]}" -w ' %{http_code}' \
    --data-binary "productKey=$pk&deviceName=$1${2:+&status=$2}" "$url/_emulator/activate")
}
field() { jq -r "$1" <<<"$out"; }
secret_of() { # secret_of DN: DeviceSecret through QueryDeviceDetail
  api QueryDeviceDetail ProductKey="$pk" DeviceName="$1"
  field .Data.DeviceSecret
}

# --- the python signer against §4's vectors --------------------------------------------------------
want="productKey=$pk&deviceName=dev01&random=8Ygb7ULYh53B6OA&sign="
[ "$(dynreg_form $pk dev01 $ps 8Ygb7ULYh53B6OA hmacsha256)" = "${want}118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9&signMethod=hmacsha256" ] &&
  [ "$(dynreg_form $pk dev01 $ps 8Ygb7ULYh53B6OA hmacsha1)" = "${want}02AD6DD6FBB1724076E1358FE175CDB6A2B857A7&signMethod=hmacsha1" ] &&
  [ "$(dynreg_form $pk dev01 $ps 8Ygb7ULYh53B6OA hmacmd5)" = "${want}D4461C5C5A1207A225C28A76A499EC0D&signMethod=hmacmd5" ] &&
  ok || fail "python signer does not reproduce the §4 vectors"

# --- HTTP ------------------------------------------------------------------------------------------
start_cloud --seed 11
seeded=$(secret_of dev01)
[[ $seeded =~ ^[0-9a-f]{32}$ ]] && ok || fail "seeded secret: $out"

# §4's sha256 vector, literally, as the body.
register "${want}118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9&signMethod=hmacsha256"
[ "$http" = 200 ] && ok || fail "vector registration: HTTP $http $out"
[[ $out =~ ^\{\"code\":200,\"data\":\{\"productKey\":\"$pk\",\"deviceName\":\"dev01\",\"deviceSecret\":\"[0-9a-f]{32}\"\},\"message\":\"success\"\}$ ]] &&
  ok || fail "success body is not §4's: $out"
grep -qi '^content-type: application/json' "$IOT_TMP/.headers" && ok || fail "content type: $(cat "$IOT_TMP/.headers")"
first=$(field .data.deviceSecret)
[ "$first" != "$seeded" ] && [ "$(secret_of dev01)" = "$first" ] && ok ||
  fail "the issued secret is not the device's: issued $first, state $(secret_of dev01)"

# Repeat before activation: a new secret each time, the newest wins.
register "$(dynreg_form $pk dev01 $ps r-second hmacsha1)"
second=$(field .data.deviceSecret)
register "$(dynreg_form $pk dev01 $ps r-third hmacmd5)"
third=$(field .data.deviceSecret)
[ -n "$second" ] && [ -n "$third" ] && [ "$second" != "$first" ] && [ "$third" != "$second" ] && ok ||
  fail "repeat registrations: $first / $second / $third"
[ "$(secret_of dev01)" = "$third" ] && ok || fail "newest secret does not win: $(secret_of dev01) vs $third"

# Errors.
check_code() { # check_code WANT LABEL
  if [ "$http" = 200 ] && [ "$(field .code)" = "$1" ]; then ok; else fail "$2: HTTP $http $out"; fi
}
register "$(dynreg_form $pk dev01 WrongSecret0000 r1 hmacsha256)"
check_code 401 "wrong ProductSecret"
[ "$(field .message)" = "request auth error" ] && ok || fail "401 message: $out"
register "$(dynreg_form a1NoSuchProd dev01 $ps r1 hmacsha256)"
check_code 6250 "unknown product"
register "$(dynreg_form $pk dev-nobody $ps r1 hmacsha256)"
check_code 6100 "unknown device"
register "$(dynreg_form $pk 'd v' $ps r1 hmacsha256)"
check_code 6280 "invalid DeviceName"
register "$(dynreg_form a1NoDynReg01 dev01 NoDynRegSecret01 r1 hmacsha256)"
check_code 6288 "dynamic registration off"
register "$(dynreg_form $pk dev-disabled $ps r1 hmacsha256)"
check_code 6204 "disabled device"
register "$(dynreg_form $pk dev-online $ps r1 hmacsha256)"
check_code 6289 "seeded ONLINE device"
[ "$(field .message)" = "device is already active" ] && ok || fail "6289 message: $out"
register "productKey=$pk&deviceName=dev01&random=r1&signMethod=hmacsha256"
check_code 460 "no sign"
[ "$(secret_of dev01)" = "$third" ] && ok || fail "an error changed the secret"

# Activation (emulator control) → 6289; ResetThing → registrable again.
activate dev01
[[ $out == *'"status":"ONLINE"'*' 200' ]] && ok || fail "activate: $out"
register "$(dynreg_form $pk dev01 $ps r-after-activation hmacsha256)"
check_code 6289 "after activation"
[ "$(secret_of dev01)" = "$third" ] && ok || fail "6289 changed the secret"
activate dev-nobody
[[ $out == *' 404' ]] && ok || fail "activate an unknown device: $out"
api ResetThing ProductKey="$pk" DeviceName=dev01
[ "$(field .Success)" = true ] && ok || fail "ResetThing: $out"
register "$(dynreg_form $pk dev01 $ps r-after-reset hmacsha256)"
check_code 200 "after ResetThing"
after_reset=$(field .data.deviceSecret)
[ "$after_reset" != "$third" ] && [ "$(secret_of dev01)" = "$after_reset" ] && ok ||
  fail "after ResetThing: $after_reset"

stop_cloud
grep -qE '^  /auth/register/device: 13 \(secrets issued 4\)$' "$IOT_TMP/cloud.err" && ok ||
  fail "registration counters: $(cat "$IOT_TMP/cloud.err")"
grep -qE '^  /_emulator/activate: 2$' "$IOT_TMP/cloud.err" && ok || fail "activate counter"
grep -q 'dynreg.6289=2' "$IOT_TMP/cloud.err" && ok || fail "error counters: $(cat "$IOT_TMP/cloud.err")"
if grep -q "$ps\|$first\|$third\|$after_reset" "$IOT_TMP/cloud.err"; then
  fail "a secret reached the emulator's stderr"
else ok; fi

# --- HTTPS -----------------------------------------------------------------------------------------
start_cloud --tls
[[ $url == https://* ]] && ok || fail "TLS URL: $url"
curl_opts=(--cacert "$state/ca.pem")
register "$(dynreg_form $pk dev02 $ps r-https hmacsha256)"
check_code 200 "HTTPS registration"
tls_secret=$(field .data.deviceSecret)
[ "$(secret_of dev02)" = "$tls_secret" ] && ok || fail "HTTPS: secret not stored"
activate dev02 OFFLINE
[[ $out == *'"status":"OFFLINE"'*' 200' ]] && ok || fail "HTTPS activate OFFLINE: $out"
register "$(dynreg_form $pk dev02 $ps r-https-2 hmacsha1)"
check_code 6289 "HTTPS after activation"
stop_cloud
curl_opts=()

# --- faults ----------------------------------------------------------------------------------------
# The state is read from cloud.db here (the OpenAPI is faulted too).
db_secret() { # db_secret DN
  python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT device_secret FROM devices WHERE product_key = ? AND device_name = ?",
    (sys.argv[2], sys.argv[3])).fetchone()[0])' "$state/cloud.db" "$pk" "$1"
}
# A lost answer did register: the device's secret changed though the client saw nothing.
start_cloud --reset 1 --seed 5
before=$(db_secret dev03)
register "$(dynreg_form $pk dev03 $ps r-reset hmacsha256)"
[ "$rc" -eq 52 ] || [ "$rc" -eq 56 ] && ok || fail "--reset 1: curl exit $rc ($(cat "$IOT_TMP/.curl"))"
after_reset_fault=$(db_secret dev03)
[[ $after_reset_fault =~ ^[0-9a-f]{32}$ ]] && [ "$after_reset_fault" != "$before" ] && ok ||
  fail "a reset registration did not issue a secret: $before -> $after_reset_fault"
stop_cloud
start_cloud --truncate 1
register "$(dynreg_form $pk dev03 $ps r-truncate hmacsha256)"
[ "$rc" -eq 18 ] && ok || fail "--truncate 1: curl exit $rc ($(cat "$IOT_TMP/.curl"))"
[[ $out == '{"code":200,'* ]] && ok || fail "truncated body: $out"
after_truncate=$(db_secret dev03)
[ "$after_truncate" != "$after_reset_fault" ] && ok || fail "a truncated registration did not issue a secret"
stop_cloud
start_cloud --fail-5xx 1 --seed 3
saw=
for i in 1 2 3 4 5 6 7 8; do
  register "$(dynreg_form $pk dev03 $ps "r-5xx-$i" hmacsha256)"
  if [ "$http" = 503 ] && [ "$(field .code)" = 503 ]; then saw+=503; fi
  if [ "$http" = 200 ] && [ "$(field .code)" = 500 ]; then saw+=500; fi
done
[[ $saw == *503* && $saw == *500* ]] && ok || fail "--fail-5xx 1: saw '$saw'"
[ "$(db_secret dev03)" = "$after_truncate" ] && ok || fail "a refused (5xx) registration changed the secret"
stop_cloud
grep -q 'faults injected: 5xx 8' "$IOT_TMP/cloud.err" && ok || fail "5xx counter: $(cat "$IOT_TMP/cloud.err")"
grep -qE '^  /auth/register/device: 8 \(secrets issued 0\)$' "$IOT_TMP/cloud.err" && ok ||
  fail "refused registrations issued secrets: $(cat "$IOT_TMP/cloud.err")"
start_cloud --latency-ms 300-400
set +e
took=$(curl -sS -o /dev/null -w '%{time_total}' --data-binary \
  "$(dynreg_form $pk dev03 $ps r-slow hmacsha256)" "$url/auth/register/device")
set -e
python3 -c "import sys; sys.exit(0 if float('$took') >= 0.3 else 1)" && ok || fail "--latency-ms 300-400: took $took s"
stop_cloud

finish
