#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two iotfleet serve instances on one PostgreSQL ledger (a server of this test's own), as behind a
# load balancer: every name asked for at once by two modules, one at each instance — one module
# wins, the other is a clone; then 10 trials of kill -9 of an instance under load, each followed
# by a restart and the same requests again. After every trial: no name bound twice, no IMEI
# holding two names, no device ever told two different secrets or one not the pool's, and every
# module that was told a secret is the one its name is bound to (read with psql).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
pk=a1ServeCrash
product_secret=EnrollSecret-crash-0123456789
client() { python3 "$here/serve_client.py" "$@"; }
secret_for() { printf 'C%031d' "$1"; }
# devices_csv TAC URL N…: lines "dev-N,IMEI (TAC + N),URL" (one Python for all of them).
devices_csv() { python3 -c 'import sys
tac, url = sys.argv[1], sys.argv[2]
for n in map(int, sys.argv[3:]):
    d = tac + "%06d" % n
    s = sum(int(c) if i % 2 == 0 else sum(divmod(2 * int(c), 10)) for i, c in enumerate(d))
    print("dev-%04d,%s%d,%s" % (n, d, (10 - s % 10) % 10, url))' "$@"; }

pg_start # the ledger: a PostgreSQL server of this test's own
psql_q() { psql "$url" -X -At -F, -c "$1"; }
n_devices=1100
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 $n_devices); do echo "$pk,dev-$(printf %04d "$n"),$(secret_for "$n")"; done
} >pool.csv
"$IOTFLEET" pool import pool.csv >/dev/null && ok || fail "pool import"
printf 'product_key,scheme,secret\n%s,product,%s\n' "$pk" "$product_secret" >enrollment.csv
chmod 600 enrollment.csv
test_cert

# start_instance NAME: an instance on a port of its own; sets urls[NAME] and pids[NAME].
declare -A urls pids
start_instance() {
  local name=$1 port=${2:-0}
  rm -f "$name.err" # wait_ready must not see the last run's line
  IOTFLEET_STATION=$name "$IOTFLEET" serve --listen "127.0.0.1:$port" --tls-cert cert.pem \
    --tls-key key.pem --enrollment enrollment.csv --access-log "$name.ndjson" --threads 16 \
    2>"$name.err" &
  pids[$name]=$!
  iot_cleanup_hooks+=("kill ${pids[$name]} 2>/dev/null")
  wait_ready "${pids[$name]}" "$name.err" "serve $name" "listening on" || return 1
  urls[$name]=$(grep -o 'https://127.0.0.1:[0-9]*' "$name.err" | tail -n1)
  [ -n "${urls[$name]}" ] || {
    fail "serve $name printed no URL: $(cat "$name.err")"
    return 1
  }
}
# check LABEL: the invariants over every answer so far (answers/*.ndjson) and the ledger.
check() {
  psql_q "SELECT device_name, imei, secret, state FROM triplets WHERE product_key = '$pk'" >ledger.csv
  if python3 - ledger.csv answers >check.txt 2>&1 <<'PY'; then ok; else fail "$1: $(cat check.txt)"; fi
import csv, glob, json, sys
ledger = {r[0]: r for r in csv.reader(open(sys.argv[1]))}
problems = []
imeis = {}
for dn, imei, secret, state in ledger.values():
    if state != "available":
        if imei in imeis:
            problems.append(f"IMEI {imei} holds {imeis[imei]} and {dn}")
        imeis[imei] = dn
told = {}
for path in glob.glob(sys.argv[2] + "/*.ndjson"):
    for line in open(path):
        a = json.loads(line)
        if a["code"] != 200:
            continue
        dn = a["device_name"]
        told.setdefault(dn, set()).add((a["imei"], a["secret"]))
for dn, answers in told.items():
    row = ledger[dn]
    if len({s for _, s in answers}) != 1:
        problems.append(f"{dn} was told {len(answers)} different secrets")
    for imei, secret in answers:
        if secret != row[2]:
            problems.append(f"{dn} was told a secret that is not the pool's")
        if row[3] != "burned" or row[1] != imei:
            problems.append(f"{dn} was told its secret by IMEI {imei} but is {row[3]} to {row[1]!r}")
print(f"{len(told)} devices told their secret, {len(imeis)} bound")
sys.exit(1 if problems else 0)
PY
}
mkdir -p answers

start_instance serve-a || finish
start_instance serve-b || finish

# --- every name asked for by two modules at once, one at each instance -------------------------
paste -d '\n' <(devices_csv 86993945 "${urls[serve-a]}" $(seq 1 100)) \
  <(devices_csv 35693803 "${urls[serve-b]}" $(seq 1 100)) >race.csv
client batch "${urls[serve-a]}" cert.pem "$pk" product "$product_secret" race.csv 40 >answers/race.ndjson &&
  ok || fail "the race batch"
won=$(jq -r 'select(.code == 200) | .device_name' answers/race.ndjson | sort -u | wc -l)
lost=$(jq -r 'select(.code == 6289) | .device_name' answers/race.ndjson | sort -u | wc -l)
[ "$won" = 100 ] && [ "$lost" = 100 ] && ok ||
  fail "each name won once and refused once: $won won, $lost refused: $(jq -c 'select(.code != 200 and .code != 6289)' answers/race.ndjson | head -3)"
both=$(jq -r 'select(.code == 200) | .url' answers/race.ndjson | sort | uniq -c | wc -l)
[ "$both" = 2 ] && ok || fail "both instances issued some: $both"
check "after two instances raced"

# --- 10 trials: kill -9 of an instance under load, restart, ask again ---------------------------
RANDOM=${IOT_CRASH_SEED:-4242}
cut_short=0
for trial in $(seq 1 10); do
  victim=serve-a
  [ $((RANDOM % 2)) = 1 ] && victim=serve-b
  port=${urls[$victim]##*:}
  devices_csv 86993945 "${urls[$victim]}" $(seq $((trial * 100 + 1)) $((trial * 100 + 60))) >"trial$trial.csv"
  client batch "${urls[$victim]}" cert.pem "$pk" product "$product_secret" "trial$trial.csv" 10 \
    >"answers/trial$trial.ndjson" &
  batch=$!
  kill_after=$((RANDOM % 20 + 3)) # the kill lands after a random number of answers, under load
  for _ in $(seq 1000); do
    [ "$(wc -l <"answers/trial$trial.ndjson")" -ge "$kill_after" ] && break
    sleep 0.01
  done
  kill -9 "${pids[$victim]}"
  wait "${pids[$victim]}" 2>/dev/null || true
  wait "$batch" || true
  errors=$(grep -c '"code": "error"' "answers/trial$trial.ndjson" || true)
  echo "trial $trial: kill -9 of $victim cut $errors of 60 requests short" >&2
  [ "$errors" -gt 0 ] && cut_short=$((cut_short + 1))
  check "after kill -9 of $victim in trial $trial"
  start_instance "$victim" "$port" || break
  # The same modules again: each gets the secret of the name bound to it, or was never bound.
  client batch "${urls[$victim]}" cert.pem "$pk" product "$product_secret" "trial$trial.csv" 20 \
    >"answers/trial$trial.again.ndjson" && ok || fail "trial $trial: the requests again"
  [ "$(jq -r 'select(.code == 200) | .device_name' "answers/trial$trial.again.ndjson" | wc -l)" = 60 ] && ok ||
    fail "trial $trial: all 60 modules have their secret after the restart"
  check "after the restart in trial $trial"
done
echo "kills that cut requests short: $cut_short of 10" >&2
[ "$cut_short" -ge 8 ] && ok || fail "only $cut_short of 10 kills landed under load"
finish
