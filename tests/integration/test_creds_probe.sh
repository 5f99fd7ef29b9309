#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# creds probe against a real MQTT broker: mosquitto on 127.0.0.1 with TLS (a test CA) and a
# password file whose entries are computed here with Aliyun's algorithm (username DN&PK, password
# HMAC-SHA256 of clientId..deviceName..productKey.., the clientId PK.DN|securemode=2,...|), so a
# probe is accepted only when it signs with the same DeviceSecret. The cloud emulator answers the
# ONLINE check. Verdicts: accepted (secret from a file and from the ledger), bad-credentials,
# tls (wrong CA, no CA), tcp (no broker), dns, the ONLINE guard and --force, an unknown and a
# disabled device, Ctrl-C while the broker is silent; the password is never printed.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
command -v mosquitto >/dev/null || fail "mosquitto is not installed (scripts/setup.sh installs it)"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1ProbeTest
s_ok=Pr0beSecretOk000000000000000000a
s_live=Pr0beSecretLive0000000000000000b
s_off=Pr0beSecretLedger00000000000000c

# aliyun_password DN SECRET, for this product.
probe_password() { aliyun_password "$pk" "$1" "$2"; }

# --- the broker (a test CA, its certificate for 127.0.0.1) and an unrelated CA -----------------
mqtt_lab_start "$IOT_TMP/mqtt" "$pk" "dev-ok=$s_ok" "dev-live=$s_live" "dev-off=$s_off" && ok ||
  fail "mosquitto did not start"
port=$mqtt_port
cp "$mqtt_ca" ca.pem
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key \
  -out other-ca.pem 2>/dev/null
[ -s other-ca.pem ] && ok || fail "test certificates"

# --- the cloud: the ONLINE check ---------------------------------------------------------------
cat >scenario.json <<JSON
{"access_keys": [{"id": "LTAI5tProbeKey001", "secret": "probeAccessSecret001"}],
 "products": [{"product_key": "$pk", "devices": [
   {"name": "dev-ok", "status": "OFFLINE", "secret": "$s_ok"},
   {"name": "dev-live", "status": "ONLINE", "secret": "$s_live"},
   {"name": "dev-off", "status": "UNACTIVE", "secret": "$s_off"},
   {"name": "dev-dis", "status": "DISABLE"}]}]}
JSON
cloud_start "$IOT_TMP/cloud" scenario.json --seed 3
printf 'probeAccessSecret001' >ak.txt
chmod 600 ak.txt
cloud=(--endpoint "$cloud_url" --access-key-id LTAI5tProbeKey001 --access-key-secret-file ak.txt
  --ca-file ca.pem)
lab=(--product-key "$pk" --mqtt-endpoint "127.0.0.1:$port")
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1]))' "$1" <<<"$out"; }
expect_field() { # expect_field NAME WANT LABEL
  local got
  got=$(field "$1" 2>&1)
  [ "$got" = "$2" ] && ok || fail "$3: $1 is '$got', want '$2' ($out $err)"
}

printf '%s\n' "$s_ok" >ok.secret
printf '%s\n' "wrong${s_ok:5}" >wrong.secret
chmod 600 ok.secret wrong.secret

run "$IOTFLEET" "${cloud[@]}" -o json creds probe dev-ok "${lab[@]}" --device-secret-file ok.secret
expect_rc 0 "the right secret is accepted"
expect_field verdict accepted "accepted"
expect_field failed_step None "no failed step"
expect_field tls True "over TLS"
expect_field cloud_status OFFLINE "the cloud was asked"
for step in dns_ms tcp_ms tls_ms connack_ms; do
  [[ "$(field $step)" =~ ^[0-9]+$ ]] && ok || fail "$step timed: $out"
done
expect_field signed_with "DeviceSecret from file ok.secret" "the source"
expect_no_out "$(probe_password dev-ok "$s_ok")" "the password is not printed"
expect_no_out "$s_ok" "the secret is not printed"

run "$IOTFLEET" "${cloud[@]}" creds probe dev-ok "${lab[@]}" --device-secret-file wrong.secret
expect_rc 6 "a secret the broker does not hold"
expect_out '^verdict +bad-credentials$' "bad-credentials"
expect_out '^connack +(4|5)$' "CONNACK 4 or 5"
expect_out '^meaning +.*DeviceSecret differs' "the meaning: the cloud's secret differs"
expect_err 'bad-credentials' "the error names the verdict"

printf 'ProductKey,DeviceName,DeviceSecret\n%s,dev-off,%s\n' "$pk" "$s_off" >pool.csv
run "$IOTFLEET" pool import pool.csv
expect_rc 0 "pool import"
run "$IOTFLEET" "${cloud[@]}" -o json creds probe dev-off --mqtt-endpoint "127.0.0.1:$port"
expect_rc 0 "the ledger's secret (and ProductKey) is accepted"
expect_out '"signed_with": "DeviceSecret from the ledger' "from the ledger"

# --- TLS and the network -----------------------------------------------------------------------
no_ca=(--endpoint "$cloud_url" --access-key-id LTAI5tProbeKey001 --access-key-secret-file ak.txt)
run "$IOTFLEET" "${no_ca[@]}" --ca-file other-ca.pem -o json creds probe dev-ok "${lab[@]}" \
  --device-secret-file ok.secret --force
expect_rc 4 "a CA that did not sign the broker's certificate"
expect_field verdict tls "tls"
expect_field failed_step tls "the failed step"
expect_out 'certificate' "the reason names the certificate"
run "$IOTFLEET" -o json creds probe dev-ok "${lab[@]}" --device-secret-file ok.secret --force
expect_rc 4 "the system CAs do not trust the test CA"
expect_field verdict tls "tls without --ca-file"
expect_err 'force' "--force warns that a connected device is knocked off"

closed=$(free_port)
run "$IOTFLEET" --ca-file ca.pem -o json creds probe dev-ok --product-key "$pk" \
  --mqtt-endpoint "127.0.0.1:$closed" --device-secret-file ok.secret --force
expect_rc 4 "no broker"
expect_field verdict tcp "tcp"
expect_out 'refused' "connection refused"

run "$IOTFLEET" -o json creds probe dev-ok --product-key "$pk" --mqtt-endpoint \
  no-such-host.invalid:1883 --device-secret-file ok.secret --force --timeout 30s
expect_rc 4 "a host that does not resolve"
expect_field verdict dns "dns"
expect_out 'letter case' "the meaning names the ProductKey's letter case"

# --- the cloud's state -------------------------------------------------------------------------
printf '%s\n' "$s_live" >live.secret
chmod 600 live.secret
run "$IOTFLEET" "${cloud[@]}" creds probe dev-live "${lab[@]}" --device-secret-file live.secret
expect_rc 2 "an ONLINE device is refused"
expect_err 'ONLINE.*kicked by the same device.*--force' "says why and how"
[ "$(grep -c "dev-live&$pk" "$mqtt_dir/mosquitto.log")" = 0 ] && ok || fail "the broker saw no connection"
run "$IOTFLEET" "${cloud[@]}" creds probe dev-live "${lab[@]}" --device-secret-file live.secret --force
expect_rc 0 "--force probes it anyway"
run "$IOTFLEET" "${cloud[@]}" creds probe dev-gone "${lab[@]}" --device-secret-file ok.secret
expect_rc 4 "an unknown device"
expect_err 'does not exist on the cloud' "named"
run "$IOTFLEET" "${cloud[@]}" creds probe dev-dis "${lab[@]}" --device-secret-file ok.secret
expect_rc 4 "a disabled device"
expect_err 'disabled' "named"
run "$IOTFLEET" creds probe dev-ok "${lab[@]}" --device-secret-file ok.secret
expect_rc 4 "no AccessKey for the ONLINE check"
expect_err 'give --force to skip the check' "the way out is named"

# --- the triplet the module holds (--port) -----------------------------------------------------
sim_start "$IOT_TMP/sim" --count 1 --module luat --urc-rate 0
run "$IOTFLEET" module at --port "${sim_ports[0]}" "AT+WISN=\"$pk|dev-ok|$s_ok\""
expect_rc 0 "the module holds dev-ok's triplet"
run "$IOTFLEET" "${cloud[@]}" -o json creds probe --port "${sim_ports[0]}" -m luat --layout triplet \
  --mqtt-endpoint "127.0.0.1:$port"
expect_rc 0 "the module's secret is the cloud's"
expect_field device_name dev-ok "the module's DeviceName"
expect_field product_key "$pk" "the module's ProductKey"
expect_field signed_with "DeviceSecret from the module on ${sim_ports[0]}" "the source"
run "$IOTFLEET" creds probe dev-live --port "${sim_ports[0]}" -m luat --layout triplet --force \
  --mqtt-endpoint "127.0.0.1:$port"
expect_rc 2 "a DeviceName that is not the module's"
expect_err 'holds DeviceName dev-ok, not dev-live' "named"
run "$IOTFLEET" module at --port "${sim_ports[0]}" "AT+WISN=\"$pk|dev-ok|wrong${s_ok:5}\""
run "$IOTFLEET" "${cloud[@]}" creds probe --port "${sim_ports[0]}" -m luat --layout triplet \
  --mqtt-endpoint "127.0.0.1:$port"
expect_rc 6 "a corrupted module secret"
expect_out "^meaning +the cloud refused the module's DeviceSecret: the module side" "module side"
expect_no_out "wrong${s_ok:5}" "the module's secret is not printed"
first_cause() { python3 -c 'import json,sys; f=json.load(sys.stdin); print(f[0]["cause"] if f else "")' <<<"$out"; }
diag=(diagnose device dev-ok --port "${sim_ports[0]}" -m luat --layout triplet --no-ledger)
run "$IOTFLEET" "${cloud[@]}" -o json "${diag[@]}" --probe --mqtt-endpoint "127.0.0.1:$port"
expect_rc 6 "diagnose device --probe: a cause"
[ "$(first_cause)" = secret-refused-by-endpoint ] && ok || fail "first cause: $out $err"
expect_out 'the strongest cloud-side evidence' "the evidence says what it is"
expect_err "source probe: used — the module's secret: bad-credentials" "the probe is a source"
run "$IOTFLEET" "${cloud[@]}" -o json "${diag[@]}"
expect_err 'source probe: not used — give --probe' "without --probe: named as missing"
if grep -q secret-refused-by-endpoint <<<"$out"; then fail "no probe, no probe cause"; else ok; fi
run "$IOTFLEET" "${cloud[@]}" -o json diagnose device dev-live --product-key "$pk" --no-ledger --probe \
  --mqtt-endpoint "127.0.0.1:$port"
expect_err 'source probe: failed — not run: the device is ONLINE' "never probes an ONLINE device"
run "$IOTFLEET" module at --port "${sim_ports[0]}" "AT+WISN=\"$pk|dev-ok|$s_ok\""
run "$IOTFLEET" "${cloud[@]}" -o json "${diag[@]}" --probe --mqtt-endpoint "127.0.0.1:$port"
expect_err "source probe: used — the module's secret: accepted" "the repaired module: accepted"
if grep -q 'secret-' <<<"$out"; then fail "no secret cause once accepted: $out"; else ok; fi
run "$IOTFLEET" creds probe --port "${sim_ports[0]}" -m luat --layout triplet \
  --device-secret-file ok.secret --force
expect_rc 2 "--port and --device-secret-file"
run "$IOTFLEET" creds probe --force
expect_rc 2 "no DeviceName and no --port"
expect_err 'give its DeviceName, or --port P' "says what to give"

# --- bad input and Ctrl-C ----------------------------------------------------------------------
run "$IOTFLEET" creds probe dev-ok --product-key "$pk" --mqtt-endpoint 127.0.0.1:99999 \
  --device-secret-file ok.secret --force
expect_rc 2 "a bad --mqtt-endpoint"
expect_err '--mqtt-endpoint: 127.0.0.1:99999: the port must be a number 0-65535.*HOST:PORT' \
  "the option, the text and the form are named"
run "$IOTFLEET" creds probe dev-ok --product-key "$pk" --mqtt-endpoint :1883 \
  --device-secret-file ok.secret --force
expect_rc 2 "an --mqtt-endpoint without a host"
run "$IOTFLEET" creds probe dev-ok --product-key "$pk" --force
expect_rc 2 "no secret"

silent=$(free_port)
python3 - "$silent" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
open("silent.ready", "w").close()
held = []
while True:  # accepts and never answers; says when a client's first bytes (CONNECT) came
    c, _ = s.accept()
    held.append(c)
    if c.recv(1):
        open("silent.connect", "w").close()
PY
silent_pid=$!
iot_cleanup_hooks+=("kill $silent_pid 2>/dev/null")
for _ in $(seq 300); do [ -e silent.ready ] && break; sleep 0.1; done
[ -e silent.ready ] || fail "the silent broker did not start"
"$IOTFLEET" creds probe dev-ok --product-key "$pk" --mqtt-endpoint "127.0.0.1:$silent" \
  --secure-mode 3 --device-secret-file ok.secret --force --timeout 60s >int.out 2>int.err &
victim=$!
wait_caught "$victim" || fail "creds probe never installed its signal handlers"
# Interrupt once the probe has sent its CONNECT: it is waiting for the CONNACK (60 s at most).
deadline=$((SECONDS + 60))
until [ -e silent.connect ] || [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$victim" 2>/dev/null; do
  sleep 0.02
done
[ -e silent.connect ] && ok || fail "creds probe never sent its CONNECT: $(cat int.err)"
start=$(date +%s%N)
kill -INT "$victim"
set +e
wait "$victim"
rc=$?
set -e
ms=$((($(date +%s%N) - start) / 1000000))
echo "creds probe waiting for a CONNACK, SIGINT: exit $rc after $ms ms" >&2
[ "$rc" = 130 ] && ok || fail "Ctrl-C while waiting for a CONNACK: exit $rc ($(cat int.err))"
# Well under the 60 s --timeout; an ASan exit (LeakSanitizer's scan) on busy cores takes a while.
[ "$ms" -lt 3000 ] && ok || fail "Ctrl-C took $ms ms"

finish
