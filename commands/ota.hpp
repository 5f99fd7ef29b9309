// SPDX-License-Identifier: MIT
// iotfleet ota upload | rollout | status | cancel: firmware to Alibaba Cloud IoT's OTA, and
// rollouts in waves with an abort rule, journaled to a file so a rollout survives Ctrl-C,
// a crash or a reboot (`--resume`). Design and assumptions: docs/ota.md.
#pragma once

#include "commands/common_options.hpp"
#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace iot::commands {

struct OtaUploadOptions {
  std::vector<std::string> files; // FILE...: one firmware; several = a multi-file firmware
  std::optional<std::string> product_key;
  std::string version;
  std::string module;      // --firmware-module: the firmware's ModuleName; empty = default
  std::string src_version; // with diff
  bool diff = false;
  std::string name;                // empty = "<file stem>-<version>", trimmed to the rules
  std::string sign_method = "MD5"; // MD5 | SHA256
  DeviceNamesInput verify_devices; // --verify-device DN (repeatable, ≤ 10)
  std::chrono::milliseconds verify_timeout{std::chrono::minutes(30)};
  std::string description;
};

inline constexpr std::string_view k_default_waves = "1%,10%,50%,100%";

struct OtaRolloutOptions {
  std::string firmware_id;
  std::optional<std::string> product_key; // default: the firmware's
  DeviceNamesInput devices;               // DEVICE_NAME..., --device-name, --devices FILE|-
  bool all = false;
  std::string group;             // --group NAME|ID
  std::vector<std::string> tags; // --tag KEY=VALUE, all must hold
  std::string query;             // --query CONDITION (QueryDeviceBySQL's WHERE)
  std::string src_version;
  bool dynamic = false;       // one dynamic job instead of waves of static ones
  bool multi_module = false;  // MultiModuleMode
  std::string waves;          // empty = k_default_waves
  std::string max_per_minute; // "N" or "N1,N2,…" (one per wave)
  std::optional<std::chrono::milliseconds> retry_interval; // whole minutes: 0, 10, 30, 60, 1440
  std::optional<int> retry_count;
  std::optional<std::chrono::milliseconds> task_timeout; // whole minutes, 1 to 1440
  std::string abort_failure_rate = "5%";
  std::int64_t abort_min_finished = 20;
  std::chrono::milliseconds wave_soak{0};
  std::chrono::milliseconds notified_grace{std::chrono::minutes(10)};
  std::chrono::milliseconds poll_interval{std::chrono::seconds(5)};
  std::string journal; // the rollout's journal file (must not exist)
  std::string resume;  // a journal: continue it
  bool dry_run = false;
};

struct OtaStatusOptions {
  std::string target; // JobId or journal file
  bool failures = false;
  bool watch = false;
  std::chrono::milliseconds poll_interval{std::chrono::seconds(5)};
};

struct OtaCancelOptions {
  std::string target; // JobId or journal file
  bool in_progress = false;
};

void register_ota(CLI::App& app, Context& ctx);

[[nodiscard]] Result<core::Table> run_ota_upload(const OtaUploadOptions& opts, Context& ctx);
// Emits the wave table itself before failing when it aborts (ErrorKind::failure), was canceled
// (failure) or interrupted (ErrorKind::interrupted, resumable), or finished with devices not at
// the target version: failed, or never reacting to the push (ErrorKind::partial).
[[nodiscard]] Result<core::Table> run_ota_rollout(const OtaRolloutOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_ota_status(const OtaStatusOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_ota_cancel(const OtaCancelOptions& opts, Context& ctx);

} // namespace iot::commands
