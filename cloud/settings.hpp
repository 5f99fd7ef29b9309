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
//
// Cloud settings are checked only by the commands that talk to the cloud. A broken or
// unreadable ~/.aliyun/config.json, an AccessKey id without its secret, an unreadable secret
// file, a region that is not a region id: each is recorded as the Setting's `problem` (and the
// aliyun config's as Settings::aliyun_problem) instead of failing the resolution, so local work
// (the ledger, the station, the module driver, MQTT credentials from the ledger) goes on.
// require_cloud_settings() and require_access_key() turn a problem into the error.
#pragma once

#include "core/error.hpp"

#include <filesystem>
#include <functional>
#include <initializer_list>
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
  // Why this setting could not be resolved or is not usable (ErrorKind::config, usage, …); set
  // only for cloud settings, which local commands never look at. The value is then unset or a
  // fallback that cloud commands must not use.
  std::optional<Error> problem = std::nullopt;
};

struct Settings {
  std::vector<Setting> items; // in display order
  // Things a user should hear about but that do not stop the command (loose file permissions,
  // an aliyun CLI profile mode iotfleet does not read).
  std::vector<std::string> warnings;
  // The aliyun CLI config exists but cannot be read or parsed (the message names the file and
  // the fix). Settings that would have been read from it carry it as their problem.
  std::optional<Error> aliyun_problem;

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

// Resolves every setting. Fails with ErrorKind::config (exit 2) only for what local work needs:
// an unreadable or broken iotfleet config file (a directory, bad JSON, an unknown key) or an
// explicitly chosen profile that exists nowhere (when the aliyun CLI config can be read; it
// would choose the iotfleet config's profile section too). Cloud-only problems are recorded in
// the settings (Setting::problem, Settings::aliyun_problem), see above.
[[nodiscard]] Result<Settings> resolve_settings(const SettingsFlags& flags, const Environment& env);

// The first problem of the named settings, as an error; success when none has one. Commands
// that talk to the cloud call it for what they use (region and endpoint for OpenAPI,
// auth_endpoint for dynamic registration).
[[nodiscard]] Status require_cloud_settings(const Settings& settings,
                                            std::initializer_list<std::string_view> names);

struct AccessKey {
  std::string id;
  std::string secret;
  std::string security_token; // empty unless STS
};

// The credentials a cloud command needs: the problem met while resolving them (a broken aliyun
// CLI config, an id without its secret, an unreadable secret file: ErrorKind::config or usage),
// or ErrorKind::auth naming every way to provide them.
[[nodiscard]] Result<AccessKey> require_access_key(const Settings& settings);

// "AccessKey LTAI…wxyz from <source>" for messages about a refused AccessKey (never the
// secret); empty when no AccessKey is set.
[[nodiscard]] std::string access_key_origin(const Settings& settings);

} // namespace iot::cloud
