// SPDX-License-Identifier: MIT
// `iotfleet-sim fleetlog`: a simulated fleet's device log in the console's export shape (online /
// offline records with the console's reason strings), with planted problems and a truth file
// naming the devices that have them (docs/cloud-emulator.md, "Device logs"). The scenario
// vocabulary is the issue's: shared identity between two modules (duplicate), long keepalive
// behind a carrier NAT (nat-keepalive), flaky signal (flaky), firmware that disconnects
// (disconnect), plus devices rebooting while online (reboot: not a problem, a decoy for the
// duplicate rule) and devices never online (in the device list only).
#pragma once

#include "core/error.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace iot::sim {

struct FleetLogPlant {
  std::int64_t duplicate = 0;     // DeviceNames shared by two modules (identity conflict)
  std::int64_t nat_keepalive = 0; // keepalive 300 s behind one carrier's NAT (117.136.0.0/16)
  std::int64_t flaky = 0;         // weak signal: connection resets every ~30 min
  std::int64_t disconnect = 0;    // firmware sends DISCONNECT every ~20 min
  std::int64_t reboot = 0;        // reboot while online 1-2 times (decoy: not a duplicate)
  std::int64_t never_online = 0;  // in the device list, no record
};

struct FleetLogOptions {
  std::int64_t devices = 10000; // devices with records (planted ones included)
  int days = 7;
  std::uint64_t seed = 1;
  std::string start = "2024-01-01"; // local date (UTC+08:00) of the first day
  FleetLogPlant plant;
  std::string output;                // -O FILE
  std::string format = "csv";        // csv | jsonl
  std::string header = "en";         // csv header: en | zh
  std::string time_format = "local"; // local "yyyy-MM-dd HH:mm:ss.SSS" | iso | epoch-ms
  std::string order = "asc";         // asc | desc (newest first: held in memory)
  std::string truth;                 // default: OUTPUT.truth.csv
  std::string devices_out;           // the device list (device_name per line, header); "" none
  std::string product_key = "a1B2c3D4e5F";
  double session_hours = 48; // mean session of a healthy device
};

// Parses "duplicate=K,nat-keepalive=K,…" (each key at most once, K ≥ 0).
[[nodiscard]] Result<FleetLogPlant> parse_plant(std::string_view text);

// Writes the log, the truth file and the device list. Deterministic for a given seed.
[[nodiscard]] Status run_fleetlog(const FleetLogOptions& options);

// Adds the `fleetlog` subcommand.
void register_fleetlog(CLI::App& app);

} // namespace iot::sim
