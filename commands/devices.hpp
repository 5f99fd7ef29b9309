// SPDX-License-Identifier: MIT
// iotfleet devices list | show | register | batch-register | delete | reset: device management
// over the IoT OpenAPI (pre-registration for one-device-one-secret, batches for the factory).
#pragma once

#include "cloud/iot_api.hpp"
#include "commands/common_options.hpp"
#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace iot::commands {

struct DevicesListOptions {
  std::optional<std::string> product_key;
  std::optional<std::string> status; // ONLINE | OFFLINE | UNACTIVE | DISABLE
  std::size_t limit = 0;             // 0 = all
};

struct DevicesShowOptions {
  std::optional<std::string> product_key;
  DeviceNamesInput device; // exactly one
};

struct DevicesNamesOptions {
  std::optional<std::string> product_key;
  DeviceNamesInput devices;
  bool yes = false; // delete: confirmed
};

struct DevicesRegisterOptions {
  std::optional<std::string> product_key;
  DeviceNamesInput devices;
  std::optional<std::string> out_file; // triplets, 0600: what pool import reads
  std::string format = "csv";          // of out_file: csv (the console's) | json | ndjson
};

struct DevicesBatchRegisterOptions {
  std::optional<std::string> product_key;
  DeviceNamesInput devices;
  std::optional<std::string> out_file; // triplets, 0600: what pool import reads (required)
  std::string format = "csv";
  std::chrono::milliseconds timeout{std::chrono::minutes(10)}; // per check / create phase
  std::chrono::milliseconds poll{1000};
};

void register_devices(CLI::App& app, Context& ctx);
// "k=v, k2=v2" and "name, name2 (dynamic)": how devices show and devices recreate print a
// device's tags and groups.
[[nodiscard]] std::string tags_text(const std::vector<cloud::DeviceTag>& tags);
[[nodiscard]] std::string groups_text(const std::vector<cloud::DeviceGroup>& groups);
// `devices recreate` (commands/devices_recreate.cpp), under the `devices` group.
void register_devices_recreate(CLI::App* devices, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_list(const DevicesListOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_show(const DevicesShowOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_register(const DevicesRegisterOptions& opts,
                                                       Context& ctx);
[[nodiscard]] Result<core::Table>
run_devices_batch_register(const DevicesBatchRegisterOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_delete(const DevicesNamesOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_reset(const DevicesNamesOptions& opts, Context& ctx);

} // namespace iot::commands
