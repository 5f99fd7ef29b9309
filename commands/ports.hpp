// SPDX-License-Identifier: MIT
// iotfleet ports: every serial port (USB VID:PID, serial number, description) plus the
// pseudo-terminals of running simulators, marked as simulated.
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

namespace iot::commands {

struct PortsOptions {};

void register_ports(CLI::App& app, Context& ctx);
[[nodiscard]] Result<core::Table> run_ports(const PortsOptions& opts, Context& ctx);

} // namespace iot::commands
