// SPDX-License-Identifier: MIT
// iotfleet diagnose device DN: why one device is offline. Gathers every source available — the
// cloud (QueryProduct, QueryDeviceDetail; a ProductKey that exists only in another letter case),
// the exported device log (its records only, streamed), the module on the bench (--port: IMEI,
// stored triplet, SIM, signal, registration, attach), the factory ledger and a healthy-time
// secrets snapshot — and ranks the causes (diagnose/device_rules.hpp), each with its evidence and
// the fix. Sources that were not given or failed are named, never silently skipped.
#pragma once

#include "commands/context.hpp"
#include "commands/module_session.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace iot::commands {

struct DiagnoseDeviceOptions {
  std::string device_name;
  std::optional<std::string> product_key; // default: config, the module's, the ledger's
  std::optional<std::string> log;         // the console's exported device log
  ModuleConnectOptions connect;
  std::optional<std::string> layout;     // secret | triplet (default: the driver's)
  std::optional<std::string> label_imei; // the IMEI printed on the module's label
  std::optional<std::string> snapshot;   // a healthy-time `secrets export` file
  bool no_cloud = false;
  bool probe = false; // ask the MQTT endpoint whether the module's (ledger's) secret is right
  std::optional<std::string> mqtt_endpoint; // HOST[:PORT] for --probe; default the device's
  bool no_ledger = false;
  std::string utc_offset = "+08:00"; // zone of log times written without one
};

struct DiagnoseDeviceResult {
  core::Table findings; // rank, cause, confidence, detail, evidence, fix
  core::Table sources;  // source, status, detail
  std::size_t causes = 0;
};

// Adds `diagnose device` to the `diagnose` group.
void register_diagnose_device(CLI::App& diagnose, Context& ctx);

// ErrorKind::usage for bad options or an unreadable log / snapshot; a source that fails (no
// AccessKey, the cloud unreachable, the port) is reported in `sources`, not an error — unless
// no source at all could be used.
[[nodiscard]] Result<DiagnoseDeviceResult> run_diagnose_device(const DiagnoseDeviceOptions& opts,
                                                               Context& ctx);

} // namespace iot::commands
