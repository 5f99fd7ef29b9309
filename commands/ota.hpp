// SPDX-License-Identifier: MIT
// iotfleet ota upload | rollout | status | cancel: firmware to Alibaba Cloud IoT's OTA, and
// rollouts in waves with an abort rule, journaled to a state file so a rollout survives Ctrl-C,
// a crash or a reboot (`--resume`). Design and assumptions: docs/ota.md.
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace iot::commands {

struct OtaUploadOptions {
  std::string file;
  std::optional<std::string> product_key;
  std::string version;
  std::string module;      // empty = default
  std::string src_version; // with diff
  bool diff = false;
  std::string name;                // empty = "<file stem>-<version>", trimmed to the rules
  std::string sign_method = "MD5"; // MD5 | SHA256
  std::vector<std::string> verify_devices;
  int verify_timeout_minutes = 30;
  std::string description;
};

struct OtaRolloutOptions {
  std::string firmware_id;
  std::optional<std::string> product_key; // default: the firmware's
  std::string devices_file;
  bool all = false;
  std::string src_version;
  std::string waves = "1%,10%,50%,100%";
  std::optional<int> max_per_minute;
  std::optional<int> retry_interval;
  std::optional<int> retry_count;
  std::optional<int> timeout_minutes;
  std::string abort_failure_rate = "5%";
  std::int64_t abort_min_finished = 20;
  std::string wave_soak = "0";
  std::string notified_grace = "10m";
  std::string poll_interval = "5s";
  std::string state_file;
  std::string resume; // a state file: continue it
  bool dry_run = false;
};

struct OtaStatusOptions {
  std::string target; // JobId or state file
  bool failures = false;
  bool watch = false;
  std::string poll_interval = "5s";
};

struct OtaCancelOptions {
  std::string target; // JobId or state file
  bool in_progress = false;
};

void register_ota(CLI::App& app, Context& ctx);

[[nodiscard]] Result<core::Table> run_ota_upload(const OtaUploadOptions& opts, Context& ctx);
// Emits the wave table itself before failing when it aborts (ErrorKind::failure), was canceled
// or interrupted (ErrorKind::interrupted, resumable) or finished with failed devices
// (ErrorKind::partial).
[[nodiscard]] Result<core::Table> run_ota_rollout(const OtaRolloutOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_ota_status(const OtaStatusOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_ota_cancel(const OtaCancelOptions& opts, Context& ctx);

} // namespace iot::commands
