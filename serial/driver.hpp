// SPDX-License-Identifier: MIT
// Module drivers: identity, credentials and link health over an AtChannel, driven by a
// ModuleProfile (serial/profile.hpp). The channel should be synced (AtChannel::sync) first.
//
// Secrets: write_credentials registers the DeviceSecret/ProductSecret with the channel (masked in
// traces and errors); read-back mismatches show both values masked. Identity::sn and the results
// of read_credentials and read_secret_copy may hold secrets in clear: callers mask them
// (core::mask_secret) unless the user asked for --show-secrets.
#pragma once

#include "core/error.hpp"
#include "serial/at_channel.hpp"
#include "serial/profile.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::serial {

struct Identity {
  std::string module; // driver/profile name: "luat", "quectel", "esp-at", or a user profile
  std::string imei;   // cellular; "" if the profile has none / the module gave none
  std::string mac;    // Wi-Fi modules (ESP-AT station MAC)
  std::string iccid;  // may end in 'F'; "" without SIM or support
  std::string firmware;
  std::string manufacturer;
  std::string model;
  std::optional<std::string> sn; // nullopt: unset or unsupported. MAY BE A SECRET (Luat: the DS)
};

struct Credentials {
  std::string product_key;
  std::string device_name;
  std::string device_secret;
  std::string product_secret; // optional (一型一密); written only where the profile has a slot
  friend bool operator==(const Credentials&, const Credentials&) = default;
};

// One command of a credential write, as plan_write shows it (for --dry-run).
struct PlannedCommand {
  std::string command;     // the AT command line, without terminator. MAY HOLD A SECRET.
  std::string prompt_data; // sent after the `>` prompt (ESP-AT); "" for plain commands. SECRET.
  std::string purpose;     // "write SN", "read back SN"
};

enum class Layout {
  secret,  // luat: SN = DeviceSecret; DeviceName must equal the (valid) IMEI; PK is not stored
  triplet, // luat: SN = "PK|DN|DS" (refused above 64 bytes); quectel/esp-at: their native store
};
[[nodiscard]] std::string_view to_string(Layout layout);
// "secret" / "triplet"; ErrorKind::usage otherwise.
[[nodiscard]] Result<Layout> parse_layout(std::string_view text);

struct Health {
  std::string
      sim; // "READY", "NOT INSERTED", "SIM PIN", "FAILURE", "BUSY", "n/a" (Wi-Fi), "" unknown
  std::optional<int> csq_rssi; // AT+CSQ rssi 0..31, 99 = not known
  std::optional<int>
      rssi_dbm; // -113 + 2*rssi (0 -> -113, 31 -> -51 or better); Wi-Fi: RSSI; nullopt if unknown
  std::optional<int> reg_stat;    // 3GPP <stat> of the registration query
  std::string reg_status;         // reg_status_text(reg_stat); Wi-Fi: "connected"/"not connected"
  std::string reg_command;        // which query gave reg_stat ("AT+CEREG?")
  std::optional<bool> attached;   // AT+CGATT? (Wi-Fi: connected to an AP)
  std::string operator_name;      // AT+COPS? operator (Wi-Fi: SSID)
  std::vector<std::string> notes; // queries that failed, e.g. "AT+COPS?: ERROR"
};

class ModuleDriver {
public:
  virtual ~ModuleDriver() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::vector<Layout> layouts() const = 0;
  [[nodiscard]] virtual Layout default_layout() const = 0;

  // IMEI (or MAC), ICCID, firmware, manufacturer, model, SN. Fields the module does not answer
  // stay empty; a required field (IMEI for cellular, MAC for Wi-Fi) failing is ErrorKind::module.
  [[nodiscard]] virtual Result<Identity> identify() = 0;
  // Only IMEI / MAC and ICCID (what provisioning binds a triplet to): fewer commands.
  [[nodiscard]] virtual Result<Identity> identify_brief() = 0;

  // What the module stores in `layout`; nullopt when nothing is stored. For luat's secret layout
  // device_name is the IMEI and product_key is empty (not stored on the module).
  // ErrorKind::usage if the profile has no such layout.
  [[nodiscard]] virtual Result<std::optional<Credentials>> read_credentials(Layout layout) = 0;

  // The layout's second stored copy of the DeviceSecret (ProfileLayout::secret_copy, kept by the
  // module's own software after each successful connection): nullopt when the layout declares
  // none; "" when it declares one but the module holds none (the absent pattern matched, the value
  // is empty, or an optional query answered ERROR). The value is a secret in clear: callers mask
  // it. ErrorKind::usage if the profile has no such layout.
  [[nodiscard]] virtual Result<std::optional<std::string>> read_secret_copy(Layout layout) = 0;

  // Validates every value (core/validate.hpp; ErrorKind::usage naming the field; nothing is
  // sent), checks lengths (e.g. Luat SN <= 64 bytes) and layout rules (secret: DeviceName == a
  // valid IMEI), writes, reads back and compares byte for byte. Success only after a verified
  // read-back; a difference is ErrorKind::module with both values masked.
  [[nodiscard]] virtual Status write_credentials(const Credentials& creds, Layout layout) = 0;

  // The commands write_credentials would send (the writes, then the read-backs), after the same
  // validation; nothing is written (a layout whose DeviceName is the IMEI reads the IMEI).
  [[nodiscard]] virtual Result<std::vector<PlannedCommand>> plan_write(const Credentials& creds,
                                                                       Layout layout) = 0;

  // The IMEI (cellular) or MAC (Wi-Fi) alone: the cheapest reading that tells one module from
  // another (provision --loop polls it to notice a module being swapped).
  [[nodiscard]] virtual Result<std::string> read_identity_key() = 0;

  // SIM, signal, registration, attach, operator (cellular) or AP/RSSI (Wi-Fi). Individual query
  // failures are recorded in Health::notes; only port failures are errors.
  [[nodiscard]] virtual Result<Health> health() = 0;
};

// A driver for `profile` (built-in or loaded). The channel's line ending is set from the profile.
[[nodiscard]] std::unique_ptr<ModuleDriver> make_profile_driver(ModuleProfile profile,
                                                                AtChannel& channel);

// "luat", "quectel", "esp-at" or "auto" (identify with ATI / AT+CGMR / AT+GMR and pick).
// With profile_file, that profile is used (name_or_auto must be "auto" or its name).
// Errors: ErrorKind::usage (unknown name), ErrorKind::config (bad profile file), ErrorKind::module
// (auto could not recognise the module: the message quotes what it answered).
[[nodiscard]] Result<std::unique_ptr<ModuleDriver>>
make_driver(std::string_view name_or_auto,
            AtChannel& channel,
            const std::optional<std::filesystem::path>& profile_file = std::nullopt);

// The built-in profile name whose detect patterns match the module's ATI / AT+CGMR / AT+GMR
// answers. ErrorKind::module when none does.
[[nodiscard]] Result<std::string> detect_module(AtChannel& channel);

// Pure decoders (exposed for tests and for `module at` pretty-printing).
// "+CSQ: 23,99" -> 23; nullopt if the line is not a CSQ answer.
[[nodiscard]] std::optional<int> parse_csq(std::string_view line);
// rssi 0..31 -> -113 + 2*rssi dBm; nullopt for 99 or out of range.
[[nodiscard]] std::optional<int> csq_to_dbm(int rssi);
// "+CEREG: 0,1" / "+CREG: 2,5,\"1A2B\",\"01C2D3E4\",7" -> <stat>; "+CEREG: 1" (URC form) -> 1.
[[nodiscard]] std::optional<int> parse_registration(std::string_view line);
// 0 "not registered", 1 "home", 2 "searching", 3 "denied", 4 "unknown", 5 "roaming",
// 6/7 "home (SMS only)"/"roaming (SMS only)", 8 "emergency only", others "stat N".
[[nodiscard]] std::string reg_status_text(int stat);
// "+CPIN: READY" -> "READY"; a CME error text or number for AT+CPIN? -> "NOT INSERTED" (10),
// "FAILURE" (13), "BUSY" (14), else the text.
[[nodiscard]] std::string decode_cpin(const AtResponse& response);

} // namespace iot::serial
