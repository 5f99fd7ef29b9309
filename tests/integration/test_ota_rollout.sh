#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ota rollout against iotfleet-sim cloud (docs/ota.md): 10 000 devices in 4 waves complete (one
# job per wave through a device-name list file); a planted bad hardware revision trips the abort
# rule in wave 2 (wave 1 holds only good devices), the queued rest of wave 2 is canceled, waves
# 3-4 are never created, the report names the failing group; ota status / cancel.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
ak=LTAI5tOtaRollout01
scenario() { # scenario PRODUCT-JSON
  cat <<EOF2
{"access_keys": [{"id": "$ak", "secret": "otaRolloutSecret00000000000001"}],
 "products": [$1],
 "ota": {"speed": {"pickup_s": 2, "download_s": 20, "verify_s": 2, "burn_s": 5, "jitter": 0.3},
   "failure": [{"match": {"nickname_prefix": "hwrevB"}, "rate": 0.6,
                "desc": "{step} failed ({code}) hw={nickname}"}]}}
EOF2
}
scenario '{"product_key": "a1OtaBig01",
   "generate": {"count": 10000, "names": "sequence", "prefix": "big", "digits": 5,
                "status": {"ONLINE": 1}, "firmware": "V1", "nicknames": {"revA": 1}}},
  {"product_key": "a1OtaOff01",
   "generate": {"count": 3, "names": "sequence", "prefix": "off", "digits": 2,
                "status": {"OFFLINE": 1}, "firmware": "V1"}}' >big.json.scenario
scenario '{"product_key": "a1OtaBad01",
   "generate": {"count": 1000, "names": "sequence", "prefix": "bad", "digits": 5,
                "status": {"ONLINE": 1}, "firmware": "V1",
                "nicknames": {"hwrevA": 70, "hwrevB": 30}}}' >bad.json.scenario
printf %s otaRolloutSecret00000000000001 >ak.secret
chmod 600 ak.secret
cloud_start "$IOT_TMP/cloud" big.json.scenario --seed 11 --time-scale 600 --no-limits
cli() { "$IOTFLEET" --endpoint "$cloud_url" --region cn-shanghai --access-key-id $ak \
  --access-key-secret-file ak.secret "$@"; }
db="$IOT_TMP/cloud/cloud.db"
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro",uri=True)
for r in c.execute(sys.argv[2], sys.argv[3:]): print("|".join(map(str,r)))' "$db" "$@"; }
upload() { # upload PK VERSION: prints the FirmwareId
  head -c 5000 /dev/urandom >"fw-$2.bin"
  cli ota upload "fw-$2.bin" --product-key "$1" --dest-version "$2" -o json | jq -r .firmware_id
}

# --- devices that never react: not at the target version, so not exit 0 (#13.4) ----------------
fw_off=$(upload a1OtaOff01 V2)
printf 'off01\noff02\noff03\n' >off.txt
run cli ota rollout --firmware "$fw_off" --devices off.txt --waves 100% --notified-grace 2s \
  --poll-interval 200ms --journal off.json -o json
expect_rc 5 "never-reacting devices are a partial result"
expect_err "rollout finished: 0 of 3 devices at V2; 3 never reacted to the push" "said so"
# A journal that cannot be written stops the rollout before anything is created (#13.1).
jobs_before=$(sql 'select count(*) from ota_jobs')
run cli ota rollout --firmware "$fw_off" --devices off.txt --journal nodir/j.json
expect_rc 2 "a journal in a missing directory"
expect_err "nothing was created in the cloud" "the journal's problem is named"
[ "$(sql 'select count(*) from ota_jobs')" = "$jobs_before" ] && ok || fail "a job was created"

# --- 10 000 devices, 4 waves ---------------------------------------------------------------------
fw=$(upload a1OtaBig01 V2)
[ -n "$fw" ] && [ "$fw" != null ] && ok || fail "upload for the big rollout"
t0=$(date +%s)
run cli ota rollout --firmware "$fw" --all --waves 1%,10%,50%,100% --max-per-minute 10000 \
  --poll-interval 300ms --journal big.json -o json
echo "10 000-device rollout: $(($(date +%s) - t0)) s" >&2
expect_rc 0 "10 000-device rollout"
[ "$(jq length <<<"$out")" = 4 ] && ok || fail "4 waves: $out"
[ "$(jq -c '[.[].devices]' <<<"$out")" = "[100,900,4000,5000]" ] && ok || fail "wave sizes: $out"
[ "$(jq '[.[].succeeded] | add' <<<"$out")" = 10000 ] && ok || fail "succeeded: $out"
[ "$(jq -r '[.[].state] | unique | join(",")' <<<"$out")" = finished ] && ok || fail "states: $out"
[ "$(stat -c %a big.json)" = 600 ] && ok || fail "state file mode $(stat -c %a big.json)"
[ "$(jq -r .status big.json)" = done ] && ok || fail "state status: $(jq -r .status big.json)"
# One job per wave, every device exactly once, all at V2 now.
[ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" = 4 ] && ok ||
  fail "jobs: $(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")"
[ "$(sql 'select count(*), count(distinct t.device_name) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.firmware_id=?' "$fw")" = "10000|10000" ] &&
  ok || fail "tasks: $(sql 'select count(*), count(distinct t.device_name) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.firmware_id=?' "$fw")"
[ "$(sql "select count(*) from devices where product_key='a1OtaBig01' and firmware='V2'")" = 10000 ] &&
  ok || fail "devices at V2"
# Re-running over the same devices: every one is at V2 already, nothing to do.
run cli ota rollout --firmware "$fw" --all --journal big2.json
expect_rc 0 "second rollout: all skipped"
expect_err "10000 already at V2" "skipped devices reported"
run cli ota status big.json -o csv
expect_rc 0 "status of a state file"
[ "$(tail -n +2 <<<"$out" | awk -F, '{s+=$9} END {print s}')" = 10000 ] && ok || fail "status: $out"

# --- planted bad group (a slower clock: wave 2 is still pushing when the rule trips) ------------------
cloud_stop
cloud_start "$IOT_TMP/cloud-bad" bad.json.scenario --seed 11 --time-scale 30 --no-limits
db="$IOT_TMP/cloud-bad/cloud.db"
# --- planted bad group: hwrevB fails 60 %; wave 1 holds only hwrevA devices ------------------------
sql "select device_name from devices where product_key='a1OtaBad01' and nickname='hwrevA' order by seq limit 20" >devices.txt
sql "select device_name from devices where product_key='a1OtaBad01' and device_name not in (select device_name from devices where product_key='a1OtaBad01' and nickname='hwrevA' order by seq limit 20) order by seq" >>devices.txt
[ "$(wc -l <devices.txt)" = 1000 ] && ok || fail "device file: $(wc -l <devices.txt)"
fw=$(upload a1OtaBad01 V2)
run cli ota rollout --firmware "$fw" --devices devices.txt --waves 20,100,50%,100% \
  --max-per-minute 10 --abort-failure-rate 5% --abort-min-finished 20 --poll-interval 300ms \
  --journal bad.json -o json
expect_rc 1 "abort exit code"
expect_err "rollout aborted in wave 2 of 4" "abort in wave 2"
expect_err "failing group: hwrevB" "report names the failing group"
expect_err "waves 3-4 not started" "rest not started"
expect_err "group hwrevB: [0-9]+ failed of [0-9]+ devices; most common: [a-z]+ failed \(-[234]\) hw=hwrevB" \
  "group line with TaskDesc"
[ "$(jq -r '.[0].state, .[1].state, .[2].state, .[3].state' <<<"$out" | paste -sd,)" = finished,aborted,pending,pending ] &&
  ok || fail "wave states: $out"
[ "$(jq '.[0].failed' <<<"$out")" = 0 ] && ok || fail "wave 1 had failures: $out"
[ "$(jq '.[1].canceled' <<<"$out")" -gt 0 ] && ok || fail "wave 2's queued tasks canceled: $out"
[ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" = 2 ] && ok ||
  fail "waves 3-4 created: $(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")"
[ "$(sql "select count(*) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.firmware_id=? and t.status in ('QUEUED','CONFIRM')" "$fw")" = 0 ] &&
  ok || fail "queued tasks left"
# The numbers in the message are the rule's: failed / finished ≥ 5 % with ≥ 20 finished.
read -r failed finished < <(grep -oE '[0-9]+ failed of [0-9]+ finished' <<<"$err" | head -1 | awk '{print $1, $4}')
[ "$finished" -ge 20 ] && [ $((failed * 100)) -ge $((finished * 5)) ] && ok ||
  fail "abort numbers: $failed of $finished"
[ "$(jq -r .status bad.json)" = aborted ] && ok || fail "journal status"
# A resume of an aborted rollout does not go on.
run cli ota rollout --resume bad.json
expect_rc 1 "resume of an aborted rollout"
[ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" = 2 ] && ok || fail "resume created jobs"
# status --failures lists the failed tasks with their TaskDesc
run cli ota status bad.json --failures -o csv
expect_rc 0 "status --failures"
[ "$(tail -n +2 <<<"$out" | grep -c 'hw=hwrevB')" = "$(tail -n +2 <<<"$out" | wc -l)" ] && ok ||
  fail "failures: $out"
run cli ota status "$(jq -r '.waves[1].job_id' bad.json)" -o json
expect_rc 0 "status of a job"
[ "$(jq '.[0].failed' <<<"$out")" -ge 1 ] && [ "$(jq -r '.[0].job_status' <<<"$out")" = CANCELED ] &&
  ok || fail "job status: $out"

# --- cancel a running rollout from outside ---------------------------------------------------------
fw=$(upload a1OtaBad01 V3)
cli ota rollout --firmware "$fw" --devices devices.txt --waves 50%,100% --max-per-minute 10 \
  --abort-failure-rate 100% --poll-interval 300ms --journal slow.json >/dev/null 2>slow.err &
roll_pid=$!
iot_cleanup_hooks+=("kill $roll_pid 2>/dev/null")
job=""
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$roll_pid" 2>/dev/null; do
  job=$(jq -r '.waves[0].job_id' slow.json 2>/dev/null) || job=""
  [ -n "$job" ] && break
  sleep 0.1
done
if [ -z "$job" ]; then
  fail "wave 1's job was not created within 60 s: $(cat slow.err)"
  finish || exit 1
fi
tasks_in() { # tasks_in STATUS...: how many of wave 1's tasks are in one of these states now
  local in
  in=$(printf ",'%s'" "$@")
  sql "select count(*) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.job_id=? and t.status in (${in#,})" "$job"
}
run cli ota cancel slow.json -o json
expect_rc 0 "cancel"
echo "cancel: $(jq -c '.[0] | {canceled, open}' <<<"$out" 2>/dev/null)" >&2
# Nothing is left waiting to be pushed; running upgrades finish (no --in-progress). One push every
# 6 s simulated (10 per minute), an upgrade of at most (2+20+2+5) s × 1.3 (jitter): at most 7 run.
[ "$(tasks_in QUEUED NOTIFIED CONFIRM)" = 0 ] && ok ||
  fail "tasks left to push after the cancel: $(tasks_in QUEUED NOTIFIED CONFIRM) $out"
[ "$(jq '.[0].open' <<<"$out")" -le 7 ] && [ "$(jq '.[0].canceled' <<<"$out")" -gt 0 ] && ok ||
  fail "cancel: $out"
set +e
wait $roll_pid
roll_rc=$?
set -e
[ "$roll_rc" = 1 ] && ok || fail "rollout after cancel: exit $roll_rc $(cat slow.err)"
[ "$(sql 'select count(*) from ota_jobs where firmware_id=?' "$fw")" = 1 ] && ok || fail "wave 2 created after cancel"
[ "$(jq -r .status slow.json)" = canceled ] && ok || fail "journal after cancel"
# Once the running upgrades are over, every task of the wave ended canceled, succeeded or failed.
deadline=$((SECONDS + 60))
while [ "$(tasks_in QUEUED NOTIFIED CONFIRM IN_PROGRESS)" != 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.2
done
[ "$(tasks_in QUEUED NOTIFIED CONFIRM IN_PROGRESS)" = 0 ] && ok ||
  fail "upgrades still running 60 s after the cancel: $(tasks_in IN_PROGRESS)"
ended=$(tasks_in CANCELED SUCCEEDED FAILED)
total=$(sql 'select count(*) from ota_tasks t join ota_jobs j on t.job_seq=j.seq where j.job_id=?' "$job")
wave_size=$(jq '.waves[0].end - .waves[0].begin' slow.json)
[ "$ended" = "$total" ] && [ "$total" = "$wave_size" ] && ok ||
  fail "wave 1 after the cancel: $ended of $total tasks ($wave_size devices) canceled, succeeded or failed"

finish
