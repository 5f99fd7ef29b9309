#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The format check: every tracked C++ file as .clang-format wants it. CI runs it, and so does the
# test suite (ctest -R lint), so a change that breaks it fails before it is pushed.
#   scripts/check-format.sh          check, list the lines to change, exit 1 if any
#   scripts/check-format.sh --fix    rewrite the files in place
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format is not installed: run scripts/setup.sh (it installs it with apt-get)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run -Werror "${files[@]}"
fi
