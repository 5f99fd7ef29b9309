#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job of iotfleet, run end to end on the emulators (no module, no internet needed).
# It grows with each capability. Run scripts/setup.sh first (it installs and builds).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
if [ ! -x "$build_dir/iotfleet" ] || [ ! -x "$build_dir/iotfleet-sim" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$build_dir" >&2
fi
iotfleet="$build_dir/iotfleet"
sim="$build_dir/iotfleet-sim"

demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-demo.XXXXXX")
sim_pids=()
cleanup() {
  for pid in "${sim_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$demo_dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}" >&2; "${@:2}"; }

step "What iotfleet does" "$iotfleet" --help
# A station's settings, from a config file of its own (a demo HOME keeps yours untouched).
export HOME="$demo_dir/home" XDG_CONFIG_HOME="$demo_dir/home/.config"
mkdir -p "$XDG_CONFIG_HOME/iotfleet"
cat >"$XDG_CONFIG_HOME/iotfleet/config.json" <<JSON
{"station": "demo-line1-st1", "module": "luat", "ledger": "$demo_dir/ledger.db"}
JSON
chmod 600 "$XDG_CONFIG_HOME/iotfleet/config.json"
step "Effective configuration and where each value comes from" "$iotfleet" config show
# A simulated factory line: four Luat modules on pseudo-terminals, one with the unwritten
# placeholder IMEI the vendor FAQ warns about.
"$sim" modules --count 3 --module luat --state-dir "$demo_dir/line1" --control "$demo_dir/line1.ctl" \
  >"$demo_dir/line1.out" 2>"$demo_dir/line1.err" &
sim_pids+=($!)
"$sim" modules --count 1 --module luat --placeholder-imei --state-dir "$demo_dir/line1b" \
  >"$demo_dir/line1b.out" 2>"$demo_dir/line1b.err" &
sim_pids+=($!)
for _ in $(seq 100); do
  grep -qx ready "$demo_dir/line1.err" 2>/dev/null && grep -qx ready "$demo_dir/line1b.err" 2>/dev/null && break
  sleep 0.1
done
mapfile -t line_ports < <(cut -d' ' -f1 "$demo_dir/line1.out")
mapfile -t line_imeis < <(cut -d' ' -f2 "$demo_dir/line1.out")
port0=${line_ports[0]} imei0=${line_imeis[0]}
bad_port=$(cut -d' ' -f1 "$demo_dir/line1b.out" | head -1)
step "Serial ports, simulated ones included" "$iotfleet" ports
step "A fresh module: identity, health, verdicts" "$iotfleet" module info --port "$port0"

# The cloud: an emulated Alibaba Cloud IoT Platform (HTTPS, its own CA) with one empty product.
cat >"$demo_dir/cloud.json" <<'JSON'
{"region": "cn-shanghai",
 "access_keys": [{"id": "LTAI5tDemoAccessKey01", "secret": "demoAccessKeySecret000000000001"}],
 "products": [{"product_key": "a1DemoPK001", "name": "Air724UG trackers", "net_type": 6},
              {"product_key": "a1DemoDyn01", "name": "EC200 meters (one secret per product)",
               "net_type": 6, "product_secret": "DemoProductSecret01", "dynamic_register": true}]}
JSON
printf '%s' demoAccessKeySecret000000000001 >"$demo_dir/ak.secret"
chmod 600 "$demo_dir/ak.secret"
"$sim" cloud --state-dir "$demo_dir/cloud" --scenario "$demo_dir/cloud.json" --tls \
  --batch-delay-ms 500 >"$demo_dir/cloud.url" 2>"$demo_dir/cloud.err" &
sim_pids+=($!)
for _ in $(seq 300); do grep -qx ready "$demo_dir/cloud.err" 2>/dev/null && break; sleep 0.1; done
cloud=(--endpoint "$(head -1 "$demo_dir/cloud.url")" --ca-file "$demo_dir/cloud/ca.pem"
  --access-key-id LTAI5tDemoAccessKey01 --access-key-secret-file "$demo_dir/ak.secret")

# The factory job. Luat's convention (seed FAQ §7): DeviceName = IMEI, DeviceSecret in the
# module's 64-byte SN. Register the line's IMEIs in the cloud; the triplets come back as the
# console's batch CSV, ready for the station's pool.
printf '%s\n' "${line_imeis[@]}" >"$demo_dir/imeis.txt"
step "Register the batch in the cloud (check, create, fetch secrets)" \
  "$iotfleet" "${cloud[@]}" devices batch-register --product-key a1DemoPK001 \
  --devices "$demo_dir/imeis.txt" -O "$demo_dir/batch.csv"
step "Load the batch into the station's ledger (validated, 0600, audited)" \
  "$iotfleet" pool import "$demo_dir/batch.csv"
step "What would be sent, secrets masked" "$iotfleet" provision --port "$port0" --dry-run
fixtures=()
for p in "${line_ports[@]}" "$bad_port"; do fixtures+=(--port "$p"); done
# Exit 5: the fourth fixture holds a module whose IMEI was never written, and it is refused.
set +e
step "Burn all fixtures at once, each verified by read-back" "$iotfleet" provision "${fixtures[@]}"
rc=$?
set -e
[ "$rc" = 5 ] || { echo "demo: provision exited $rc, expected 5 (one module refused)" >&2; exit 1; }
step "Run again: burned modules are recognised, nothing is consumed" \
  "$iotfleet" provision "${fixtures[@]:0:6}" -o ndjson
step "The ledger" "$iotfleet" pool status
step "Its audit trail (never a secret)" "$iotfleet" pool log --limit 8
step "While the fleet is healthy: every device secret, exported to a 0600 file" \
  "$iotfleet" "${cloud[@]}" secrets export --product-key a1DemoPK001 -O "$demo_dir/snapshot.csv"
# Days later a module's stored secret has changed (seed FAQ §3); the simulator's operator FIFO
# plays that part. Compare the modules with the healthy-time snapshot and the live cloud.
echo "set-sn 1 0123456789abcdef0123456789abcdef" >"$demo_dir/line1.ctl"
sleep 0.3
compare_ports=()
for p in "${line_ports[@]}"; do compare_ports+=(--port "$p"); done
set +e
step "Which side changed the secret? (exit 6: a difference)" "$iotfleet" "${cloud[@]}" \
  secrets compare --snapshot "$demo_dir/snapshot.csv" "${compare_ports[@]}" --cloud --all
rc=$?
set -e
[ "$rc" = 6 ] || { echo "demo: secrets compare exited $rc, expected 6 (one module-side)" >&2; exit 1; }
# Support's view of that device: every source at once, causes ranked.
set +e
step "Why is ${line_imeis[1]} offline? (exit 6: a cause found)" "$iotfleet" "${cloud[@]}" \
  diagnose device "${line_imeis[1]}" --port "${line_ports[1]}" --snapshot "$demo_dir/snapshot.csv"
rc=$?
set -e
[ "$rc" = 6 ] || { echo "demo: diagnose device exited $rc, expected 6" >&2; exit 1; }
# The direct witness, no snapshot needed: the MQTT endpoint accepts only the cloud's secret. A lab
# broker plays Aliyun's endpoint: mosquitto on 127.0.0.1 with the emulator's certificate and a
# password file computed from the cloud's secrets with Aliyun's algorithm (username DN&PK).
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
mqtt_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$demo_dir/mqtt.passwd"
while IFS=, read -r pk dn ds _; do
  [ "$pk" = product_key ] && continue
  pw=$(printf 'clientId%s.%sdeviceName%sproductKey%s' "$pk" "$dn" "$dn" "$pk" |
    openssl dgst -sha256 -hmac "$ds" | awk '{print toupper($NF)}')
  mosquitto_passwd -b "$demo_dir/mqtt.passwd" "$dn&$pk" "$pw"
done <"$demo_dir/snapshot.csv"
cat >"$demo_dir/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
cafile $demo_dir/cloud/ca.pem
certfile $demo_dir/cloud/server.pem
keyfile $demo_dir/cloud/server-key.pem
allow_anonymous false
password_file $demo_dir/mqtt.passwd
user $(id -un)
CONF
"$mosquitto_bin" -c "$demo_dir/mosquitto.conf" >"$demo_dir/mosquitto.log" 2>&1 &
mqtt_pid=$!
sim_pids+=("$mqtt_pid")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break; sleep 0.1; done
probe=("$iotfleet" "${cloud[@]}" creds probe --port "${line_ports[1]}" --product-key a1DemoPK001
  --mqtt-endpoint "127.0.0.1:$mqtt_port")
set +e
step "Ask the MQTT endpoint itself, no snapshot: module 1's secret (exit 6: module side)" \
  "$iotfleet" "${cloud[@]}" secrets compare --probe --port "${line_ports[1]}" \
  --product-key a1DemoPK001 --with-ledger --mqtt-endpoint "127.0.0.1:$mqtt_port"
rc=$?
set -e
[ "$rc" = 6 ] || { echo "demo: secrets compare --probe exited $rc, expected 6" >&2; exit 1; }
step "Repair (seed FAQ §3, module side): free its ledger record for the rework..." "$iotfleet" \
  pool release "${line_imeis[1]}" --force --reason "SN corrupted in the field, rework"
step "...and burn the ledger's secret into module 1 again" "$iotfleet" provision \
  --port "${line_ports[1]}" --overwrite
step "Ask again: the endpoint accepts it" "${probe[@]}"
# A week of a 5 000-device fleet's console log, with planted problems (iotfleet-sim fleetlog).
"$sim" fleetlog --devices 5000 --days 7 --seed 3 --product-key a1DemoPK001 \
  --plant duplicate=4,nat-keepalive=12,flaky=6,disconnect=5,reboot=10 -O "$demo_dir/device-log.csv"
set +e
step "Why does the fleet go offline? (exit 6: findings)" "$iotfleet" diagnose fleet \
  --log "$demo_dir/device-log.csv" --html "$demo_dir/fleet-report.html"
rc=$?
set -e
[ "$rc" = 6 ] || { echo "demo: diagnose fleet exited $rc, expected 6" >&2; exit 1; }
# A second line, one-type-one-secret (一型一密): the station holds only the product's
# ProductSecret. Each module's IMEI is registered on the fly (dynamic registration), its
# DeviceSecret written to the ledger first, then burned; the ProductSecret never reaches a module.
"$sim" modules --count 3 --module quectel --state-dir "$demo_dir/line2" \
  >"$demo_dir/line2.out" 2>"$demo_dir/line2.err" &
sim_pids+=($!)
for _ in $(seq 100); do grep -qx ready "$demo_dir/line2.err" 2>/dev/null && break; sleep 0.1; done
mapfile -t line2_imeis < <(cut -d' ' -f2 "$demo_dir/line2.out")
line2=()
for p in $(cut -d' ' -f1 "$demo_dir/line2.out"); do line2+=(--port "$p"); done
printf '%s\n' DemoProductSecret01 >"$demo_dir/product.secret"
chmod 600 "$demo_dir/product.secret"
step "Pre-register line 2's IMEIs in the cloud (no secrets handed out yet)" \
  "$iotfleet" "${cloud[@]}" devices register --product-key a1DemoDyn01 "${line2_imeis[@]}"
step "Line 2: register each module on the fly and burn it" "$iotfleet" "${cloud[@]}" \
  provision "${line2[@]}" -m quectel --register --product-key a1DemoDyn01 \
  --product-secret-file "$demo_dir/product.secret"
printf '%s\n' "${line2_imeis[@]}" >"$demo_dir/imeis2.txt"
step "Registering them again sends nothing: the ledger has their secrets" "$iotfleet" \
  "${cloud[@]}" dynreg --product-key a1DemoDyn01 --devices "$demo_dir/imeis2.txt" \
  --product-secret-file "$demo_dir/product.secret"
step "What a line-2 device connects with (MQTT, from the ledger, masked)" \
  "$iotfleet" creds mqtt "${line2_imeis[0]}" --product-key a1DemoDyn01
# Line-2 module 0 connects (the device is activated), then loses its secret in the field: asking
# the cloud again is refused (6289), as dynamic registration ends at activation (seed FAQ §3).
dyn0=${line2_imeis[0]}
mapfile -t line2_ports < <(cut -d' ' -f1 "$demo_dir/line2.out")
curl -sS --cacert "$demo_dir/cloud/ca.pem" --data-binary "productKey=a1DemoDyn01&deviceName=$dyn0&status=OFFLINE" \
  "$(head -1 "$demo_dir/cloud.url")/_emulator/activate" >/dev/null
set +e
step "The module asks for its secret again, as its firmware would (refused: 6289, active)" \
  "$iotfleet" "${cloud[@]}" --ledger "$demo_dir/field.db" dynreg "$dyn0" --product-key a1DemoDyn01 \
  --product-secret-file "$demo_dir/product.secret"
rc=$?
set -e
[ "$rc" != 0 ] || { echo "demo: dynreg of an activated device succeeded" >&2; exit 1; }
step "Repair (seed FAQ §3.3): re-create the device, keeping its nickname, tags and groups" \
  "$iotfleet" "${cloud[@]}" devices recreate "$dyn0" --product-key a1DemoDyn01 --yes
step "The re-created device is not activated: the module registers dynamically again" \
  "$iotfleet" "${cloud[@]}" dynreg "$dyn0" --product-key a1DemoDyn01 --force \
  --product-secret-file "$demo_dir/product.secret"
step "...and the station burns what it was issued" "$iotfleet" "${cloud[@]}" provision \
  --port "${line2_ports[0]}" -m quectel --register --product-key a1DemoDyn01 \
  --product-secret-file "$demo_dir/product.secret" --overwrite
# The lab broker learns the cloud's current secret of that device, as Aliyun's endpoint would.
dyn_secret=$("$iotfleet" "${cloud[@]}" --show-secrets -o json devices show "$dyn0" \
  --product-key a1DemoDyn01 | jq -r .device_secret)
dyn_pw=$(printf 'clientIda1DemoDyn01.%sdeviceName%sproductKeya1DemoDyn01' "$dyn0" "$dyn0" |
  openssl dgst -sha256 -hmac "$dyn_secret" | awk '{print toupper($NF)}')
mosquitto_passwd -b "$demo_dir/mqtt.passwd" "$dyn0&a1DemoDyn01" "$dyn_pw"
kill -HUP "$mqtt_pid"
sleep 0.3
step "Ask the endpoint: line-2 module 0's secret is accepted" "$iotfleet" "${cloud[@]}" \
  creds probe --port "${line2_ports[0]}" -m quectel --mqtt-endpoint "127.0.0.1:$mqtt_port"
# A third line burns nothing secret (seed FAQ §7, the second way): the customer's own server,
# `iotfleet serve`, hands each module its DeviceSecret at first boot, looked up in the cloud.
line3_imeis=(869939450007017 869939450007025 869939450007033)
step "Register line 3's IMEIs in the cloud (the factory keeps no secret)" \
  "$iotfleet" "${cloud[@]}" devices register --product-key a1DemoPK001 "${line3_imeis[@]}"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$demo_dir/serve.key" -out "$demo_dir/serve.pem" \
  -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
printf 'product_key,scheme,secret\na1DemoPK001,product,DemoEnrollmentSecret-line3\n' >"$demo_dir/enroll.csv"
printf 'DemoEnrollmentSecret-line3\n' >"$demo_dir/firmware.secret"
chmod 600 "$demo_dir/enroll.csv" "$demo_dir/firmware.secret" "$demo_dir/serve.key"
echo "\$ iotfleet serve --listen 127.0.0.1:0 --tls-cert serve.pem --tls-key serve.key --enrollment enroll.csv --cloud-lookup &" >&2
"$iotfleet" "${cloud[@]}" serve --listen 127.0.0.1:0 --tls-cert "$demo_dir/serve.pem" \
  --tls-key "$demo_dir/serve.key" --enrollment "$demo_dir/enroll.csv" --cloud-lookup \
  --access-log "$demo_dir/serve.ndjson" 2>"$demo_dir/serve.err" &
sim_pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$demo_dir/serve.err" 2>/dev/null && break; sleep 0.1; done
serve_url=$(grep -o 'https://127.0.0.1:[0-9]*' "$demo_dir/serve.err" | head -1)
echo "\$ iotfleet-sim modules --count 3 --first-boot $serve_url …   # SN empty: fetch at boot" >&2
"$sim" modules --count 3 --module luat --state-dir "$demo_dir/line3" --imei "${line3_imeis[0]}" \
  --imei "${line3_imeis[1]}" --imei "${line3_imeis[2]}" --first-boot "$serve_url" \
  --first-boot-product a1DemoPK001 --first-boot-secret-file "$demo_dir/firmware.secret" \
  --first-boot-ca "$demo_dir/serve.pem" >"$demo_dir/line3.out" 2>"$demo_dir/line3.err" &
sim_pids+=($!)
for _ in $(seq 100); do grep -qx ready "$demo_dir/line3.err" 2>/dev/null && break; sleep 0.1; done
grep "first boot" "$demo_dir/line3.err" >&2
line3=()
for p in $(cut -d' ' -f1 "$demo_dir/line3.out"); do line3+=(--port "$p"); done
"$iotfleet" "${cloud[@]}" secrets export --product-key a1DemoPK001 -O "$demo_dir/line3-cloud.csv" -q >/dev/null
step "Every line-3 module holds the cloud's secret (the same in module, snapshot and cloud)" "$iotfleet" \
  "${cloud[@]}" secrets compare "${line3[@]}" -m luat --snapshot "$demo_dir/line3-cloud.csv" --cloud
clone_body=$(python3 tests/integration/serve_client.py body DemoEnrollmentSecret-line3 \
  productKey=a1DemoPK001 deviceName="${line3_imeis[0]}" random=clone imei=490154203237518)
step "A cloned module asks for line-3 module 0's name: refused (6289)" curl -sS \
  --cacert "$demo_dir/serve.pem" --data-binary "$clone_body" "$serve_url/auth/register/device"
echo >&2
step "...and the server raised the alert" grep "clone alert" "$demo_dir/serve.err"
step "The server's metrics" sh -c "curl -sS --cacert '$demo_dir/serve.pem' '$serve_url/metrics' | grep -E '^iotfleet_serve_(requests_total|clone|cloud_lookups)' | grep -v ' 0\$'"
step "What a burned module holds, masked" "$iotfleet" module info --port "$port0" -o json
step "Raw AT for support, secrets masked" "$iotfleet" module at --port "$port0" 'AT+WISN?'
step "The module whose IMEI was never written" "$iotfleet" module info --port "$bad_port" -o csv
# Firmware: upload, then a rollout in waves with an abort rule. A second emulator (its own state,
# the clock 60× faster) holds 200 trackers; hardware revision hwrevB fails half its upgrades.
cat >"$demo_dir/ota.json" <<'JSON'
{"access_keys": [{"id": "LTAI5tDemoAccessKey01", "secret": "demoAccessKeySecret000000000001"}],
 "products": [{"product_key": "a1DemoOta01", "name": "Air724UG trackers (OTA)",
   "generate": {"count": 200, "names": "sequence", "prefix": "trk", "digits": 4,
                "status": {"ONLINE": 1}, "firmware": "V409",
                "nicknames": {"hwrevA": 70, "hwrevB": 30}}}],
 "ota": {"speed": {"pickup_s": 2, "download_s": 20, "verify_s": 2, "burn_s": 5, "jitter": 0.3},
   "failure": [{"match": {"nickname_prefix": "hwrevB"}, "rate": 0.5,
                "desc": "{step} failed ({code}) hw={nickname}"}]}}
JSON
# 40 door sensors with a tag for their site: a rollout picks them by tag.
jq -nc '[range(1; 41) | {name: ("door-" + (tostring | if length < 2 then "0" + . else . end)),
  status: "ONLINE", firmware: "V1", nickname: "revA",
  tags: {site: (if . % 4 == 0 then "south" else "north" end)}}]' >"$demo_dir/doors.json"
jq --slurpfile d "$demo_dir/doors.json" \
  '.products += [{"product_key": "a1DemoDoor1", "name": "door sensors", "devices": $d[0]}]' \
  "$demo_dir/ota.json" >"$demo_dir/ota-all.json"
"$sim" cloud --state-dir "$demo_dir/ota-cloud" --scenario "$demo_dir/ota-all.json" --time-scale 60 \
  >"$demo_dir/ota-cloud.url" 2>"$demo_dir/ota-cloud.err" &
sim_pids+=($!)
for _ in $(seq 300); do grep -qx ready "$demo_dir/ota-cloud.err" 2>/dev/null && break; sleep 0.1; done
ota=(--endpoint "$(head -1 "$demo_dir/ota-cloud.url")" --region cn-shanghai
  --access-key-id LTAI5tDemoAccessKey01 --access-key-secret-file "$demo_dir/ak.secret")
head -c 200000 /dev/urandom >"$demo_dir/tracker-V410.bin"
step "Upload a firmware (streamed, MD5 computed on the way)" "$iotfleet" "${ota[@]}" \
  ota upload "$demo_dir/tracker-V410.bin" --product-key a1DemoOta01 --dest-version V410 -o json
fw=$("$iotfleet" "${ota[@]}" ota upload "$demo_dir/tracker-V410.bin" --product-key a1DemoOta01 \
  --dest-version V410 -o json 2>/dev/null | jq -r .firmware_id)
set +e
step "Roll it out in waves; hwrevB fails and the abort rule stops it (exit 1)" "$iotfleet" \
  "${ota[@]}" ota rollout --firmware "$fw" --all --waves 10%,50%,100% --max-per-minute 600 \
  --abort-failure-rate 10% --abort-min-finished 20 --poll-interval 500ms \
  --journal "$demo_dir/rollout.json"
rc=$?
set -e
[ "$rc" = 1 ] || { echo "demo: ota rollout exited $rc, expected 1 (aborted)" >&2; exit 1; }
step "Where the rollout stands, failures with their TaskDesc" "$iotfleet" "${ota[@]}" \
  ota status "$demo_dir/rollout.json"
head -c 50000 /dev/urandom >"$demo_dir/door-V2.bin"
fw_door=$("$iotfleet" "${ota[@]}" ota upload "$demo_dir/door-V2.bin" --product-key a1DemoDoor1 \
  --dest-version V2 -o json 2>/dev/null | jq -r .firmware_id)
step "Roll out by tag: the north site's door sensors, 5 first at 100/min, then the rest at 1000/min" \
  "$iotfleet" "${ota[@]}" ota rollout --firmware "$fw_door" --tag site=north --waves 5,100% \
  --max-per-minute 100,1000 --poll-interval 500ms --notified-grace 5s \
  --journal "$demo_dir/rollout-north.json"
echo "demo: ok (module $imei0 on $port0 burned)" >&2
