// SPDX-License-Identifier: MIT
// iotfleet secrets compare: the seed's check for "secret mismatch after days online" (FAQ §3).
// The healthy-time snapshot (`secrets export`) against modules (--port), records read from
// modules or a list of DeviceNames (--devices), the live cloud (--cloud) and the factory ledger
// (--ledger). One verdict per device (core/secret_verdict.hpp); secrets are compared, never
// printed: fingerprints only, the secrets themselves only with --show-secrets.
#pragma once

#include "commands/context.hpp"
#include "commands/module_session.hpp"
#include "core/secret_verdict.hpp"

#include <CLI/CLI.hpp>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace iot::cloud {
class IotApi;
}

namespace iot::commands {

struct SecretsCompareOptions {
  std::string snapshot;                   // what `secrets export` wrote; "" = none (--probe)
  std::vector<std::string> ports;         // modules to read
  ModuleConnectOptions connect;           // --module, --module-profile, --baud, --trace
  std::optional<std::string> layout;      // secret | triplet (default: the driver's)
  std::optional<std::string> devices;     // a devices file, "-" = stdin
  bool cloud = false;                     // the live cloud (BatchQueryDeviceDetail)
  bool ledger = false;                    // --with-ledger: the factory ledger's burned secrets
  std::optional<std::string> product_key; // default: the snapshot's, else the config's
  bool all = false;                       // list matching devices too
  std::size_t concurrency = 8;            // cloud calls in flight
  // --probe: each module secret signs one CONNECT to the MQTT endpoint (implies --cloud: an
  // ONLINE device is not probed); at mqtt_endpoint (HOST[:PORT]) instead of the device's.
  bool probe = false;
  std::optional<std::string> mqtt_endpoint;
};

inline constexpr std::size_t k_verdict_count = 9;

struct SecretsCompareReport {
  core::Table table;       // the devices that differ (all with opts.all), and the unactivated
  std::size_t checked = 0; // devices compared
  std::size_t snapshot_devices = 0;
  std::size_t differences = 0;   // is_difference verdicts
  std::size_t probes_failed = 0; // --probe: probes that learnt nothing (network, TLS, timeout)
  std::array<std::size_t, k_verdict_count> counts = {}; // by core::SecretVerdict
  std::string summary; // the one-line count summary printed on stderr
};

// Registers `compare` under the `secrets` command group.
void register_secrets_compare(CLI::App& secrets_group, Context& ctx);

// The report, or: ErrorKind::usage (no source to compare with, a bad snapshot or devices file:
// file, line and fix), serial/module (a port), cloud/network/auth (--cloud), interrupted.
// cloud_api: for --cloud, used instead of opening the configured cloud (tests).
[[nodiscard]] Result<SecretsCompareReport> run_secrets_compare(const SecretsCompareOptions& opts,
                                                               Context& ctx,
                                                               cloud::IotApi* cloud_api = nullptr);

} // namespace iot::commands
