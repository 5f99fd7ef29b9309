// SPDX-License-Identifier: MIT
// Opening the factory ledger the way every command does: path from --ledger / env / config /
// default, the station name for the audit trail.
#pragma once

#include "commands/context.hpp"
#include "store/ledger.hpp"

#include <memory>
#include <string>

namespace iot::commands {

struct LedgerHandle {
  std::unique_ptr<store::Ledger> ledger;
  std::string path;
  store::Actor actor; // station name, this process; port empty
};

// Opens (creating) the configured ledger. The default location's directory is created (0700);
// an explicitly given path's directory must exist.
[[nodiscard]] Result<LedgerHandle> open_configured_ledger(Context& ctx);

} // namespace iot::commands
