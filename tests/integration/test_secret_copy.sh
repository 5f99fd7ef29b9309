#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The module-side second copy of the secret (seed FAQ §3.2): module info with the UNVERIFIED
# example profile docs/profiles/luat-nvm-copy.json against simulated Luat modules whose device
# script keeps the secret in NVM after each (simulated) connection; the control FIFO's set-sn,
# connected and set-copy make the SN and the copy agree or disagree. Secrets stay masked unless
# --show-secrets, and never reach the simulator's log.
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"
profile="$repo/docs/profiles/luat-nvm-copy.json"
secret=abcdefghijklmnopqrstuvwxyz012345
other=ZYXWVUTSRQPONMLKJIHGFEDCBA987654
fifo="$IOT_TMP/line.ctl"

# --- the example in docs/module-profiles.md is the shipped file, byte for byte ---------------
python3 - "$repo/docs/module-profiles.md" "$profile" <<'PY' && ok || fail "doc block and $profile differ"
import sys
doc, path = open(sys.argv[1]).read(), open(sys.argv[2]).read()
marker = "<!-- docs/profiles/luat-nvm-copy.json -->\n```json\n"
start = doc.index(marker) + len(marker)
block = doc[start:doc.index("```\n", start)]
sys.exit(0 if block == path else 1)
PY

# control CMD REGEX: writes CMD to the FIFO, waits up to 5 s for a new simulator stderr line
# matching REGEX.
control() {
  local before i
  before=$(wc -l <"$IOT_TMP/line/sim.err")
  printf '%s\n' "$1" >"$fifo"
  for i in $(seq 50); do
    if tail -n +"$((before + 1))" "$IOT_TMP/line/sim.err" | grep -qE -- "$2"; then
      ok
      return 0
    fi
    sleep 0.1
  done
  fail "'${1%% *} …': no simulator line /$2/ within 5 s: $(tail -2 "$IOT_TMP/line/sim.err")"
}
# info PORT ARGS...: module info with the example profile, as JSON.
info() {
  local port=$1
  shift
  run "$IOTFLEET" module info --port "$port" --module-profile "$profile" -o json "$@"
}
field() { jq -r ".$1" <<<"$out"; } # field NAME: a member of the last JSON record

sim_start "$IOT_TMP/line" --count 2 --module luat --no-pacing --urc-rate 0 --nvm-latency-ms 5-10 \
  --control "$fifo"
p0=${sim_ports[0]} imei0=${sim_ids[0]} p1=${sim_ports[1]}

# A fresh module: nothing in the SN, no copy.
info "$p0"
expect_rc 0 "info on a fresh module"
[ "$(field module)" = luat-nvm-copy ] && ok || fail "profile name: $(field module)"
[ "$(field secret_copy_state)" = no-copy ] && ok || fail "fresh: state $(field secret_copy_state)"
[ "$(field secret_copy)" = null ] && ok || fail "fresh: copy $(field secret_copy)"

# Burned but never connected since: still no copy.
control "set-sn 0 $secret" '^control: set-sn 0$'
info "$p0"
expect_rc 0 "info after the burn"
[ "$(field device_secret)" = 'abcd…2345' ] && ok || fail "SN secret masked: $(field device_secret)"
[ "$(field secret_copy_state)" = no-copy ] && ok || fail "burned: state $(field secret_copy_state)"

# The device connects: its script copies the SN to NVM.
control 'connected 0' '^control: connected 0$'
info "$p0"
expect_rc 0 "info after a connection"
[ "$(field secret_copy_state)" = same ] && ok || fail "connected: state $(field secret_copy_state)"
[ "$(field secret_copy)" = 'abcd…2345' ] && ok || fail "copy masked: $(field secret_copy)"
[ "$(jq -c .verdicts <<<"$out")" = '["ok"]' ] && ok || fail "verdicts: $(jq -c .verdicts <<<"$out")"
expect_no_out "$secret" "no secret in full without --show-secrets"
info "$p0" --show-secrets
[ "$(field secret_copy)" = "$secret" ] && ok || fail "copy with --show-secrets: $(field secret_copy)"
[ "$(field device_secret)" = "$secret" ] && ok || fail "SN with --show-secrets: $(field device_secret)"
run "$IOTFLEET" module info --port "$p0" --module-profile "$profile" -o csv
expect_out '^port,module,.*,device_secret,secret_copy,secret_copy_state,sim,.*verdicts$' "csv header"
expect_out ",secret,,$imei0,abcd…2345,abcd…2345,same,READY," "csv row: SN, copy, state"
run "$IOTFLEET" module info --port "$p0" --module-profile "$profile" --trace
expect_rc 0 "info --trace"
expect_err "trace $p0 >> AT\+NVMDS\?" "--trace shows the copy's read"
expect_no_err "$secret" "--trace never shows the secret"

# The SN changes behind the copy's back (the seed's failure): differs, with the verdict.
control "set-sn 0 $other" '^control: set-sn 0$'
info "$p0"
[ "$(field secret_copy_state)" = differs ] && ok || fail "set-sn: state $(field secret_copy_state)"
expect_out 'the stored DeviceSecret differs from its copy' "differs verdict"
expect_no_out "$other" "the new SN masked"

# SN back, the copy corrupted: differs again; a new connection makes them agree.
control "set-sn 0 $secret" '^control: set-sn 0$'
control "set-copy 0 $other" '^control: set-copy 0$'
info "$p0"
[ "$(field secret_copy_state)" = differs ] && ok || fail "set-copy: state $(field secret_copy_state)"
info "$p0" --show-secrets
[ "$(field secret_copy)" = "$other" ] && ok || fail "corrupted copy shown: $(field secret_copy)"
control 'connected 0' '^control: connected 0$'
info "$p0"
[ "$(field secret_copy_state)" = same ] && ok || fail "reconnected: state $(field secret_copy_state)"

# A module with an SN that never connected: no-copy. Without the example profile: no copy columns.
control "set-sn 1 $other" '^control: set-sn 1$'
info "$p1"
[ "$(field secret_copy_state)" = no-copy ] && ok || fail "module 1: state $(field secret_copy_state)"
run "$IOTFLEET" module info --port "$p0" --module luat -o json
expect_rc 0 "built-in luat profile"
[ "$(field secret_copy_state)" = null ] && ok || fail "built-in: state $(field secret_copy_state)"
[ "$(field secret_copy)" = null ] && ok || fail "built-in: copy $(field secret_copy)"

# module at knows the profile's copy read is secret.
run "$IOTFLEET" module at --port "$p0" --module-profile "$profile" 'AT+NVMDS?'
expect_rc 0 "module at AT+NVMDS?"
expect_no_out "$secret" "module at masks the copy"
expect_out '^info +\+NVM…345"$' "module at shows the copy masked"
run "$IOTFLEET" module at --port "$p0" --module-profile "$profile" 'AT+NVMDS?' --show-secrets
expect_out "^info +\\+NVMDS: \"$secret\"\$" "module at with --show-secrets"
# Without the profile nothing says the answer is secret: what looks like a credential is masked.
run "$IOTFLEET" module at --port "$p0" 'AT+NVMDS?'
expect_rc 0 "module at AT+NVMDS? without the profile"
expect_no_out "$secret" "the copy is masked without the profile too"
expect_out "^info +\\+NVMDS: \"${secret:0:4}…${secret: -4}\"\$" "only the credential-like token is masked"
run "$IOTFLEET" module at --port "$p0" 'AT+NVMDS?' --show-secrets
expect_out "^info +\\+NVMDS: \"$secret\"\$" "and shown with --show-secrets"

# The copy persists in the module's NVM file like the SN: a restart keeps it.
kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true
sim_start "$IOT_TMP/line" --count 2 --module luat --no-pacing --urc-rate 0 --nvm-latency-ms 5-10 \
  --control "$fifo"
info "${sim_ports[0]}"
expect_rc 0 "info after a simulator restart"
[ "$(field secret_copy_state)" = same ] && ok || fail "restart: state $(field secret_copy_state)"

# Bad input: a profile with a broken secret_copy, a verb the module kind does not have.
jq '.layouts.secret.secret_copy.fields = {"pk": 1}' "$profile" >"$IOT_TMP/bad.json"
run "$IOTFLEET" module info --port "${sim_ports[0]}" --module-profile "$IOT_TMP/bad.json"
expect_rc 2 "a bad secret_copy is a usage/config error"
expect_err 'layouts\.secret\.secret_copy\.fields: must be \{"ds": N\}' "the error names the member"
control 'connected 5' "^control: ignored 'connected 5': no fixture 5"
control 'set-copy 0' "^control: ignored 'set-copy 0': set-copy needs a value$"

if grep -qE "$secret|$other" "$IOT_TMP/line/sim.err"; then
  fail "a secret reached the simulator's log"
else
  ok
fi
finish
