#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job of iotfleet, run end to end on the emulators (no module, no internet needed).
# It grows with each capability. Run scripts/setup.sh first (it installs and builds).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
if [ ! -x "$build_dir/iotfleet" ] || [ ! -x "$build_dir/iotfleet-sim" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$build_dir" >&2
fi
iotfleet="$build_dir/iotfleet"
sim="$build_dir/iotfleet-sim"

demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-demo.XXXXXX")
sim_pids=()
cleanup() {
  for pid in "${sim_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$demo_dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}" >&2; "${@:2}"; }

step "What iotfleet does" "$iotfleet" --help
# A station's settings, from a config file of its own (a demo HOME keeps yours untouched).
export HOME="$demo_dir/home" XDG_CONFIG_HOME="$demo_dir/home/.config"
mkdir -p "$XDG_CONFIG_HOME/iotfleet"
cat >"$XDG_CONFIG_HOME/iotfleet/config.json" <<JSON
{"station": "demo-line1-st1", "module": "luat", "ledger": "$demo_dir/ledger.db"}
JSON
chmod 600 "$XDG_CONFIG_HOME/iotfleet/config.json"
step "Effective configuration and where each value comes from" "$iotfleet" config show
echo "demo: ok" >&2
