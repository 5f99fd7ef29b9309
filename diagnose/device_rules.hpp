// SPDX-License-Identifier: MIT
// Why one device is offline (`iotfleet diagnose device DN`): every fact gathered about it — the
// cloud's record, the module on the bench, the factory ledger, a healthy-time secrets snapshot,
// its lines of the exported device log — turned into ranked causes, each with the evidence and
// the fix (seed FAQ §3–§7, docs/aliyun-iot-protocol.md §5–6). Pure: the command gathers the
// facts; this decides. Secrets are compared, never written into a finding.
#pragma once

#include "core/secret_verdict.hpp"
#include "diagnose/fleet.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace iot::diagnose {

// Device finding kinds (the log's come from fleet.hpp).
inline constexpr std::string_view k_product_not_found = "product-not-found";
inline constexpr std::string_view k_product_key_case = "product-key-case";
inline constexpr std::string_view k_device_not_found = "device-not-found";
inline constexpr std::string_view k_device_disabled = "device-disabled";
inline constexpr std::string_view k_never_activated = "never-activated";
inline constexpr std::string_view k_imei_not_written = "imei-not-written";
inline constexpr std::string_view k_label_imei_differs = "label-imei-differs";
inline constexpr std::string_view k_module_other_device = "module-holds-another-device";
inline constexpr std::string_view k_module_no_credentials = "module-without-credentials";
inline constexpr std::string_view k_secret_refused = "secret-refused-by-endpoint";
inline constexpr std::string_view k_secret_module_side = "secret-changed-on-module";
inline constexpr std::string_view k_secret_cloud_side = "secret-changed-in-cloud";
inline constexpr std::string_view k_secret_factory = "secret-burned-differs";
inline constexpr std::string_view k_ledger_other_module = "burned-into-another-module";
inline constexpr std::string_view k_sim_not_ready = "sim-not-ready";
inline constexpr std::string_view k_not_registered = "not-registered-on-network";
inline constexpr std::string_view k_not_attached = "not-attached";
inline constexpr std::string_view k_weak_signal = "weak-signal";

// Signal below this is weak for a cellular module (CSQ ≤ 6).
inline constexpr int k_weak_signal_dbm = -100;

struct CloudFacts {
  bool product_found = false;
  std::string product_key_other_case; // a product whose key differs only in letter case
  bool device_found = false;
  core::DeviceStatus status = core::DeviceStatus::unknown;
  std::int64_t active_ms = 0; // first connect (0: never)
  std::int64_t online_ms = 0; // last online
  std::string ip;
  std::string secret; // the cloud's DeviceSecret ("" if not read). SECRET.
};

struct ModuleFacts {
  std::string port;
  std::string imei;
  std::string imei_problem; // "" valid; "placeholder", "bad check digit", "invalid"
  std::string label_imei;   // "" when not given
  bool has_credentials = false;
  std::string product_key; // what the module holds ("" for the Luat secret layout)
  std::string device_name;
  std::string secret; // SECRET
  bool cellular = true;
  std::string sim; // "READY", "NOT INSERTED", … "" unknown
  std::optional<int> rssi_dbm;
  std::optional<int> reg_stat; // 3GPP <stat>: 1 home, 5 roaming
  std::string reg_status;
  std::optional<bool> attached;
};

struct LedgerFacts {
  bool found = false;
  std::string state; // available, claimed, bound, burned
  std::string imei;  // the module it is bound to
  std::string secret;
  std::string station;
  std::int64_t burned_at_ms = 0;
  std::string module_imei_holds; // the DeviceName the module's IMEI is bound to ("" none)
};

struct SnapshotFacts {
  bool found = false;
  std::string secret;
  std::string product_key;
  core::DeviceStatus status = core::DeviceStatus::unknown;
};

// `diagnose device --probe`: what the MQTT endpoint answered to a connection signed with the
// module's (else the ledger's) DeviceSecret.
struct ProbeFacts {
  bool accepted = false;
  bool refused = false;    // CONNACK 4 / 5: the cloud holds another secret
  std::string secret_from; // "module" or "ledger"
  std::string detail;      // "CONNACK 5: not authorized"
};

struct DeviceFacts {
  std::string product_key;
  std::string device_name;
  std::optional<CloudFacts> cloud;
  std::optional<ModuleFacts> module;
  std::optional<LedgerFacts> ledger;
  std::optional<SnapshotFacts> snapshot;
  std::optional<ProbeFacts> probe;
  std::optional<FleetReport> log; // the device's own records, analysed; nullopt: no log given
};

// Every cause the facts support, most likely first: by confidence, then root causes (identity,
// credentials, SIM) before their symptoms (keepalive timeouts, never activated), then by the
// number of records behind them.
[[nodiscard]] std::vector<Finding> device_findings(const DeviceFacts& facts);

// The order within one confidence (lower first); unknown kinds last.
[[nodiscard]] int cause_rank(std::string_view kind);

} // namespace iot::diagnose
