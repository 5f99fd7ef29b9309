// SPDX-License-Identifier: MIT
#include "commands/ledger_access.hpp"

#include "commands/config.hpp"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace iot::commands {
namespace {

// The ledger the configuration gives when --ledger is not on the command line, for a message
// about a --ledger path that does not exist; nullopt when it cannot be told. Resolves the
// settings again without the flag (and without anything that would read stdin a second time).
std::optional<cloud::Setting> ledger_without_flag(const Context& ctx) {
  cloud::SettingsFlags flags = ctx.global.settings;
  flags.ledger.reset();
  flags.access_key_id.reset();
  flags.access_key_secret_file.reset();
  flags.security_token_file.reset();
  cloud::Environment env = ctx.env;
  env.read_stdin = []() -> Result<std::string> {
    return fail(ErrorKind::usage, "stdin was read already");
  };
  auto settings = cloud::resolve_settings(flags, env);
  if (!settings) {
    return std::nullopt;
  }
  const auto* ledger = settings->find(cloud::key::ledger);
  if (!ledger || !ledger->value) {
    return std::nullopt;
  }
  return *ledger;
}

// What follows "no ledger at PATH": where PATH came from, the configured ledger when --ledger
// overrode it, and what to do.
std::string missing_hint(const Context& ctx, const cloud::Setting& ledger) {
  std::string where;
  if (ledger.source == "default") {
    where = " (the default: no --ledger, IOTFLEET_LEDGER or config \"ledger\" is given)";
  } else {
    where = " (from " + ledger.source;
    if (ledger.source.starts_with("flag")) {
      if (auto configured = ledger_without_flag(ctx);
          configured && configured->value != ledger.value) {
        where += configured->source == "default"
                     ? "; the default is " + *configured->value
                     : "; the configured ledger is " + *configured->value + ", from " +
                           configured->source;
      }
    }
    where += ")";
  }
  return where + ": check --ledger, IOTFLEET_LEDGER and the config's \"ledger\"; "
                 "`iotfleet pool import FILE` creates a ledger";
}

} // namespace

Result<LedgerHandle> open_configured_ledger(Context& ctx, store::OpenMode mode) {
  const auto settings = IOT_TRY(load_settings(ctx));
  const auto* ledger = settings.find(cloud::key::ledger);
  if (!ledger || !ledger->value || ledger->value->empty()) {
    return fail(ErrorKind::config, "no ledger: give --ledger FILE|URL");
  }
  LedgerHandle handle;
  handle.path = store::display_location(*ledger->value);
  const std::filesystem::path path(*ledger->value);
  if (mode == store::OpenMode::create && ledger->source == "default" && path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return fail(ErrorKind::io,
                  "cannot create " + path.parent_path().string() +
                      " for the ledger: " + ec.message() + " (give --ledger FILE)");
    }
    std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all, ec);
  }
  store::LedgerOptions options;
  options.mode = mode;
  options.warn = [&ctx](const std::string& warning) { ctx.output->warn(warning); };
  options.missing_hint = [&ctx, setting = *ledger] { return missing_hint(ctx, setting); };
  handle.ledger = IOT_TRY(store::open_ledger(*ledger->value, options));
  handle.actor.station = settings.value(cloud::key::station).value_or("station");
  handle.actor.pid = static_cast<std::int64_t>(::getpid());
  ctx.output->debug("ledger " + handle.path + " (" + ledger->source + "), station " +
                    handle.actor.station);
  return handle;
}

} // namespace iot::commands
