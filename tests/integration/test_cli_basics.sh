#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The iotfleet binary as a user and a script see it: help, version, exit codes, output formats,
# config show with every credential source, bad configuration.
source "$(dirname "$0")/lib.sh"

run "$IOTFLEET" --version
expect_rc 0 "--version"
expect_out '^iotfleet [0-9]+\.[0-9]+\.[0-9]+$' "--version prints the version"

run "$IOTFLEET" --help
expect_rc 0 "--help"
expect_out 'Exit codes:' "--help documents exit codes"
expect_out '130 +interrupted' "--help documents 130"
expect_out 'config' "--help lists config"

run "$IOTFLEET"
expect_rc 2 "no command"
expect_err 'a command is required' "no command says so"
expect_no_out '.' "no command prints nothing on stdout"

run "$IOTFLEET" --no-such-flag config show
expect_rc 2 "unknown flag"
expect_err 'no-such-flag' "unknown flag is named"

run "$IOTFLEET" config
expect_rc 2 "group without command"
expect_err "'iotfleet config' needs a command: show" "group without command names the choices"
expect_err "Usage: iotfleet config" "the group's help names the whole command"

run "$IOTFLEET" -o yaml config show
expect_rc 2 "bad output format"
expect_err 'yaml not in' "bad output format is named"

# Defaults with an empty HOME.
run "$IOTFLEET" config show
expect_rc 0 "config show"
expect_out '^SETTING +VALUE +SOURCE' "table header"
expect_out 'region +cn-shanghai +default' "default region"
expect_out 'access_key_id +- +not set' "no credentials"

# Environment credentials: the secret is masked, shown whole only with --show-secrets.
export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tIntegration ALIBABA_CLOUD_ACCESS_KEY_SECRET=SuperSecretValue0123456789xyz
run "$IOTFLEET" config show -o json
expect_rc 0 "config show json"
expect_out '"value": "Supe…9xyz"' "secret masked in json"
expect_no_out 'SuperSecretValue' "secret never printed in full"
expect_out '"source": "env ALIBABA_CLOUD_ACCESS_KEY_ID"' "source of the id"
run "$IOTFLEET" config show -o csv --show-secrets
expect_out '^access_key_secret,SuperSecretValue0123456789xyz,env ALIBABA_CLOUD_ACCESS_KEY_SECRET$' "csv with --show-secrets"
run "$IOTFLEET" config show -o ndjson
if [ "$(wc -l <<<"$out")" -ge 10 ] && ! grep -qv '^{.*}$' <<<"$out"; then ok; else fail "ndjson is one object per line: $out"; fi
unset ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET

# aliyun CLI profile, then flags over it; the secret read from stdin.
mkdir -p "$HOME/.aliyun"
cat >"$HOME/.aliyun/config.json" <<'JSON'
{"current": "default", "profiles": [
  {"name": "default", "mode": "AK", "access_key_id": "LTAIaliyun", "access_key_secret": "aliyunSecret0123456789", "region_id": "cn-hangzhou"}]}
JSON
chmod 600 "$HOME/.aliyun/config.json"
run "$IOTFLEET" config show -o csv
expect_out "^access_key_id,LTAIaliyun,aliyun CLI profile 'default'" "aliyun CLI profile used"
expect_out '^region,cn-hangzhou,' "aliyun CLI region used"
set +e
out=$(echo "flagSecretFromStdin0123" | "$IOTFLEET" --access-key-id LTAIflag --access-key-secret-file - --region us-west-1 config show -o csv --show-secrets 2>"$IOT_TMP/.err")
rc=$?
set -e
expect_rc 0 "secret from stdin"
expect_out '^access_key_secret,flagSecretFromStdin0123,flag --access-key-secret-file \(stdin\)$' "stdin secret"
expect_out '^region,us-west-1,flag --region$' "flag region wins"

run "$IOTFLEET" --profile nosuch config show
expect_rc 2 "unknown profile"
expect_err "unknown profile 'nosuch'" "unknown profile named"

# iotfleet's own config: loose permissions on a file holding a secret draw a warning.
rm "$HOME/.aliyun/config.json"
mkdir -p "$XDG_CONFIG_HOME/iotfleet"
cat >"$XDG_CONFIG_HOME/iotfleet/config.json" <<'JSON'
{"access_key_id": "LTAIown", "access_key_secret": "ownSecret0123456789", "station": "line1-st3"}
JSON
chmod 644 "$XDG_CONFIG_HOME/iotfleet/config.json"
run "$IOTFLEET" config show
expect_rc 0 "own config"
expect_out 'station +line1-st3 +config ' "station from config"
expect_err 'warning: .*readable by group or others \(mode 0644\): run chmod 600' "loose mode warning"
expect_no_err 'ownSecret' "warning does not leak the secret"

echo '{"station": ' >"$XDG_CONFIG_HOME/iotfleet/config.json"
run "$IOTFLEET" config show
expect_rc 2 "broken config"
expect_err 'config.json is not valid JSON' "broken config named"

run "$IOTFLEET" --config "$IOT_TMP/missing.json" config show
expect_rc 2 "missing --config file"
expect_err 'missing.json: No such file or directory' "missing config named"

# --- a broken ~/.aliyun/config.json stops only what talks to the cloud (#13.3) ----------------
rm -f "$HOME/.config/iotfleet/config.json" # the sections above left a broken one of our own
mkdir -p "$HOME/.aliyun"
[ -e "$HOME/.aliyun/config.json" ] && mv "$HOME/.aliyun/config.json" "$HOME/.aliyun/config.json.good"
echo '{"profiles":[' >"$HOME/.aliyun/config.json"
chmod 600 "$HOME/.aliyun/config.json"
printf 'ProductKey,DeviceName,DeviceSecret\na1BrokenCfg,dev-broken01,abcdefabcdefabcdefabcdefabcdef12\n' >broken.csv
run "$IOTFLEET" --ledger "$IOT_TMP/broken.db" pool import broken.csv
expect_rc 0 "pool import with a broken aliyun config"
expect_err "aliyun CLI config .* is not valid JSON .*ignored" "a warning says it was ignored"
run "$IOTFLEET" --ledger "$IOT_TMP/broken.db" pool status -o csv
expect_rc 0 "pool status with a broken aliyun config"
run "$IOTFLEET" --ledger "$IOT_TMP/broken.db" creds mqtt dev-broken01 -o csv
expect_rc 0 "creds mqtt from the ledger with a broken aliyun config"
expect_out "dev-broken01&a1BrokenCfg" "the MQTT username is computed"
run "$IOTFLEET" secrets export --product-key a1BrokenCfg -O broken-export.csv
expect_rc 2 "a cloud command fails on the broken aliyun config"
expect_err "config.json is not valid JSON .*fix or remove the file" "it names the file and the fix"
[ ! -e broken-export.csv ] && ok || fail "nothing written by the refused export"
run "$IOTFLEET" config show -o csv
expect_rc 2 "config show prints, then names the broken file"
expect_out "^region," "config show printed the settings first"
rm -f "$HOME/.aliyun/config.json"
[ -e "$HOME/.aliyun/config.json.good" ] && mv "$HOME/.aliyun/config.json.good" "$HOME/.aliyun/config.json"

# --- --config DIR names the path and the problem (#13.8) ----------------------------------------
run "$IOTFLEET" --config "$IOT_TMP" config show
expect_rc 2 "--config DIR is a usage error"
expect_err "cannot read config file .*: Is a directory — give a file, not a directory" "named, with the fix"

finish
