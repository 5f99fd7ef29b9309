#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet-sim modules --control: operators pull and replace modules through the FIFO while the
# host keeps the fixture's port open; per-generation NVM files, modules.ndjson, ports.json,
# restarts on the same state dir.
source "$(dirname "$0")/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
unset IOTFLEET_SIM_REGISTRY
registry_dir="$XDG_RUNTIME_DIR/iotfleet"
state="$IOT_TMP/state"
fifo="$IOT_TMP/line.ctl"

sim_pid=
start_sim() { # start_sim EXTRA_ARGS...: starts the simulator, waits for "ready" on stderr
  rm -f "$IOT_TMP/sim.out" "$IOT_TMP/sim.err"
  "$IOTFLEET_SIM" modules --count 2 --module luat --state-dir "$state" --urc-rate 0 \
    --nvm-latency-ms 5-10 --control "$fifo" --swap-gap-ms 1000 "$@" \
    >"$IOT_TMP/sim.out" 2>"$IOT_TMP/sim.err" &
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
stop_sim() {
  kill -TERM "$sim_pid"
  set +e
  wait "$sim_pid"
  local status=$?
  set -e
  if [ "$status" -eq 0 ]; then ok; else fail "simulator exit $status after SIGTERM"; fi
}
# control CMD REGEX: writes CMD to the FIFO, waits up to 5 s for a new stderr line matching
# REGEX and prints it.
control() {
  local before i line
  before=$(wc -l <"$IOT_TMP/sim.err")
  printf '%s\n' "$1" >"$fifo"
  for i in $(seq 50); do
    line=$(tail -n +"$((before + 1))" "$IOT_TMP/sim.err" | grep -E -- "$2" | head -1 || true)
    if [ -n "$line" ]; then
      ok
      printf '%s\n' "$line"
      return 0
    fi
    sleep 0.1
  done
  fail "'$1': no stderr line /$2/ within 5 s: $(tail -3 "$IOT_TMP/sim.err")"
}
# wait_err REGEX: waits up to 5 s for any stderr line matching REGEX and prints it.
wait_err() {
  local i line
  for i in $(seq 50); do
    line=$(grep -E -- "$1" "$IOT_TMP/sim.err" | head -1 || true)
    if [ -n "$line" ]; then
      ok
      printf '%s\n' "$line"
      return 0
    fi
    sleep 0.1
  done
  fail "no stderr line /$1/ within 5 s: $(tail -3 "$IOT_TMP/sim.err")"
}
# at FD CMD: sends CMD + CR on fd FD, prints what came back within 0.5 s (CRs removed).
at() {
  printf '%s\r' "$2" >&"$1"
  { timeout 0.5 cat <&"$1" || true; } | tr -d '\r'
}
drain() { { timeout "${2:-0.3}" cat <&"$1" || true; } | tr -d '\r'; }
# jsonq FILE EXPR: prints the Python expression EXPR over the parsed file (`d`; for .ndjson a
# list of records).
jsonq() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
path, expr = sys.argv[1], sys.argv[2]
with open(path) as f:
    d = [json.loads(l) for l in f if l.strip()] if path.endswith(".ndjson") else json.load(f)
print(eval(expr))
EOF
}
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# --- one line, two fixtures ------------------------------------------------------------------
start_sim
[ -p "$fifo" ] && ok || fail "no FIFO at $fifo"
read -r pty0 imei0 <<<"$(sed -n 1p "$IOT_TMP/sim.out")"
read -r pty1 imei1 <<<"$(sed -n 2p "$IOT_TMP/sim.out")"
exec 3<>"$pty0" 4<>"$pty1"
sleep 1.2
drain 3 >/dev/null
drain 4 >/dev/null
out=$(at 3 'ATE0')
out=$(at 3 'AT+WISN="burnedInGen0"')
[ "$(grep -v '^$' <<<"$out")" = OK ] && ok || fail "AT+WISN write: $out"

# remove: the port stays open but the fixture is silent, no echo either
control 'remove 0' "^control: remove 0 \\($imei0, generation 0\\)$" >/dev/null
out=$(at 3 'AT')
[ -z "$(tr -d '\n' <<<"$out")" ] && ok || fail "a removed module answered: $out"
[ "$(jsonq "$state/ports.json" 'd["ports"][0]["present"]')" = False ] && ok ||
  fail "ports.json still shows fixture 0 present: $(cat "$state/ports.json")"
cmp -s "$state/ports.json" "$registry_dir/sim-$sim_pid.json" && ok ||
  fail "registry entry differs from ports.json"

# insert with a chosen IMEI: boots (RDY, echo on), new identity, no SN
control 'insert 0 123456789012345' '^control: insert 0 -> 123456789012345 \(generation 1\)$' \
  >/dev/null
banner=$(drain 3 1.0)
grep -qx RDY <<<"$banner" && ok || fail "no boot banner after insert: $banner"
out=$(at 3 'AT+CGSN')
grep -qx 'AT+CGSN' <<<"$out" && ok || fail "echo not on after insert: $out"
grep -qx 123456789012345 <<<"$out" && ok || fail "inserted module's IMEI: $out"
out=$(at 3 'AT+WISN?')
grep -qx '\*CME ERROR: Missing SN' <<<"$out" && ok || fail "inserted module has an SN: $out"
[ "$(jsonq "$state/ports.json" 'd["ports"][0]["imei"]')" = 123456789012345 ] && ok ||
  fail "ports.json lacks the new IMEI: $(cat "$state/ports.json")"

# swap: silent during the gap, then another module
line=$(control 'swap 1' "^control: swap 1: removed $imei1, inserting in 1000 ms$")
out=$(at 4 'AT')
[ -z "$(tr -d '\n' <<<"$out")" ] && ok || fail "port 1 answered during the swap gap: $out"
line=$(wait_err '^control: swap 1 -> [0-9]{15} \(generation 1\)$')
new1=$(sed -E 's/^control: swap 1 -> ([0-9]{15}).*/\1/' <<<"$line")
[ "$new1" != "$imei1" ] && ok || fail "swap kept IMEI $imei1"
drain 4 1.0 >/dev/null
out=$(at 4 'AT+CGSN')
grep -qx "$new1" <<<"$out" && ok || fail "swapped module's IMEI (want $new1): $out"

# set-sn: what the module holds changes; the value never reaches the log
control 'set-sn 0 c0rrupted Secret' '^control: set-sn 0$' >/dev/null
out=$(at 3 'AT+WISN?')
grep -qx 'c0rrupted Secret' <<<"$out" && ok || fail "set-sn not visible through AT+WISN?: $out"

# bad lines: a message, ignored, the simulator carries on
control 'bogus 1 s3cretish' "^control: ignored 'bogus 1 \\.\\.\\.': unknown command" >/dev/null
control 'remove 7' "^control: ignored 'remove 7': no fixture 7" >/dev/null
kill -0 "$sim_pid" && ok || fail "simulator died on a bad control line"
grep -q 's3cretish\|c0rrupted' "$IOT_TMP/sim.err" && fail "a value reached stderr" || ok

# modules.ndjson: one line per module ever inserted; each NVM file holds what its module holds
nd="$state/modules.ndjson"
[ "$(jsonq "$nd" 'len(d)')" = 4 ] && ok || fail "want 4 modules.ndjson lines: $(cat "$nd")"
[ "$(jsonq "$nd" '[(r["index"], r["generation"]) for r in d]')" = "[(0, 0), (1, 0), (0, 1), (1, 1)]" ] &&
  ok || fail "modules.ndjson order: $(cat "$nd")"
[ "$(jsonq "$nd" '[r["removed_at"] is None for r in d]')" = "[False, False, True, True]" ] &&
  ok || fail "modules.ndjson removed_at: $(cat "$nd")"
[ "$(jsonq "$nd" 'd[0]["imei"] + " " + d[3]["imei"]')" = "$imei0 $new1" ] && ok ||
  fail "modules.ndjson IMEIs: $(cat "$nd")"
[ "$(jsonq "$nd" 'd[2]["nvm"]')" = "$state/luat-0-g1.json" ] && ok || fail "gen 1 file: $(cat "$nd")"
[ "$(jsonq "$state/luat-0.json" 'd["sn_hex"]')" = "$(hex burnedInGen0)" ] && ok ||
  fail "the pulled module's file lost its SN: $(cat "$state/luat-0.json")"
[ "$(jsonq "$state/luat-0-g1.json" 'd["sn_hex"]')" = "$(hex 'c0rrupted Secret')" ] && ok ||
  fail "set-sn not in the generation-1 file: $(cat "$state/luat-0-g1.json")"
[ "$(jsonq "$state/luat-1-g1.json" '"sn_hex" in d')" = False ] && ok ||
  fail "a fresh module has an SN: $(cat "$state/luat-1-g1.json")"
exec 3<&- 4<&-
stop_sim
[ ! -e "$fifo" ] && ok || fail "FIFO $fifo left after exit"

# --- restart on the same state dir: each fixture's latest module ------------------------------
start_sim
read -r _ imei0b <<<"$(sed -n 1p "$IOT_TMP/sim.out")"
read -r pty1b imei1b <<<"$(sed -n 2p "$IOT_TMP/sim.out")"
[ "$imei0b $imei1b" = "123456789012345 $new1" ] && ok ||
  fail "restart: want 123456789012345 $new1, got $imei0b $imei1b"
control 'swap all' '^control: swap 1: removed ' >/dev/null
wait_err '^control: swap 0 -> [0-9]{15} \(generation 2\)$' >/dev/null
wait_err '^control: swap 1 -> [0-9]{15} \(generation 2\)$' >/dev/null
[ "$(jsonq "$state/modules.ndjson" 'len(d)')" = 6 ] && ok || fail "want 6 modules.ndjson lines"
control 'remove 1' '^control: remove 1 \(' >/dev/null
stop_sim

# a fixture left empty stays empty across a restart
start_sim
read -r pty1c id1c <<<"$(sed -n 2p "$IOT_TMP/sim.out")"
[ "$id1c" = - ] && ok || fail "fixture 1 should be empty after restart, got '$id1c'"
grep -q '^iotfleet-sim: fixture 1 is empty' "$IOT_TMP/sim.err" && ok || fail "no empty-fixture note"
exec 4<>"$pty1c"
out=$(at 4 'AT')
[ -z "$(tr -d '\n' <<<"$out")" ] && ok || fail "the empty fixture answered: $out"
control 'insert 1' '^control: insert 1 -> [0-9]{15} \(generation 3\)$' >/dev/null
drain 4 1.0 >/dev/null
out=$(at 4 'AT')
grep -qx OK <<<"$out" && ok || fail "inserted module does not answer AT: $out"
exec 4<&-
stop_sim

# --control on something that is not a FIFO is a usage error
touch "$IOT_TMP/regular"
run "$IOTFLEET_SIM" modules --count 1 --state-dir "$state" --control "$IOT_TMP/regular"
expect_rc 2 "--control on a regular file"
expect_err 'not a FIFO' "--control on a regular file"

finish
