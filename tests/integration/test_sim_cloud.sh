#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet-sim cloud over real HTTP and HTTPS: signed requests made here (python3, from
# docs/aliyun-iot-protocol.md §1) and sent with curl; state across restarts, --reseed, TLS with
# the emulator's CA, QPS limits, injected faults, clean shutdown with counters.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
scenario="$here/../../sim/scenarios/demo.json"
state="$IOT_TMP/state"
ak=LTAI5tEmulatorDemoKey01
sk=emulatorDemoSecret0000000000001

# sign METHOD ACTION K=V...: prints the signed form (body or query string) of one request.
sign() { python3 "$here/openapi_sign.py" "$1" "$ak" "$sk" "${@:2}"; }
# This test checks the exchange log itself, so it records even outside CTest.
IOT_EXCHANGE_DIR=${IOT_EXCHANGE_DIR:-$IOT_TMP/exchanges}

url=
cloud_pid=
start_cloud() { # start_cloud ARGS...: starts the emulator on $state, waits for "ready"
  rm -f "$IOT_TMP/cloud.out" "$IOT_TMP/cloud.err"
  exchange_log_args
  "$IOTFLEET_SIM" cloud --listen 127.0.0.1:0 --state-dir "$state" "${exchange_args[@]}" "$@" \
    >"$IOT_TMP/cloud.out" 2>"$IOT_TMP/cloud.err" &
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
stop_cloud() { # stop_cloud [SIGNAL]: expects exit 0
  kill "-${1:-TERM}" "$cloud_pid"
  set +e
  wait "$cloud_pid"
  local status=$?
  set -e
  if [ "$status" -eq 0 ]; then ok; else fail "emulator exit $status after SIG${1:-TERM}"; fi
}
# post ACTION K=V...: signed POST; body in $out, HTTP status in $http, curl's exit code in $rc.
post() {
  local action=$1
  shift
  set +e
  http=$(curl -sS "${curl_opts[@]}" -o "$IOT_TMP/.body" -w '%{http_code}' \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "$(sign POST "$action" "$@")" "$url/" 2>"$IOT_TMP/.curl")
  rc=$?
  set -e
  out=$(cat "$IOT_TMP/.body" 2>/dev/null || true)
}
field() { jq -r "$1" <<<"$out"; } # field JQ_PATH: from the last answer
curl_opts=()

# --- a fresh state without a scenario is a usage error -----------------------------------------
run "$IOTFLEET_SIM" cloud --state-dir "$IOT_TMP/empty" --listen 127.0.0.1:0
expect_rc 2 "no state, no scenario"
expect_err 'give --scenario' "no state, no scenario: message"

# --- first run: seed, answer over HTTP --------------------------------------------------------
start_cloud --scenario "$scenario" --seed 7 --batch-delay-ms 200
[[ $url =~ ^http://127\.0\.0\.1:[0-9]+$ ]] && ok || fail "first stdout line is not the URL: $url"
grep -q 'seeded 2 products, 1202 devices' "$IOT_TMP/cloud.err" && ok ||
  fail "no seeding summary: $(cat "$IOT_TMP/cloud.err")"
[ -f "$state/cloud.db" ] && ok || fail "no cloud.db in the state dir"

post QueryProduct ProductKey=a1TrackerEm
[ "$http" = 200 ] && ok || fail "QueryProduct: HTTP $http $out"
[ "$(field .Success)" = true ] && ok || fail "QueryProduct: $out"
[ "$(field .Data.DeviceCount)" = 1002 ] && ok || fail "QueryProduct DeviceCount: $out"
[ "$(field .Data.ProductSecret)" = Xq7mB2kLp9RtZc4W ] && ok || fail "QueryProduct ProductSecret: $out"
[[ $(field .RequestId) =~ ^[0-9A-F-]{36}$ ]] && ok || fail "RequestId: $out"

# GET with the parameters in the query string (signed with GET).
set +e
out=$(curl -sS "$url/?$(sign GET QueryDevice ProductKey=a1TrackerEm PageSize=5)")
set -e
[ "$(field '.Data.DeviceInfo | length')" = 5 ] && ok || fail "GET QueryDevice: $out"
[ "$(field .Total)" = 1002 ] && ok || fail "GET QueryDevice Total: $out"
[ -n "$(field .NextToken)" ] && ok || fail "GET QueryDevice NextToken: $out"

post QueryDeviceDetail ProductKey=a1TrackerEm DeviceName=862345678901234
[ "$(field .Data.DeviceSecret)" = 0123456789abcdef0123456789abcdef ] && ok ||
  fail "QueryDeviceDetail of a listed device: $out"

# Device state: BatchGetDeviceState, GetDeviceStatus; DisableThing and EnableThing on the
# scenario's second listed device (UNACTIVE: enabling restores that).
post BatchGetDeviceState ProductKey=a1TrackerEm DeviceName.1=862345678901234 DeviceName.2=862345678901242
[ "$(field '[.DeviceStatusList.DeviceStatus[].Status] | join(",")')" = ONLINE,UNACTIVE ] && ok ||
  fail "BatchGetDeviceState: $out"
post DisableThing ProductKey=a1TrackerEm DeviceName=862345678901242
[ "$(field .Success)" = true ] && ok || fail "DisableThing: $out"
post GetDeviceStatus ProductKey=a1TrackerEm DeviceName=862345678901242
[ "$(field .Data.Status)" = DISABLE ] && ok || fail "GetDeviceStatus after DisableThing: $out"
post EnableThing ProductKey=a1TrackerEm DeviceName=862345678901242
[ "$(field .Success)" = true ] && ok || fail "EnableThing: $out"
post GetDeviceStatus ProductKey=a1TrackerEm DeviceName=862345678901242
[ "$(field .Data.Status)" = UNACTIVE ] && ok || fail "GetDeviceStatus after EnableThing: $out"

# A body signed for one request and altered: SignatureDoesNotMatch, HTTP 400.
body=$(sign POST QueryProduct ProductKey=a1TrackerEm)
set +e
http=$(curl -sS -o "$IOT_TMP/.body" -w '%{http_code}' --data-binary "${body/a1TrackerEm/a1MeterEmu1}" "$url/")
set -e
out=$(cat "$IOT_TMP/.body")
[ "$http" = 400 ] && [ "$(field .Code)" = SignatureDoesNotMatch ] && ok ||
  fail "tampered request: HTTP $http $out"
# The same signed body twice: the second is a replay.
http=$(curl -sS -o /dev/null -w '%{http_code}' --data-binary "$body" "$url/")
[ "$http" = 200 ] && ok || fail "first use of a signed body: HTTP $http"
http=$(curl -sS -o "$IOT_TMP/.body" -w '%{http_code}' --data-binary "$body" "$url/")
out=$(cat "$IOT_TMP/.body")
[ "$http" = 400 ] && [ "$(field .Code)" = SignatureNonceUsed ] && ok || fail "replay: HTTP $http $out"

# Keep-alive: three requests on one curl command line use one connection.
conns=$(curl -sS -o /dev/null -w '%{num_connects} ' --data-binary "$(sign POST QueryProduct ProductKey=a1TrackerEm)" "$url/" \
  --next -o /dev/null -w '%{num_connects} ' --data-binary "$(sign POST QueryProduct ProductKey=a1TrackerEm)" "$url/" \
  --next -o /dev/null -w '%{num_connects}' --data-binary "$(sign POST QueryProduct ProductKey=a1TrackerEm)" "$url/")
[ "$conns" = "1 0 0" ] && ok || fail "keep-alive: connects per request: $conns"

# Register a device and run the custom-name batch flow.
post RegisterDevice ProductKey=a1MeterEmu1 DeviceName=kept-across-runs
[ "$(field .Success)" = true ] && ok || fail "RegisterDevice: $out"
post BatchCheckDeviceNames ProductKey=a1MeterEmu1 DeviceName.1=batch-a-001 DeviceName.2=batch-a-002
apply=$(field .Data.ApplyId)
[[ $apply =~ ^[0-9]+$ ]] && ok || fail "BatchCheckDeviceNames: $out"
sleep 0.4
post QueryBatchRegisterDeviceStatus ProductKey=a1MeterEmu1 ApplyId="$apply"
[ "$(field .Data.Status)" = CHECK_SUCCESS ] && ok || fail "after the check delay: $out"
post BatchRegisterDeviceWithApplyId ProductKey=a1MeterEmu1 ApplyId="$apply"
sleep 0.4
post QueryPageByApplyId ApplyId="$apply"
[ "$(field .Total)" = 2 ] && ok || fail "QueryPageByApplyId: $out"
[ "$(field '.ApplyDeviceList.ApplyDeviceInfo[0].DeviceSecret | length')" = 32 ] && ok ||
  fail "QueryPageByApplyId secrets: $out"

stop_cloud TERM
grep -q 'shutting down' "$IOT_TMP/cloud.err" && ok || fail "no shutdown line"
grep -qE '^  QueryProduct: [0-9]+' "$IOT_TMP/cloud.err" && ok || fail "no per-Action counters: $(cat "$IOT_TMP/cloud.err")"
grep -q 'SignatureNonceUsed=1' "$IOT_TMP/cloud.err" && ok || fail "no error counters"
if grep -q 'Xq7mB2kLp9RtZc4W\|0123456789abcdef0123456789abcdef\|emulatorDemoSecret' "$IOT_TMP/cloud.err"; then
  fail "a secret reached the emulator's stderr"
else ok; fi
# The exchange log of that run: one line per OpenAPI request, the answers' secrets masked.
xlog=${exchange_args[1]}
[ "$(jq -r 'select(.action == "QueryProduct" and .status == 200) | .response.Data.ProductSecret' "$xlog" | sort -u)" = '***' ] &&
  ok || fail "exchange log: QueryProduct's ProductSecret is not masked: $(head -c 600 "$xlog")"
[ "$(jq -r 'select(.code == "SignatureNonceUsed") | .client' "$xlog")" = other ] && ok ||
  fail "exchange log: the replay is not logged as curl's"
[ "$(jq -r 'select(.action == "QueryPageByApplyId") | .params | keys | join(",")' "$xlog")" = ApplyId ] &&
  ok || fail "exchange log: common parameters were not left out"
if grep -q 'Xq7mB2kLp9RtZc4W\|0123456789abcdef0123456789abcdef\|emulatorDemoSecret' "$xlog"; then
  fail "a secret reached the exchange log"
else ok; fi
run "$IOTFLEET_SIM" cloud --list-actions
expect_rc 0 "--list-actions"
expect_out '^QueryDeviceByStatus$' "--list-actions names the Actions"

# --- second run on the same state: same cloud, scenario not re-applied ---------------------------
start_cloud --scenario "$scenario" -v
grep -q 'not re-applied' "$IOT_TMP/cloud.err" && ok || fail "no 'not re-applied' note"
post QueryDeviceDetail ProductKey=a1MeterEmu1 DeviceName=kept-across-runs
[ "$(field .Success)" = true ] && ok || fail "device registered in run 1 is gone: $out"
grep -q 'POST / QueryDeviceDetail 200 OK' "$IOT_TMP/cloud.err" && ok || fail "-v: no request line"
stop_cloud INT

# --- --reseed starts over --------------------------------------------------------------------------
start_cloud --scenario "$scenario" --seed 7 --reseed
post QueryDeviceDetail ProductKey=a1MeterEmu1 DeviceName=kept-across-runs
[ "$(field .Code)" = iot.device.NotExistedDevice ] && ok || fail "--reseed kept the device: $out"
stop_cloud

# --- QPS limits ------------------------------------------------------------------------------------
start_cloud --qps-scale 0.02 # QueryProduct: QPS 1
post QueryProduct ProductKey=a1TrackerEm
first=$http
post QueryProduct ProductKey=a1TrackerEm
[ "$first" = 200 ] && [ "$http" = 400 ] && [ "$(field .Code)" = Throttling.User ] && ok ||
  fail "QPS 1: HTTP $first then $http $out"
stop_cloud

# --- faults ----------------------------------------------------------------------------------------
start_cloud --reset 1 --seed 3
post RegisterDevice ProductKey=a1MeterEmu1 DeviceName=reset-but-done
[ "$rc" -eq 52 ] || [ "$rc" -eq 56 ] && ok || fail "--reset 1: curl exit $rc ($(cat "$IOT_TMP/.curl"))"
stop_cloud
start_cloud --truncate 1
post QueryProduct ProductKey=a1TrackerEm
[ "$rc" -eq 18 ] && ok || fail "--truncate 1: curl exit $rc ($(cat "$IOT_TMP/.curl"))"
stop_cloud
start_cloud --fail-5xx 1 --seed 3
saw=
for i in 1 2 3 4 5 6; do
  post RegisterDevice ProductKey=a1MeterEmu1 DeviceName="refused-$i"
  if [ "$http" = 503 ] && [ "$(field .Code)" = ServiceUnavailable ]; then saw+=503; fi
  if [ "$http" = 200 ] && [ "$(field .Code)" = iot.system.SystemException ]; then saw+=sys; fi
done
[[ $saw == *503* && $saw == *sys* ]] && ok || fail "--fail-5xx 1: saw '$saw'"
stop_cloud
grep -q 'faults injected: 5xx 6' "$IOT_TMP/cloud.err" && ok || fail "5xx counter: $(cat "$IOT_TMP/cloud.err")"
start_cloud --latency-ms 300-400
set +e
took=$(curl -sS -o /dev/null -w '%{time_total}' --data-binary "$(sign POST QueryProduct ProductKey=a1TrackerEm)" "$url/")
set -e
python3 -c "import sys; sys.exit(0 if float('$took') >= 0.3 else 1)" && ok || fail "--latency-ms 300-400: took $took s"
# What the faulted runs did to the state: the reset RegisterDevice happened, the 5xx ones did not.
post QueryDeviceDetail ProductKey=a1MeterEmu1 DeviceName=reset-but-done
[ "$(field .Success)" = true ] && ok || fail "a reset RegisterDevice did not happen: $out"
post QueryDeviceDetail ProductKey=a1MeterEmu1 DeviceName=refused-1
[ "$(field .Code)" = iot.device.NotExistedDevice ] && ok || fail "a refused RegisterDevice happened: $out"
stop_cloud

# --- HTTPS with the emulator's CA ------------------------------------------------------------------
start_cloud --tls
[[ $url =~ ^https://127\.0\.0\.1:[0-9]+$ ]] && ok || fail "TLS URL: $url"
ca=$(sed -n 's/^ca: //p' "$IOT_TMP/cloud.err")
[ "$ca" = "$state/ca.pem" ] && ok || fail "CA path on stderr: $(cat "$IOT_TMP/cloud.err")"
[ "$(stat -c %a "$state/server-key.pem")" = 600 ] && ok || fail "server-key.pem is not 0600"
curl_opts=(--cacert "$ca")
post QueryProduct ProductKey=a1TrackerEm
[ "$http" = 200 ] && [ "$(field .Success)" = true ] && ok || fail "HTTPS with --cacert: rc $rc HTTP $http $out"
curl_opts=()
post QueryProduct ProductKey=a1TrackerEm
[ "$rc" -eq 60 ] && ok || fail "HTTPS without the CA: curl exit $rc, want 60"
ca_sum=$(sha256sum <"$state/ca.pem")
stop_cloud
start_cloud --tls
[ "$(sha256sum <"$state/ca.pem")" = "$ca_sum" ] && ok || fail "certificates were not reused"
curl_opts=(--cacert "$state/ca.pem")
url="https://localhost:${url##*:}"
post QueryProduct ProductKey=a1TrackerEm
[ "$http" = 200 ] && ok || fail "HTTPS to localhost: rc $rc HTTP $http"
stop_cloud

finish
