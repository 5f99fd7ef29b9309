// SPDX-License-Identifier: MIT
#include "commands/config.hpp"

#include "commands/common_options.hpp"

namespace iot::commands {

Result<cloud::Settings> load_settings(Context& ctx) {
  auto settings = cloud::resolve_settings(ctx.global.settings, ctx.env);
  if (!settings) {
    return settings;
  }
  if (ctx.output != nullptr) {
    for (const auto& w : settings->warnings) {
      ctx.output->warn(w);
    }
  }
  return settings;
}

Result<core::Table> run_config_show(const ConfigShowOptions& /*opts*/, Context& ctx) {
  auto settings = load_settings(ctx);
  if (!settings) {
    return fail(settings.error());
  }
  core::Table table;
  table.columns = {"setting", "value", "source"};
  for (const auto& s : settings->items) {
    core::Cell value;
    if (s.value) {
      value = s.secret ? core::Cell(core::Secret{*s.value}) : core::Cell(*s.value);
    }
    table.add_row({s.name, std::move(value), s.source});
  }
  return table;
}

void register_config(CLI::App& app, Context& ctx) {
  auto* config = app.add_subcommand("config", "Show the effective configuration");
  config->require_subcommand(0, 1);
  auto* show = config->add_subcommand(
      "show", "Every effective setting, its value (secrets masked) and where it came from");
  show->footer("Precedence: flags > environment (ALIBABA_CLOUD_*, IOTFLEET_*) > aliyun CLI "
               "~/.aliyun/config.json > iotfleet config file > defaults.");
  add_exit_codes(show,
                 {{0, "the settings were printed"},
                  {2, "a broken config file or an unknown profile (the file and the fix)"}});
  auto opts = std::make_shared<ConfigShowOptions>();
  show->callback([&ctx, opts] { ctx.output->emit(value_or_throw(run_config_show(*opts, ctx))); });
}

} // namespace iot::commands
