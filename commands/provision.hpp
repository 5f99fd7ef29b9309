// SPDX-License-Identifier: MIT
// iotfleet provision: burn triplets from the ledger's pool into modules on many fixtures at once,
// verify each by read-back, record everything in the ledger (DESIGN.md "The ledger").
#pragma once

#include "commands/context.hpp"
#include "commands/module_session.hpp"
#include "commands/register.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace iot::commands {

struct ProvisionOptions {
  std::vector<std::string> ports;
  std::optional<std::string> ports_from; // one port per line, # comments
  ModuleConnectOptions connect;          // module, profile, baud, trace (port set per fixture)
  std::optional<std::string> layout;     // secret | triplet (default: the driver's)
  std::optional<std::string> product_key;
  std::string scheme = "device";       // pool rows of this scheme
  std::string name_from = "pool";      // pool: next available; imei: the row whose DN is the IMEI
  bool loop = false;                   // keep going as modules are swapped, until Ctrl-C
  bool dry_run = false;                // the AT sequence per port; nothing written, nothing claimed
  bool overwrite = false;              // replace credentials this ledger did not burn
  int retries = 2;                     // extra write attempts after a failed or unverified write
  std::chrono::milliseconds poll{300}; // --loop: how often an idle fixture is probed
  // How long a fixture waits for an unreachable ledger server (a shared ledger's network or
  // restart) before it gives its module up; 0: give up at once.
  std::chrono::milliseconds ledger_wait{120'000};
  // --register: DeviceName = IMEI, DeviceSecret from one-type-one-secret dynamic registration
  // (written to the ledger before the module), when the pool has no row for the IMEI yet.
  bool register_devices = false;
  RegistrarOptions registrar;
  // --enrollment-key FILE|-: the group secret of the device-key scheme (docs/enrollment.md). Each
  // module gets its device's enrollment key in place of the DeviceSecret, which stays in the
  // ledger for `iotfleet serve` to hand out at first boot.
  std::optional<std::string> enrollment_key_file;
};

// One module's outcome (also the NDJSON event).
enum class Outcome { burned, already_provisioned, failed, refused, port_error };
[[nodiscard]] std::string_view to_string(Outcome outcome);

struct ProvisionReport {
  core::Table events;           // one row per module (in completion order)
  core::Table summary;          // one row
  std::optional<Error> failure; // partial (5), serial (3), interrupted (130), or none
  bool streamed = false;        // events were already emitted one by one (ndjson)
};

void register_provision(CLI::App& app, Context& ctx);
[[nodiscard]] Result<ProvisionReport> run_provision(const ProvisionOptions& opts, Context& ctx);
// --dry-run: per port, the module, the triplet it would get and the exact AT sequence (masked).
[[nodiscard]] Result<core::Table> run_provision_dry_run(const ProvisionOptions& opts, Context& ctx);

} // namespace iot::commands
