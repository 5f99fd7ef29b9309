// SPDX-License-Identifier: MIT
// The simulated module's non-volatile memory and its file in the simulator's state dir.
//
// One JSON file per module: <state-dir>/<module>-<index>.json for the module present in fixture
// <index> when the state dir was first used (generation 0), <module>-<index>-g<G>.json for the
// G-th module inserted in that fixture later (see sim/line_control.hpp). A file is replaced
// atomically (temp file, fsync, rename, fsync of the directory), so a kill at any moment leaves
// the old or the new content. Values a host or the control FIFO can write (SN, aliauth fields,
// SYSMFG values, the secret copy) may hold any byte, so they are stored hex-encoded.
#pragma once

#include "core/error.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace iot::sim {

enum class ModuleKind { luat, quectel, esp_at };

[[nodiscard]] std::string_view to_string(ModuleKind kind);
[[nodiscard]] Result<ModuleKind> parse_module_kind(std::string_view text);

// Quectel AT+QMTCFG="aliauth" for one MQTT client index.
struct AliAuth {
  std::string product_key;
  std::string device_name;
  std::string device_secret;
  friend bool operator==(const AliAuth&, const AliAuth&) = default;
};

// One ESP-AT manufacturing-NVS value. For types 1–6 `data` is the decimal text of the number;
// for 7 (string) and 8 (binary) the raw bytes.
struct MfgValue {
  int type = 7;
  std::string data;
  friend bool operator==(const MfgValue&, const MfgValue&) = default;
};

struct Nvm {
  std::string imei;              // cellular modules (15 digits)
  std::string mac;               // esp-at station MAC
  std::string iccid;             // cellular
  std::string imsi;              // cellular
  std::optional<std::string> sn; // Luat AT+WISN (unset = "Missing SN"); Quectel AT+EGMR 5
  // Luat: the device script's copy of the DeviceSecret it last connected with (seed FAQ §3.2;
  // AT+NVMDS?, docs/simulator.md); unset until the first simulated connection.
  std::optional<std::string> secret_copy;
  std::map<int, AliAuth> aliauth;                                // Quectel, by client index 0–5
  std::map<std::string, std::map<std::string, MfgValue>> sysmfg; // ESP-AT namespace → key → value
  friend bool operator==(const Nvm&, const Nvm&) = default;
};

// Path of the NVM file of generation `generation` of fixture `index` in state_dir:
// <module>-<index>.json for generation 0, <module>-<index>-g<generation>.json after.
[[nodiscard]] std::filesystem::path nvm_path(const std::filesystem::path& state_dir,
                                             ModuleKind kind,
                                             std::size_t index,
                                             std::size_t generation = 0);

// Serialises / parses the file content. Parse errors are ErrorKind::io with the reason.
[[nodiscard]] std::string nvm_to_json(const Nvm& nvm, ModuleKind kind);
[[nodiscard]] Result<Nvm> nvm_from_json(std::string_view text);

// Loads the file; std::nullopt if it does not exist.
[[nodiscard]] Result<std::optional<Nvm>> load_nvm(const std::filesystem::path& path);
// Writes the file atomically and durably.
[[nodiscard]] Status save_nvm(const std::filesystem::path& path, const Nvm& nvm, ModuleKind kind);

// Replaces path with content atomically (temp in the same dir + fsync + rename + dir fsync).
[[nodiscard]] Status write_file_atomic(const std::filesystem::path& path,
                                       std::string_view content,
                                       unsigned mode = 0644);

} // namespace iot::sim
