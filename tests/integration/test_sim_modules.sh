#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet-sim modules: real ptys, ports file, registry entry, clean shutdown, persistent NVM.
source "$(dirname "$0")/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
unset IOTFLEET_SIM_REGISTRY
registry_dir="$XDG_RUNTIME_DIR/iotfleet"
state="$IOT_TMP/state"

sim_pid=
start_sim() { # start_sim EXTRA_ARGS...: starts the simulator, waits for "ready" on stderr
  rm -f "$IOT_TMP/sim.out" "$IOT_TMP/sim.err" # no stale "ready" from the previous run
  "$IOTFLEET_SIM" modules --count 2 --module luat --state-dir "$state" --urc-rate 0 \
    --nvm-latency-ms 5-10 "$@" >"$IOT_TMP/sim.out" 2>"$IOT_TMP/sim.err" &
  sim_pid=$!
  iot_cleanup_hooks+=("kill $sim_pid 2>/dev/null")
  local i
  for i in $(seq 100); do
    grep -qx ready "$IOT_TMP/sim.err" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "simulator not ready after 10 s: $(cat "$IOT_TMP/sim.err")"
  return 1
}
stop_sim() { # stop_sim: SIGTERM, expects exit 0
  kill -TERM "$sim_pid"
  set +e
  wait "$sim_pid"
  local status=$?
  set -e
  if [ "$status" -eq 0 ]; then ok; else fail "simulator exit $status after SIGTERM"; fi
}
# at CMD: sends CMD + CR on fd 3, prints what came back within 0.5 s (CRs removed).
at() {
  printf '%s\r' "$1" >&3
  { timeout 0.5 cat <&3 || true; } | tr -d '\r'
}

# --- first run -----------------------------------------------------------------------------
start_sim
mapfile -t lines <"$IOT_TMP/sim.out"
[ "${#lines[@]}" -eq 2 ] && ok || fail "want 2 'PATH IMEI' lines, got: ${lines[*]}"
read -r pty0 imei0 <<<"${lines[0]}"
read -r _ imei1 <<<"${lines[1]}"
[[ $pty0 == /dev/pts/* ]] && ok || fail "not a pty path: $pty0"
[[ $imei0 =~ ^86[0-9]{13}$ ]] && ok || fail "not an IMEI: $imei0"
[ "$imei0" != "$imei1" ] && ok || fail "two modules share IMEI $imei0"

[ -f "$state/ports.json" ] && ok || fail "no ports file in $state"
grep -q "\"path\": \"$pty0\"" "$state/ports.json" && ok || fail "ports file lacks $pty0"
grep -q "\"module\": \"luat\"" "$state/ports.json" && ok || fail "ports file lacks the module"
reg="$registry_dir/sim-$sim_pid.json"
[ -f "$reg" ] && ok || fail "no registry file $reg"
cmp -s "$reg" "$state/ports.json" && ok || fail "registry file differs from the ports file"

exec 3<>"$pty0"
sleep 1.2                            # let the boot banner finish
banner=$({ timeout 0.3 cat <&3 || true; } | tr -d '\r')
grep -qx RDY <<<"$banner" && ok || fail "no RDY in the boot output: $banner"
out=$(at 'AT+CGSN')
grep -qx 'AT+CGSN' <<<"$out" && ok || fail "echo is not on after boot: $out"
grep -qx "$imei0" <<<"$out" && ok || fail "AT+CGSN did not answer $imei0: $out"
grep -qx OK <<<"$out" && ok || fail "AT+CGSN without OK: $out"
out=$(at 'ATE0')
out=$(at 'AT+WISN?')
grep -qx '\*CME ERROR: Missing SN' <<<"$out" && ok || fail "unset SN: $out"
out=$(at 'AT+WISN="s3cretValue42"')
[ "$(grep -v '^$' <<<"$out")" = OK ] && ok || fail "AT+WISN write: $out"
exec 3<&-

stop_sim
[ ! -e "$reg" ] && ok || fail "registry file $reg left after SIGTERM"
grep -q 'shutting down' "$IOT_TMP/sim.err" && ok || fail "no shutdown message: $(cat "$IOT_TMP/sim.err")"

# --- second run, same state dir: same identities, SN kept ------------------------------------
start_sim
read -r pty0b imei0b <<<"$(sed -n 1p "$IOT_TMP/sim.out")"
read -r _ imei1b <<<"$(sed -n 2p "$IOT_TMP/sim.out")"
[ "$imei0b" = "$imei0" ] && [ "$imei1b" = "$imei1" ] && ok ||
  fail "IMEIs changed across restarts: $imei0/$imei1 -> $imei0b/$imei1b"
exec 3<>"$pty0b"
sleep 1.2
{ timeout 0.2 cat <&3 || true; } >/dev/null
out=$(at 'AT+WISN?')
grep -qx 's3cretValue42' <<<"$out" && ok || fail "SN not kept across restarts: $out"
exec 3<&-
stop_sim

# --- identity flags and usage errors ---------------------------------------------------------
start_sim --placeholder-imei
grep -q ' 352099001761481$' "$IOT_TMP/sim.out" && ok || fail "placeholder IMEI: $(cat "$IOT_TMP/sim.out")"
stop_sim

run "$IOTFLEET_SIM" modules --count 1 --module nokia --state-dir "$state"
expect_rc 2 "unknown module"
run "$IOTFLEET_SIM" --version
expect_rc 0 "--version"
expect_out 'iotfleet-sim' "--version"

finish
