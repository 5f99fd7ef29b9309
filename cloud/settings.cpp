// SPDX-License-Identifier: MIT
#include "cloud/settings.hpp"

#include "core/file.hpp"
#include "core/mask.hpp"
#include "core/text.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <sstream>

namespace iot::cloud {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Keys iotfleet's own config file may hold, at the top level or inside "profiles": {NAME: {...}}.
constexpr std::array<std::string_view, 16> k_config_keys = {
    "access_key_id",
    "access_key_secret",
    "access_key_secret_file",
    "security_token",
    "security_token_file",
    "region",
    "endpoint",
    "auth_endpoint",
    "ca_file",
    "iot_instance_id",
    "product_key",
    "product_secret",
    "product_secret_file",
    "ledger",
    "module",
    "station",
};

std::string known_keys() {
  std::string list;
  for (auto k : k_config_keys) {
    list += list.empty() ? "" : ", ";
    list += k;
  }
  return list;
}

struct JsonFile {
  fs::path path;
  json doc;
  mode_t mode = 0;
};

// Config files are small; anything larger is not one.
constexpr std::uintmax_t k_max_config_bytes = 1U << 20;

// Reads and parses a JSON file. A missing file is nullopt unless required; `origin` says where
// a required path came from ("flag --config"). Every failure (a directory, no permission, bad
// JSON) is ErrorKind::config naming the file, the reason and the fix.
Result<std::optional<JsonFile>> read_json_file(const fs::path& path,
                                               bool required,
                                               std::string_view what,
                                               std::string_view origin = {}) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT && !required) {
    return std::optional<JsonFile>{};
  }
  auto text = core::read_file(path, what, {ErrorKind::config, k_max_config_bytes});
  if (!text) {
    Error error = std::move(text).error();
    if (!origin.empty()) {
      error.message += " (the path is from " + std::string(origin) + ")";
    }
    return fail(std::move(error));
  }
  JsonFile file{path, {}, 0};
  try {
    file.doc = json::parse(*text);
  } catch (const json::parse_error& e) {
    return fail(ErrorKind::config,
                std::string(what) + " " + path.string() + " is not valid JSON (byte " +
                    std::to_string(e.byte) + "): fix or remove the file");
  }
  if (::stat(path.c_str(), &st) == 0) {
    file.mode = st.st_mode;
  }
  return std::optional<JsonFile>(std::move(file));
}

std::string octal_mode(mode_t mode) {
  std::ostringstream os;
  os << '0' << std::oct << (mode & 0777);
  return os.str();
}

void warn_if_loose(const fs::path& path,
                   mode_t mode,
                   std::string_view holds,
                   std::vector<std::string>& warnings) {
  if ((mode & 077) != 0) {
    warnings.push_back(path.string() + " holds " + std::string(holds) +
                       " and is readable by group or others (mode " + octal_mode(mode) +
                       "): run chmod 600 " + path.string());
  }
}

// Reads a secret from a file (or stdin for "-"); trailing whitespace is dropped.
Result<std::string> read_secret(const std::string& path_or_dash,
                                std::string_view what,
                                const Environment& env,
                                std::vector<std::string>& warnings) {
  std::string text;
  if (path_or_dash == "-") {
    auto in = IOT_TRY_CTX(env.read_stdin(), "read " + std::string(what) + " from stdin");
    text = in;
  } else {
    text = IOT_TRY(core::read_file(
        path_or_dash, std::string(what) + " file", {ErrorKind::config, k_max_config_bytes}));
    struct stat st {};
    if (::stat(path_or_dash.c_str(), &st) == 0) {
      warn_if_loose(path_or_dash, st.st_mode, what, warnings);
    }
  }
  std::string value(core::trim(text));
  if (value.empty()) {
    const std::string where = path_or_dash == "-" ? "stdin" : path_or_dash;
    return fail(ErrorKind::config, std::string(what) + " from " + where + " is empty");
  }
  if (value.find_first_of("\r\n") != std::string::npos) {
    const std::string where = path_or_dash == "-" ? "stdin" : path_or_dash;
    return fail(ErrorKind::config,
                std::string(what) + " from " + where +
                    " has more than one line: put only the value");
  }
  return value;
}

// Validates iotfleet's config object: every key known, every value a string.
Status check_config_object(const json& obj, const fs::path& path, std::string_view where) {
  if (!obj.is_object()) {
    return fail(ErrorKind::config,
                path.string() + ": " + std::string(where) + " must be a JSON object");
  }
  for (const auto& [k, v] : obj.items()) {
    if (where == "top level" && k == "profiles") {
      continue;
    }
    if (std::find(k_config_keys.begin(), k_config_keys.end(), k) == k_config_keys.end()) {
      return fail(ErrorKind::config,
                  path.string() + ": unknown setting '" + k + "' in " + std::string(where) +
                      " (known: " + known_keys() + ")");
    }
    if (!v.is_string()) {
      return fail(ErrorKind::config,
                  path.string() + ": setting '" + k + "' in " + std::string(where) +
                      " must be a string");
    }
  }
  return {};
}

std::optional<std::string> json_string(const json& obj, std::string_view k) {
  if (!obj.is_object()) {
    return std::nullopt;
  }
  auto it = obj.find(std::string(k));
  if (it == obj.end() || !it->is_string() || it->get<std::string>().empty()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

// One place a value can come from, already looked up.
struct Candidate {
  std::optional<std::string> value;
  std::string source;
};

Setting first_of(std::string_view name, bool secret, std::initializer_list<Candidate> candidates) {
  for (const auto& c : candidates) {
    if (c.value) {
      return Setting{std::string(name), c.value, c.source, secret};
    }
  }
  return Setting{std::string(name), std::nullopt, "not set", secret};
}

struct Sources {
  const SettingsFlags& flags;
  const Environment& env;
  std::optional<JsonFile> own;      // iotfleet config
  json own_merged = json::object(); // top level overlaid by the chosen profile
  std::string own_label;
  std::optional<JsonFile> aliyun;
  std::optional<Error> aliyun_error; // the aliyun config exists but cannot be used
  json aliyun_profile;               // null when the profile is not in the aliyun config
  std::string aliyun_label;
};

std::optional<std::string> env_value(const Environment& env, std::string_view name) {
  auto v = env.getenv(name);
  if (v && v->empty()) {
    return std::nullopt;
  }
  return v;
}

fs::path home_dir(const Environment& env) {
  if (auto h = env_value(env, "HOME")) {
    return *h;
  }
  return "/";
}

Result<Setting> resolve_profile(Sources& s) {
  const auto& env = s.env;
  Setting profile =
      first_of(key::profile,
               false,
               {{s.flags.profile, "flag --profile"},
                {env_value(env, "IOTFLEET_PROFILE"), "env IOTFLEET_PROFILE"},
                {env_value(env, "ALIBABA_CLOUD_PROFILE"), "env ALIBABA_CLOUD_PROFILE"}});
  const bool explicit_choice = profile.value.has_value();
  if (!explicit_choice) {
    if (s.aliyun) {
      if (auto current = json_string(s.aliyun->doc, "current")) {
        profile.value = current;
        profile.source = "aliyun CLI current profile (" + s.aliyun->path.string() + ")";
      }
    }
    if (!profile.value) {
      profile.value = "default";
      profile.source = "default";
    }
  }

  bool found = false;
  std::vector<std::string> known;
  if (s.aliyun && s.aliyun->doc.contains("profiles") && s.aliyun->doc["profiles"].is_array()) {
    for (const auto& p : s.aliyun->doc["profiles"]) {
      auto name = json_string(p, "name");
      if (!name) {
        continue;
      }
      known.push_back(*name + " (aliyun CLI)");
      if (*name == *profile.value) {
        s.aliyun_profile = p;
        s.aliyun_label = "aliyun CLI profile '" + *name + "' (" + s.aliyun->path.string() + ")";
        found = true;
      }
    }
  }
  if (s.own) {
    s.own_merged = json::object();
    for (const auto& [k, v] : s.own->doc.items()) {
      if (k != "profiles") {
        s.own_merged[k] = v;
      }
    }
    s.own_label = "config " + s.own->path.string();
    if (auto it = s.own->doc.find("profiles"); it != s.own->doc.end()) {
      for (const auto& [name, body] : it->items()) {
        known.push_back(name + " (iotfleet config)");
        if (name == *profile.value) {
          for (const auto& [k, v] : body.items()) {
            s.own_merged[k] = v;
          }
          s.own_label += " (profile '" + name + "')";
          found = true;
        }
      }
    }
  }
  if (explicit_choice && !found && s.aliyun_error) {
    // It may be a profile of the unreadable aliyun config: only cloud settings would come from
    // there, and those carry the aliyun config's problem.
    profile.source += " (not in the iotfleet config; the aliyun CLI config cannot be read)";
  } else if (explicit_choice && !found) {
    std::string list;
    for (const auto& k : known) {
      list += list.empty() ? "" : ", ";
      list += k;
    }
    return fail(ErrorKind::config,
                "unknown profile '" + *profile.value + "' (from " + profile.source +
                    "); known profiles: " + (list.empty() ? "none" : list) +
                    " — run 'aliyun configure --profile NAME' or add "
                    "\"profiles\": {\"NAME\": {...}} to the iotfleet config");
  }
  return profile;
}

struct CredentialSet {
  Setting id;
  Setting secret;
  Setting token;
};

CredentialSet unset_credentials() {
  return {Setting{std::string(key::access_key_id), std::nullopt, "not set", false},
          Setting{std::string(key::access_key_secret), std::nullopt, "not set", true},
          Setting{std::string(key::security_token), std::nullopt, "not set", true}};
}

Result<std::optional<CredentialSet>> credentials_from_flags(const Sources& s,
                                                            std::vector<std::string>& warnings) {
  const auto& f = s.flags;
  if (!f.access_key_id && !f.access_key_secret_file && !f.security_token_file) {
    return std::optional<CredentialSet>{};
  }
  if (!f.access_key_id || !f.access_key_secret_file) {
    return fail(ErrorKind::usage,
                "--access-key-id and --access-key-secret-file go together: give "
                "both (the secret as a file, or - for stdin)");
  }
  if (*f.access_key_secret_file == "-" && f.security_token_file && *f.security_token_file == "-") {
    return fail(ErrorKind::usage,
                "only one of --access-key-secret-file and --security-token-file "
                "can read stdin");
  }
  CredentialSet set = unset_credentials();
  set.id.value = f.access_key_id;
  set.id.source = "flag --access-key-id";
  auto secret =
      IOT_TRY(read_secret(*f.access_key_secret_file, "access key secret", s.env, warnings));
  set.secret.value = secret;
  set.secret.source = *f.access_key_secret_file == "-"
                          ? "flag --access-key-secret-file (stdin)"
                          : "flag --access-key-secret-file " + *f.access_key_secret_file;
  if (f.security_token_file) {
    auto token = IOT_TRY(read_secret(*f.security_token_file, "security token", s.env, warnings));
    set.token.value = token;
    set.token.source = *f.security_token_file == "-"
                           ? "flag --security-token-file (stdin)"
                           : "flag --security-token-file " + *f.security_token_file;
  }
  return std::optional<CredentialSet>(std::move(set));
}

Result<std::optional<CredentialSet>> credentials_from_env(const Sources& s) {
  auto id = env_value(s.env, "ALIBABA_CLOUD_ACCESS_KEY_ID");
  if (!id) {
    return std::optional<CredentialSet>{};
  }
  auto secret = env_value(s.env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET");
  if (!secret) {
    return fail(ErrorKind::config,
                "ALIBABA_CLOUD_ACCESS_KEY_ID is set but "
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET is not: export both, or "
                "unset the id to use another source");
  }
  CredentialSet set = unset_credentials();
  set.id = {std::string(key::access_key_id), id, "env ALIBABA_CLOUD_ACCESS_KEY_ID", false};
  set.secret = {
      std::string(key::access_key_secret), secret, "env ALIBABA_CLOUD_ACCESS_KEY_SECRET", true};
  if (auto token = env_value(s.env, "ALIBABA_CLOUD_SECURITY_TOKEN")) {
    set.token = {std::string(key::security_token), token, "env ALIBABA_CLOUD_SECURITY_TOKEN", true};
  }
  return std::optional<CredentialSet>(std::move(set));
}

std::optional<CredentialSet> credentials_from_aliyun(const Sources& s,
                                                     std::vector<std::string>& warnings) {
  if (s.aliyun_profile.is_null()) {
    return std::nullopt;
  }
  const auto mode = json_string(s.aliyun_profile, "mode").value_or("AK");
  auto id = json_string(s.aliyun_profile, "access_key_id");
  if (mode != "AK" && mode != "StsToken") {
    warnings.push_back(s.aliyun_label + " uses mode " + mode +
                       ", which iotfleet does not read (AK and StsToken only): export "
                       "ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN instead");
    return std::nullopt;
  }
  if (!id) {
    return std::nullopt;
  }
  warn_if_loose(s.aliyun->path, s.aliyun->mode, "an access key secret", warnings);
  CredentialSet set = unset_credentials();
  set.id = {std::string(key::access_key_id), id, s.aliyun_label, false};
  set.secret = {std::string(key::access_key_secret),
                json_string(s.aliyun_profile, "access_key_secret"),
                s.aliyun_label,
                true};
  if (mode == "StsToken") {
    set.token = {std::string(key::security_token),
                 json_string(s.aliyun_profile, "sts_token"),
                 s.aliyun_label,
                 true};
  }
  return set;
}

Result<std::optional<CredentialSet>> credentials_from_own(const Sources& s,
                                                          std::vector<std::string>& warnings) {
  auto id = json_string(s.own_merged, "access_key_id");
  if (!s.own || !id) {
    return std::optional<CredentialSet>{};
  }
  CredentialSet set = unset_credentials();
  set.id = {std::string(key::access_key_id), id, s.own_label, false};
  const auto secret_pair = [&](std::string_view inline_key,
                               std::string_view file_key,
                               std::string_view what,
                               Setting& out) -> Status {
    if (auto v = json_string(s.own_merged, inline_key)) {
      warn_if_loose(s.own->path, s.own->mode, what, warnings);
      out.value = v;
      out.source = s.own_label;
    } else if (auto file = json_string(s.own_merged, file_key)) {
      auto read = IOT_TRY_CTX(read_secret(*file, what, s.env, warnings), s.own->path.string());
      out.value = read;
      out.source = s.own_label + ", " + std::string(file_key) + " " + *file;
    }
    return {};
  };
  if (auto r = secret_pair(
          "access_key_secret", "access_key_secret_file", "an access key secret", set.secret);
      !r) {
    return fail(r.error());
  }
  if (auto r = secret_pair("security_token", "security_token_file", "a security token", set.token);
      !r) {
    return fail(r.error());
  }
  return std::optional<CredentialSet>(std::move(set));
}

Result<CredentialSet> resolve_credentials(const Sources& s, std::vector<std::string>& warnings) {
  if (auto r = credentials_from_flags(s, warnings); !r || *r) {
    return r ? Result<CredentialSet>(**r) : fail(r.error());
  }
  if (auto r = credentials_from_env(s); !r || *r) {
    return r ? Result<CredentialSet>(**r) : fail(r.error());
  }
  if (s.aliyun_error) {
    // The aliyun CLI profile comes before iotfleet's config: with that file unreadable nobody
    // can tell which AccessKey was meant.
    return fail(s.aliyun_error->context("the AccessKey"));
  }
  if (auto r = credentials_from_aliyun(s, warnings)) {
    return *r;
  }
  if (auto r = credentials_from_own(s, warnings); !r || *r) {
    return r ? Result<CredentialSet>(**r) : fail(r.error());
  }
  return unset_credentials();
}

Status check_region(const Setting& region) {
  const auto& v = *region.value;
  const bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
  if (!ok) {
    return fail(ErrorKind::config,
                "region '" + v + "' (from " + region.source +
                    ") is not a region id like cn-shanghai");
  }
  return {};
}

Status check_endpoint(const Setting& endpoint) {
  const auto& v = *endpoint.value;
  if (!v.starts_with("https://") && !v.starts_with("http://")) {
    return fail(ErrorKind::config,
                "endpoint '" + v + "' (from " + endpoint.source +
                    ") must start with https:// (or http:// for a local "
                    "emulator)");
  }
  return {};
}

// The one-type-one-secret ProductSecret: env IOTFLEET_PRODUCT_SECRET, else the config's
// product_secret (inline; the file should be 0600) or product_secret_file. Commands that take
// --product-secret-file read that first themselves.
Result<Setting> resolve_product_secret(const Sources& s, std::vector<std::string>& warnings) {
  if (auto v = env_value(s.env, "IOTFLEET_PRODUCT_SECRET")) {
    return Setting{std::string(key::product_secret), v, "env IOTFLEET_PRODUCT_SECRET", true};
  }
  if (s.own) {
    if (auto v = json_string(s.own_merged, "product_secret")) {
      warn_if_loose(s.own->path, s.own->mode, "a product secret", warnings);
      return Setting{std::string(key::product_secret), v, s.own_label, true};
    }
    if (auto file = json_string(s.own_merged, "product_secret_file")) {
      auto read =
          IOT_TRY_CTX(read_secret(*file, "product secret", s.env, warnings), s.own->path.string());
      return Setting{std::string(key::product_secret),
                     read,
                     s.own_label + ", product_secret_file " + *file,
                     true};
    }
  }
  return Setting{std::string(key::product_secret), std::nullopt, "not set", true};
}

// Where /auth/register/device lives: IOTFLEET_AUTH_ENDPOINT or the config's auth_endpoint; else
// an --endpoint that is not the default (an emulator serves both on one port); else
// https://iot-auth.<region>.aliyuncs.com (§4).
Setting auth_endpoint_setting(const Sources& s, const Setting& region, const Setting& endpoint) {
  const auto own_value = s.own ? json_string(s.own_merged, "auth_endpoint") : std::nullopt;
  const bool endpoint_given = !endpoint.source.starts_with("default");
  return first_of(
      key::auth_endpoint,
      false,
      {{s.flags.auth_endpoint, "flag --auth-endpoint"},
       {env_value(s.env, "IOTFLEET_AUTH_ENDPOINT"), "env IOTFLEET_AUTH_ENDPOINT"},
       {own_value, s.own_label},
       {endpoint_given ? endpoint.value : std::nullopt, "endpoint (" + endpoint.source + ")"},
       {"https://iot-auth." + *region.value + ".aliyuncs.com", "default (from region)"}});
}

} // namespace

Environment Environment::process() {
  Environment env;
  env.getenv = [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) {
      return std::nullopt;
    }
    return std::string(v);
  };
  env.read_stdin = []() -> Result<std::string> {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) {
      return fail(ErrorKind::io, "read error on stdin");
    }
    return text;
  };
  env.hostname = [] {
    std::array<char, 256> buf{};
    if (::gethostname(buf.data(), buf.size() - 1) != 0) {
      return std::string("station");
    }
    return std::string(buf.data());
  };
  return env;
}

const Setting* Settings::find(std::string_view name) const {
  for (const auto& s : items) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

std::optional<std::string> Settings::value(std::string_view name) const {
  const Setting* s = find(name);
  return s ? s->value : std::nullopt;
}

Result<Settings> resolve_settings(const SettingsFlags& flags, const Environment& env) {
  Settings out;
  Sources s{flags, env, std::nullopt, json::object(), {}, std::nullopt, std::nullopt, json(), {}};
  const fs::path home = home_dir(env);

  // iotfleet's own config file.
  Setting config_file = first_of(key::config_file,
                                 false,
                                 {{flags.config_file, "flag --config"},
                                  {env_value(env, "IOTFLEET_CONFIG"), "env IOTFLEET_CONFIG"}});
  const bool config_required = config_file.value.has_value();
  if (!config_file.value) {
    const fs::path base = env_value(env, "XDG_CONFIG_HOME").value_or((home / ".config").string());
    config_file.value = (fs::path(base) / "iotfleet" / "config.json").string();
    config_file.source = "default";
  }
  auto own_file = IOT_TRY(
      read_json_file(*config_file.value, config_required, "config file", config_file.source));
  s.own = std::move(own_file);
  if (s.own) {
    IOT_TRY(check_config_object(s.own->doc, s.own->path, "top level"));
    if (auto it = s.own->doc.find("profiles"); it != s.own->doc.end()) {
      if (!it->is_object()) {
        return fail(ErrorKind::config,
                    s.own->path.string() + ": \"profiles\" must be an object of NAME: {settings}");
      }
      for (const auto& [name, body] : it->items()) {
        IOT_TRY(check_config_object(body, s.own->path, "profile '" + name + "'"));
      }
    }
  } else {
    config_file.source += " (file absent)";
  }

  // The aliyun CLI's config: only cloud settings come from it, so a broken one is recorded,
  // not fatal.
  const fs::path aliyun_path = home / ".aliyun" / "config.json";
  if (auto aliyun = read_json_file(aliyun_path, false, "aliyun CLI config"); !aliyun) {
    s.aliyun_error = aliyun.error();
  } else if (*aliyun && !(*aliyun)->doc.is_object()) {
    s.aliyun_error =
        Error{ErrorKind::config,
              aliyun_path.string() + ": not an aliyun CLI config (expected a JSON object): fix or "
                                     "remove the file, or run 'aliyun configure'"};
  } else {
    s.aliyun = std::move(*aliyun);
  }
  out.aliyun_problem = s.aliyun_error;

  auto profile = IOT_TRY(resolve_profile(s));
  CredentialSet creds = unset_credentials();
  if (auto resolved = resolve_credentials(s, out.warnings)) {
    creds = std::move(*resolved);
  } else {
    // Only commands that talk to the cloud need the AccessKey: they get this error from
    // require_access_key().
    for (Setting* c : {&creds.id, &creds.secret, &creds.token}) {
      c->source = "not resolved: " + resolved.error().message;
      c->problem = resolved.error();
    }
  }

  const auto own = [&](std::string_view k) -> Candidate {
    return {json_string(s.own_merged, k), s.own_label};
  };
  const auto from_env = [&](std::string_view name) -> Candidate {
    return {env_value(env, name), "env " + std::string(name)};
  };

  Setting region = first_of(key::region,
                            false,
                            {{flags.region, "flag --region"},
                             from_env("ALIBABA_CLOUD_REGION_ID"),
                             {json_string(s.aliyun_profile, "region_id"), s.aliyun_label},
                             own("region"),
                             {std::string("cn-shanghai"), "default"}});
  if (s.aliyun_error && !region.source.starts_with("flag") && !region.source.starts_with("env")) {
    // The aliyun profile's region_id would come before this one.
    region.problem = s.aliyun_error->context("the region");
    region.source += " (the aliyun CLI config, which comes first, cannot be read)";
  } else if (auto r = check_region(region); !r) {
    region.problem = r.error();
  }
  Setting endpoint =
      first_of(key::endpoint,
               false,
               {{flags.endpoint, "flag --endpoint"},
                from_env("IOTFLEET_ENDPOINT"),
                own("endpoint"),
                {"https://iot." + *region.value + ".aliyuncs.com", "default (from region)"}});
  if (endpoint.source.starts_with("default") && region.problem) {
    endpoint.problem = region.problem;
  } else if (auto r = check_endpoint(endpoint); !r) {
    endpoint.problem = r.error();
  }
  const fs::path data_home =
      env_value(env, "XDG_DATA_HOME").value_or((home / ".local" / "share").string());

  out.items.push_back(std::move(config_file));
  out.items.push_back(std::move(profile));
  out.items.push_back(std::move(creds.id));
  out.items.push_back(std::move(creds.secret));
  out.items.push_back(std::move(creds.token));
  out.items.push_back(std::move(region));
  out.items.push_back(std::move(endpoint));
  out.items.push_back(first_of(key::ca_file,
                               false,
                               {{flags.ca_file, "flag --ca-file"},
                                from_env("IOTFLEET_CA_FILE"),
                                own("ca_file"),
                                {std::string("system trust store"), "default"}}));
  out.items.push_back(first_of(
      key::iot_instance_id, false, {from_env("IOTFLEET_IOT_INSTANCE_ID"), own("iot_instance_id")}));
  out.items.push_back(
      first_of(key::product_key, false, {from_env("IOTFLEET_PRODUCT_KEY"), own("product_key")}));
  if (auto product_secret = resolve_product_secret(s, out.warnings)) {
    out.items.push_back(std::move(*product_secret));
  } else {
    // Needed by dynamic registration only (which checks it), not by local work.
    out.items.push_back(Setting{std::string(key::product_secret),
                                std::nullopt,
                                "not resolved: " + product_secret.error().message,
                                true,
                                product_secret.error()});
  }
  auto auth_endpoint = auth_endpoint_setting(s, *out.find(key::region), *out.find(key::endpoint));
  if (auth_endpoint.source.starts_with("default") && out.find(key::region)->problem) {
    auth_endpoint.problem = out.find(key::region)->problem;
  } else if (auth_endpoint.source.starts_with("endpoint") && out.find(key::endpoint)->problem) {
    auth_endpoint.problem = out.find(key::endpoint)->problem;
  } else if (auto r = check_endpoint(auth_endpoint); !r) {
    auth_endpoint.problem = r.error();
  }
  out.items.push_back(std::move(auth_endpoint));
  out.items.push_back(first_of(key::ledger,
                               false,
                               {{flags.ledger, "flag --ledger"},
                                from_env("IOTFLEET_LEDGER"),
                                own("ledger"),
                                {(data_home / "iotfleet" / "ledger.db").string(), "default"}}));
  out.items.push_back(first_of(
      key::module, false, {from_env("IOTFLEET_MODULE"), own("module"), {"auto", "default"}}));
  out.items.push_back(
      first_of(key::station,
               false,
               {from_env("IOTFLEET_STATION"),
                own("station"),
                {env.hostname ? env.hostname() : "station", "default (hostname)"}}));
  return out;
}

Status require_cloud_settings(const Settings& settings,
                              std::initializer_list<std::string_view> names) {
  for (auto name : names) {
    if (const Setting* s = settings.find(name); s && s->problem) {
      return fail(*s->problem);
    }
  }
  return {};
}

std::string access_key_origin(const Settings& settings) {
  const Setting* id = settings.find(key::access_key_id);
  if (id == nullptr || !id->value) {
    return {};
  }
  return "AccessKey " + core::mask_secret(*id->value) + " from " + id->source;
}

Result<AccessKey> require_access_key(const Settings& settings) {
  IOT_TRY(require_cloud_settings(
      settings, {key::access_key_id, key::access_key_secret, key::security_token}));
  const auto id = settings.value(key::access_key_id);
  const auto secret = settings.value(key::access_key_secret);
  if (!id) {
    return fail(ErrorKind::auth,
                "no Alibaba Cloud AccessKey found: export ALIBABA_CLOUD_ACCESS_KEY_ID and "
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET, run 'aliyun configure', pass --access-key-id "
                "with --access-key-secret-file FILE|-, or set access_key_id and "
                "access_key_secret_file in the iotfleet config ('iotfleet config show' lists "
                "what was found)");
  }
  if (!secret) {
    const Setting* s = settings.find(key::access_key_id);
    return fail(ErrorKind::auth,
                "AccessKeyId " + *id + " (from " + s->source +
                    ") has no AccessKeySecret beside it: add it to that source");
  }
  return AccessKey{*id, *secret, settings.value(key::security_token).value_or("")};
}

} // namespace iot::cloud
