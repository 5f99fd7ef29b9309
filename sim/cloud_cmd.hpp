// SPDX-License-Identifier: MIT
// `iotfleet-sim cloud`: the Alibaba Cloud IoT OpenAPI emulator over HTTP(S)
// (docs/cloud-emulator.md).
#pragma once

#include "core/error.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace iot::sim {

struct CloudOptions {
  std::string listen = "127.0.0.1:0";
  std::string state_dir; // empty: a new temporary directory
  std::string scenario;  // applied only when the state has not been seeded yet
  bool reseed = false;   // delete the state database first (certificates are kept)
  std::optional<std::uint64_t> seed;
  bool tls = false;
  double qps_scale = 1.0;
  bool no_limits = false;
  std::string latency_ms; // "MIN-MAX" or "N"; empty: none
  double fail_5xx = 0;
  double throttle_burst = 0;
  double truncate = 0;
  double reset = 0;
  int threads = 64;
  std::int64_t batch_delay_ms = 1000;
  double time_scale = 1.0; // OTA: simulated seconds per real second
  bool verbose = false;
  std::string exchange_log; // append one NDJSON line per OpenAPI exchange here (secrets masked)
};

// Adds the `cloud` subcommand to app; its callback runs run_cloud and throws
// CLI::RuntimeError on failure (after printing the error).
void register_cloud(CLI::App& app);

// "HOST:PORT", "[V6]:PORT" or ":PORT" (host 127.0.0.1); port 0-65535.
[[nodiscard]] Result<std::pair<std::string, int>> parse_listen(std::string_view text);
// "MIN-MAX" or "N" milliseconds.
[[nodiscard]] Result<std::pair<std::int64_t, std::int64_t>> parse_latency_ms(std::string_view text);

// The Actions the emulator serves, one per line, in table order (`--list-actions`).
[[nodiscard]] std::string action_list();

// Serves until SIGINT / SIGTERM / SIGHUP; returns success on a clean shutdown.
[[nodiscard]] Status run_cloud(const CloudOptions& options);

} // namespace iot::sim
