#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test command: configure, build, run every test (unit + integration) with CTest.
#   scripts/test.sh                 release-with-debug-info build in build/
#   BUILD_DIR=build-asan IOT_SANITIZE=ON scripts/test.sh   the sanitizer build
# Extra arguments go to ctest (e.g. -R cli, -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}
jobs=${JOBS:-$(nproc)}

cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DIOT_WERROR="${IOT_WERROR:-OFF}" \
  -DIOT_SANITIZE="${IOT_SANITIZE:-OFF}" >&2
cmake --build "$build_dir" -j "$jobs" >&2
cd "$build_dir"
ctest --output-on-failure -j "$jobs" "$@"
