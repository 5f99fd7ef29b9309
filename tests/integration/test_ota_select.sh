#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ota rollout's selections against iotfleet-sim cloud (docs/ota.md "Selection"): --tag (all must
# hold), --group (static and dynamic, by name or GroupId), --query (the SQL-like search, paged,
# other products left out), combined with a device list and --src-version as an intersection —
# each checked in the emulator's database: the right devices got a task, and only them. Then
# per-wave push rates, --dynamic (a device that comes online later is upgraded, ota cancel ends
# the job), multi-file firmware (each file uploaded, signed, and downloadable whole), and the
# refusals.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
ak=LTAI5tOtaSelect01
dev() { # dev NAME STATUS NICKNAME FIRMWARE TAGS-JSON [GROUPS-JSON]
  printf '{"name": "%s", "status": "%s", "nickname": "%s", "firmware": "%s", "tags": %s, "groups": %s}' \
    "$1" "$2" "$3" "$4" "$5" "${6:-[]}"
}
cat >sel.json <<EOF
{"access_keys": [{"id": "$ak", "secret": "otaSelectSecret000000000000001"}],
 "groups": [{"name": "line-a", "description": "line A"},
            {"name": "hw-b", "description": "revision B", "dynamic_tag": "hw=B"}],
 "products": [
  {"product_key": "a1Sel00001", "devices": [
    $(dev sx01 ONLINE hwrevB V1 '{"hw": "B", "site": "north"}' '["line-a"]'),
    $(dev sx02 ONLINE hwrevB V1 '{"hw": "B", "site": "north"}' '["line-a"]'),
    $(dev sx03 ONLINE hwrevB V1 '{"hw": "B", "site": "south"}' '["line-a"]'),
    $(dev sx04 ONLINE hwrevB V1 '{"hw": "B", "site": "south"}'),
    $(dev sx05 ONLINE hwrevA V1 '{"hw": "A", "site": "north"}' '["line-a"]'),
    $(dev sx06 ONLINE hwrevA V1 '{"hw": "A", "site": "north"}'),
    $(dev sx07 ONLINE hwrevA V1 '{"hw": "A", "site": "south"}'),
    $(dev sx08 ONLINE hwrevA V1 '{"hw": "A", "site": "south"}'),
    $(dev sx09 ONLINE hwrevA V1 '{"hw": "A", "site": "south"}'),
    $(dev sx10 ONLINE hwrevA V1 '{"hw": "A", "site": "south"}'),
    $(dev sx11 OFFLINE hwrevA V1 '{"hw": "A", "site": "south"}'),
    $(dev sx12 ONLINE hwrevA V0 '{"hw": "A", "site": "south"}')]},
  {"product_key": "a1Sel00002", "devices": [
    $(dev ox01 ONLINE hwrevB V1 '{"hw": "B", "site": "north"}' '["line-a"]')]},
  {"product_key": "a1Dyn00001", "devices": [
    $(dev dx01 ONLINE hwrevA V1 '{}'), $(dev dx02 ONLINE hwrevA V1 '{}'),
    $(dev dx03 ONLINE hwrevA V0 '{}'), $(dev dx04 OFFLINE hwrevA V1 '{}'),
    $(dev dx05 OFFLINE hwrevA V1 '{}')]},
  {"product_key": "a1Dyn00002", "devices": [
    $(dev ex01 ONLINE hwrevC V1 '{}'), $(dev ex02 ONLINE hwrevC V1 '{}'),
    $(dev ex03 ONLINE hwrevC V1 '{}'), $(dev ex04 OFFLINE hwrevC V1 '{}')]}],
 "ota": {"speed": {"pickup_s": 2, "download_s": 8, "verify_s": 1, "burn_s": 2, "jitter": 0.2},
   "failure": [{"match": {"product_key": "a1Dyn00002"}, "rate": 1.0, "step": "burn",
                "desc": "burn failed ({code}) hw={nickname}"}]}}
EOF
printf %s otaSelectSecret000000000000001 >ak.secret
chmod 600 ak.secret
cloud_start "$IOT_TMP/cloud" sel.json --seed 5 --time-scale 600 --no-limits
cli() { "$IOTFLEET" --endpoint "$cloud_url" --region cn-shanghai --access-key-id $ak \
  --access-key-secret-file ak.secret "$@"; }
db="$IOT_TMP/cloud/cloud.db"
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro",uri=True)
for r in c.execute(sys.argv[2], sys.argv[3:]): print("|".join(map(str,r)))' "$db" "$@"; }
upload() { # upload PK VERSION: prints the FirmwareId
  head -c 3000 /dev/urandom >"fw-$1-$2.bin"
  cli ota upload "fw-$1-$2.bin" --product-key "$1" --dest-version "$2" -o json | jq -r .firmware_id
}
# The devices that got a task for a firmware, sorted, comma-separated.
tasked() {
  sql 'select t.device_name from ota_tasks t join ota_jobs j on t.job_seq = j.seq where j.firmware_id = ? order by t.device_name' "$1" | paste -sd, -
}
fast=(--waves 100% --poll-interval 200ms --notified-grace 1s)
n=0
# select_check LABEL WANT ARGS...: a rollout of a new firmware of a1Sel00001 over ARGS upgrades
# exactly the devices WANT, and its journal holds them.
select_check() {
  local label=$1 want=$2
  shift 2
  n=$((n + 1))
  local fw
  fw=$(upload a1Sel00001 "V1$n")
  run cli ota rollout --firmware "$fw" "${fast[@]}" --journal "sel$n.json" "$@" -o json
  expect_rc 0 "$label: rollout"
  [ "$(tasked "$fw")" = "$want" ] && ok || fail "$label: tasks for $(tasked "$fw"), want $want"
  [ "$(jq -r '[.devices[][0]] | sort | join(",")' "sel$n.json")" = "$want" ] && ok ||
    fail "$label: journal devices $(jq -c .devices "sel$n.json")"
}

# --- each selection: the right devices, and only them --------------------------------------------
select_check "one tag (ox01 of another product is left out)" sx01,sx02,sx03,sx04 --tag hw=B
[ "$(jq -r .selection sel1.json)" = "tag hw=B" ] && ok || fail "selection text: $(jq .selection sel1.json)"
select_check "two tags: both must hold" sx05,sx06 --tag hw=A --tag site=north
select_check "a static group by name" sx01,sx02,sx03,sx05 --group line-a
gid=$(sql "select group_id from device_groups where name = 'hw-b'")
# After the three rollouts above: sx01-sx03 at V13, sx04 at V11, sx05 at V13, sx06 at V12.
select_check "a dynamic group by GroupId, at one version" sx01,sx02,sx03 --group "$gid" --src-version V13
select_check "an SQL condition (LIKE, AND), at one version" sx07,sx08,sx09,sx10 \
  --query "nickname LIKE 'hwrevA%' AND status = 'ONLINE'" --src-version V1
select_check "an SQL condition with OR: other products filtered out" sx12 \
  --query "device_name = 'sx12' OR device_name = 'ox01'"
expect_err "1 matching devices of other products left out" "the OR query's other product is named"
select_check "names intersected with a tag" sx01,sx05,sx06 sx01 sx05 --tag site=north sx06 sx07

# --- push rate per wave ---------------------------------------------------------------------------
fw=$(upload a1Sel00001 V30)
run cli ota rollout --firmware "$fw" --tag site=north --waves 2,100% --max-per-minute 10,1000 \
  --poll-interval 200ms --notified-grace 1s --journal rates.json -o json
expect_rc 0 "two waves with their own rates"
[ "$(sql 'select max_per_minute from ota_jobs where firmware_id = ? order by seq' "$fw" | paste -sd, -)" = 10,1000 ] &&
  ok || fail "MaximumPerMinute per job: $(sql 'select max_per_minute from ota_jobs where firmware_id = ?' "$fw")"
[ "$(jq -c '[.waves[].max_per_minute]' rates.json)" = "[10,1000]" ] && ok || fail "journaled rates"

# --- refusals: exit 2, nothing created ------------------------------------------------------------
jobs_before=$(sql 'select count(*) from ota_jobs')
refuse() { # refuse LABEL MESSAGE ARGS...
  local label=$1 msg=$2
  shift 2
  run cli ota rollout --firmware "$fw" --journal "refused.json" "$@"
  expect_rc 2 "$label"
  expect_err "$msg" "$label: message"
}
refuse "a tag without =" "give KEY=VALUE" --tag hw
refuse "an unknown group" "no device group has that name or GroupId.*line-a" --group line-z
refuse "a whole statement" "WHERE condition only" --query "SELECT * FROM device WHERE status = 'ONLINE'"
run cli ota rollout --firmware "$fw" --journal refused.json --query "colour = 'red'"
expect_rc 4 "a condition the platform does not take: the cloud refused it"
expect_err "--query: QueryDeviceBySQL: .*unknown field colour" "the platform's reason is shown"
refuse "--all with a narrowing selector" "drop --all" --all --tag hw=B
refuse "--dynamic with a tag" "dynamic job takes no device list, tag or SQL" --dynamic --src-version V1 --tag hw=B
refuse "--dynamic with waves" "drop --waves" --dynamic --src-version V1 --waves 10%,100%
refuse "--dynamic without a version" "--dynamic needs --src-version V" --dynamic --all
refuse "rates that do not fit the waves" "3 rates for 2 waves" --all --waves 10%,100% --max-per-minute 10,20,30
refuse "a rate out of range" "10 to 10000" --all --max-per-minute 5
[ "$(sql 'select count(*) from ota_jobs')" = "$jobs_before" ] && ok || fail "a refused rollout created a job"
[ ! -e refused.json ] && ok || fail "a refused rollout left a journal"

# --- a dynamic job: a device that comes online later is upgraded too -----------------------------
fw=$(upload a1Dyn00001 V2)
run cli ota rollout --firmware "$fw" --dynamic --src-version V1 --poll-interval 200ms \
  --notified-grace 1s --journal dyn.json -o json
expect_rc 0 "dynamic rollout"
expect_err "stays active: devices that come online at V1 later" "the job's life is explained"
[ "$(tasked "$fw")" = dx01,dx02 ] && ok || fail "dynamic job's first devices: $(tasked "$fw")"
job=$(jq -r '.waves[0].job_id' dyn.json)
[ "$(sql 'select status, dynamic_mode from ota_jobs where job_id = ?' "$job")" = "IN_PROGRESS|1" ] &&
  ok || fail "dynamic job state: $(sql 'select status, dynamic_mode from ota_jobs where job_id = ?' "$job")"
curl -sS --data-binary "productKey=a1Dyn00001&deviceName=dx04&status=ONLINE" "$cloud_url/_emulator/activate" >/dev/null
for _ in $(seq 100); do
  [ "$(sql "select firmware from devices where device_name = 'dx04'")" = V2 ] && break
  sleep 0.1
done
[ "$(sql "select firmware from devices where device_name = 'dx04'")" = V2 ] && ok ||
  fail "dx04 came online at V1 and was not upgraded: $(tasked "$fw")"
run cli ota rollout --resume dyn.json -o json
expect_rc 0 "resume watches the dynamic job again"
[ "$(jq '.[0].succeeded' <<<"$out")" = 3 ] && ok || fail "resumed counts: $out"
run cli ota cancel dyn.json -o json
expect_rc 0 "ota cancel ends the dynamic job"
[ "$(sql 'select status from ota_jobs where job_id = ?' "$job")" = CANCELED ] && ok ||
  fail "job after cancel: $(sql 'select status from ota_jobs where job_id = ?' "$job")"
curl -sS --data-binary "productKey=a1Dyn00001&deviceName=dx05&status=ONLINE" "$cloud_url/_emulator/activate" >/dev/null
sleep 1
[ "$(tasked "$fw")" = dx01,dx02,dx04 ] && ok || fail "a canceled dynamic job took on $(tasked "$fw")"

# A dynamic job is judged by the abort rule too: tripped, its strategy is canceled, so it takes
# on no one else.
fw=$(upload a1Dyn00002 V2)
run cli ota rollout --firmware "$fw" --dynamic --src-version V1 --abort-failure-rate 50% \
  --abort-min-finished 2 --poll-interval 200ms --notified-grace 1s --journal dynbad.json
expect_rc 1 "a failing dynamic job trips the abort rule"
expect_err "rollout aborted in wave 1 of 1.*failing group: hwrevC" "the abort names the group"
job=$(jq -r '.waves[0].job_id' dynbad.json)
[ "$(sql 'select dynamic_mode from ota_jobs where job_id = ?' "$job")" = 0 ] && ok ||
  fail "the aborted dynamic job still takes on devices"
curl -sS --data-binary "productKey=a1Dyn00002&deviceName=ex04&status=ONLINE" "$cloud_url/_emulator/activate" >/dev/null
sleep 1
[ "$(sql "select count(*) from ota_tasks where device_name = 'ex04'")" = 0 ] && ok ||
  fail "an aborted dynamic job took on ex04"

# --- multi-file firmware: every file uploaded, signed, downloadable whole ------------------------
head -c 4096 /dev/urandom >user1.bin
head -c 6000 /dev/urandom >user2.bin
run cli ota upload user1.bin user2.bin --product-key a1Sel00001 --dest-version V40 \
  --sign-method SHA256 -o json
expect_rc 0 "a two-file firmware"
[ "$(jq .files <<<"$out")" = 2 ] && [ "$(jq .size <<<"$out")" = 10096 ] && ok || fail "upload: $out"
mfw=$(jq -r .firmware_id <<<"$out")
files=$(sql 'select files from ota_firmwares where firmware_id = ?' "$mfw")
[ "$(jq -r '[.[].Name] | join(",")' <<<"$files")" = user1.bin,user2.bin ] && ok || fail "files: $files"
for f in user1.bin user2.bin; do
  url=$(jq -r --arg f "$f" '.[] | select(.Name == $f) | .Url' <<<"$files")
  sign=$(jq -r --arg f "$f" '.[] | select(.Name == $f) | .SignValue' <<<"$files")
  curl -sS -o "got-$f" "$url"
  cmp -s "$f" "got-$f" && ok || fail "$f downloaded differs"
  [ "$sign" = "$(sha256sum <"$f" | cut -d' ' -f1)" ] && ok || fail "$f SignValue $sign"
done
run cli ota rollout --firmware "$mfw" "${fast[@]}" --journal multi.json sx04 -o json
expect_rc 0 "a rollout of the two-file firmware"
[ "$(tasked "$mfw")" = sx04 ] && ok || fail "two-file firmware tasks: $(tasked "$mfw")"
run cli ota upload user1.bin user1.bin --product-key a1Sel00001 --dest-version V41
expect_rc 2 "two files of one name"
expect_err "two firmware files are named user1.bin" "named"

cloud_stop
finish
