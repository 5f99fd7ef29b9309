// SPDX-License-Identifier: MIT
#include "cli/exit_codes.hpp"

namespace iot::cli {

int exit_code_for(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::usage:
  case ErrorKind::config:
    return k_exit_usage;
  case ErrorKind::serial:
  case ErrorKind::module:
    return k_exit_serial;
  case ErrorKind::cloud:
  case ErrorKind::network:
  case ErrorKind::auth:
    return k_exit_cloud;
  case ErrorKind::partial:
    return k_exit_partial;
  case ErrorKind::difference:
    return k_exit_difference;
  case ErrorKind::interrupted:
    return k_exit_interrupted;
  case ErrorKind::failure:
  case ErrorKind::io:
    return k_exit_failure;
  }
  return k_exit_failure;
}

std::string_view exit_code_help() {
  return "Exit codes:\n"
         "  0    ok\n"
         "  1    failure (local files, internal error)\n"
         "  2    usage or invalid input (flags, values, input files, configuration)\n"
         "  3    serial port or module error\n"
         "  4    cloud, network or authentication error\n"
         "  5    batch finished with some items failed\n"
         "  6    a check found a difference (compare, diagnose)\n"
         "  130  interrupted (Ctrl-C); files being written are left whole or untouched\n";
}

} // namespace iot::cli
