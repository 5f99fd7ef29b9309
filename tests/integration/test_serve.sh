#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet serve over real HTTPS (a certificate of this test's own, curl and Python verifying
# it): 1 000 devices asking at once each get their own secret, the pool's; the same module asking
# again gets it again; a clone, a module asking for a second name, a wrong sign, a wrong
# enrollment secret, an unknown device or product, a replayed or malformed request, a body too
# large: each refused with its code and nothing bound; the device-key scheme with keys from
# `creds enrollment-key`, and burned by `provision --enrollment-key`; /healthz, /metrics, the
# NDJSON access log without secrets or signs; a certificate reloaded on SIGHUP (a bad one keeps
# the current one); SIGTERM answers what is in flight and exits 0; per-address and per-device
# rate limits (429 with Retry-After) on a plain-HTTP lab server; 20 silent clients against
# --max-connections 4 and --read-timeout 2s. The ledger is read with sqlite3.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
export IOTFLEET_STATION=serve-lab
pk=a1ServeTest1
pk2=a1ServeKeys1
product_secret=EnrollSecret-0123456789abcdef
group=GroupSecret-0123456789abcdef-line1
client() { python3 "$here/serve_client.py" "$@"; }
# devices_csv OFFSET N…: lines "dev-N,IMEI of OFFSET+N" (one Python for all of them).
devices_csv() { python3 -c 'import sys
offset = int(sys.argv[1])
for n in map(int, sys.argv[2:]):
    d = "86993945" + "%06d" % (offset + n)
    s = sum(int(c) if i % 2 == 0 else sum(divmod(2 * int(c), 10)) for i, c in enumerate(d))
    print("dev-%04d,%s%d" % (n, d, (10 - s % 10) % 10))' "$@"; }
sql() { python3 -c 'import sqlite3, sys; print("\n".join(",".join(map(str, r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))' "$IOTFLEET_LEDGER" "$1"; }
secret_for() { printf 'S%031d' "$1"; }

# The pool: 1 240 devices of a product signed with its enrollment secret, 5 of a device-key product.
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 1240); do echo "$pk,dev-$(printf %04d "$n"),$(secret_for "$n")"; done
} >pool.csv
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 5); do echo "$pk2,key-$n,$(secret_for $((500 + n)))"; done
} >pool2.csv
"$IOTFLEET" pool import pool.csv >/dev/null && "$IOTFLEET" pool import pool2.csv >/dev/null && ok ||
  fail "pool import"
{
  echo "product_key,scheme,secret"
  echo "$pk,product,$product_secret"
  echo "$pk2,device-key,$group"
} >enrollment.csv
chmod 600 enrollment.csv
test_cert

# --- options refused before anything listens -------------------------------------------------
run "$IOTFLEET" serve --listen 127.0.0.1:0 --enrollment enrollment.csv
expect_rc 2 "no TLS and no --insecure-http"
expect_err "tls-cert" "names the TLS options"
run "$IOTFLEET" serve --listen 127.0.0.1:0 --enrollment enrollment.csv --tls-cert key.pem --tls-key cert.pem
expect_rc 2 "a certificate and key the wrong way round"
printf 'a1Bad,product,short\n' >bad.csv
run "$IOTFLEET" serve --listen 127.0.0.1:0 --enrollment bad.csv --insecure-http
expect_rc 2 "a short enrollment secret"
expect_err "bad.csv line 1: the secret is shorter than 16" "names the line"
expect_no_err "short," "without printing the secret"

# --- the server ---------------------------------------------------------------------------------
"$IOTFLEET" serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enrollment.csv \
  --access-log access.ndjson --threads 32 2>serve.err &
server=$!
iot_cleanup_hooks+=("kill $server 2>/dev/null")
wait_ready "$server" serve.err "iotfleet serve" "listening on" || finish
url=$(grep -o 'https://127.0.0.1:[0-9]*' serve.err | head -n1)
[ -n "$url" ] && ok || fail "the URL on stderr: $(cat serve.err)"
run "$IOTFLEET" serve --listen "127.0.0.1:${url##*:}" --insecure-http --enrollment enrollment.csv
expect_rc 1 "a port another server listens on"
expect_err "Address already in use \(another server listens there: stop it or pick another port\)" \
  "says what to do"
post() { curl -sS --cacert cert.pem -X POST --data-binary "$1" "$url/auth/register/device"; }
code_of() { jq -r .code <<<"$1"; }

run curl -sS --cacert cert.pem "$url/healthz"
expect_out '"status":"ok"' "healthz: the ledger is reachable"

# 1 000 devices at once, each over verified TLS.
devices_csv 100000 $(seq 1 200) $(seq 441 1240) >devices.csv
client batch "$url" cert.pem "$pk" product "$product_secret" devices.csv 100 >batch.ndjson 2>batch.err &&
  ok || fail "the batch: $(tail -3 batch.err)"
[ "$(jq -r 'select(.code == 200) | .device_name' batch.ndjson | sort -u | wc -l)" = 1000 ] && ok ||
  fail "1000 devices got a secret: $(jq -c 'select(.code != 200)' batch.ndjson | head -3)"
bad=0
while IFS=, read -r dn secret; do
  [ "$secret" = "$(secret_for "$((10#${dn#dev-}))")" ] || bad=$((bad + 1))
done < <(jq -r '"\(.device_name),\(.secret)"' batch.ndjson)
[ "$bad" = 0 ] && ok || fail "$bad devices got a secret not the pool's"
burned=$(sql "SELECT count(*) FROM triplets WHERE product_key = '$pk' AND state = 'burned' AND station = 'serve-lab'")
[ "$burned" = 1000 ] && ok || fail "1000 triplets burned to their modules, not $burned"
mismatch=$(sql "SELECT count(*) FROM triplets WHERE product_key = '$pk' AND state = 'burned' AND imei = ''")
[ "$mismatch" = 0 ] && ok || fail "every served triplet is bound to an IMEI"

# The same module asking again (its stored secret went bad): the same secret.
imei1=$(imei_of 100001)
again=$(post "$(client body "$product_secret" productKey=$pk deviceName=dev-0001 random=x1 imei=$imei1)")
[ "$(code_of "$again")" = 200 ] && [ "$(jq -r .data.deviceSecret <<<"$again")" = "$(secret_for 1)" ] && ok ||
  fail "the same module again: $again"

# Refusals: each with its code, nothing bound.
other=$(imei_of 999)
r=$(post "$(client body "$product_secret" productKey=$pk deviceName=dev-0001 random=x2 imei=$other)")
[ "$(code_of "$r")" = 6289 ] && ok || fail "a clone: $r"
expect_eq "$(sql "SELECT imei FROM triplets WHERE device_name = 'dev-0001'")" "$imei1" "the clone bound nothing"
grep -q "clone alert: $pk/dev-0001 asked for by IMEI $other" serve.err && ok || fail "the clone alert on stderr"
r=$(post "$(client body "$product_secret" productKey=$pk deviceName=dev-0210 random=x3 imei=$imei1)")
[ "$(code_of "$r")" = 6289 ] && ok || fail "a module asking for a second name: $r"
r=$(post "$(client body "WrongSecret-0123456789" productKey=$pk deviceName=dev-0211 random=x4 imei=$other)")
[ "$(code_of "$r")" = 401 ] && ok || fail "a wrong enrollment secret: $r"
tampered=$(client body "$product_secret" productKey=$pk deviceName=dev-0211 random=x5 imei=$other)
r=$(post "${tampered/deviceName=dev-0211/deviceName=dev-0212}")
[ "$(code_of "$r")" = 401 ] && ok || fail "a sign for another name: $r"
r=$(post "$(client body "$product_secret" productKey=$pk deviceName=nobody random=x6 imei=$other)")
[ "$(code_of "$r")" = 6100 ] && ok || fail "an unknown device: $r"
r=$(post "$(client body "$product_secret" productKey=a1NotServed1 deviceName=dev-0211 random=x7 imei=$other)")
[ "$(code_of "$r")" = 6250 ] && ok || fail "an unknown product: $r"
r=$(post "$(client body "$product_secret" productKey=$pk deviceName=dev-0211 random=x8 imei=$other timestamp=1700000000000)")
[ "$(code_of "$r")" = 460 ] && grep -q "replay" <<<"$r" && ok || fail "a replayed (old) request: $r"
r=$(post "$(client body "$product_secret" productKey=$pk deviceName=dev-0211 random=x9)")
[ "$(code_of "$r")" = 460 ] && grep -q "imei is missing" <<<"$r" && ok || fail "no imei: $r"
r=$(post "productKey=$pk&deviceName=dev-0211&deviceName=dev-0212")
[ "$(code_of "$r")" = 460 ] && ok || fail "a malformed form: $r"
status=$(curl -sS -o /dev/null -w '%{http_code}' --cacert cert.pem -X POST --data-binary "@pool.csv" "$url/auth/register/device")
[ "$status" = 413 ] && ok || fail "a body too large: HTTP $status"
now_ms=$(($(date +%s) * 1000))
r=$(post "$(client body "$product_secret" productKey=$pk deviceName=dev-0211 random=y1 imei=$other timestamp=$now_ms)")
[ "$(code_of "$r")" = 200 ] && ok || fail "a fresh timestamp is accepted: $r"
expect_eq "$(sql "SELECT count(*) FROM triplets WHERE state = 'burned' AND device_name IN ('dev-0210', 'dev-0212', 'nobody')")" 0 \
  "no refused request bound a name"

# The device-key scheme: each device signs with its own key, as creds enrollment-key makes it.
printf '%s\n' "$group" >group.txt
chmod 600 group.txt
key1=$("$IOTFLEET" --show-secrets creds enrollment-key key-1 --group-secret-file group.txt -o csv | tail -n1 | cut -d, -f2)
r=$(post "$(client body "$key1" productKey=$pk2 deviceName=key-1 random=k1 imei=$(imei_of 301))")
[ "$(code_of "$r")" = 200 ] && [ "$(jq -r .data.deviceSecret <<<"$r")" = "$(secret_for 501)" ] && ok ||
  fail "device-key: key-1 with its own key: $r"
r=$(post "$(client body "$key1" productKey=$pk2 deviceName=key-2 random=k2 imei=$(imei_of 302))")
[ "$(code_of "$r")" = 401 ] && ok || fail "device-key: key-1's key does not sign for key-2: $r"
r=$(post "$(client body "$group" productKey=$pk2 deviceName=key-3 random=k3 imei=$(imei_of 303))")
[ "$(code_of "$r")" = 401 ] && ok || fail "device-key: the group secret itself is not a device's key: $r"

# Metrics, the audit trail, the access log.
run curl -sS --cacert cert.pem "$url/metrics"
expect_out '^iotfleet_serve_requests_total\{outcome="issued"\} 1002$' "metrics: 1002 issued"
expect_out '^iotfleet_serve_requests_total\{outcome="again"\} 1$' "metrics: 1 again"
expect_out '^iotfleet_serve_clone_alerts_total 1$' "metrics: the clone alert"
expect_out '^iotfleet_serve_requests_total\{outcome="too-large"\} 1$' "metrics: the body too large"
expect_out '^iotfleet_serve_request_seconds_count [0-9]+$' "metrics: the latency histogram"
run "$IOTFLEET" pool log dev-0001 -o csv
expect_out "serve-issue,clone,.*IMEI $imei1" "pool log shows the clone"
expect_out "serve-issue,issued,from 127.0.0.1" "pool log shows the issue and its address"
[ "$(wc -l <access.ndjson)" -ge 1015 ] && ok || fail "one access log line per request: $(wc -l <access.ndjson)"
jq -e . access.ndjson >/dev/null && ok || fail "the access log is NDJSON"
grep -q '"outcome":"clone"' access.ndjson && ok || fail "the access log has the clone"
if grep -qE "$(secret_for 1)|$(secret_for 501)|$product_secret|$group|sign=" access.ndjson serve.err; then
  fail "a secret or a sign in the access log or on stderr"
else
  ok
fi

# provision --enrollment-key: a station burns each device's enrollment key, not its secret; the
# module then fetches its DeviceSecret with that key, and the ledger's record is what serve reads.
sim_start "$IOT_TMP/keys" --count 2 --module quectel --urc-rate 0 || finish
run "$IOTFLEET" provision --port "${sim_ports[0]}" --port "${sim_ports[1]}" -m quectel \
  --product-key "$pk2" --enrollment-key group.txt -o ndjson
expect_rc 0 "provision --enrollment-key"
expect_no_out "$(secret_for 502)|$(secret_for 503)|$(secret_for 504)|$(secret_for 505)" "no DeviceSecret in the events"
for i in 0 1; do
  run "$IOTFLEET" --show-secrets module info --port "${sim_ports[$i]}" -o json
  dn=$(jq -r .device_name <<<"$out")
  stored=$(jq -r .device_secret <<<"$out")
  expected=$(python3 -c 'import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest()[:32])' "$group" "$dn")
  expect_eq "$stored" "$expected" "module $i holds $dn's enrollment key, not its DeviceSecret"
  imei=$(jq -r .imei <<<"$out")
  r=$(post "$(client body "$stored" productKey=$pk2 deviceName="$dn" random=p$i imei="$imei")")
  [ "$(jq -r .code <<<"$r")" = 200 ] && [ "$(jq -r .data.deviceSecret <<<"$r")" = "$(secret_for $((500 + ${dn#key-})))" ] && ok ||
    fail "module $i fetches its DeviceSecret with the key the station burned: $r"
done
run "$IOTFLEET" provision --port "${sim_ports[0]}" -m quectel --product-key "$pk2" --enrollment-key group.txt -o ndjson
expect_out '"event":"already-provisioned"' "the station recognises a module holding its key"
run "$IOTFLEET" provision --port "${sim_ports[0]}" -m quectel --enrollment-key group.txt --register
expect_rc 2 "--enrollment-key with --register is refused"
run "$IOTFLEET" provision --port "${sim_ports[1]}" -m quectel --product-key "$pk2" --enrollment-key missing.txt
expect_rc 2 "--enrollment-key with a file that is not there"
expect_err "cannot read the group secret file missing.txt" "names the file"
expect_no_err "provisioning on" "before the ledger or a port is touched"
kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true

# SIGHUP: a new certificate is used for new connections; a bad one keeps the current one.
cp cert.pem cert1.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
kill -HUP "$server"
for _ in $(seq 100); do
  grep -q "SIGHUP: reloaded the TLS certificate" serve.err && break
  sleep 0.05
done
grep -q "SIGHUP: reloaded the TLS certificate" serve.err && ok || fail "SIGHUP reloads: $(tail -3 serve.err)"
run curl -sS --cacert cert.pem "$url/healthz"
expect_out '"status":"ok"' "the new certificate verifies"
run curl -sS --cacert cert1.pem "$url/healthz"
[ "$rc" != 0 ] && ok || fail "the old certificate is no longer served"
echo "not a key" >key.pem
kill -HUP "$server"
for _ in $(seq 100); do
  grep -q "still serving the previous one" serve.err && break
  sleep 0.05
done
grep -q "SIGHUP: cannot use --tls-cert cert.pem with --tls-key key.pem: no PEM private key" serve.err &&
  ok || fail "a bad key is named: $(tail -3 serve.err)"
run curl -sS --cacert cert.pem "$url/healthz"
expect_out '"status":"ok"' "and the server goes on with the previous certificate"

# SIGTERM under load: every request the server decided is answered, exit 0.
devices_csv 0 $(seq 241 440) >late.csv
client batch "$url" cert.pem "$pk" product "$product_secret" late.csv 20 >late.ndjson 2>late.err &
batch=$!
for _ in $(seq 200); do # once the first answers are out, the rest are on their way
  [ -s late.ndjson ] && break
  sleep 0.05
done
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
[ "$rc" = 0 ] && ok || fail "SIGTERM: exit $rc, not 0: $(tail -3 serve.err)"
grep -q "stopped: every request in flight was answered" serve.err && ok || fail "says it stopped"
wait "$batch" || true
# Every request the server decided was answered: a device whose triplet it burned got its secret.
answered=$(jq -r 'select(.code == 200) | .device_name' late.ndjson | sort | tr '\n' ' ')
served=$(sql "SELECT device_name FROM triplets WHERE device_name >= 'dev-0241' AND device_name <= 'dev-0440' AND state = 'burned' ORDER BY 1" | tr '\n' ' ')
expect_eq "$answered" "$served" "every secret issued before the stop was answered"
[ "$(wc -l <late.ndjson)" = 200 ] && ok || fail "each late device has its line: $(cat late.err)"
echo "SIGTERM under load: $(wc -w <<<"$answered") of 200 answered before the stop" >&2

# --- rate limits, on a lab server (plain HTTP) ---------------------------------------------------
"$IOTFLEET" serve --listen 127.0.0.1:0 --insecure-http --enrollment enrollment.csv --per-address 5 \
  --per-device 2 --access-log lab.ndjson 2>lab.err &
lab=$!
iot_cleanup_hooks+=("kill $lab 2>/dev/null")
wait_ready "$lab" lab.err "iotfleet serve --insecure-http" "listening on" || finish
lab_url=$(grep -o 'http://127.0.0.1:[0-9]*' lab.err | head -n1)
grep -q "insecure-http: secrets go over plain HTTP" lab.err && ok || fail "--insecure-http is warned about"
lab_post() { curl -sS -D headers.txt -X POST --data-binary "$1" "$lab_url/auth/register/device"; }
imei_300=$(imei_of 300)
for i in 1 2 3; do
  r=$(lab_post "$(client body "$product_secret" productKey=$pk deviceName=dev-0300 random=z$i imei=$imei_300)")
done
[ "$(code_of "$r")" = 429 ] && grep -q "too many requests for this device" <<<"$r" && ok ||
  fail "the third request for one device in a minute: $r"
# --per-device 2 spaces a device's requests 30 s apart after its first two: one more fits 30 s
# after the first, so Retry-After is 30 less the seconds since (whatever the clock's minute).
retry=$(tr -d '\r' <headers.txt | awk 'tolower($1) == "retry-after:" { print $2 }')
grep -qi '^HTTP/1.1 429' headers.txt && [ -n "$retry" ] && [ "$retry" -ge 20 ] && [ "$retry" -le 30 ] && ok ||
  fail "HTTP 429 with Retry-After 20..30 s: $(cat headers.txt)"
r=$(lab_post "$(client body "WrongSecret-0123456789" productKey=$pk deviceName=dev-0301 random=w1 imei=$imei_300)")
[ "$(code_of "$r")" = 401 ] && ok || fail "a bad sign is not counted against the device: $r"
r=$(lab_post "$(client body "$product_secret" productKey=$pk deviceName=dev-0301 random=w2 imei=$(imei_of 601))")
[ "$(code_of "$r")" = 200 ] && ok || fail "the fifth request from the address: $r"
r=$(lab_post "$(client body "$product_secret" productKey=$pk deviceName=dev-0302 random=w3 imei=$(imei_of 602))")
[ "$(code_of "$r")" = 429 ] && grep -q "from this address" <<<"$r" && ok || fail "the sixth from the address: $r"
kill -TERM "$lab"
wait "$lab" && ok || fail "the lab server's exit"

# --- slow clients and a connection flood: bounded, dropped after --read-timeout ---------------
"$IOTFLEET" serve --listen 127.0.0.1:0 --insecure-http --enrollment enrollment.csv --threads 2 \
  --max-connections 4 --read-timeout 2s --access-log /dev/null 2>flood.err &
flood=$!
iot_cleanup_hooks+=("kill $flood 2>/dev/null")
wait_ready "$flood" flood.err "iotfleet serve --max-connections" "listening on" || finish
flood_port=$(grep -o 'http://127.0.0.1:[0-9]*' flood.err | head -n1 | sed 's/.*://')
# 20 clients connect and send nothing (slowloris), held open for 6 s.
python3 -c 'import socket, sys, time
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(20)]
time.sleep(6)' "$flood_port" &
holder=$!
sleep 1
sockets=$(ls -l "/proc/$flood/fd" 2>/dev/null | grep -c socket || true)
# At most the 4 it may hold, the one its accept loop waits to hand over, and the listener.
[ "$sockets" -le 6 ] && ok || fail "the server holds $sockets sockets of 20 clients, not at most 6"
start=$SECONDS
status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$flood_port/healthz")
[ "$status" = 200 ] && ok || fail "a client behind the flood is answered once the slow ones are dropped: $status"
echo "a request behind 20 silent clients: answered after $((SECONDS - start)) s" >&2
kill "$holder" 2>/dev/null || true
kill -TERM "$flood"
wait "$flood" && ok || fail "the flood server's exit"
finish
