#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ctrl-C (SIGINT) and SIGTERM while iotfleet waits on a module: every wait (an AT answer, sync,
# module info's re-reads, provision --loop's probes and pauses) gives way and exits 130, on a
# dead fixture (a simulated module that is stuck, or a fixture with no module) and
# mid-conversation; a credential write in flight is still finished, verified and recorded.
# "Gives way" is within 3 s of the signal: the waits cut short last 5-600 s, and an ASan exit
# includes LeakSanitizer's scan on shared cores. The signal goes once a trace line, an output
# line or a connection shows the process inside the wait.
# diagnose fleet reading a FIFO that never ends gives way too, and leaves its old --html report.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1B2c3D4e5F
limit_ms=3000

now_ms() { date +%s%3N; }

# wait_until PID CMD...: until CMD succeeds (60 s at most, while PID lives).
wait_until() {
  local pid=$1 i
  shift
  for i in $(seq 3000); do
    if "$@" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}
# wait_for FILE REGEX: until FILE has a line matching REGEX (60 s at most).
wait_for() {
  local i
  for i in $(seq 3000); do
    if grep -qE -- "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.02
  done
  echo "no /$2/ in $1 after 60 s: $(cat "$1")" >&2
  return 1
}
# writer_done PID: the FIFO writer PID has sent the whole log (its subshell exec'd sleep).
sleep_bin=$(readlink -f "$(command -v sleep)")
writer_done() { [ "$(readlink -f "/proc/$1/exe" 2>/dev/null)" = "$sleep_bin" ]; }
# reader_idle WRITER: the writer has written all it will, and the process under test (interrupt's
# $pid) has read all of it: it sleeps in poll, waiting for more, rather than still parsing (on a
# loaded sanitizer build the parsing outlasts the writer).
reader_idle() {
  writer_done "$1" || return 1
  local wchan
  wchan=$(cat "/proc/$pid/wchan" 2>/dev/null || true)
  # A kernel that hides kernel symbols shows 0 there: then sleeping twice, 50 ms apart, will do
  # (the parsing is all on the CPU).
  if [ -n "$wchan" ] && [ "$wchan" != 0 ]; then
    [[ $wchan == *poll* ]] || return 1
  fi
  [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = S ] || return 1
  sleep 0.05
  [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = S ]
}
# connected PORT: a TCP connection to PORT is established (/proc/net/tcp, IPv4).
connected() {
  awk -v p="$(printf %04X "$1")" 'NR > 1 && $4 == "01" && substr($3, index($3, ":") + 1) == p \
    { f = 1 } END { exit !f }' /proc/net/tcp
}

# interrupt SIGNAL WHEN LABEL CMD...: runs CMD in the background (stdout in $IOT_TMP/.out, stderr
# in $IOT_TMP/.err); once the process has installed its handlers, waits for WHEN: "out:REGEX" or
# "err:REGEX" (that stream has such a line) or "FUNCTION ARGS" (it succeeds), 60 s at most; then
# sends SIGNAL and sets $rc, $out, $err and $ms (signal to exit).
interrupt() {
  local signal=$1 when=$2 label=$3
  shift 3
  "$@" >"$IOT_TMP/.out" 2>"$IOT_TMP/.err" &
  local pid=$!
  iot_cleanup_hooks+=("kill $pid 2>/dev/null")
  # A signal sent before main() has installed its handlers kills the process (exit 128+N), which
  # is not what is tested: first wait until the process catches SIGINT and SIGTERM (a sanitizer
  # build on a loaded machine may take longer than any fixed pause to get there).
  wait_caught "$pid" || fail "$label: the process never installed its signal handlers"
  local cond
  case $when in
    out:* | err:*) cond=(grep -qE -- "${when#*:}" "$IOT_TMP/.${when%%:*}") ;;
    *) read -ra cond <<<"$when" ;;
  esac
  wait_until "$pid" "${cond[@]}" || fail "$label: never got to '$when': $(cat "$IOT_TMP/.err")"
  local start
  start=$(now_ms)
  kill "-$signal" "$pid"
  set +e
  wait "$pid"
  rc=$?
  set -e
  ms=$(($(now_ms) - start))
  out=$(cat "$IOT_TMP/.out")
  err=$(cat "$IOT_TMP/.err")
}
expect_quick() { # expect_quick LABEL: exit 130 within $limit_ms
  echo "$1: exit $rc after $ms ms" >&2
  expect_rc 130 "$1"
  if [ "$ms" -le "$limit_ms" ]; then ok; else fail "$1: took $ms ms after the signal (limit $limit_ms)"; fi
}

# --- a stuck module: nothing but the echo ever comes back -----------------------------------
sim_start "$IOT_TMP/stuck" --count 1 --module luat --stuck 1 --urc-rate 0 --no-pacing
stuck=${sim_ports[0]}
for signal in INT TERM; do
  interrupt "$signal" "err:trace [^ ]+ >> AT\+CSQ$" "module at, SIG$signal" \
    "$IOTFLEET" module at --port "$stuck" AT+CSQ --timeout 600000 --no-sync --trace
  expect_quick "module at --timeout 600000 on a stuck module, SIG$signal"
  expect_err "interrupted \(Ctrl-C / SIGTERM\) after [0-9]+ ms, before the final result code" \
    "module at, SIG$signal: the message says what was interrupted"
  interrupt "$signal" "err:trace [^ ]+ >> AT$" "module info, SIG$signal" \
    "$IOTFLEET" module info --port "$stuck" --trace
  expect_quick "module info on a stuck module (sync), SIG$signal"
  expect_err "$stuck: sync: interrupted" "module info, SIG$signal: sync was interrupted"
done

# --- a fixture with no module (pulled): the pty is there, nobody answers ----------------------
sim_start "$IOT_TMP/line" --count 2 --module luat --urc-rate 0 --no-pacing --nvm-latency-ms 5-10 \
  --control "$IOT_TMP/line.ctl"
empty=${sim_ports[0]} fixture=${sim_ports[1]}
echo "remove 0" >"$IOT_TMP/line.ctl"
wait_for "$IOT_TMP/line/sim.err" '^control: remove 0'
interrupt TERM "err:trace [^ ]+ >> AT$" "module at on an empty fixture" \
  "$IOTFLEET" module at --port "$empty" AT --timeout 600000 --trace
expect_quick "module at on an empty fixture, SIGTERM"
expect_err "sync: interrupted \(Ctrl-C / SIGTERM\)" "module at on an empty fixture: sync was interrupted"

# --- mid-conversation: module info re-reading a slow line (1200 baud) --------------------------
sim_start "$IOT_TMP/slow" --count 1 --module luat --urc-rate 0 --baud 1200
interrupt TERM "err:trace [^ ]+ >> AT\+CGSN" "module info mid-read" \
  "$IOTFLEET" module info --port "${sim_ports[0]}" -m luat --trace
expect_quick "module info reading identity, SIGTERM"
expect_no_out "imei" "no record printed after the interruption"

# --- provision --loop: waiting for a module, and waiting for its removal ----------------------
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 4); do printf '%s,intr%04d,I%031d\n' "$pk" "$n" "$n"; done
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null
interrupt INT "err:trace [^ ]+ >> AT$" "provision --loop on an empty fixture" \
  "$IOTFLEET" provision --port "$empty" -m luat --layout triplet --loop --poll 10s -o ndjson --trace
expect_quick "provision --loop waiting for a module, SIGINT"
grep -q '"event":"summary","burned":0,' <<<"$out" && ok || fail "nothing burned: $out"

interrupt INT 'out:"event":"burned"' "provision --loop waiting for removal" \
  "$IOTFLEET" provision --port "$fixture" -m luat --layout triplet --loop --poll 10s \
  -o ndjson
expect_quick "provision --loop pausing 10 s between probes, SIGINT"
grep -q '"event":"summary","burned":1,' <<<"$out" && ok || fail "one burned: $out"

# --- a write in flight is finished, verified and recorded -------------------------------------
# The write takes 4 s (the profile's write timeout is 5 s): spotting it late cannot reach 1 s left.
sim_start "$IOT_TMP/nvm" --count 1 --module quectel --urc-rate 0 --no-pacing --nvm-latency-ms 4000
interrupt INT 'err:trace [^ ]+ >> AT\+QMTCFG="aliauth",0,"' "provision with a write in flight" \
  "$IOTFLEET" provision --port "${sim_ports[0]}" -m quectel --trace -o ndjson
echo "provision with a write in flight: exit $rc after $ms ms" >&2
expect_rc 130 "provision interrupted during a write"
if [ "$ms" -ge 1000 ]; then ok; else fail "the 4 s write was cut short: exit after $ms ms"; fi
grep -q '"event":"burned"' <<<"$out" && ok || fail "the write in flight was recorded burned: $out $err"
sed -n '/>> AT+QMTCFG="aliauth",0,"/,$p' <<<"$err" | grep -q '>> AT+QMTCFG="aliauth",0$' && ok ||
  fail "the write was read back after the signal: $err"
if python3 "$here/ledger_check.py" "$IOTFLEET_LEDGER" "$IOT_TMP/line/state" "$IOT_TMP/nvm/state" \
  --total 4 >check.txt 2>&1; then ok; else fail "ledger vs modules: $(cat check.txt)"; fi
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,[^,]+,0,0,0,2\$" "two burned, none left claimed or bound"

# --- diagnose fleet reading a FIFO whose writer stays open: interruption wins ----------------
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
"$IOTFLEET_SIM" fleetlog --devices 200 --days 1 --seed 3 --plant duplicate=2 -O fleet.csv >/dev/null
echo "the old report" >report.html
mkfifo log.fifo
for signal in INT TERM; do
  # The writer sends the whole log, then holds the FIFO open (no EOF) until it is killed.
  (cat fleet.csv && exec sleep 60) >log.fifo &
  writer=$!
  iot_cleanup_hooks+=("kill $writer 2>/dev/null")
  interrupt "$signal" "reader_idle $writer" "diagnose fleet on a FIFO, SIG$signal" \
    "$IOTFLEET" diagnose fleet --log log.fifo --html report.html
  expect_quick "diagnose fleet waiting for more of a FIFO, SIG$signal"
  expect_err "interrupted while reading --log log.fifo" "SIG$signal: interrupted while reading"
  [ "$(cat report.html)" = "the old report" ] && ok || fail "SIG$signal: the --html report was overwritten"
  kill "$writer" 2>/dev/null || true
  wait "$writer" 2>/dev/null || true
done

# --- a cloud call waiting for a slow answer: Ctrl-C wins, exit 130, no file -----------------------
cat >slow.json <<EOF
{"access_keys": [{"id": "LTAI5tSlowCloud0001", "secret": "slowCloudSecret000000000000001"}],
 "products": [{"product_key": "a1SlowCloud", "generate": {"count": 5, "names": "sequence",
   "prefix": "slow-", "digits": 4}}]}
EOF
cloud_start "$IOT_TMP/slowcloud" slow.json --latency-ms 20000-20000
printf '%s' slowCloudSecret000000000000001 >slow.secret
chmod 600 slow.secret
cloud_port=${cloud_url%/}
cloud_port=${cloud_port##*:}
interrupt INT "connected $cloud_port" "secrets export waiting for the cloud" \
  "$IOTFLEET" --endpoint "$cloud_url" --access-key-id LTAI5tSlowCloud0001 \
  --access-key-secret-file slow.secret secrets export --product-key a1SlowCloud -O slow.csv
expect_quick "secrets export waiting 20 s for an answer, SIGINT"
expect_err "interrupted while waiting for the answer" "secrets export: interrupted in the request"
[ ! -e slow.csv ] && ok || fail "an interrupted export wrote slow.csv"

finish
