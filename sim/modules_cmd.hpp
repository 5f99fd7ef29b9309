// SPDX-License-Identifier: MIT
// `iotfleet-sim modules`: N simulated AT modules on pseudo-terminals (see docs/simulator.md).
#pragma once

#include "core/error.hpp"
#include "sim/module_model.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace iot::sim {

struct ModulesOptions {
  int count = 1;
  std::string module = "luat";
  std::string state_dir; // empty: a new temporary directory
  long baud = 115200;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> imeis; // or MACs for esp-at
  bool duplicate_imei = false;
  bool placeholder_imei = false;
  std::string ports_file; // empty: <state-dir>/ports.json
  FaultRates faults;
  double urc_rate = 3.0; // per minute
  std::string nvm_latency_ms = "50-300";
  bool no_pacing = false;
  bool volatile_aliauth = false;
  std::string control;    // --control FIFO path; empty: none
  long swap_gap_ms = 300; // --swap-gap-ms: a swap's pause between remove and insert
  // --first-boot URL: modules with an empty SN fetch their DeviceSecret from `iotfleet serve`.
  std::string first_boot;
  std::string first_boot_product;
  std::string first_boot_secret_file;
  std::string first_boot_ca;
};

// Adds the `modules` subcommand to app; its callback runs run_modules and throws
// CLI::RuntimeError on failure (after printing the error).
void register_modules(CLI::App& app);

// Parses "MIN-MAX" or "N" (milliseconds).
[[nodiscard]] Result<std::pair<std::chrono::milliseconds, std::chrono::milliseconds>>
parse_latency_range(std::string_view text);

// Runs until SIGINT / SIGTERM / SIGHUP; returns success on a clean shutdown.
[[nodiscard]] Status run_modules(const ModulesOptions& options);

} // namespace iot::sim
