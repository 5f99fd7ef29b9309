// SPDX-License-Identifier: MIT
// iotfleet diagnose: why devices go offline. `diagnose fleet` reads the console's exported
// device log (streamed, any size) and reports identity conflicts, keepalive problems,
// keepalive-timeout clusters by IP range, devices never online and the reasons per day and hour,
// each finding with its evidence and the fix (docs/diagnose.md). The single-device diagnosis
// (cloud, module and ledger evidence) is a sibling subcommand of the same `diagnose` group.
#pragma once

#include "commands/context.hpp"
#include "diagnose/fleet.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace iot::commands {

struct DiagnoseFleetOptions {
  std::string log;                        // the exported device log, "-" = stdin
  std::optional<std::string> product_key; // only this product's records
  std::optional<std::string> devices;     // device list: names, secrets snapshot, devices CSV
  std::optional<std::string> since;       // time or date, inclusive
  std::optional<std::string> until;       // exclusive
  std::optional<std::string> html;        // write the HTML report here
  std::string show = "findings";          // findings|days|hours|devices|reasons|summary
  std::string utc_offset = "+08:00";      // zone of times without one, and of days/hours
  std::size_t top = 20;                   // --show devices: how many
  std::uint32_t min_events = 5;           // "frequent": at least this many records …
  double min_per_day = 2.0;               // … and this many a day over the log's span
  bool strict = false;                    // a bad line is an error (exit 2), not skipped
};

struct DiagnoseFleetResult {
  core::Table table;        // what --show selected
  std::size_t findings = 0; // problems found (exit 6 when > 0)
  std::size_t skipped = 0;  // unreadable lines skipped
  std::string summary;      // one paragraph for stderr
};

// Adds the `diagnose` command group with its `fleet` subcommand.
void register_diagnose(CLI::App& app, Context& ctx);

// The report, or ErrorKind::usage (bad options, a missing or unreadable log, a log that is none
// of the shapes, a bad line with --strict: the file, the line and the fix), io (--html could not
// be written), interrupted.
[[nodiscard]] Result<DiagnoseFleetResult> run_diagnose_fleet(const DiagnoseFleetOptions& opts,
                                                             Context& ctx);

// "+08:00", "+0800", "+08", "-05:00", "Z" / "UTC": minutes east of UTC; ErrorKind::usage
// otherwise (--utc-offset).
[[nodiscard]] Result<int> parse_utc_offset(std::string_view text);

// One device's records of a log (`path`, "-" = stdin), streamed and analysed as a fleet of one
// (records of another ProductKey left out when product_key is given). Bad lines are named on
// stderr (the first few) and skipped. ErrorKind::usage for a missing, empty or unknown-shape
// log, interrupted.
[[nodiscard]] Result<diagnose::FleetReport>
analyse_device_log(const std::string& path,
                   const std::optional<std::string>& product_key,
                   std::string_view device_name,
                   int utc_offset_min,
                   Context& ctx);

} // namespace iot::commands
