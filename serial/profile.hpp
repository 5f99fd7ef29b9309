// SPDX-License-Identifier: MIT
// Module profiles: a module's AT dialect as data (docs/module-profiles.md describes the JSON).
// The built-ins luat, quectel and esp-at are such profiles (serial/builtin_profiles.cpp); users add
// modules with --module-profile FILE without recompiling.
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace iot::serial {

// One AT query and how to read its answer.
struct ProfileQuery {
  std::string command;               // "AT+CGSN"
  std::optional<std::string> prefix; // info-line prefix; nullopt = derived from the command
  bool strict = false;               // non-matching lines are URCs
  std::string pattern;               // ECMAScript regex, whole line; group 1 = value (or whole)
  std::string absent;                // regex: a line matching it means "not set" (may be "")
  std::chrono::milliseconds timeout{2000};
  bool secret = false;  // the answer may be a secret: masked in traces
  bool optional = true; // ERROR / +CME ERROR means "no value" instead of failing
  std::regex pattern_re;
  std::optional<std::regex> absent_re;
};

enum class WriteMethod { plain, prompt };

// One storage place on the module (Luat SN; Quectel aliauth; one ESP NVS key).
struct ProfileSlot {
  std::string name;          // shown in messages: "SN", "aliauth", "DeviceSecret"
  std::string value;         // template of the stored value ("{ds}", "{pk}|{dn}|{ds}"); "" if n/a
  std::size_t max_bytes = 0; // limit for the rendered value; 0 = none
  std::string too_long_hint; // the fix appended when max_bytes is exceeded
  bool optional = false;     // skipped when every field its templates use is empty
  std::string write;         // command template; placeholders {pk} {dn} {ds} {ps} {value} {len}
  WriteMethod method = WriteMethod::plain; // prompt: the rendered value is sent after `>`
  std::chrono::milliseconds write_timeout{5000};
  ProfileQuery read;                 // read-back query (pattern captures the fields)
  std::map<std::string, int> fields; // credential field ("pk","dn","ds","ps") -> capture group
};

// A second stored copy of the DeviceSecret that the module's own software keeps (seed FAQ §3.2:
// the device script saves the secret to NVM after each successful connection to Aliyun). iotfleet
// only reads it, to tell whether the SN storage changed since that connection; nothing writes it.
struct ProfileSecretCopy {
  std::string name;  // shown in messages: "NVM copy"
  ProfileQuery read; // its pattern captures the secret; "not stored" = absent, ERROR (optional)
  int ds_group = 1;  // capture group of read.pattern holding the DeviceSecret ("fields": {"ds": N})
};

struct ProfileLayout {
  std::string name;        // "secret", "triplet"
  bool dn_is_imei = false; // DeviceName is not stored: it is the module's IMEI
  std::vector<ProfileSlot> slots;
  std::optional<ProfileSecretCopy> secret_copy; // nullopt: the layout declares no copy
};

struct ModuleProfile {
  std::string name;
  std::string description;
  std::string kind = "cellular"; // "cellular" or "wifi"
  std::string line_ending = "\r";
  std::vector<std::string> detect; // regexes searched in the ATI / AT+CGMR / AT+GMR output
  std::vector<std::regex> detect_re;
  std::size_t max_command_bytes = 0; // 0 = no limit (ESP-AT: 256)
  // identity field ("imei", "mac", "iccid", "firmware", "manufacturer", "model", "sn") ->
  // queries tried in order until one gives a value.
  std::map<std::string, std::vector<ProfileQuery>> identity;
  std::vector<ProfileLayout> layouts;
  std::string default_layout;
  std::string health = "3gpp"; // "3gpp", "esp-wifi" or "none"
  std::vector<std::string> registration_commands = {"AT+CEREG?", "AT+CREG?"};

  [[nodiscard]] const ProfileLayout* layout(std::string_view layout_name) const;
};

// Parses and checks a profile (JSON text). `source` names it in messages ("profile luat",
// "/path/x.json"). Errors are ErrorKind::config naming the JSON path of the bad member.
[[nodiscard]] Result<ModuleProfile> parse_profile(std::string_view json, std::string_view source);

// Reads and parses a profile file. ErrorKind::config for unreadable or invalid files.
[[nodiscard]] Result<ModuleProfile> load_profile(const std::filesystem::path& path);

// The built-in profiles ("luat", "quectel", "esp-at"), in auto-detection order.
[[nodiscard]] const std::vector<std::string>& builtin_profile_names();
// The JSON text of a built-in (for docs and `--print-profile`); empty if unknown.
[[nodiscard]] std::string_view builtin_profile_json(std::string_view name);
// Parsed built-in; ErrorKind::usage naming the known ones if `name` is not one.
[[nodiscard]] Result<ModuleProfile> builtin_profile(std::string_view name);

// Replaces {name} placeholders with values; an unknown placeholder is left as is (parse_profile
// refuses templates with unknown placeholders, so this does not happen for loaded profiles).
[[nodiscard]] std::string render_template(std::string_view tmpl,
                                          const std::map<std::string, std::string>& values);

} // namespace iot::serial
