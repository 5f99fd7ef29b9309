// SPDX-License-Identifier: MIT
#include "commands/config.hpp"

#include "commands/common_options.hpp"
#include "store/ledger.hpp"

namespace iot::commands {

namespace {

void pass_warnings(const cloud::Settings& settings, Context& ctx, bool aliyun_used) {
  if (ctx.output == nullptr) {
    return;
  }
  for (const auto& w : settings.warnings) {
    ctx.output->warn(w);
  }
  if (settings.aliyun_problem && !aliyun_used) {
    ctx.output->warn(settings.aliyun_problem->message +
                     " (ignored: nothing this command uses comes from it; commands that need the "
                     "AccessKey or region from it fail until it is fixed)");
  }
}

} // namespace

Result<cloud::Settings> load_settings(Context& ctx) {
  auto settings = IOT_TRY(cloud::resolve_settings(ctx.global.settings, ctx.env));
  pass_warnings(settings, ctx, false);
  return settings;
}

Result<cloud::Settings> load_cloud_settings(Context& ctx,
                                            std::initializer_list<std::string_view> needed) {
  auto settings = IOT_TRY(cloud::resolve_settings(ctx.global.settings, ctx.env));
  IOT_TRY(cloud::require_cloud_settings(settings, needed));
  // The aliyun config's problem, when none of the needed settings had it, is only a warning
  // (the AccessKey is the caller's to check: require_access_key).
  pass_warnings(settings, ctx, false);
  return settings;
}

namespace {

// The first problem of the resolved settings, as an error (config show's exit 2 after it printed
// them all).
std::optional<Error> first_problem(const cloud::Settings& settings) {
  if (settings.aliyun_problem) {
    return *settings.aliyun_problem;
  }
  for (const auto& s : settings.items) {
    if (s.problem) {
      return s.problem->context(s.name);
    }
  }
  return std::nullopt;
}

} // namespace

Result<ConfigShowReport> run_config_show(const ConfigShowOptions& /*opts*/, Context& ctx) {
  // Resolved once: a secret given on stdin can be read only once.
  auto settings = IOT_TRY(cloud::resolve_settings(ctx.global.settings, ctx.env));
  pass_warnings(settings, ctx, true);
  ConfigShowReport report;
  report.table.columns = {"setting", "value", "source"};
  for (const auto& s : settings.items) {
    core::Cell value;
    if (s.value) {
      value = s.secret                       ? core::Cell(core::Secret{*s.value})
              : s.name == cloud::key::ledger ? core::Cell(store::display_location(*s.value))
                                             : core::Cell(*s.value);
    }
    report.table.add_row({s.name, std::move(value), s.source});
  }
  report.problem = first_problem(settings);
  return report;
}

void register_config(CLI::App& app, Context& ctx) {
  auto* config = app.add_subcommand("config", "Show the effective configuration");
  config->require_subcommand(0, 1);
  auto* show = config->add_subcommand(
      "show", "Every effective setting, its value (secrets masked) and where it came from");
  show->footer("Precedence: flags > environment (ALIBABA_CLOUD_*, IOTFLEET_*) > aliyun CLI "
               "~/.aliyun/config.json > iotfleet config file > defaults. A setting that could "
               "not be resolved (a broken ~/.aliyun/config.json, an unreadable secret file) "
               "shows 'not resolved: why' as its source; only commands that talk to the cloud "
               "fail on it.");
  add_exit_codes(show,
                 {{0, "the settings were printed, all usable"},
                  {2,
                   "a broken iotfleet config file or an unknown profile (nothing printed), or "
                   "a cloud setting that cannot be used (printed, then the problem)"}});
  auto opts = std::make_shared<ConfigShowOptions>();
  show->callback([&ctx, opts] {
    auto report = value_or_throw(run_config_show(*opts, ctx));
    ctx.output->emit(report.table);
    if (report.problem) {
      throw CommandFailure(*report.problem);
    }
  });
}

} // namespace iot::commands
