// SPDX-License-Identifier: MIT
// The cloud emulator's scenario file: AccessKey pairs, products, explicit devices and generated
// fleets (format in docs/cloud-emulator.md). Parsing is strict: unknown keys, wrong types and
// invalid values are usage errors naming the JSON path (never a secret's value).
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace iot::sim::cloud {

struct ScenarioAccessKey {
  std::string id;
  std::string secret;
  std::string account; // QPS limits are per account; default: the AccessKeyId itself
};

// Device statuses as the API spells them.
inline constexpr std::string_view k_online = "ONLINE";
inline constexpr std::string_view k_offline = "OFFLINE";
inline constexpr std::string_view k_unactive = "UNACTIVE";
inline constexpr std::string_view k_disable = "DISABLE";

struct ScenarioDevice {
  std::string name;
  std::string secret; // empty: generated
  std::string status = std::string(k_unactive);
  std::string nickname;
  std::string firmware;
};

// Relative weights of the four statuses in a generated fleet (need not sum to 1).
struct StatusMix {
  double online = 0;
  double offline = 0;
  double unactive = 1;
  double disable = 0;
};

enum class NameStyle { sequence, imei };

struct DeviceGenerator {
  std::int64_t count = 0;
  NameStyle names = NameStyle::sequence;
  std::string prefix = "dev"; // sequence: prefix + zero-padded index from 1
  int digits = 6;             // sequence: minimum digits of the index
  StatusMix status;
  std::string firmware;
};

struct ScenarioProduct {
  std::string product_key;
  std::string name;
  std::string product_secret; // empty: generated
  int node_type = 0;          // 0 device, 1 gateway
  int data_format = 1;        // 0 passthrough, 1 Alink JSON
  std::string auth_type = "secret";
  int net_type = 6; // 3 Wi-Fi, 6 cellular, 7 Ethernet, 8 other
  std::string commodity = "iothub_senior";
  std::string description;
  // One-type-one-secret dynamic registration (§4) switched on for the product (a console switch,
  // no API field: docs/cloud-emulator.md).
  bool dynamic_register = true;
  std::vector<ScenarioDevice> devices; // created first (oldest)
  DeviceGenerator generate;
};

struct Scenario {
  std::string region = "cn-shanghai";
  std::string iot_instance_id; // empty: public instance, IotInstanceId accepted and ignored
  std::int64_t epoch_ms = 1704067200000; // 2024-01-01T00:00:00Z: creation time of the first device
  std::vector<ScenarioAccessKey> access_keys;
  std::vector<ScenarioProduct> products;
};

[[nodiscard]] Result<Scenario> parse_scenario(std::string_view json_text);
[[nodiscard]] Result<Scenario> load_scenario(const std::filesystem::path& path);

} // namespace iot::sim::cloud
