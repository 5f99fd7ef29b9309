// SPDX-License-Identifier: MIT
// iotfleet pool import | status | release | export | log | migrate: the triplet pool in the factory
// ledger.
#pragma once

#include "commands/common_options.hpp"
#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace iot::commands {

struct PoolImportOptions {
  std::string file; // "-" = stdin
  std::string scheme = "device";
  bool skip_invalid = false;
  std::optional<std::string> product_key; // every row must be of this product
};

struct PoolStatusOptions {
  bool in_doubt = false; // list claimed / bound triplets instead of counts
  std::optional<std::string> product_key;
  std::string by = "station"; // station: a row per product and station; product: the whole line
};

struct PoolReleaseOptions {
  DeviceNamesInput device; // exactly one
  std::optional<std::string> product_key;
  std::string reason;
  bool force = false; // burned triplets too
};

struct PoolExportOptions {
  std::optional<std::string> out_file; // 0600, atomic; full secrets (it is a secrets file)
  std::string format = "csv";          // for out_file: csv | json | ndjson
  std::optional<std::string> product_key;
  std::string state = "burned"; // a state or "all"
};

struct PoolLogOptions {
  std::size_t limit = 50;
  DeviceNamesInput device; // at most one: only its events
};

struct PoolMigrateOptions {
  std::string from; // a station's ledger to copy in ("": only upgrade the schema)
  std::string to;   // the ledger upgraded or copied into ("": the configured one)
};

void register_pool(CLI::App& app, Context& ctx);
[[nodiscard]] Result<core::Table> run_pool_import(const PoolImportOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_pool_status(const PoolStatusOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_pool_release(const PoolReleaseOptions& opts, Context& ctx);
// With out_file: writes it and returns a one-row summary; else the records (secrets masked by
// the renderer unless --show-secrets).
[[nodiscard]] Result<core::Table> run_pool_export(const PoolExportOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_pool_log(const PoolLogOptions& opts, Context& ctx);
// Without --from: the configured ledger's schema upgraded (a one-row table, before and after).
// With it: the other ledger's contents merged in (store::Ledger::merge); conflicts are warned
// one by one and fail with ErrorKind::usage, nothing copied.
[[nodiscard]] Result<core::Table> run_pool_migrate(const PoolMigrateOptions& opts, Context& ctx);

} // namespace iot::commands
