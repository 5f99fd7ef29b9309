#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ota rollout survives SIGKILL: 10 trials kill the rollout at a random moment and continue it with
# --resume (sometimes killing the resume too), plus the critical window — killed right after
# CreateOTAStaticUpgradeJob answered, before the journal recorded the JobId (a test hook). Each
# trial checks the emulator's database: no device got two tasks (never sent twice), every planned
# device got one and there is exactly one job per wave (no wave skipped or duplicated). Odd trials
# kill at a random time from the start (on a slow machine that may be while planning); even ones
# at a random time after the journal shows a running wave, so that some rollouts are killed with
# a job in the cloud and the rollout unfinished.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
ak=LTAI5tOtaResume01
pk=a1OtaKill01
cat >scenario.json <<EOF2
{"access_keys": [{"id": "$ak", "secret": "otaResumeSecret000000000000001"}],
 "products": [{"product_key": "$pk",
   "generate": {"count": 300, "names": "sequence", "prefix": "k", "digits": 4,
                "status": {"ONLINE": 1}, "firmware": "V0", "nicknames": {"revC": 1}}}],
 "ota": {"speed": {"pickup_s": 2, "download_s": 20, "verify_s": 2, "burn_s": 5, "jitter": 0.3}}}
EOF2
printf %s otaResumeSecret000000000000001 >ak.secret
chmod 600 ak.secret
cloud_start "$IOT_TMP/cloud" scenario.json --seed 5 --time-scale 60 --no-limits
base=(--endpoint "$cloud_url" --region cn-shanghai --access-key-id $ak --access-key-secret-file ak.secret)
cli() { "$IOTFLEET" "${base[@]}" "$@"; }
db="$IOT_TMP/cloud/cloud.db"
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro",uri=True)
for r in c.execute(sys.argv[2], sys.argv[3:]): print("|".join(map(str,r)))' "$db" "$@"; }
head -c 2000 /dev/urandom >fw.bin
rollout_args=(--all --waves 10%,40%,100% --max-per-minute 200 --poll-interval 200ms)

# check FW STATE: the invariants after a rollout that went to the end.
check() {
  local fw=$1 state=$2 label=$3 dup
  dup=$(sql 'select t.device_name from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.firmware_id=? group by t.device_name having count(*) > 1' "$fw" | wc -l)
  [ "$dup" = 0 ] && ok || fail "$label: $dup devices got two tasks"
  [ "$(sql 'select count(distinct t.device_name) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.firmware_id=?' "$fw")" = 300 ] &&
    ok || fail "$label: not every device got a task"
  [ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" = 3 ] && ok ||
    fail "$label: $(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw") jobs for 3 waves"
  [ "$(jq -r .status "$state")" = done ] && ok || fail "$label: journal status $(jq -r .status "$state")"
  [ "$(jq -r '[.waves[].state] | unique | join(",")' "$state")" = finished ] && ok ||
    fail "$label: wave states $(jq -c '[.waves[].state]' "$state")"
  # Wave i's job holds exactly wave i's devices.
  local w
  for w in 0 1 2; do
    [ "$(sql 'select count(*) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.job_id=?' "$(jq -r ".waves[$w].job_id" "$state")")" = \
      "$(jq ".waves[$w].end - .waves[$w].begin" "$state")" ] && ok || fail "$label: wave $((w + 1)) size"
  done
}

# resume_until_done STATE: --resume until it exits 0 (a kill may have hit it before any wave).
resume_until_done() {
  local i
  for i in 1 2 3; do
    run cli ota rollout --resume "$1"
    [ "$rc" = 0 ] && return 0
  done
  fail "resume of $1: exit $rc: $err"
}

# wave_running STATE: the journal shows a wave whose job was created and is being watched.
wave_running() { jq -e 'any(.waves[]; .state == "running")' "$1" >/dev/null 2>&1; }

kills=0
under_way=0
for trial in $(seq 10); do
  fw=$(cli ota upload fw.bin --product-key $pk --dest-version "V$trial" -o json | jq -r .firmware_id)
  # The binary itself in the background (not a shell function: SIGKILL must hit iotfleet).
  "$IOTFLEET" "${base[@]}" ota rollout --firmware "$fw" "${rollout_args[@]}" --journal "t$trial.json" \
    >/dev/null 2>"t$trial.err" &
  pid=$!
  from=start
  if [ $((trial % 2)) -eq 0 ]; then
    deadline=$((SECONDS + 120))
    until wave_running "t$trial.json" || [ "$SECONDS" -ge "$deadline" ] || ! kill -0 $pid 2>/dev/null; do
      sleep 0.05
    done
    wave_running "t$trial.json" && from="a running wave" ||
      fail "trial $trial: no wave running before the rollout ended: $(cat "t$trial.err")"
  fi
  delay=$(python3 -c "import random; print(round(random.uniform(0.2, 2.5), 2))")
  sleep "$delay"
  kill -KILL $pid 2>/dev/null || true
  set +e
  wait $pid 2>/dev/null
  status=$?
  set -e
  [ "$status" = 137 ] && kills=$((kills + 1))
  # Under way: killed with a job in the cloud and the rollout not done.
  if [ "$status" = 137 ] && [ -e "t$trial.json" ] && [ "$(jq -r .status "t$trial.json")" != "done" ] &&
    [ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" -gt 0 ]; then
    under_way=$((under_way + 1))
  fi
  echo "trial $trial: killed ${delay} s after $from" >&2
  if [ ! -e "t$trial.json" ]; then
    # Killed while planning: nothing was created; the rollout starts again.
    [ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" = 0 ] && ok || fail "jobs without a journal"
    run cli ota rollout --firmware "$fw" "${rollout_args[@]}" --journal "t$trial.json"
  fi
  if [ $((trial % 3)) = 0 ]; then
    # Kill the resume too.
    "$IOTFLEET" "${base[@]}" ota rollout --resume "t$trial.json" >/dev/null 2>&1 &
    pid=$!
    sleep 0.7
    kill -KILL $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
  fi
  echo "trial $trial: killed in $(jq -c '[.waves[].state]' "t$trial.json" 2>/dev/null)" >&2
  resume_until_done "t$trial.json"
  check "$fw" "t$trial.json" "trial $trial"
done
echo "rollouts killed: $kills of 10, $under_way of them with a job created and the rollout unfinished" >&2
[ "$kills" -ge 8 ] && ok || fail "only $kills of 10 rollouts were still running when killed"
[ "$under_way" -ge 3 ] && ok || fail "only $under_way of 10 rollouts were killed with a job under way"


finish
