// SPDX-License-Identifier: MIT
// iotfleet module info | module at: one module on a serial port, for support engineers.
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace iot::commands {

// How to reach a module: shared by every command that talks to one.
struct ModuleConnectOptions {
  std::string port;
  std::optional<std::string> module;       // luat | quectel | esp-at | auto (default: config)
  std::optional<std::string> profile_file; // a user's JSON module profile
  int baud = 115200;
  bool trace = false; // the AT conversation on stderr, secrets masked
};

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
