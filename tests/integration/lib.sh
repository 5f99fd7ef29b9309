# SPDX-License-Identifier: MIT
# Helpers for integration tests: source this file. Each test gets a private HOME and work dir,
# removed on exit (kept with IOT_KEEP_TMP=1), and no inherited Alibaba Cloud credentials.
set -euo pipefail
: "${IOTFLEET:?set IOTFLEET to the iotfleet binary}"
: "${IOTFLEET_SIM:=}"

IOT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-test.XXXXXX")
export HOME="$IOT_TMP/home" XDG_CONFIG_HOME="$IOT_TMP/home/.config" XDG_RUNTIME_DIR="$IOT_TMP/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
unset ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_SECURITY_TOKEN \
  ALIBABA_CLOUD_REGION_ID IOTFLEET_CONFIG IOTFLEET_PROFILE
iot_cleanup_hooks=()
iot_cleanup() {
  local hook
  for hook in "${iot_cleanup_hooks[@]}"; do eval "$hook" || true; done
  if [ "${IOT_KEEP_TMP:-0}" = 1 ]; then echo "kept $IOT_TMP" >&2; else rm -rf "$IOT_TMP"; fi
}
trap iot_cleanup EXIT
cd "$IOT_TMP"

iot_pass=0
iot_fail=0
fail() {
  echo "FAIL: $*" >&2
  iot_fail=$((iot_fail + 1))
}
ok() { iot_pass=$((iot_pass + 1)); }

# run CMD...: runs it, keeping stdout in $out, stderr in $err and the exit code in $rc.
run() {
  set +e
  "$@" >"$IOT_TMP/.out" 2>"$IOT_TMP/.err"
  rc=$?
  set -e
  out=$(cat "$IOT_TMP/.out")
  err=$(cat "$IOT_TMP/.err")
}

# pg_start: a PostgreSQL server of this test's own (scripts/pg-local.sh), in a directory the
# postgres user can reach when the test runs as root, stopped and removed at the end. Sets $pgdir
# and $url and exports IOTFLEET_LEDGER=$url; a server that does not start ends the test.
pg_start() {
  pgdir=$(mktemp -d /tmp/iotfleet-pg.XXXXXX)
  local script
  script=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)/pg-local.sh
  iot_cleanup_hooks+=("'$script' stop '$pgdir' >/dev/null 2>&1; rm -rf '$pgdir'")
  url=$(IOTFLEET_PG_NO_SYNC=1 "$script" start "$pgdir") || {
    fail "the PostgreSQL test server did not start"
    finish
    exit 1
  }
  export IOTFLEET_LEDGER=$url
}

# imei_of N [TAC]: a valid IMEI, TAC (8 digits, default 86993945) + N (6 digits) + its Luhn digit.
imei_of() {
  python3 -c 'import sys
d = sys.argv[2] + "%06d" % int(sys.argv[1])
s = sum(int(c) if i % 2 == 0 else sum(divmod(2 * int(c), 10)) for i, c in enumerate(d))
print(d + str((10 - s % 10) % 10))' "$1" "${2:-86993945}"
}

# test_cert: cert.pem and key.pem in the current directory, a self-signed certificate for
# 127.0.0.1 (RSA 2048) for a server of the test's own; the clients trust cert.pem.
test_cert() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 && ok ||
    fail "a test certificate"
}

expect_eq() { # expect_eq GOT WANT LABEL
  if [ "$1" = "$2" ]; then ok; else fail "$3: got '$1', want '$2'"; fi
}
expect_rc() { # expect_rc WANT LABEL
  if [ "$rc" -eq "$1" ]; then ok; else fail "$2: exit $rc, want $1 (stderr: $err)"; fi
}
expect_out() { # expect_out REGEX LABEL
  if grep -qE -- "$1" <<<"$out"; then ok; else fail "$2: stdout lacks /$1/: $out"; fi
}
expect_no_out() {
  if grep -qE -- "$1" <<<"$out"; then fail "$2: stdout has /$1/: $out"; else ok; fi
}
expect_err() {
  if grep -qE -- "$1" <<<"$err"; then ok; else fail "$2: stderr lacks /$1/: $err"; fi
}
expect_no_err() {
  if grep -qE -- "$1" <<<"$err"; then fail "$2: stderr has /$1/: $err"; else ok; fi
}

# wait_caught PID: waits until PID catches SIGINT (bit 1) and SIGTERM (bit 14) per /proc (10 s at most);
# a signal sent before main() installs its handlers kills the process instead. The forked shell
# that has not yet exec'd the program does not count.
wait_caught() {
  local i mask shell
  shell=$(readlink -f "$BASH")
  for i in $(seq 500); do
    if [ "$(readlink -f "/proc/$1/exe" 2>/dev/null)" = "$shell" ]; then
      sleep 0.02
      continue
    fi
    mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$mask" ] || return 1
    if (((0x$mask & 0x4002) == 0x4002)); then return 0; fi
    sleep 0.02
  done
  return 1
}

# finish: prints the summary line CTest logs and exits non-zero on any failure.
finish() {
  echo "$iot_pass passed, $iot_fail failed"
  [ "$iot_fail" -eq 0 ]
}

# wait_ready PID FILE WHAT [REGEX]: waits until FILE has a line "ready" (or one matching REGEX)
# while PID lives (120 s at most: seeding a big scenario under ASan on busy cores is slow);
# otherwise fails, naming WHAT and showing FILE, and returns 1.
wait_ready() {
  local deadline=$((SECONDS + 120)) pattern=${4:-^ready\$}
  while [ "$SECONDS" -lt "$deadline" ]; do
    if grep -q "$pattern" "$2" 2>/dev/null; then return 0; fi
    if ! kill -0 "$1" 2>/dev/null; then
      grep -q "$pattern" "$2" 2>/dev/null && return 0
      fail "$3 exited before it was ready: $(cat "$2" 2>/dev/null)"
      return 1
    fi
    sleep 0.1
  done
  fail "$3 not ready after 120 s: $(cat "$2" 2>/dev/null)"
  return 1
}

# sim_start DIR ARGS...: runs "iotfleet-sim modules ARGS..." in the background with its state in
# DIR, waits for "ready" on its stderr, and sets $sim_pid and the arrays $sim_ports / $sim_ids
# (one entry per module, from its "PATH IMEI" lines). The simulator is stopped at exit.
sim_start() {
  local dir=$1
  shift
  : "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
  mkdir -p "$dir"
  "$IOTFLEET_SIM" modules --state-dir "$dir/state" "$@" >"$dir/sim.out" 2>"$dir/sim.err" &
  sim_pid=$!
  iot_cleanup_hooks+=("kill $sim_pid 2>/dev/null")
  wait_ready "$sim_pid" "$dir/sim.err" "the simulator in $dir" || return 1
  mapfile -t sim_ports < <(cut -d' ' -f1 "$dir/sim.out")
  mapfile -t sim_ids < <(cut -d' ' -f2 "$dir/sim.out")
}

# Recording for the SDK contract test (tests/contract/check.js): with IOT_EXCHANGE_DIR set (CTest
# sets it, tests/integration/CMakeLists.txt), every emulator start writes its OpenAPI exchanges to
# a file of its own there, <test>.<random>.ndjson. This test's files of an earlier run go first.
iot_test_name=$(basename "$0" .sh)
if [ -n "${IOT_EXCHANGE_DIR:-}" ]; then
  mkdir -p "$IOT_EXCHANGE_DIR"
  rm -f "$IOT_EXCHANGE_DIR/$iot_test_name".*.ndjson
fi
# exchange_log_args: sets the array $exchange_args to "--exchange-log <new file>" (or to nothing
# without IOT_EXCHANGE_DIR); every "iotfleet-sim cloud" a test starts passes "${exchange_args[@]}".
exchange_log_args() {
  exchange_args=()
  if [ -n "${IOT_EXCHANGE_DIR:-}" ]; then
    exchange_args=(--exchange-log
      "$(mktemp --suffix=.ndjson "$IOT_EXCHANGE_DIR/$iot_test_name.XXXXXX")")
  fi
}

# cloud_start DIR SCENARIO ARGS...: runs "iotfleet-sim cloud" in the background with its state in
# DIR, waits for "ready", and sets $cloud_pid and $cloud_url. Stopped at exit.
cloud_start() {
  local dir=$1 scenario=$2
  shift 2
  : "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
  mkdir -p "$dir"
  exchange_log_args
  "$IOTFLEET_SIM" cloud --listen 127.0.0.1:0 --state-dir "$dir" --scenario "$scenario" \
    "${exchange_args[@]}" "$@" \
    >"$dir/cloud.out" 2>"$dir/cloud.err" &
  cloud_pid=$!
  iot_cleanup_hooks+=("kill $cloud_pid 2>/dev/null")
  wait_ready "$cloud_pid" "$dir/cloud.err" "the cloud emulator in $dir" || return 1
  cloud_url=$(head -n1 "$dir/cloud.out")
}
cloud_stop() { kill "$cloud_pid" 2>/dev/null && wait "$cloud_pid" 2>/dev/null || true; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# aliyun_password PK DN SECRET: the MQTT password (docs/aliyun-iot-protocol.md §5) for the default
# clientId PK.DN, TLS, hmacsha256, no timestamp.
aliyun_password() {
  printf 'clientId%sdeviceName%sproductKey%s' "$1.$2" "$2" "$1" |
    openssl dgst -sha256 -hmac "$3" | awk '{print toupper($NF)}'
}

# mqtt_lab_start DIR PK DN=SECRET...: a real mosquitto on 127.0.0.1 with TLS (a test CA written
# to DIR/ca.pem, the broker's certificate for IP 127.0.0.1) whose password file accepts each
# device's Aliyun-signed password (username DN&PK), so a CONNECT is accepted only when it is
# signed with that secret. Sets $mqtt_port, $mqtt_ca and $mqtt_dir; stopped at exit.
mqtt_lab_start() {
  mqtt_dir=$1 mqtt_pk=$2
  shift 2
  command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
  command -v mosquitto >/dev/null || { echo "mosquitto is not installed (scripts/setup.sh)" >&2; return 1; }
  mkdir -p "$mqtt_dir"
  (
    cd "$mqtt_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=iotfleet-test-ca -keyout ca.key \
      -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr \
      2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.pem 2>/dev/null
  )
  [ -s "$mqtt_dir/server.pem" ] || { echo "test certificates not made" >&2; return 1; }
  mqtt_ca=$mqtt_dir/ca.pem
  : >"$mqtt_dir/passwd"
  local entry
  for entry in "$@"; do
    mosquitto_passwd -b "$mqtt_dir/passwd" "${entry%%=*}&$mqtt_pk" \
      "$(aliyun_password "$mqtt_pk" "${entry%%=*}" "${entry#*=}")"
  done
  mqtt_port=$(free_port)
  cat >"$mqtt_dir/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
cafile $mqtt_dir/ca.pem
certfile $mqtt_dir/server.pem
keyfile $mqtt_dir/server.key
allow_anonymous false
password_file $mqtt_dir/passwd
user $(id -un)
CONF
  mosquitto -c "$mqtt_dir/mosquitto.conf" >"$mqtt_dir/mosquitto.log" 2>&1 &
  mqtt_pid=$!
  iot_cleanup_hooks+=("kill $mqtt_pid 2>/dev/null")
  local i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null; then return 0; fi
    kill -0 "$mqtt_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "mosquitto did not start: $(cat "$mqtt_dir/mosquitto.log")" >&2
  return 1
}

# mqtt_lab_set DN SECRET: the broker now accepts DN's password signed with SECRET (as the cloud
# does once the device was re-created); reloaded with SIGHUP. Returns once mosquitto has logged
# "Reloading config." (2.0: it rereads the password file right after, before it serves a client
# again), 30 s at most.
mqtt_lab_set() {
  local before deadline=$((SECONDS + 30))
  mosquitto_passwd -b "$mqtt_dir/passwd" "$1&$mqtt_pk" "$(aliyun_password "$mqtt_pk" "$1" "$2")"
  before=$(grep -c '^[0-9]*: Reloading config\.$' "$mqtt_dir/mosquitto.log" || true)
  kill -HUP "$mqtt_pid"
  while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$mqtt_pid" 2>/dev/null; do
    if [ "$(grep -c '^[0-9]*: Reloading config\.$' "$mqtt_dir/mosquitto.log" || true)" -gt "$before" ]; then
      return 0
    fi
    sleep 0.05
  done
  fail "mosquitto did not reload its password file for $1: $(cat "$mqtt_dir/mosquitto.log")"
  return 1
}

# check_ledger LABEL ARGS...: ledger_check.py on $IOTFLEET_LEDGER (a file, or a postgresql:// URL
# read with psql) against the simulators' NVM files (ARGS: state dirs, --total N, --all-burned).
check_ledger() {
  local label=$1
  shift
  if python3 "$(dirname "${BASH_SOURCE[0]}")/ledger_check.py" "$IOTFLEET_LEDGER" "$@" \
    >"$IOT_TMP/.check" 2>&1; then
    ok
  else
    fail "$label: $(cat "$IOT_TMP/.check")"
  fi
}
