#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every build and test dependency of iotfleet on Debian 12 with apt-get, then configures
# and builds the release tree in build/. Idempotent: packages already present are not reinstalled,
# and apt-get update runs only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libcli11-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libserialport-dev
  doctest-dev libsqlite3-dev libcpp-httplib-dev
  libmosquitto-dev # creds probe: the MQTT client (CONNECT / CONNACK over TLS)
  mosquitto        # the real MQTT broker the creds probe tests start on 127.0.0.1
  libpq-dev        # the shared ledger: PostgreSQL's client library
  postgresql-15 postgresql-client-15 # the server the tests (and scripts/pg-local.sh) start
  clang clang-format libclang-rt-14-dev openssl python3
  jq       # tests and the demo read JSON output with it; bench/diagnose.sh compares with it
  curl     # tests and the demo call the emulator's test endpoints (/_emulator/activate)
  procps   # ps / kill in the crash tests
  chromium # headless: the diagnose fleet --html test renders the report
)
# The SDK contract test (tests/contract) runs on Node with npm's packages; Debian's nodejs / npm
# unless a node and npm are already on the PATH.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "setup: all packages present" >&2
fi

# The contract test's pinned npm packages (@alicloud/iot20180120, the API's generated SDK), as
# the committed package-lock.json has them, into tests/contract/node_modules.
echo "setup: npm ci in tests/contract" >&2
(cd tests/contract && npm ci --no-audit --no-fund --loglevel=error >&2)

if [ "${IOTFLEET_SETUP_NO_BUILD:-0}" != 1 ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build build >&2
  echo "setup: built build/iotfleet and build/iotfleet-sim" >&2
fi
