#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iotfleet register (one-type-one-secret dynamic registration) against iotfleet-sim cloud over
# real HTTP and HTTPS: 1 000 devices with 5xx, throttling, resets and truncated answers; the
# ledger, read with Python's sqlite3, holds exactly the secret the emulator holds for each device;
# re-runs skip, --force supersedes, every refusal code names its fix, secrets stay masked.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
pk=a1RegTest01
ps=RegProductSecret01
check() { # check LABEL NAMES [--all-issued]
  local label=$1
  shift
  if python3 "$here/register_check.py" check "$IOTFLEET_LEDGER" "$IOT_TMP/cloud/cloud.db" "$pk" \
    "$@" >"$IOT_TMP/.check" 2>&1; then
    ok
  else
    fail "$label: $(cat "$IOT_TMP/.check")"
  fi
}
count() { grep -c "\"result\":\"$1\"" <<<"$out" || true; }

cat >scenario.json <<EOF
{"access_keys": [{"id": "LTAI5tRegisterKey01", "secret": "registerAccessSecret01"}],
 "products": [
   {"product_key": "$pk", "product_secret": "$ps", "dynamic_register": true,
    "devices": [{"name": "dev-online", "status": "ONLINE"}, {"name": "dev-disabled", "status": "DISABLE"}],
    "generate": {"count": 1000, "names": "sequence", "prefix": "reg-", "digits": 4}},
   {"product_key": "a1NoDynReg01", "product_secret": "NoDynRegSecret01", "dynamic_register": false,
    "devices": [{"name": "dev01"}]}]}
EOF
printf '%s\n' "$ps" >ps.txt
chmod 600 ps.txt
for n in $(seq 1 1000); do printf 'reg-%04d\n' "$n"; done >names.txt

cloud_start "$IOT_TMP/cloud" scenario.json --seed 11 --fail-5xx 0.05 --throttle-burst 0.05 \
  --truncate 0.03 --reset 0.03
reg=("$IOTFLEET" dynreg --endpoint "$cloud_url" --product-key "$pk")

# --- what is missing or wrong is named before anything is sent ------------------------------
run "${reg[@]}" --device-name reg-0001
expect_rc 2 "no ProductSecret"
expect_err '--product-secret-file.*IOTFLEET_PRODUCT_SECRET' "every way to give it"
run "${reg[@]}" --product-secret-file ps.txt
expect_rc 2 "no device"
expect_err '--device-name DN.*--devices FILE' "says how to name devices"
run "${reg[@]}" --product-secret-file ps.txt --device-name 'bad name!'
expect_rc 2 "a bad DeviceName"
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --device-name reg-0001 --product-secret-file ps.txt
expect_rc 2 "no ProductKey"
expect_err 'product-key' "names --product-key"

# --- 1 000 devices through faults -------------------------------------------------------------
run "${reg[@]}" --devices names.txt --product-secret-file ps.txt --qps 1000 --concurrency 8 -o ndjson
expect_rc 0 "1000 devices registered through faults"
[ "$(count registered)" = 1000 ] && ok || fail "1000 registered rows: $(count registered)"
expect_no_out "\"device_secret\":\"[0-9a-f]{32}\"" "secrets masked"
expect_err 'registered 1000, skipped 0, failed 0, in doubt 0' "summary"
check "after the batch" names.txt --all-issued
ls -l "$IOTFLEET_LEDGER" | grep -q '^-rw-------' && ok || fail "ledger is not 0600"
run "$IOTFLEET" pool status -o csv
expect_out "^$pk,,1000,0,0,0\$" "1000 available in the pool"

# --- a re-run sends nothing ------------------------------------------------------------------
run "${reg[@]}" --devices names.txt --product-secret-file ps.txt --qps 1000 -o csv
expect_rc 0 "re-run"
[ "$(grep -c ',skipped,' <<<"$out")" = 1000 ] && ok || fail "1000 skipped: $out"
check "after the re-run" names.txt --all-issued

# --- --force: the newest secret wins, the old one is kept as superseded ------------------------
old=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT secret FROM triplets WHERE device_name='reg-0005'\").fetchone()[0])" "$IOTFLEET_LEDGER")
IOTFLEET_PRODUCT_SECRET=$ps run "${reg[@]}" --device-name reg-0005 --device-name reg-0006 --force -o json --show-secrets
expect_rc 0 "forced re-registration (ProductSecret from the environment)"
expect_out '"result": "registered"' "registered again"
expect_out '"device_secret": "[0-9a-f]{32}"' "--show-secrets shows the secret"
expect_out 'replaces the pool' "says the pool's secret was replaced"
new=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT secret FROM triplets WHERE device_name='reg-0005'\").fetchone()[0])" "$IOTFLEET_LEDGER")
[ -n "$new" ] && [ "$new" != "$old" ] && ok || fail "a new secret for reg-0005"
sup=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT group_concat(status) FROM registrations WHERE device_name='reg-0005' ORDER BY id\").fetchone()[0])" "$IOTFLEET_LEDGER")
[ "$sup" = "superseded,issued" ] && ok || fail "the old secret is superseded: $sup"
check "after --force" names.txt --all-issued

# --- a request whose answer was lost, then one the cloud refused: still registered anew ------
# As a killed run and a throttled re-run leave it: reg-0007's newest row is failed, the one before
# it pending. The pending one may have issued a secret nobody holds, so even without --force the
# next run registers reg-0007 again (it used to look at the newest row alone and skip it).
python3 - "$IOTFLEET_LEDGER" "$pk" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for status, detail in (("pending", ""), ("failed", "code 429: throttled")):
    db.execute("INSERT INTO registrations (product_key, device_name, status, requested_at, detail) "
               "VALUES (?, 'reg-0007', ?, 1700000000000, ?)", (sys.argv[2], status, detail))
db.commit()
PY
run "${reg[@]}" reg-0007 --product-secret-file ps.txt -o csv
expect_rc 0 "re-run after a lost and a refused request"
expect_out ",registered,.*an earlier registration's answer had been lost" \
  "reg-0007 is registered anew, not skipped"
check "after the lost-then-refused re-run" names.txt --all-issued

# --- a refused connection sent nothing: failed, never in doubt ---------------------------------
run "$IOTFLEET" dynreg --auth-endpoint http://127.0.0.1:1 --product-key "$pk" reg-9001 reg-9002 \
  --product-secret-file ps.txt --retries 0 -o csv
expect_rc 5 "nothing reachable: both devices failed"
[ "$(grep -c ',failed,' <<<"$out")" = 2 ] && ok || fail "two failed, none in doubt: $out"
expect_err "not sent: no connection was made" "the error says nothing was sent"
statuses=$(python3 -c "import sqlite3,sys; print(','.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(\"SELECT status FROM registrations WHERE device_name IN ('reg-9001','reg-9002') ORDER BY id\")))" "$IOTFLEET_LEDGER")
[ "$statuses" = "failed,failed" ] && ok || fail "the ledger records failed, not pending: $statuses"

# --- the refusals, each with its fix -----------------------------------------------------------
curl -sS --data-binary "productKey=$pk&deviceName=reg-0007" "$cloud_url/_emulator/activate" >/dev/null
run "${reg[@]}" --device-name reg-0007 --force --product-secret-file ps.txt
expect_rc 4 "6289 after activation"
expect_err '6289.*first connect.*iotfleet devices reset reg-0007' "6289 names ResetThing"
check "an activated device keeps its secret" names.txt --all-issued
run "${reg[@]}" --device-name dev-online --device-name dev-disabled --device-name reg-9999 \
  --product-secret-file ps.txt -o csv
expect_rc 5 "some refused"
expect_out 'dev-online,failed,.*,6289,' "dev-online: 6289"
expect_out 'dev-disabled,failed,.*,6204,.*EnableThing' "dev-disabled: 6204"
expect_out 'reg-9999,failed,.*,6100,.*devices register' "not pre-registered: 6100"
printf 'WrongProductSecret\n' >wrong.txt
chmod 600 wrong.txt
run "${reg[@]}" --device-name reg-0010 --force --product-secret-file wrong.txt
expect_rc 4 "a wrong ProductSecret"
expect_err '401.*ProductSecret' "401 names the ProductSecret"
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --product-key a1Unknown01 --device-name reg-0001 \
  --product-secret-file ps.txt
expect_rc 2 "unknown product"
expect_err '6250.*letter case' "6250 names the ProductKey"
printf 'NoDynRegSecret01\n' >nodyn.txt
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --product-key a1NoDynReg01 --device-name dev01 \
  --product-secret-file - <nodyn.txt
expect_rc 4 "dynamic registration off (ProductSecret from stdin)"
expect_err '6288.*switch it on' "off: names the console switch"
check "refusals changed nothing" names.txt --all-issued

# --- -O: a pool file of what the ledger holds ----------------------------------------------------
run "${reg[@]}" --devices names.txt --product-secret-file ps.txt --qps 1000 -O out.csv -q
expect_rc 0 "-O"
ls -l out.csv | grep -q '^-rw-------' && ok || fail "-O file is not 0600"
[ "$(wc -l <out.csv)" = 1001 ] && ok || fail "header + 1000 rows: $(wc -l <out.csv)"
run "$IOTFLEET" pool import out.csv -o json
expect_out '"already_present": 1000' "the -O file is the ledger's own secrets"

# --- HTTPS with the emulator's CA ---------------------------------------------------------------
cloud_stop
cloud_start "$IOT_TMP/cloud" scenario.json --tls
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --product-key "$pk" --device-name reg-0020 \
  --force --product-secret-file ps.txt
expect_rc 4 "HTTPS without the CA"
expect_err 'ca-file' "names --ca-file"
run "$IOTFLEET" dynreg --endpoint "$cloud_url" --ca-file "$IOT_TMP/cloud/ca.pem" \
  --product-key "$pk" --device-name reg-0020 --force --product-secret-file ps.txt -o csv
expect_rc 0 "HTTPS with --ca-file"
expect_out 'reg-0020,registered' "registered over HTTPS"
check "after HTTPS" names.txt --all-issued

finish
