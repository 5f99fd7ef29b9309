// SPDX-License-Identifier: MIT
#include "commands/ledger_access.hpp"

#include "commands/config.hpp"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace iot::commands {

Result<LedgerHandle> open_configured_ledger(Context& ctx) {
  auto settings = load_settings(ctx);
  if (!settings) {
    return fail(settings.error());
  }
  const auto* ledger = settings->find(cloud::key::ledger);
  if (!ledger || !ledger->value || ledger->value->empty()) {
    return fail(ErrorKind::config, "no ledger path: give --ledger FILE");
  }
  LedgerHandle handle;
  handle.path = *ledger->value;
  const std::filesystem::path path(handle.path);
  if (ledger->source == "default" && path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return fail(ErrorKind::io,
                  "cannot create " + path.parent_path().string() +
                      " for the ledger: " + ec.message() + " (give --ledger FILE)");
    }
    std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all, ec);
  }
  auto opened = store::open_ledger(path);
  if (!opened) {
    return fail(opened.error());
  }
  handle.ledger = std::move(*opened);
  handle.actor.station = settings->value(cloud::key::station).value_or("station");
  handle.actor.pid = static_cast<std::int64_t>(::getpid());
  ctx.output->debug("ledger " + handle.path + " (" + ledger->source + "), station " +
                    handle.actor.station);
  return handle;
}

} // namespace iot::commands
