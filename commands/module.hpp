// SPDX-License-Identifier: MIT
// iotfleet module info | module at: one module on a serial port, for support engineers.
#pragma once

#include "commands/context.hpp"
#include "commands/module_session.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace iot::commands {

struct ModuleInfoOptions {
  ModuleConnectOptions connect;
  std::optional<std::string> layout; // secret | triplet (default: the driver's)
};

struct ModuleAtOptions {
  ModuleConnectOptions connect;
  std::string command;
  std::chrono::milliseconds timeout{5000};
  bool no_sync = false;
};

// The response of `module at`: its lines as a table, and whether the final result was OK.
struct ModuleAtReport {
  core::Table table;
  bool ok = false;
  std::string final_line;
};

void register_module(CLI::App& app, Context& ctx);
[[nodiscard]] Result<core::Table> run_module_info(const ModuleInfoOptions& opts, Context& ctx);
[[nodiscard]] Result<ModuleAtReport> run_module_at(const ModuleAtOptions& opts, Context& ctx);

} // namespace iot::commands
