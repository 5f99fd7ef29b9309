#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# creds enrollment-key on the real binary: each device's key of the device-key scheme equals
# the first 32 hex digits of HMAC-SHA256(group secret, DeviceName) as Python's hmac computes it;
# masked unless --show-secrets; the group secret from a file or stdin, never from argv, refused
# when short; -O writes every key in full to a 0600 file that pool import's readers take.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
group=GroupSecret-line1-2026-0123456789
printf '%s\n' "$group" >group.txt
chmod 600 group.txt
key_of() { python3 -c 'import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest()[:32])' "$group" "$1"; }

run "$IOTFLEET" creds enrollment-key dev01 869939451296205 --group-secret-file group.txt -o csv
expect_rc 0 "two keys"
k1=$(key_of dev01)
k2=$(key_of 869939451296205)
expect_out "^dev01,${k1:0:4}…${k1: -4}\$" "dev01's key, masked"
expect_no_out "$k1|$k2" "no key in full without --show-secrets"
run "$IOTFLEET" --show-secrets creds enrollment-key dev01 869939451296205 --group-secret-file group.txt -o csv
expect_out "^dev01,$k1\$" "dev01's key is HMAC-SHA256(group secret, DN), 32 hex digits"
expect_out "^869939451296205,$k2\$" "an IMEI-named device's key"
expect_no_out "$group" "the group secret is never printed"

# The group secret from stdin; the names from a list file.
printf 'dev01\n# a comment\ndev02\n' >names.txt
run sh -c "printf '%s\n' '$group' | '$IOTFLEET' --show-secrets creds enrollment-key --devices names.txt --group-secret-file - -o csv"
expect_rc 0 "from stdin and a list file"
expect_out "^dev02,$(key_of dev02)\$" "dev02's key"

# -O: every key in full, 0600; a second run replaces the file whole.
run "$IOTFLEET" creds enrollment-key --devices names.txt --group-secret-file group.txt -O keys.csv -o csv
expect_rc 0 "-O keys.csv"
expect_out "^keys.csv,csv,2\$" "one row naming the file"
[ "$(stat -c %a keys.csv)" = 600 ] && ok || fail "keys.csv is $(stat -c %a keys.csv), not 600"
grep -qx "dev01,$k1" keys.csv && ok || fail "the file holds the keys in full: $(cat keys.csv)"
run "$IOTFLEET" creds enrollment-key dev01 --group-secret-file group.txt -O keys.json --format ndjson
expect_rc 0 "-O ndjson"
grep -q "\"enrollment_key\":\"$k1\"" keys.json && ok || fail "ndjson file: $(cat keys.json)"

# Refusals: a short group secret, a bad DeviceName, no group secret, a missing file.
printf 'short\n' >short.txt
chmod 600 short.txt
run "$IOTFLEET" creds enrollment-key dev01 --group-secret-file short.txt
expect_rc 2 "a short group secret"
expect_err "shorter than 16 characters" "says why"
expect_no_err "short$" "without printing it"
run "$IOTFLEET" creds enrollment-key 'bad name!' --group-secret-file group.txt
expect_rc 2 "a bad DeviceName"
run "$IOTFLEET" creds enrollment-key dev01
expect_rc 2 "no --group-secret-file"
expect_err "group-secret-file" "names the option"
run "$IOTFLEET" creds enrollment-key dev01 --group-secret-file missing.txt
expect_rc 2 "a missing group secret file"
run "$IOTFLEET" creds enrollment-key --help
expect_out "HMAC-SHA256\(group secret, DeviceName\)" "--help says how a key is made"
finish
