#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet-sim cloud's OTA over real HTTP (docs/cloud-emulator.md "OTA"): signed requests made
# here (python3, docs/aliyun-iot-protocol.md §1) and sent with curl. Upload with curl's
# multipart form to the Host GenerateOTAUploadURL returns, a corrupted upload refused by its
# sign, a static job over 1 000 devices of which one hardware revision fails 30 %, cancel, state
# across a restart, and a 100 MB upload that streams to disk with flat memory.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
state="$IOT_TMP/state"
ak=LTAI5tOtaTestKey01
sk=otaTestSecret000000000000000001
pk=a1OtaFleet01

cat >"$IOT_TMP/scenario.json" <<EOF
{
  "access_keys": [{"id": "$ak", "secret": "$sk"}],
  "products": [{
    "product_key": "$pk",
    "generate": {"count": 1000, "names": "sequence", "prefix": "trk", "digits": 5,
                 "status": {"ONLINE": 1}, "firmware": "V1",
                 "nicknames": {"hwrevA": 70, "hwrevB": 30}}
  }],
  "ota": {
    "speed": {"pickup_s": 2, "download_s": 20, "verify_s": 2, "burn_s": 5, "jitter": 0.3},
    "failure": [{"match": {"nickname_prefix": "hwrevB"}, "rate": 0.3,
                 "desc": "{step} failed ({code}) hw={nickname}"}]
  }
}
EOF

sign() { python3 "$here/openapi_sign.py" "$1" "$ak" "$sk" "${@:2}"; }

url=
cloud_pid=
start_cloud() {
  rm -f "$IOT_TMP/cloud.out" "$IOT_TMP/cloud.err"
  exchange_log_args
  "$IOTFLEET_SIM" cloud --listen 127.0.0.1:0 --state-dir "$state" "${exchange_args[@]}" "$@" \
    >"$IOT_TMP/cloud.out" 2>"$IOT_TMP/cloud.err" &
  cloud_pid=$!
  iot_cleanup_hooks+=("kill $cloud_pid 2>/dev/null")
  local i
  for i in $(seq 150); do
    if grep -qx ready "$IOT_TMP/cloud.err" 2>/dev/null; then
      url=$(head -n1 "$IOT_TMP/cloud.out")
      return 0
    fi
    if ! kill -0 "$cloud_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  fail "emulator not ready: $(cat "$IOT_TMP/cloud.err")"
  exit 1
}
stop_cloud() {
  kill -TERM "$cloud_pid"
  set +e
  wait "$cloud_pid"
  local status=$?
  set -e
  if [ "$status" -eq 0 ]; then ok; else fail "emulator exit $status"; fi
}
post() { # post ACTION K=V...: body in $out
  local action=$1
  shift
  out=$(curl -sS -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "$(sign POST "$action" "$@")" "$url/")
}
field() { jq -r "$1" <<<"$out"; }
# upload FILE: GenerateOTAUploadURL, then PostObject with curl -F (file last); sets $furl,
# $upload_http and $upload_body.
upload() {
  post GenerateOTAUploadURL FileSuffix=bin
  local host key id policy sig
  host=$(field .Data.Host) key=$(field .Data.Key) id=$(field .Data.OSSAccessKeyId)
  policy=$(field .Data.Policy) sig=$(field .Data.Signature) furl=$(field .Data.FirmwareUrl)
  upload_http=$(curl -sS -o "$IOT_TMP/.upload" -w '%{http_code}' \
    --form-string "key=$key" --form-string "OSSAccessKeyId=$id" --form-string "policy=$policy" \
    --form-string "Signature=$sig" --form-string "success_action_status=201" \
    -F "file=@$1;type=application/octet-stream" "$host")
  upload_body=$(cat "$IOT_TMP/.upload")
}
# wait_job JOB SECONDS: until QueryOTAJob says COMPLETED or CANCELED.
wait_job() {
  local i status
  for i in $(seq $(($2 * 5))); do
    post QueryOTAJob JobId="$1"
    status=$(field .Data.JobStatus)
    if [ "$status" = COMPLETED ] || [ "$status" = CANCELED ]; then return 0; fi
    sleep 0.2
  done
  return 1
}
# all_tasks JOB [STATUS]: every task as JSON lines (pages of 100).
all_tasks() {
  local page=1 count
  while :; do
    post ListOTATaskByJob JobId="$1" PageSize=100 CurrentPage=$page ${2:+TaskStatus=$2}
    jq -c '.Data.SimpleOTATaskInfo[]' <<<"$out"
    count=$(field .PageCount)
    [ "$page" -ge "$count" ] && break
    page=$((page + 1))
  done
}

start_cloud --scenario "$IOT_TMP/scenario.json" --seed 5 --time-scale 60 --no-limits

# --- upload, a corrupted upload refused by its sign, the real one accepted --------------------
head -c 300000 /dev/urandom >"$IOT_TMP/fw-v2.bin"
cp "$IOT_TMP/fw-v2.bin" "$IOT_TMP/corrupt.bin"
printf 'X' | dd of="$IOT_TMP/corrupt.bin" bs=1 seek=1000 conv=notrunc status=none
upload "$IOT_TMP/corrupt.bin"
[ "$upload_http" = 201 ] && ok || fail "PostObject: HTTP $upload_http $upload_body"
[[ $upload_body == *"<ETag>"* ]] && ok || fail "PostObject 201 body: $upload_body"
md5=$(md5sum <"$IOT_TMP/fw-v2.bin" | cut -d' ' -f1)
size=$(stat -c %s "$IOT_TMP/fw-v2.bin")
post CreateOTAFirmware ProductKey=$pk DestVersion=V2 FirmwareName=tracker-V2 FirmwareUrl="$furl" \
  FirmwareSize="$size" FirmwareSign="$md5" SignMethod=MD5
[ "$(field .Code)" = iot.ota.FirmwareSignMismatch ] && ok || fail "corrupted upload accepted: $out"
upload "$IOT_TMP/fw-v2.bin"
post CreateOTAFirmware ProductKey=$pk DestVersion=V2 FirmwareName=tracker-V2 FirmwareUrl="$furl" \
  FirmwareSize="$size" FirmwareSign="$md5" SignMethod=MD5
fw=$(field .Data.FirmwareId)
[ -n "$fw" ] && [ "$fw" != null ] && ok || fail "CreateOTAFirmware: $out"
# The FirmwareUrl serves the file back (what a device downloads).
curl -sS -o "$IOT_TMP/back.bin" "$furl"
cmp -s "$IOT_TMP/back.bin" "$IOT_TMP/fw-v2.bin" && ok || fail "download differs from the upload"

# --- limits over HTTP -----------------------------------------------------------------------------
names=()
for i in $(seq 201); do names+=("TargetDeviceName.$i=trk$(printf %05d "$i")"); done
post CreateOTAStaticUpgradeJob ProductKey=$pk FirmwareId="$fw" TargetSelection=SPECIFIC "${names[@]}"
[ "$(field .Code)" = iot.ota.DeviceCountExceeded ] && ok || fail "201 names: $out"
post CreateOTAStaticUpgradeJob ProductKey=$pk FirmwareId="$fw" TargetSelection=ALL MaximumPerMinute=5
[ "$(field .Code)" = iot.common.InvalidParameter ] && ok || fail "MaximumPerMinute 5: $out"

# --- a rollout of 1 000 devices: hwrevB fails 30 %, nobody else -------------------------------------
t0=$(date +%s)
post CreateOTAStaticUpgradeJob ProductKey=$pk FirmwareId="$fw" TargetSelection=ALL \
  MaximumPerMinute=10000 TimeoutInMinutes=30
job=$(field .Data.JobId)
[ -n "$job" ] && [ "$job" != null ] && ok || fail "CreateOTAStaticUpgradeJob: $out"
wait_job "$job" 30 && ok || fail "job $job did not complete: $out"
echo "1000-device job completed in $(($(date +%s) - t0)) s" >&2
all_tasks "$job" >"$IOT_TMP/tasks.jsonl"
[ "$(wc -l <"$IOT_TMP/tasks.jsonl")" = 1000 ] && ok || fail "tasks: $(wc -l <"$IOT_TMP/tasks.jsonl")"
failed=$(jq -r 'select(.TaskStatus == "FAILED") | .TaskDesc' "$IOT_TMP/tasks.jsonl" | wc -l)
failed_b=$(jq -r 'select(.TaskStatus == "FAILED") | .TaskDesc' "$IOT_TMP/tasks.jsonl" |
  grep -cE '^(download|verify|burn) failed \(-[234]\) hw=hwrevB$' || true)
succeeded=$(jq -r 'select(.TaskStatus == "SUCCEEDED") | .DeviceName' "$IOT_TMP/tasks.jsonl" | wc -l)
echo "failed $failed (hwrevB $failed_b), succeeded $succeeded" >&2
# 300 hwrevB devices × 0.3 = 90; binomial sd ≈ 8.
[ "$failed" -eq "$failed_b" ] && ok || fail "failures outside hwrevB: $failed vs $failed_b"
[ "$failed_b" -ge 60 ] && [ "$failed_b" -le 120 ] && ok || fail "hwrevB failures $failed_b, want 90 ± 30"
[ $((failed + succeeded)) -eq 1000 ] && ok || fail "failed $failed + succeeded $succeeded != 1000"
dn=$(jq -rs 'map(select(.TaskStatus == "SUCCEEDED"))[0].DeviceName' "$IOT_TMP/tasks.jsonl")
post QueryDeviceDetail ProductKey=$pk DeviceName="$dn"
[ "$(field .Data.FirmwareVersion)" = V2 ] && ok || fail "succeeded device's firmware: $out"
dn=$(jq -rs 'map(select(.TaskStatus == "FAILED"))[0].DeviceName' "$IOT_TMP/tasks.jsonl")
post QueryDeviceDetail ProductKey=$pk DeviceName="$dn"
[ "$(field .Data.FirmwareVersion)" = V1 ] && [ "$(field .Data.Nickname)" = hwrevB ] && ok ||
  fail "failed device: $out"
post ListOTATaskByJob JobId="$job" TaskStatus=FAILED PageSize=1
[ "$(field .Total)" = "$failed" ] && ok || fail "TaskStatus filter Total: $out"

# --- cancel: a slow job (10 per minute) is canceled while it runs -----------------------------------
head -c 1000 /dev/urandom >"$IOT_TMP/fw-v3.bin"
upload "$IOT_TMP/fw-v3.bin"
post CreateOTAFirmware ProductKey=$pk DestVersion=V3 FirmwareName=tracker-V3 FirmwareUrl="$furl" \
  SignMethod=SHA256 FirmwareSign="$(sha256sum <"$IOT_TMP/fw-v3.bin" | cut -d' ' -f1)"
fw3=$(field .Data.FirmwareId)
post CreateOTAStaticUpgradeJob ProductKey=$pk FirmwareId="$fw3" TargetSelection=ALL MaximumPerMinute=10
job3=$(field .Data.JobId)
sleep 2.5 # ≈ 25 devices notified
post CancelOTATaskByJob JobId="$job3" CancelQueuedTask=true CancelNotifiedTask=true \
  CancelInProgressTask=true CancelUnconfirmedTask=true CancelScheduledTask=true
[ "$(field .Success)" = true ] && ok || fail "CancelOTATaskByJob: $out"
post QueryOTAJob JobId="$job3"
[ "$(field .Data.JobStatus)" = CANCELED ] && ok || fail "canceled job: $out"
all_tasks "$job3" >"$IOT_TMP/tasks3.jsonl"
canceled=$(jq -r 'select(.TaskStatus == "CANCELED") | .DeviceName' "$IOT_TMP/tasks3.jsonl" | wc -l)
open=$(jq -r 'select(.TaskStatus == "QUEUED" or .TaskStatus == "NOTIFIED" or .TaskStatus == "IN_PROGRESS") | .DeviceName' "$IOT_TMP/tasks3.jsonl" | wc -l)
total3=$(wc -l <"$IOT_TMP/tasks3.jsonl")
finished=$(jq -r 'select(.TaskStatus == "SUCCEEDED" or .TaskStatus == "FAILED") | .DeviceName' "$IOT_TMP/tasks3.jsonl" | wc -l)
echo "job 3: $canceled canceled, $finished finished before the cancel, of $total3" >&2
# How many devices finished before the cancel depends on how fast this machine is (an ASan build on
# two busy cores finishes more in the 2.5 s); what must hold is that nothing is left open, that every
# task is either canceled or finished, and that the cancel came while most of the job was still queued.
[ "$open" -eq 0 ] && [ "$total3" -eq 1000 ] && [ $((canceled + finished)) -eq 1000 ] &&
  [ "$canceled" -ge 500 ] && ok ||
  fail "after cancel: $open open, $canceled canceled, $finished finished of $total3"
post ListOTAJobByFirmware FirmwareId="$fw3"
[ "$(field .Total)" = 1 ] && [ "$(field '.Data.SimpleOTAJobInfo[0].JobStatus')" = CANCELED ] && ok ||
  fail "ListOTAJobByFirmware: $out"
# Stopping the strategy of a job that has ended is a success that changes nothing.
post CancelOTAStrategyByJob JobId="$job3"
[ "$(field .Success)" = true ] && ok || fail "CancelOTAStrategyByJob on an ended job: $out"
stop_cloud
grep -qE '^  /_oss/iotx-ota \(upload\): 3$' "$IOT_TMP/cloud.err" && ok || fail "upload counter: $(cat "$IOT_TMP/cloud.err")"

# --- a restart sees the same jobs ------------------------------------------------------------------
start_cloud --time-scale 60 --no-limits
post QueryOTAJob JobId="$job"
[ "$(field .Data.JobStatus)" = COMPLETED ] && ok || fail "job after restart: $out"
post ListOTATaskByJob JobId="$job" TaskStatus=SUCCEEDED PageSize=1
[ "$(field .Total)" = "$succeeded" ] && ok || fail "tasks after restart: $out"

# --- 100 MB streams to disk: the emulator's peak memory stays far below the file's size ------------
rss_before=$(awk '/^VmHWM/ {print $2}' "/proc/$cloud_pid/status")
head -c $((100 * 1024 * 1024)) /dev/zero >"$IOT_TMP/big.bin"
printf 'end' >>"$IOT_TMP/big.bin"
upload "$IOT_TMP/big.bin"
[ "$upload_http" = 201 ] && ok || fail "100 MB upload: HTTP $upload_http $upload_body"
rss_after=$(awk '/^VmHWM/ {print $2}' "/proc/$cloud_pid/status")
echo "emulator peak RSS: $rss_before kB before, $rss_after kB after a 100 MB upload" >&2
[ $((rss_after - rss_before)) -lt 40000 ] && ok || fail "peak RSS grew by $((rss_after - rss_before)) kB"
post CreateOTAFirmware ProductKey=$pk DestVersion=V4 FirmwareName=big FirmwareUrl="$furl" \
  FirmwareSize=$((100 * 1024 * 1024 + 3)) SignMethod=SHA256 \
  FirmwareSign="$(sha256sum <"$IOT_TMP/big.bin" | cut -d' ' -f1)"
[ "$(field .Success)" = true ] && ok || fail "CreateOTAFirmware of 100 MB: $out"
rm -f "$IOT_TMP/big.bin"
stop_cloud

finish
