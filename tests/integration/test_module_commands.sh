#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ports, module info and module at against simulated Luat, Quectel and ESP-AT modules on real
# ptys; a noisy line (garbled bytes, URCs) gives a correct reading or a clean error, never a wrong
# IMEI or secret.
source "$(dirname "$0")/lib.sh"
secret=abcdefghijklmnopqrstuvwxyz012345

# --- Luat: ports, info, at ------------------------------------------------------------------
sim_start "$IOT_TMP/luat" --count 2 --module luat --no-pacing --urc-rate 0 --nvm-latency-ms 5-10
luat_pids=$sim_pid
luat0=${sim_ports[0]} imei0=${sim_ids[0]}

run "$IOTFLEET" ports -o csv
expect_rc 0 "ports"
expect_out "^$luat0,simulated,,,iotfleet-sim luat #0,luat,$imei0\$" "ports lists the simulated pty"

run "$IOTFLEET" module info --port "$luat0" --module luat -o json
expect_rc 0 "luat info"
expect_out "\"imei\": \"$imei0\"" "luat IMEI"
expect_out '"imei_check": "valid"' "IMEI checked"
expect_out '"sn": null' "SN unset (Missing SN is data, not an error)"
[ "$(jq -c .verdicts <<<"$out")" = '["no credentials stored"]' ] && ok ||
  fail "verdicts are a JSON array: $(jq -c .verdicts <<<"$out")"
expect_out '"registration": "home"' "registration decoded"

run "$IOTFLEET" module at --port "$luat0" "AT+WISN=\"$secret\""
expect_rc 0 "write SN with module at"
run "$IOTFLEET" module at --port "$luat0" 'AT+WISN?'
expect_rc 0 "read SN"
expect_out 'info +abcd…2345' "SN answer masked"
expect_no_out "$secret" "SN never in full without --show-secrets"
run "$IOTFLEET" module at --port "$luat0" 'AT+WISN?' --show-secrets -o csv
expect_out "^info,$secret\$" "SN in full with --show-secrets"

run "$IOTFLEET" module info --port "$luat0" -o csv --show-secrets
expect_rc 0 "luat info with secret (module auto-detected)"
expect_out "^port,module,.*,device_secret,.*verdicts\$" "csv header"
expect_out ",luat,.*,$imei0,valid,.*,secret,,$imei0,$secret,,,READY," "layout secret: DN = IMEI, DS = SN, no copy declared"
run "$IOTFLEET" module info --port "$luat0" --trace
expect_err "trace $luat0 >> AT\+WISN\?" "--trace shows the conversation"
expect_err "trace $luat0 << abcd…2345" "--trace masks the secret"
expect_no_err "$secret" "trace never shows the secret"

run "$IOTFLEET" module at --port "$luat0" 'AT+NOSUCH'
expect_rc 3 "ERROR answer exits 3"
expect_out '^final +(ERROR|\+CME ERROR)' "final result printed"
expect_err 'AT\+NOSUCH answered' "error names the command"
run "$IOTFLEET" module at --port "$luat0" $'AT+WISN="x"\rAT+WISN="y"'
expect_rc 2 "control bytes refused"
expect_err 'AT command' "refusal names the field"
run "$IOTFLEET" module at --port "$luat0" 'hello'
expect_rc 2 "not an AT command"
run "$IOTFLEET" module info --port "$luat0" --module quectel
expect_rc 0 "a forced driver still runs"
expect_err "warning: $luat0 answers like a luat module, not quectel" "a mismatched driver is flagged"
run "$IOTFLEET" module info --port /dev/iotfleet-no-such-port
expect_rc 3 "missing port"
expect_err "no-such-port: No such file or directory — check the cable" "missing port explained"
run "$IOTFLEET" module info
expect_rc 2 "--port required"

# --- Quectel and ESP-AT ---------------------------------------------------------------------
sim_start "$IOT_TMP/quectel" --count 1 --module quectel --no-pacing --urc-rate 0 --nvm-latency-ms 5-10
q0=${sim_ports[0]} qimei=${sim_ids[0]}
run "$IOTFLEET" module at --port "$q0" "AT+QMTCFG=\"aliauth\",0,\"a1b2c3d4e5f\",\"$qimei\",\"$secret\""
expect_rc 0 "quectel aliauth write"
run "$IOTFLEET" module info --port "$q0" -o csv
expect_rc 0 "quectel info (auto)"
expect_out ",quectel,Quectel,.*,$qimei,valid,.*,triplet,a1b2c3d4e5f,$qimei,abcd…2345,,,READY," "quectel triplet read back, masked"

sim_start "$IOT_TMP/esp" --count 1 --module esp-at --no-pacing --urc-rate 0 --nvm-latency-ms 5-10
e0=${sim_ports[0]} mac=${sim_ids[0]}
run "$IOTFLEET" module info --port "$e0" -o json
expect_rc 0 "esp-at info (auto)"
expect_out '"module": "esp-at"' "esp-at detected"
expect_out "\"mac\": \"$mac\"" "esp-at MAC"
expect_out '"imei": null' "no IMEI on Wi-Fi"

# --- placeholder IMEI ------------------------------------------------------------------------
sim_start "$IOT_TMP/placeholder" --count 1 --module luat --placeholder-imei --no-pacing --urc-rate 0
run "$IOTFLEET" module info --port "${sim_ports[0]}" -o json
expect_rc 0 "placeholder info"
expect_out '"imei_check": "placeholder"' "placeholder classified"
expect_out 'IMEI not written' "placeholder verdict as the FAQ says"

# --- noisy line: correct or a clean error, never wrong ----------------------------------------
sim_start "$IOT_TMP/noisy" --count 1 --module luat --no-pacing --garble 0.1 --urc-rate 60 --seed 5 \
  --nvm-latency-ms 5-10
n0=${sim_ports[0]} nimei=${sim_ids[0]}
for i in 1 2 3 4 5 6 7 8; do
  "$IOTFLEET" module at --port "$n0" "AT+WISN=\"$secret\"" >/dev/null 2>&1 && break
done
correct=0 clean=0 wrong=0
for i in $(seq 12); do
  run "$IOTFLEET" module info --port "$n0" --module luat -o csv --show-secrets
  if [ "$rc" -eq 0 ]; then
    if grep -q ",$nimei,valid,.*,secret,,$nimei,$secret," <<<"$out"; then
      correct=$((correct + 1))
    else
      wrong=$((wrong + 1))
      echo "WRONG reading on a noisy line: $out" >&2
    fi
  elif [ "$rc" -eq 3 ] && grep -q "^iotfleet: error: $n0" <<<"$err"; then
    clean=$((clean + 1))
  else
    wrong=$((wrong + 1))
    echo "unclean failure rc=$rc: $err" >&2
  fi
done
echo "noisy line: $correct correct, $clean clean errors, $wrong wrong" >&2
[ "$wrong" -eq 0 ] && ok || fail "$wrong wrong or unclean readings on a noisy line"
[ "$correct" -ge 6 ] && ok || fail "only $correct of 12 readings succeeded on a 10% noisy line"

finish
