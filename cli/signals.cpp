// SPDX-License-Identifier: MIT
#include "cli/signals.hpp"

#include "cli/exit_codes.hpp"
#include "core/interrupt.hpp"

#include <unistd.h>

#include <csignal>

namespace iot::cli {
namespace {

extern "C" void on_signal(int /*signo*/) {
  if (core::interrupt_requested()) {
    constexpr char msg[] = "\niotfleet: interrupted again, exiting now\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(k_exit_interrupted);
  }
  core::request_interrupt();
  constexpr char msg[] =
      "\niotfleet: interrupted, finishing work in flight (press Ctrl-C again to stop now)\n";
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}

} // namespace

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0; // no SA_RESTART: blocking reads return EINTR and see the flag
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

} // namespace iot::cli
