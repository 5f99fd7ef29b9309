#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# diagnose fleet against `iotfleet-sim fleetlog`: a fleet of 10 000 devices with planted problems
# (two modules sharing an identity, keepalive 300 s behind one carrier's NAT, flaky signal,
# firmware sending DISCONNECT, reboots while online as a decoy, devices never online). The
# findings must name every planted device and nothing else (compared with the simulator's truth
# file), in CSV and in JSON lines sorted newest first; bad input gives the documented exit codes
# with the line and the fix; the HTML report renders its charts in headless Chromium.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
: "${IOTFLEET_SIM:?set IOTFLEET_SIM to the iotfleet-sim binary}"
plant=duplicate=12,nat-keepalive=30,flaky=20,disconnect=15,reboot=40,never-online=25

# check_findings JSON TRUTH LABEL: the findings against the truth file, rule by rule.
check_findings() {
  if python3 - "$1" "$2" <<'PY'; then ok; else fail "$3: findings differ from the truth"; fi
import csv, json, sys
findings = json.load(open(sys.argv[1]))
truth = {}
for row in csv.DictReader(open(sys.argv[2])):
    truth.setdefault(row["problem"], set()).add(row["device_name"])
by = {}
for f in findings:
    by.setdefault(f["finding"], []).append(f)
def names(kind):
    return {f["subject"] for f in by.get(kind, [])}
bad = []
def same(kind, problem):
    got, want = names(kind), truth.get(problem, set())
    if got != want:
        bad.append(f"{kind}: missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}")
same("duplicate-identity", "duplicate")          # every planted duplicate and nothing else
same("keepalive-too-long", "nat-keepalive")
same("frequent-connection-resets", "flaky")
same("frequent-device-disconnect", "disconnect")
same("never-online", "never-online")
if truth.get("reboot", set()) & names("duplicate-identity"):
    bad.append("a device that only rebooted was called a duplicate")
for f in by.get("keepalive-too-long", []):
    if not (280 <= (f["keepalive_s"] or 0) <= 320):
        bad.append(f"{f['subject']}: inferred keepalive {f['keepalive_s']}, want about 300")
clusters = by.get("keepalive-cluster", [])
if [c["subject"] for c in clusters] != ["117.136.0.0/16"]:
    bad.append(f"clusters {[c['subject'] for c in clusters]}, want 117.136.0.0/16 alone")
elif clusters[0]["devices"] < 30:
    bad.append(f"cluster has {clusters[0]['devices']} devices, want >= 30")
for f in by.get("duplicate-identity", []):
    if len(f["client_ips"].split()) != 2 or not f["evidence"].startswith("line "):
        bad.append(f"{f['subject']}: want both client IPs and quoted lines: {f}")
    if "IMEI" not in f["fix"]:
        bad.append(f"{f['subject']}: the fix should name the IMEI")
if "352099001761481" in names("duplicate-identity"):
    f = [f for f in by["duplicate-identity"] if f["subject"] == "352099001761481"][0]
    if "placeholder" not in f["detail"]:
        bad.append("the placeholder IMEI is not called one")
order = [f["finding"] for f in findings]
if order and order[0] != "duplicate-identity":
    bad.append(f"first finding {order[0]}, want duplicate-identity first")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# --- the fleet, CSV, oldest first -------------------------------------------------------------
run "$IOTFLEET_SIM" fleetlog --devices 10000 --days 7 --seed 11 --plant "$plant" -O fleet.csv \
  --devices-out devices.csv
expect_rc 0 "fleetlog"
[ "$(grep -c ',duplicate,' fleet.csv.truth.csv)" = 12 ] && ok || fail "truth: 12 duplicates"
[ "$(sed 1d devices.csv | wc -l)" = 10025 ] && ok || fail "device list: 10 025 devices"

run "$IOTFLEET" diagnose fleet --log fleet.csv --devices devices.csv -o json
expect_rc 6 "findings: exit 6"
printf '%s\n' "$out" >findings.json
check_findings findings.json fleet.csv.truth.csv "csv, oldest first"
expect_err 'diagnose fleet: fleet.csv \(csv, ascending\): [0-9]+ lines, [0-9]+ records of 10000 devices' \
  "summary on stderr"
expect_err 'findings: [0-9]+ \(12 duplicate-identity' "finding counts on stderr"
expect_err 'device list devices.csv: 10025 devices, 25 never online' "device list summary"
expect_err 'error: [0-9]+ findings' "the exit reason"

# Without a device list: no never-online, and it says so.
run "$IOTFLEET" diagnose fleet --log fleet.csv -o csv
expect_rc 6 "without --devices"
expect_out '^finding,subject,confidence,events,devices,client_ips,keepalive_s,first_seen,last_seen,detail,evidence,fix$' \
  "csv header"
expect_no_out '^never-online,' "no never-online without a list"
expect_err 'device list: not available' "missing evidence source named"

# Statistics views.
run "$IOTFLEET" diagnose fleet --log fleet.csv --show days -o csv
expect_rc 6 "--show days"
[ "$(wc -l <<<"$out")" = 8 ] && ok || fail "7 days + header: $out"
expect_out '^day,online,kicked,keepalive_timeout,connection_reset,device_disconnect,auth_failure,other,disconnects$' \
  "days header"
expect_out '^2024-01-01,[0-9]+,' "first day"
run "$IOTFLEET" diagnose fleet --log fleet.csv --show hours -o csv
[ "$(wc -l <<<"$out")" = 169 ] && ok || fail "168 hours + header"
run "$IOTFLEET" diagnose fleet --log fleet.csv --show devices --top 5 -o json
python3 -c '
import json, sys
rows = json.loads(sys.argv[1])
assert len(rows) == 5, rows
assert all(rows[i]["disconnects"] >= rows[i + 1]["disconnects"] for i in range(4)), rows
' "$out" && ok || fail "--show devices: 5 rows ranked by disconnects"
run "$IOTFLEET" diagnose fleet --log fleet.csv --show reasons -o csv
expect_out '^Kicked by the same device,kicked,true,[0-9]+$' "reason texts with their category"
expect_out '^Connection occurs exception,other,true,[0-9]+$' "documented 'other' reason"
run "$IOTFLEET" diagnose fleet --log fleet.csv --until 2024-01-02 --show summary -o json
expect_out '"last_record": "2024-01-01 23:' "--until keeps the first day"
expect_out '"outside_window": [1-9]' "records after --until counted"
run "$IOTFLEET" diagnose fleet --log fleet.csv --product-key zzzzzzzzzzz --show summary -o json
expect_out '"records": 0' "--product-key leaves out other products"

# --- the same fleet as JSON lines, newest first, ISO times -----------------------------------
run "$IOTFLEET_SIM" fleetlog --devices 10000 --days 7 --seed 12 --plant "$plant" -O fleet.jsonl \
  --format jsonl --order desc --time-format iso --devices-out devices2.csv
expect_rc 0 "fleetlog jsonl desc"
run "$IOTFLEET" diagnose fleet --log fleet.jsonl --devices devices2.csv -o json
expect_rc 6 "jsonl findings"
printf '%s\n' "$out" >findings2.json
check_findings findings2.json fleet.jsonl.truth.csv "jsonl, newest first"
expect_err '\(jsonl, descending\)' "format and order detected"

# Chinese header, epoch milliseconds, on stdin.
"$IOTFLEET_SIM" fleetlog --devices 2000 --days 3 --seed 13 --plant duplicate=3 -O zh.csv \
  --header zh --time-format epoch-ms
run bash -c "\"$IOTFLEET\" diagnose fleet --log - -o json < zh.csv"
expect_rc 6 "stdin, Chinese header"
python3 -c '
import csv, json, sys
got = {f["subject"] for f in json.loads(sys.argv[1]) if f["finding"] == "duplicate-identity"}
want = {r["device_name"] for r in csv.DictReader(open("zh.csv.truth.csv")) if r["problem"] == "duplicate"}
assert got == want, (got, want)
' "$out" && ok || fail "Chinese header: the duplicates"

# A healthy fleet: nothing found, exit 0.
"$IOTFLEET_SIM" fleetlog --devices 3000 --days 3 --seed 14 -O healthy.csv --devices-out healthy-devices.csv
run "$IOTFLEET" diagnose fleet --log healthy.csv --devices healthy-devices.csv -o json
expect_rc 0 "healthy fleet: exit 0"
[ "$out" = "[]" ] && ok || fail "healthy fleet: no finding: $(head -c 600 <<<"$out")"

# --- bad input ----------------------------------------------------------------------------------
run "$IOTFLEET" diagnose fleet --log missing.csv
expect_rc 2 "missing log"
expect_err 'error: --log missing.csv: cannot read it: No such file or directory' "missing log named"
run "$IOTFLEET" diagnose fleet
expect_rc 2 "--log is required"
: >empty.csv
run "$IOTFLEET" diagnose fleet --log empty.csv
expect_rc 2 "empty log"
expect_err 'is empty' "empty log named"
printf 'name,value\na,b\n' >other.csv
run "$IOTFLEET" diagnose fleet --log other.csv
expect_rc 2 "not a device log"
expect_err 'other.csv: line 1: the first line is not a header with a time column.*docs/diagnose.md' \
  "the shapes it accepts"

# Malformed lines in the middle: named (line and fix), skipped, counted; the findings unchanged.
awk 'NR == 1000 { print "2024-01-01 not a time,x,a1B2c3D4e5F,dev,device,online,online,1.2.3.4" }
     NR == 2000 { print "garbage" }
     NR == 3000 { print "2024-01-02 10:00:00.000,t,a1B2c3D4e5F,dev,device,offline,\"unclosed" }
     { print }' fleet.csv >broken.csv
run "$IOTFLEET" diagnose fleet --log broken.csv --devices devices.csv -o json
expect_rc 6 "bad lines skipped"
expect_err 'warning: broken.csv: line 1000: the time .* is not one of' "bad time named by line"
expect_err 'warning: broken.csv: line 2001: has 1 field but the header needs' "short line named"
expect_err 'warning: broken.csv: line 3002: field 7: a quote is still open' "open quote named"
expect_err '3 unreadable lines skipped' "count in the summary"
printf '%s\n' "$out" >findings3.json
check_findings findings3.json fleet.csv.truth.csv "with bad lines"
run "$IOTFLEET" diagnose fleet --log broken.csv --strict
expect_rc 2 "--strict: a bad line stops"
expect_err 'error: broken.csv: line 1000: the time' "--strict names the line"
head -1 fleet.csv >allbad.csv
printf 'x\ny\n' >>allbad.csv
run "$IOTFLEET" diagnose fleet --log allbad.csv
expect_rc 2 "no readable record"
expect_err 'none of its 2 record lines could be read' "nothing readable"
run "$IOTFLEET" diagnose fleet --log fleet.csv --since tomorrow
expect_rc 2 "bad --since"
expect_err "--since 'tomorrow': give a date" "bad --since explained"
run "$IOTFLEET" diagnose fleet --log fleet.csv --utc-offset +25:00
expect_rc 2 "bad --utc-offset"
run "$IOTFLEET" diagnose fleet --log fleet.csv --devices missing-devices.csv
expect_rc 2 "missing device list"
run "$IOTFLEET_SIM" fleetlog --devices 10 --plant duplicate=20 -O x.csv
expect_rc 2 "sim: more planted than devices"
run "$IOTFLEET_SIM" fleetlog --devices 10 --plant typo=1 -O x.csv
expect_rc 2 "sim: unknown problem"
expect_err "unknown problem 'typo'" "sim: unknown problem named"

# --- HTML in headless Chromium ----------------------------------------------------------------
run "$IOTFLEET" diagnose fleet --log fleet.csv --devices devices.csv --html report.html -o csv
expect_rc 6 "--html"
expect_err 'wrote report.html' "--html written"
[ "$(stat -c %a report.html)" = 644 ] && ok || fail "report mode 0644"
if grep -qE '(src|href)="?https?:' report.html; then fail "report loads from the network"; else ok; fi
run "$IOTFLEET" diagnose fleet --log fleet.csv --html no-such-dir/report.html
expect_rc 1 "--html into a directory that does not exist"
expect_err 'error: --html no-such-dir/report.html: ' "--html error names the file"
[ ! -e no-such-dir ] && ok || fail "--html: nothing created"
chromium_bin=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium_bin" ]; then
  fail "chromium is not installed (scripts/setup.sh installs it): the HTML report is untested"
else
  dom=$(timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --virtual-time-budget=3000 --dump-dom "file://$IOT_TMP/report.html" 2>/dev/null || true)
  grep -q '<body data-charts="3"' <<<"$dom" && ok ||
    fail "chromium: the script did not measure 3 drawn charts: $(grep -o '<body[^>]*>' <<<"$dom")"
  for id in chart-days chart-hours chart-top; do
    grep -q "id=\"$id\"" <<<"$dom" && ok || fail "chromium: $id missing"
  done
  [ "$(grep -o '<rect' <<<"$dom" | wc -l)" -gt 100 ] && ok || fail "chromium: bars drawn"
  grep -q '352099001761481' <<<"$dom" && ok || fail "chromium: findings table rendered"
  timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --window-size=1100,1600 --screenshot="$IOT_TMP/report.png" "file://$IOT_TMP/report.html" \
    >/dev/null 2>&1 || true
  [ "$(stat -c %s report.png 2>/dev/null || echo 0)" -gt 20000 ] && ok || fail "chromium: screenshot"
fi

finish
