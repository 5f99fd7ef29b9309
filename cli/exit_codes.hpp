// SPDX-License-Identifier: MIT
// Process exit codes: the one place an ErrorKind becomes a number (documented in README and
// in --help).
#pragma once

#include "core/error.hpp"

#include <string_view>

namespace iot::cli {

inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_failure = 1;
inline constexpr int k_exit_usage = 2;
inline constexpr int k_exit_serial = 3;
inline constexpr int k_exit_cloud = 4;
inline constexpr int k_exit_partial = 5;
inline constexpr int k_exit_difference = 6;
inline constexpr int k_exit_interrupted = 130;

[[nodiscard]] int exit_code_for(ErrorKind kind);

// The table printed at the end of --help and in README.
[[nodiscard]] std::string_view exit_code_help();

} // namespace iot::cli
