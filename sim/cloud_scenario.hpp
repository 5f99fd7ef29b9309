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
  std::vector<std::pair<std::string, std::string>> tags; // device tags (SaveDeviceProp)
  std::vector<std::string> groups;                       // names of static groups it is in
};

// A device group. Static groups hold the devices that name them; a dynamic group
// (LINK_PLATFORM_DYNAMIC) holds, at every moment, the devices whose tag `rule_key` is `rule_value`.
struct ScenarioGroup {
  std::string name;
  std::string description;
  std::string rule_key; // dynamic groups only
  std::string rule_value;
  [[nodiscard]] bool dynamic() const { return !rule_key.empty(); }
};

inline constexpr std::size_t k_max_groups_per_device = 10;
inline constexpr std::size_t k_max_tags_per_device = 100;

// Relative weights of the four statuses in a generated fleet (need not sum to 1).
struct StatusMix {
  double online = 0;
  double offline = 0;
  double unactive = 1;
  double disable = 0;
};

enum class NameStyle { sequence, imei };

// Nicknames of a generated fleet: relative weights (exact counts, shuffled), e.g. hardware
// revisions {"hwrevA": 70, "hwrevB": 30}. Empty: no nickname.
struct NicknameWeight {
  std::string nickname;
  double weight = 0;
};

struct DeviceGenerator {
  std::int64_t count = 0;
  NameStyle names = NameStyle::sequence;
  std::string prefix = "dev"; // sequence: prefix + zero-padded index from 1
  int digits = 6;             // sequence: minimum digits of the index
  StatusMix status;
  std::string firmware;
  std::vector<NicknameWeight> nicknames;
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

// How simulated devices behave in OTA tasks (docs/cloud-emulator.md, "OTA"). Durations are in
// simulated seconds (--time-scale divides them).
enum class OtaFailStep { any, upgrade, download, verify, burn }; // step -1, -2, -3, -4

struct OtaFailureGroup {
  // Match (all given keys must hold): DeviceName prefix, Nickname prefix, the device's version
  // of the job's module before the task, ProductKey.
  std::string name_prefix;
  std::string nickname_prefix;
  std::string firmware;
  std::string product_key;
  bool has_firmware = false; // "firmware": "" matches devices without a version
  double rate = 0;
  OtaFailStep step = OtaFailStep::any;
  // TaskDesc of a failure; placeholders {step} {code} {device} {nickname} {firmware}.
  std::string desc;
};

struct OtaScenario {
  double pickup_s = 5;    // NOTIFIED -> IN_PROGRESS (the device reacts)
  double download_s = 60; // progress 0 -> 100, reported in quarters
  double verify_s = 5;
  double burn_s = 30;
  double jitter = 0.2;                  // each duration x (1 + jitter * U(-1, 1))
  double failure_rate = 0;              // devices no failure group matches
  double offline_rate = 0;              // P(an ONLINE device never reacts: its task stays NOTIFIED)
  std::vector<OtaFailureGroup> failure; // first match wins
  std::string json_text; // the scenario's "ota" object (kept in the state), "" = defaults
};

// Parses an "ota" object (text); "" gives the defaults.
[[nodiscard]] Result<OtaScenario> parse_ota_scenario(std::string_view json_text);

struct Scenario {
  std::string region = "cn-shanghai";
  std::string iot_instance_id; // empty: public instance, IotInstanceId accepted and ignored
  std::int64_t epoch_ms = 1704067200000; // 2024-01-01T00:00:00Z: creation time of the first device
  std::vector<ScenarioAccessKey> access_keys;
  std::vector<ScenarioProduct> products;
  std::vector<ScenarioGroup> groups;
  OtaScenario ota;
};

[[nodiscard]] Result<Scenario> parse_scenario(std::string_view json_text);
[[nodiscard]] Result<Scenario> load_scenario(const std::filesystem::path& path);

} // namespace iot::sim::cloud
