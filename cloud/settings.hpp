// SPDX-License-Identifier: MIT
// Effective settings and cloud credentials, each with the source it came from.
//
// Precedence, highest first:
//   1. command-line flags (--region, --endpoint, --access-key-id + --access-key-secret-file, …)
//   2. environment (ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN,
//   ALIBABA_CLOUD_REGION_ID,
//      IOTFLEET_*)
//   3. the aliyun CLI's ~/.aliyun/config.json (profile from --profile, else its "current"; modes
//      AK and StsToken)
//   4. iotfleet's own config file (--config, $IOTFLEET_CONFIG,
//   $XDG_CONFIG_HOME/iotfleet/config.json)
//   5. built-in defaults
// Credentials are taken whole from the first source that has an AccessKeyId: an id from one
// place and a secret from another would only ever fail as SignatureDoesNotMatch.
// Secrets are never accepted as plain flag values (visible in ps): flags name a file or "-"
// (stdin).
#pragma once

#include "core/error.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::cloud {

struct SettingsFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> profile;
  std::optional<std::string> region;
  std::optional<std::string> endpoint;
  std::optional<std::string> auth_endpoint; // dynamic registration (register, provision)
  std::optional<std::string> ca_file;
  std::optional<std::string> access_key_id;
  std::optional<std::string> access_key_secret_file; // path or "-" for stdin
  std::optional<std::string> security_token_file;    // path or "-" for stdin
  std::optional<std::string> ledger;
};

// Where the process lives; injectable so tests use a temp HOME and a fake environment.
struct Environment {
  std::function<std::optional<std::string>(std::string_view)> getenv;
  std::function<Result<std::string>()> read_stdin; // whole standard input
  std::function<std::string()> hostname;

  // The real process environment, stdin and hostname.
  [[nodiscard]] static Environment process();
};

struct Setting {
  std::string name;
  std::optional<std::string> value;
  std::string source; // "flag --region", "env ALIBABA_CLOUD_REGION_ID", "default", …
  bool secret = false;
};

struct Settings {
  std::vector<Setting> items; // in display order
  // Things a user should hear about but that do not stop the command (loose file permissions,
  // an aliyun CLI profile mode iotfleet does not read).
  std::vector<std::string> warnings;

  [[nodiscard]] const Setting* find(std::string_view name) const;
  [[nodiscard]] std::optional<std::string> value(std::string_view name) const;
};

// Setting names, as config show prints them and the config file spells them.
namespace key {
inline constexpr std::string_view config_file = "config_file";
inline constexpr std::string_view profile = "profile";
inline constexpr std::string_view access_key_id = "access_key_id";
inline constexpr std::string_view access_key_secret = "access_key_secret";
inline constexpr std::string_view security_token = "security_token";
inline constexpr std::string_view region = "region";
inline constexpr std::string_view endpoint = "endpoint";
inline constexpr std::string_view auth_endpoint = "auth_endpoint";
inline constexpr std::string_view ca_file = "ca_file";
inline constexpr std::string_view iot_instance_id = "iot_instance_id";
inline constexpr std::string_view product_key = "product_key";
inline constexpr std::string_view product_secret = "product_secret";
inline constexpr std::string_view ledger = "ledger";
inline constexpr std::string_view module = "module";
inline constexpr std::string_view station = "station";
} // namespace key

// Resolves every setting. Fails with ErrorKind::config (exit 2) on an unreadable or broken
// config file, an unknown key in iotfleet's config, an explicitly chosen profile that exists
// nowhere, or an unreadable secret file; the message names the file and the problem.
[[nodiscard]] Result<Settings> resolve_settings(const SettingsFlags& flags, const Environment& env);

struct AccessKey {
  std::string id;
  std::string secret;
  std::string security_token; // empty unless STS
};

// The credentials a cloud command needs, or ErrorKind::auth naming every way to provide them.
[[nodiscard]] Result<AccessKey> require_access_key(const Settings& settings);

} // namespace iot::cloud
