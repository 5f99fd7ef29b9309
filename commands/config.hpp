// SPDX-License-Identifier: MIT
// iotfleet config show: every effective setting, its value (secrets masked) and its source.
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

namespace iot::commands {

struct ConfigShowOptions {};

void register_config(CLI::App& app, Context& ctx);
[[nodiscard]] Result<core::Table> run_config_show(const ConfigShowOptions& opts, Context& ctx);

// Resolves the settings for any command, passing their warnings to ctx.output.
[[nodiscard]] Result<cloud::Settings> load_settings(Context& ctx);

} // namespace iot::commands
