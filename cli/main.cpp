// SPDX-License-Identifier: MIT
// The iotfleet executable: everything lives in the libraries; main only wires the process in.
#include "cli/app.hpp"
#include "cli/exit_codes.hpp"
#include "cli/signals.hpp"

#include <unistd.h>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  iot::cli::install_signal_handlers();
  const iot::cli::AppStreams streams{
      std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1, ::isatty(STDERR_FILENO) == 1};
  try {
    return iot::cli::run(argc, argv, streams);
  } catch (const std::exception& e) {
    std::cerr << "iotfleet: internal error: " << e.what()
              << " (please report this with the command you ran)\n";
    return iot::cli::k_exit_failure;
  }
}
