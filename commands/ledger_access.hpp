// SPDX-License-Identifier: MIT
// Opening the factory ledger the way every command does: path from --ledger / env / config /
// default, how the command uses it, the station name for the audit trail.
#pragma once

#include "commands/context.hpp"
#include "store/ledger.hpp"

#include <memory>
#include <string>

namespace iot::commands {

struct LedgerHandle {
  std::unique_ptr<store::Ledger> ledger;
  std::string path;   // the file, or the URL with any password masked: for messages
  store::Actor actor; // station name, this process; port empty
};

// Opens the configured ledger as `mode` says (store::OpenMode):
// - create (pool import, provision, dynreg): a missing ledger is created; the default
//   location's directory too (0700). An explicitly given path's directory must exist.
// - existing (pool release): it must exist; opened read-write.
// - read (pool status / export / log, secrets compare --ledger): it must exist; opened
//   read-only, so a ledger this user may only read can be viewed.
// A missing ledger for existing / read is ErrorKind::config (exit 2) naming the path, where it
// came from, the configured default when --ledger overrode it, and the fix; nothing is created.
// The store's warnings (a ledger others can read; tightened to 0600 by create / existing) go to
// ctx.output->warn.
[[nodiscard]] Result<LedgerHandle> open_configured_ledger(Context& ctx, store::OpenMode mode);

} // namespace iot::commands
