#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# creds mqtt on the real binary: the official MQTT vector (docs/aliyun-iot-protocol.md §5) with the
# DeviceSecret from a file and from stdin, -o json, the password masked unless --show-secrets, the
# DeviceSecret from the factory ledger filled by `pool import`, the keepalive checks (exit 2
# outside 30-1200 s, a warning outside 60-240 s), the dynamic-registration credentials (§4 vector)
# and the error listing every way to give a secret.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
export IOTFLEET_LEDGER="$IOT_TMP/ledger.db"
vector_password=FAFD82A3D602B37FB0FA8B7892F24A477F851A14
vector=(creds mqtt device --product-key pk --client-id 12345 --timestamp 789 --sign-method hmacsha1
  --secure-mode 3)

# --- the official vector ----------------------------------------------------------------------
printf 'secret\n' >ds.txt
chmod 600 ds.txt
run "$IOTFLEET" "${vector[@]}" --device-secret-file ds.txt
expect_rc 0 "vector from a file"
expect_out '^client_id +12345\|securemode=3,signmethod=hmacsha1,timestamp=789\|$' "the clientId"
expect_out '^username +device&pk$' "the username"
expect_out '^password +FAFD…1A14$' "the password, masked"
expect_no_out "$vector_password" "no full password without --show-secrets"
expect_out '^host +pk\.iot-as-mqtt\.cn-shanghai\.aliyuncs\.com$' "the legacy host"
expect_out '^port +1883$' "the port"
expect_out '^keepalive +120$' "the default keepalive"
expect_out '^server_drop_after_s +180$' "keepalive x 1.5"
[ -z "$err" ] && ok || fail "nothing on stderr: $err"

run "$IOTFLEET" --show-secrets "${vector[@]}" --device-secret-file ds.txt
expect_rc 0 "--show-secrets"
expect_out "^password +$vector_password\$" "the password in full"

run "$IOTFLEET" -o json --show-secrets "${vector[@]}" --device-secret-file - <ds.txt
expect_rc 0 "-o json, the secret on stdin"
got=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["password"], d["username"], d["port"], d["tls"], d["signed_with"])' <<<"$out" 2>&1 || true)
[ "$got" = "$vector_password device&pk 1883 False DeviceSecret from stdin" ] && ok ||
  fail "json fields: $got ($out)"

run "$IOTFLEET" -o json "${vector[@]}" --device-secret-file ds.txt
expect_rc 0 "-o json masked"
expect_out '"password": "FAFD…1A14"' "masked in JSON too"
expect_no_out "$vector_password" "no full password in JSON"

# --- keepalive ----------------------------------------------------------------------------------
run "$IOTFLEET" "${vector[@]}" --device-secret-file ds.txt --keepalive 20
expect_rc 2 "keepalive the platform refuses"
expect_err 'outside 30-1200 s' "the platform's range"
[ -z "$out" ] && ok || fail "nothing on stdout: $out"
run "$IOTFLEET" "${vector[@]}" --device-secret-file ds.txt --keepalive 300
expect_rc 0 "keepalive above the advice"
expect_err 'warning: --keepalive 300 s is above 240 s' "the seed's advice"
expect_out '^server_drop_after_s +450$' "450 s drop deadline"

# --- the factory ledger ----------------------------------------------------------------------
printf 'ProductKey,DeviceName,DeviceSecret\na1b2c3d4e5f,dev01,0123456789abcdef0123456789abcdef\n' >pool.csv
run "$IOTFLEET" creds mqtt dev01 --timestamp 1700000000000
expect_rc 2 "no ledger yet"
expect_err '--device-secret-file FILE \(or --device-secret-file - to read it from stdin\)' \
  "every way: the file and stdin"
expect_err 'iotfleet pool import FILE' "every way: the ledger"
[ ! -e "$IOTFLEET_LEDGER" ] && ok || fail "no ledger created by creds mqtt"
run "$IOTFLEET" pool import pool.csv
expect_rc 0 "pool import"
run "$IOTFLEET" -o json --show-secrets creds mqtt dev01 --timestamp 1700000000000
expect_rc 0 "from the ledger"
expect_out '"password": "913C60FE9C89A6FDCEB34A5C8813F3C9FEBA0D061ABA9B5BE16098F9E03CFDC7"' \
  "the §5 synthetic SHA-256 vector"
expect_out '"client_id": "a1b2c3d4e5f\.dev01\|securemode=2,signmethod=hmacsha256,timestamp=1700000000000\|"' \
  "default clientId PK.DN, TLS, hmacsha256"
expect_out '"signed_with": "DeviceSecret from the ledger .*ledger\.db \(available\)"' "the source"
run "$IOTFLEET" creds mqtt dev02
expect_rc 2 "unknown DeviceName"
expect_err 'DeviceName dev02 is not in the ledger' "named"
run "$IOTFLEET" --region ap-southeast-1 creds mqtt dev01 --instance-id iot-06z00ax1o4qq0py
expect_rc 0 "instance endpoint"
expect_out '^host +iot-06z00ax1o4qq0py\.mqtt\.iothub\.aliyuncs\.com$' "the instance host"

# --- dynamic registration --------------------------------------------------------------------
printf '0123456789ABCDEF' >ps.txt
chmod 600 ps.txt
run "$IOTFLEET" -o json --show-secrets creds mqtt dev01 --product-key a1b2c3d4e5f --dynamic register \
  --random 8Ygb7ULYh53B6OA --product-secret-file ps.txt --instance-id iot-06z00ax1o4qq0py
expect_rc 0 "--dynamic register"
expect_out '"client_id": "a1b2c3d4e5f\.dev01\|securemode=-2,authType=register,random=8Ygb7ULYh53B6OA,signmethod=hmacsha256,instanceId=iot-06z00ax1o4qq0py\|"' \
  "the registration clientId"
expect_out '"password": "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9"' \
  "the §4 synthetic vector"
expect_err '/ext/register' "what happens next"
IOTFLEET_PRODUCT_SECRET=0123456789ABCDEF run "$IOTFLEET" -o json --show-secrets creds mqtt dev01 \
  --product-key a1b2c3d4e5f --dynamic register --random 8Ygb7ULYh53B6OA
expect_rc 0 "--dynamic with the ProductSecret from the environment"
expect_out '"password": "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9"' \
  "same vector from IOTFLEET_PRODUCT_SECRET"
expect_out '"signed_with": "ProductSecret from env IOTFLEET_PRODUCT_SECRET"' "names the source"
run "$IOTFLEET" creds mqtt dev01 --product-key a1b2c3d4e5f --dynamic regnwl --secure-mode 3 \
  --product-secret-file ps.txt
expect_rc 2 "dynamic registration is TLS only"
run "$IOTFLEET" creds mqtt dev01 --dynamic register
expect_rc 2 "no ProductSecret"
expect_err 'one-device-one-secret triplet' "the ledger holds a DeviceSecret for dev01"
expect_err '--product-secret-file FILE' "every way to give the ProductSecret"

# --- no secret on the command line -----------------------------------------------------------
run "$IOTFLEET" creds mqtt dev01 0123456789abcdef0123456789abcdef
expect_rc 2 "a bare secret argument is refused"

finish
