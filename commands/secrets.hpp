// SPDX-License-Identifier: MIT
// iotfleet secrets export | compare: every device secret of a product, saved while the fleet is
// healthy, and compared later with modules, the ledger and the live cloud (seed FAQ §3).
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace iot::commands {

struct SecretsExportOptions {
  std::optional<std::string> product_key;
  std::optional<std::string> out_file; // 0600, atomic; without it the rows go to stdout (masked)
  std::string format = "csv";          // csv | json | ndjson
  // auto: QueryDevice's NextToken chain from the newest device and QueryDeviceByStatus pages from
  // the oldest, in parallel, until they meet; pages: the NextToken chain alone; status: the
  // status partitions alone; sequential: one QueryDevice page after the other (the baseline).
  std::string strategy = "auto";
  std::size_t concurrency = 8; // calls in flight for the status partitions
};

void register_secrets(CLI::App& app, Context& ctx);
// With out_file: writes it and returns a one-row summary; without: the devices.
[[nodiscard]] Result<core::Table> run_secrets_export(const SecretsExportOptions& opts,
                                                     Context& ctx);

} // namespace iot::commands
