#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# secrets compare --probe: simulated Luat modules on ptys holding triplets, the cloud emulator for
# each device's state and secret, and a real mosquitto (TLS, a test CA) whose password file holds
# each device's Aliyun-signed password as the cloud would check it. Verdicts with and without a
# snapshot: accepted -> match (even against a stale snapshot), refused and the module equals the
# snapshot -> cloud-side, refused and the module differs -> module-side (the ledger as the
# reference when there is no snapshot), refused with no reference -> mismatch; an ONLINE device is
# never probed; a probe that learns nothing exits 4; bad combinations exit 2; no secret printed.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1CmpProbe1
s_a=CmpProbeSecretA0000000000000000a   # dev-a: cloud and broker
s_b_old=CmpProbeSecretBold0000000000000b # dev-b: the healthy-time secret the module still holds
s_b_new=CmpProbeSecretBnew0000000000000c # dev-b: what the cloud authenticates with now
s_on=CmpProbeSecretOn00000000000000000d
bad=CmpProbeSecretWrong00000000000000

# A fleet of 24 more (fleet-00..23), for probes at once: the broker knows the even ones.
fleet_secret() { printf 'CmpProbeFleet%02d0000000000000000f' "$1"; }
fleet_broker=() fleet_cloud=""
for i in $(seq 0 23); do
  [ $((i % 2)) = 0 ] && fleet_broker+=("$(printf 'fleet-%02d' "$i")=$(fleet_secret "$i")")
  fleet_cloud+=$(printf ',\n   {"name": "fleet-%02d", "status": "OFFLINE", "secret": "%s"}' "$i" "$(fleet_secret "$i")")
done
mqtt_lab_start "$IOT_TMP/mqtt" "$pk" "dev-a=$s_a" "dev-b=$s_b_new" "dev-on=$s_on" \
  "${fleet_broker[@]}" && ok || fail "mosquitto did not start"
cat >scenario.json <<JSON
{"access_keys": [{"id": "LTAI5tCmpProbe001", "secret": "cmpProbeAccessSecret1"}],
 "products": [{"product_key": "$pk", "devices": [
   {"name": "dev-a", "status": "OFFLINE", "secret": "$s_a"},
   {"name": "dev-b", "status": "OFFLINE", "secret": "$s_b_new"},
   {"name": "dev-on", "status": "ONLINE", "secret": "$s_on"}$(printf "$fleet_cloud")]}]}
JSON
cloud_start "$IOT_TMP/cloud" scenario.json --seed 5
printf 'cmpProbeAccessSecret1' >ak.txt
chmod 600 ak.txt
cloud=(--endpoint "$cloud_url" --access-key-id LTAI5tCmpProbe001 --access-key-secret-file ak.txt
  --ca-file "$mqtt_ca")
lab=(--probe --mqtt-endpoint "127.0.0.1:$mqtt_port")

sim_start "$IOT_TMP/sim" --count 4 --module luat --urc-rate 0
burn() { # burn INDEX DN SECRET
  run "$IOTFLEET" module at --port "${sim_ports[$1]}" "AT+WISN=\"$pk|$2|$3\""
  expect_rc 0 "module $1 holds $2's triplet"
}
burn 0 dev-a "$s_a"
burn 1 dev-a "$bad"
burn 2 dev-b "$s_b_old"
burn 3 dev-on "$s_on"
mods=(-m luat --layout triplet)
verdict_at() { # verdict_at INDEX: the verdict of the row read on module INDEX (-o csv)
  python3 -c '
import csv, sys
rows = [r for r in csv.DictReader(sys.stdin) if r["source"] == sys.argv[1]]
print(rows[0]["verdict"] + "|" + rows[0]["probe"] if rows else "none")' "${sim_ports[$1]}" <<<"$out"
}
secrets_hidden() {
  local s
  for s in "$s_a" "$bad" "$s_b_old" "$s_b_new" "$s_on"; do
    if grep -q "$s" <<<"$out$err"; then fail "$1: a secret was printed"; else ok; fi
  done
}

# --- without a snapshot: the endpoint, the live cloud and the ledger --------------------------
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --port "${sim_ports[0]}" "${mods[@]}" \
  "${lab[@]}" --all
expect_rc 0 "the module's secret is accepted"
[ "$(verdict_at 0)" = "match|accepted" ] && ok || fail "module 0: $(verdict_at 0) ($out $err)"
expect_err 'checked against the live cloud \(product a1CmpProbe1\) and the MQTT endpoint: 1 match' \
  "the summary names what it was checked against"
secrets_hidden "accepted"

run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --port "${sim_ports[1]}" "${mods[@]}" "${lab[@]}"
expect_rc 6 "a refused secret is a difference"
[ "$(verdict_at 1)" = "mismatch|refused: bad user name or password" ] ||
  [ "$(verdict_at 1)" = "mismatch|refused: not authorized" ] && ok ||
  fail "module 1 without a reference: $(verdict_at 1) ($out)"
expect_out 'no healthy-time reference' "says that nothing tells the side"
secrets_hidden "refused"

printf 'ProductKey,DeviceName,DeviceSecret\n%s,dev-a,%s\n' "$pk" "$s_a" >pool.csv
run "$IOTFLEET" pool import pool.csv
expect_rc 0 "pool import: the factory burned dev-a with the cloud's secret"
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --port "${sim_ports[1]}" "${mods[@]}" \
  "${lab[@]}" --with-ledger
expect_rc 6 "refused, the ledger as reference"
[ "${out}" != "" ] && [ "$(verdict_at 1 | cut -d'|' -f1)" = module-side ] && ok ||
  fail "the module differs from the ledger: module-side ($out $err)"
expect_out "factory ledger's burned secret" "the reference is named"

# --- with a healthy-time snapshot -------------------------------------------------------------
{
  echo "product_key,device_name,device_secret,status"
  echo "$pk,dev-a,$bad,ONLINE" # stale: the endpoint accepts module 0's, not this one
  echo "$pk,dev-b,$s_b_old,ONLINE"
  echo "$pk,dev-on,$s_on,ONLINE"
} >snap.csv
ports=(--port "${sim_ports[0]}" --port "${sim_ports[1]}" --port "${sim_ports[2]}" --port "${sim_ports[3]}")
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --snapshot snap.csv "${ports[@]}" "${mods[@]}" \
  "${lab[@]}" --all
expect_rc 6 "four modules against the snapshot and the endpoint"
[ "$(verdict_at 0)" = "match|accepted" ] && ok || fail "module 0 accepted despite the stale snapshot: $(verdict_at 0)"
expect_out 'not taken while the device was healthy' "the stale snapshot is pointed out"
[ "$(verdict_at 1 | cut -d'|' -f1)" = match ] && fail "module 1 was refused" || ok
[ "$(verdict_at 2 | cut -d'|' -f1)" = cloud-side ] && ok ||
  fail "module 2 equals the snapshot, the endpoint refuses it: cloud-side ($(verdict_at 2))"
expect_out 'devices recreate dev-b --yes' "the cloud-side fix is named"
[ "$(verdict_at 3)" = "match|not run: ONLINE (a probe would knock it off)" ] && ok ||
  fail "module 3 is ONLINE and not probed: $(verdict_at 3)"
expect_err '1 ONLINE device\(s\) not probed.*kicked by the same device' "the skip is explained"
[ "$(grep -c "dev-on&$pk" "$mqtt_dir/mosquitto.log")" = 0 ] && ok ||
  fail "the broker saw a connection for the ONLINE device"
secrets_hidden "four modules"

# --- a devices file with the modules' secrets -------------------------------------------------
printf 'product_key,device_name,device_secret\n%s,dev-a,%s\n%s,dev-b,%s\n' "$pk" "$s_a" "$pk" "$s_b_new" \
  >devices.csv
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --devices devices.csv "${lab[@]}"
expect_rc 0 "both secrets of the devices file are accepted"
expect_err '2 match' "counted"

# --- a fleet's probes run --concurrency at a time, each verdict on its own device -------------
{
  echo "product_key,device_name,device_secret"
  for i in $(seq 0 23); do printf '%s,fleet-%02d,%s\n' "$pk" "$i" "$(fleet_secret "$i")"; done
} >fleet.csv
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --devices fleet.csv "${lab[@]}" --all \
  --concurrency 8
expect_rc 6 "the odd ones are refused: the cloud holds their secret, its endpoint does not"
printf '%s\n' "$out" >fleet.out
python3 - fleet.out <<'PY' && ok || fail "each probe's answer is its own device's ($out)"
import csv, sys
rows = {r["device_name"]: (r["verdict"], r["probe"]) for r in csv.DictReader(open(sys.argv[1]))}
assert len(rows) == 24, rows
for i in range(24):
    verdict, probe = rows[f"fleet-{i:02d}"]
    if i % 2 == 0:
        assert (verdict, probe) == ("match", "accepted"), (i, verdict, probe)
    else:
        assert verdict == "cloud-side" and probe.startswith("refused: "), (i, verdict, probe)
PY
expect_err "12 match, 12 cloud-side" "counted"
# How many at once: a broker that holds each CONNACK until N CONNECTs wait (3 s at most).
hold_start() { # hold_start NAME N: a fresh holding broker; sets $hold_pid and $hold_at (HOST:PORT)
  python3 "$here/mqtt_hold_broker.py" "$mqtt_dir/server.pem" "$mqtt_dir/server.key" "$2" \
    "$1.stats" >"$1.port" 2>"$1.err" &
  hold_pid=$!
  iot_cleanup_hooks+=("kill $hold_pid 2>/dev/null")
  for i in $(seq 100); do [ -s "$1.port" ] && break; sleep 0.1; done
  hold_at=127.0.0.1:$(cat "$1.port")
}
hold_start hold 8
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --devices fleet.csv --probe \
  --mqtt-endpoint "$hold_at" --concurrency 8
expect_rc 0 "the holding broker accepts every CONNECT"
[ "$(cat hold.stats)" = "8 24" ] && ok ||
  fail "--concurrency 8: 8 CONNECTs in flight at once, 24 answered ($(cat hold.stats); $err)"
kill "$hold_pid"
hold_start hold3 3
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --devices fleet.csv --probe \
  --mqtt-endpoint "$hold_at" --concurrency 3
expect_rc 0 "--concurrency 3"
[ "$(cat hold3.stats)" = "3 24" ] && ok || fail "--concurrency 3: never more than 3 ($(cat hold3.stats))"
kill "$hold_pid"
# Ctrl-C while probes wait (2 at a time never make the 3 a fresh broker holds for: each waits
# 3 s): 130 at once, no rows.
hold_start held 3
"$IOTFLEET" "${cloud[@]}" -o csv secrets compare --devices fleet.csv --probe \
  --mqtt-endpoint "$hold_at" --concurrency 2 >int.out 2>int.err &
victim=$!
wait_caught "$victim" || fail "secrets compare never installed its signal handlers"
sleep 1 # the first two CONNECTs are held now
kill -INT "$victim"
t0=$(date +%s%N)
set +e
wait "$victim"
rc=$?
set -e
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 130 ] && ok || fail "Ctrl-C during the probes: exit $rc ($(cat int.err))"
# Uninterrupted, the 24 probes two at a time, each held up to 3 s, take half a minute; the bound
# leaves room for an ASan exit (LeakSanitizer's scan) on busy cores.
[ "$ms" -lt 5000 ] && ok || fail "Ctrl-C took $ms ms to end the probes"
grep -q 'interrupted while probing' int.err && ok || fail "the interruption is named: $(cat int.err)"
[ ! -s int.out ] && ok || fail "rows printed after Ctrl-C: $(cat int.out)"
kill "$hold_pid"

# --- the module's saved copy (seed FAQ §3.2) as the reference -------------------------------
repo=$(cd "$here/../.." && pwd)
copy_profile=(--module-profile "$repo/docs/profiles/luat-nvm-copy.json" --layout triplet)
fifo="$IOT_TMP/copy.ctl"
line_ports=("${sim_ports[@]}")
sim_start "$IOT_TMP/copy" --count 1 --module luat --urc-rate 0 --control "$fifo"
cport=${sim_ports[0]}
sim_ports=("${line_ports[@]}")
control() { # control CMD: one FIFO line, then wait until the simulator logged it
  local before i
  before=$(grep -c '^control: ' "$IOT_TMP/copy/sim.err" || true)
  printf '%s\n' "$1" >"$fifo"
  for i in $(seq 50); do
    [ "$(grep -c '^control: ' "$IOT_TMP/copy/sim.err" || true)" -gt "$before" ] && return 0
    sleep 0.1
  done
  fail "the simulator did not apply '${1%% *}'"
}
control "set-sn 0 $pk|dev-a|$s_a"
control "connected 0" # the device script saved the secret that connected
control "set-sn 0 $pk|dev-a|$bad" # then the SN changed
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --port "$cport" "${copy_profile[@]}" "${lab[@]}"
expect_rc 6 "the SN changed after the last connection"
row=$(python3 -c 'import csv,sys; r=list(csv.DictReader(sys.stdin))[0]; print(r["verdict"], r["copy_fp"] != r["module_fp"] and r["copy_fp"] != "")' <<<"$out")
[ "$row" = "module-side True" ] && ok || fail "the copy pins it on the SN: $row ($out)"
expect_out "module's saved copy" "the copy is named as the reference"
control "set-sn 0 $pk|dev-b|$s_b_old"
control "connected 0" # dev-b's secret connected once; the cloud changed it since
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --port "$cport" "${copy_profile[@]}" "${lab[@]}"
expect_rc 6 "the module still holds what last connected"
[ "$(python3 -c 'import csv,sys; print(list(csv.DictReader(sys.stdin))[0]["verdict"])' <<<"$out")" = cloud-side ] &&
  ok || fail "SN = copy, refused: cloud-side ($out)"
run "$IOTFLEET" "${cloud[@]}" -o json --show-secrets secrets compare --port "$cport" "${copy_profile[@]}" \
  "${lab[@]}"
expect_out "\"copy_secret\": \"$s_b_old\"" "--show-secrets shows the copy"

# --- a probe that learns nothing, bad combinations --------------------------------------------
closed=$(free_port)
run "$IOTFLEET" "${cloud[@]}" -o csv secrets compare --port "${sim_ports[0]}" "${mods[@]}" --probe \
  --mqtt-endpoint "127.0.0.1:$closed"
expect_rc 4 "no broker: nothing is known, exit 4"
expect_err 'probe learnt nothing.*tcp' "the failed step is named"
expect_err '1 probe\(s\) could not reach an answer' "the exit reason"
run "$IOTFLEET" "${cloud[@]}" secrets compare --port "${sim_ports[0]}" "${mods[@]}"
expect_rc 2 "neither --snapshot nor --probe"
expect_err 'give --snapshot FILE.*or --probe' "says what to give"
run "$IOTFLEET" "${cloud[@]}" secrets compare --probe
expect_rc 2 "--probe without modules or a devices file"
expect_err 'give --port P.*or --devices FILE' "says what to give"
run "$IOTFLEET" "${cloud[@]}" secrets compare --snapshot snap.csv --cloud --mqtt-endpoint "127.0.0.1:$mqtt_port"
expect_rc 2 "--mqtt-endpoint without --probe"
run "$IOTFLEET" "${cloud[@]}" secrets compare --port "${sim_ports[0]}" "${mods[@]}" --probe \
  --mqtt-endpoint 127.0.0.1:99999
expect_rc 2 "a bad --mqtt-endpoint"
expect_err 'mqtt-endpoint' "named"
# A devices file that is not there is the first thing said, before the cloud (here without any
# AccessKey, which would be exit 4) is opened.
run env -u ALIBABA_CLOUD_ACCESS_KEY_ID -u ALIBABA_CLOUD_ACCESS_KEY_SECRET "$IOTFLEET" secrets compare \
  --probe --devices missing-devices.csv
expect_rc 2 "a missing devices file, no AccessKey"
expect_err 'cannot read devices file missing-devices.csv: No such file' "names the file"
expect_no_err 'AccessKey' "before the cloud's credentials"

finish
