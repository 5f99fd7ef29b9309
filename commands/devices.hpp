// SPDX-License-Identifier: MIT
// iotfleet devices list | show | register | batch-register | delete | reset: device management
// over the IoT OpenAPI (pre-registration for one-device-one-secret, batches for the factory).
#pragma once

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
  std::string device_name;
};

struct DevicesNamesOptions {
  std::optional<std::string> product_key;
  std::vector<std::string> device_names;
  bool yes = false; // delete: confirmed
};

struct DevicesRegisterOptions {
  std::optional<std::string> product_key;
  std::vector<std::string> device_names;
  std::optional<std::string> out_file; // triplets, 0600, the console CSV that pool import reads
};

struct DevicesBatchRegisterOptions {
  std::optional<std::string> product_key;
  std::string names_file; // one DeviceName per line
  std::string out_file;   // triplets, 0600, the console CSV that pool import reads
  std::chrono::seconds timeout{600};
  std::chrono::milliseconds poll{1000};
};

void register_devices(CLI::App& app, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_list(const DevicesListOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_show(const DevicesShowOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_register(const DevicesRegisterOptions& opts,
                                                       Context& ctx);
[[nodiscard]] Result<core::Table>
run_devices_batch_register(const DevicesBatchRegisterOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_delete(const DevicesNamesOptions& opts, Context& ctx);
[[nodiscard]] Result<core::Table> run_devices_reset(const DevicesNamesOptions& opts, Context& ctx);

// Reads a DeviceName list: one per line, blanks and # comments skipped, each validated, no name
// twice. ErrorKind::usage naming the file, the line and the fix.
[[nodiscard]] Result<std::vector<std::string>> read_device_names(const std::string& path);

} // namespace iot::commands
