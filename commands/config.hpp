// SPDX-License-Identifier: MIT
// iotfleet config show: every effective setting, its value (secrets masked) and its source.
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

namespace iot::commands {

struct ConfigShowOptions {};

void register_config(CLI::App& app, Context& ctx);
// Every setting with its value (secrets masked) and source, and the first problem of a setting
// that cannot be used (printed anyway, then exit 2).
struct ConfigShowReport {
  core::Table table;
  std::optional<Error> problem;
};
[[nodiscard]] Result<ConfigShowReport> run_config_show(const ConfigShowOptions& opts, Context& ctx);

// Resolves the settings for a command that does not talk to the cloud, passing their warnings to
// ctx.output; a problem of a cloud setting (a broken ~/.aliyun/config.json, …) is at most a
// warning here.
[[nodiscard]] Result<cloud::Settings> load_settings(Context& ctx);

// The same for a command that talks to the cloud: fails with the problem of any `needed`
// setting (cloud::key::region, endpoint, auth_endpoint, …). The AccessKey is checked by
// cloud::require_access_key (open_cloud does both).
[[nodiscard]] Result<cloud::Settings>
load_cloud_settings(Context& ctx, std::initializer_list<std::string_view> needed);

} // namespace iot::commands
