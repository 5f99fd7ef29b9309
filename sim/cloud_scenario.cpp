// SPDX-License-Identifier: MIT
#include "sim/cloud_scenario.hpp"

#include "core/file.hpp"
#include "sim/cloud_util.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <set>
#include <sstream>

namespace iot::sim::cloud {

namespace {

using json = nlohmann::json;

struct Bad {
  std::string message;
};

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Bad{path + ": " + what};
}

void only_keys(const json& obj,
               const std::string& path,
               std::initializer_list<std::string_view> keys) {
  if (!obj.is_object()) {
    bad(path, "expected an object");
  }
  for (const auto& item : obj.items()) {
    bool known = false;
    for (const std::string_view k : keys) {
      known = known || item.key() == k;
    }
    if (!known) {
      bad(path + "." + item.key(), "unknown key");
    }
  }
}

std::string
text(const json& obj, const std::string& key, const std::string& path, std::string fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_string()) {
    bad(path + "." + key, "expected text");
  }
  return it->get<std::string>();
}

std::int64_t integer(const json& obj,
                     const std::string& key,
                     const std::string& path,
                     std::int64_t fallback,
                     std::int64_t min,
                     std::int64_t max) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_number_integer()) {
    bad(path + "." + key, "expected an integer");
  }
  const auto v = it->get<std::int64_t>();
  if (v < min || v > max) {
    bad(path + "." + key, "must be " + std::to_string(min) + ".." + std::to_string(max));
  }
  return v;
}

bool valid_status(std::string_view s) {
  return s == k_online || s == k_offline || s == k_unactive || s == k_disable;
}

bool valid_secret_chars(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) {
    return false;
  }
  for (const char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '@' || c == '.' || c == ':';
    if (!ok) {
      return false;
    }
  }
  return true;
}

StatusMix status_mix(const json& j, const std::string& path) {
  only_keys(j, path, {"ONLINE", "OFFLINE", "UNACTIVE", "DISABLE"});
  StatusMix mix{0, 0, 0, 0};
  for (const auto& item : j.items()) {
    if (!item.value().is_number() || item.value().get<double>() < 0) {
      bad(path + "." + item.key(), "expected a weight >= 0");
    }
    const double w = item.value().get<double>();
    if (item.key() == k_online) {
      mix.online = w;
    } else if (item.key() == k_offline) {
      mix.offline = w;
    } else if (item.key() == k_unactive) {
      mix.unactive = w;
    } else {
      mix.disable = w;
    }
  }
  if (mix.online + mix.offline + mix.unactive + mix.disable <= 0) {
    bad(path, "at least one weight must be > 0");
  }
  return mix;
}

ScenarioProduct product(const json& j, const std::string& path) {
  only_keys(j,
            path,
            {"product_key",
             "name",
             "product_secret",
             "node_type",
             "data_format",
             "auth_type",
             "net_type",
             "aliyun_commodity_code",
             "description",
             "dynamic_register",
             "devices",
             "generate"});
  ScenarioProduct p;
  p.product_key = text(j, "product_key", path, "");
  if (!valid_product_key(p.product_key)) {
    bad(path + ".product_key", "must be 1-20 of [A-Za-z0-9]");
  }
  p.name = text(j, "name", path, p.product_key);
  p.product_secret = text(j, "product_secret", path, "");
  if (!p.product_secret.empty() && !valid_secret_chars(p.product_secret, 64)) {
    bad(path + ".product_secret", "must be 1-64 of [A-Za-z0-9_-@.:]");
  }
  p.node_type = static_cast<int>(integer(j, "node_type", path, 0, 0, 1));
  p.data_format = static_cast<int>(integer(j, "data_format", path, 1, 0, 1));
  p.auth_type = text(j, "auth_type", path, "secret");
  if (p.auth_type != "secret" && p.auth_type != "id2" && p.auth_type != "x509") {
    bad(path + ".auth_type", "must be secret, id2 or x509");
  }
  p.net_type = static_cast<int>(integer(j, "net_type", path, 6, 0, 99));
  p.commodity = text(j, "aliyun_commodity_code", path, "iothub_senior");
  if (p.commodity != "iothub_senior" && p.commodity != "iothub") {
    bad(path + ".aliyun_commodity_code", "must be iothub_senior or iothub");
  }
  p.description = text(j, "description", path, "");
  if (const auto it = j.find("dynamic_register"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      bad(path + ".dynamic_register", "expected true or false");
    }
    p.dynamic_register = it->get<bool>();
  }
  if (const auto it = j.find("devices"); it != j.end()) {
    if (!it->is_array()) {
      bad(path + ".devices", "expected a list");
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& d = (*it)[i];
      const std::string at = path + ".devices[" + std::to_string(i) + "]";
      only_keys(d, at, {"name", "secret", "status", "nickname", "firmware", "tags", "groups"});
      ScenarioDevice dev;
      dev.name = text(d, "name", at, "");
      if (!valid_device_name(dev.name)) {
        bad(at + ".name", "must be 4-32 of [A-Za-z0-9_-@.:]");
      }
      dev.secret = text(d, "secret", at, "");
      if (!dev.secret.empty() && !valid_secret_chars(dev.secret, 64)) {
        bad(at + ".secret", "must be 1-64 of [A-Za-z0-9_-@.:]");
      }
      dev.status = text(d, "status", at, std::string(k_unactive));
      if (!valid_status(dev.status)) {
        bad(at + ".status", "must be ONLINE, OFFLINE, UNACTIVE or DISABLE");
      }
      dev.nickname = text(d, "nickname", at, "");
      if (!dev.nickname.empty() && !valid_nickname(dev.nickname)) {
        bad(at + ".nickname", "must be 4-64 units of letters, digits, _ or CJK (2 units)");
      }
      dev.firmware = text(d, "firmware", at, "");
      if (const auto tags = d.find("tags"); tags != d.end()) {
        if (!tags->is_object() || tags->size() > k_max_tags_per_device) {
          bad(at + ".tags", "expected an object of at most 100 tag: value (text)");
        }
        for (const auto& [key, value] : tags->items()) {
          if (!value.is_string() || key.empty()) {
            bad(at + ".tags." + key, "expected a non-empty key with a text value");
          }
          dev.tags.emplace_back(key, value.get<std::string>());
        }
      }
      if (const auto groups = d.find("groups"); groups != d.end()) {
        if (!groups->is_array() || groups->size() > k_max_groups_per_device) {
          bad(at + ".groups", "expected a list of at most 10 group names");
        }
        for (const auto& g : *groups) {
          if (!g.is_string()) {
            bad(at + ".groups", "expected group names");
          }
          dev.groups.push_back(g.get<std::string>());
        }
      }
      p.devices.push_back(std::move(dev));
    }
  }
  if (const auto it = j.find("generate"); it != j.end()) {
    const std::string at = path + ".generate";
    only_keys(*it, at, {"count", "names", "prefix", "digits", "status", "firmware", "nicknames"});
    DeviceGenerator& g = p.generate;
    g.count = integer(*it, "count", at, 0, 0, 10'000'000);
    const std::string names = text(*it, "names", at, "sequence");
    if (names == "sequence") {
      g.names = NameStyle::sequence;
    } else if (names == "imei") {
      g.names = NameStyle::imei;
    } else {
      bad(at + ".names", "must be sequence or imei");
    }
    g.prefix = text(*it, "prefix", at, "dev");
    g.digits = static_cast<int>(integer(*it, "digits", at, 6, 1, 20));
    if (g.names == NameStyle::sequence && g.count > 0) {
      const std::string last = std::to_string(g.count);
      const std::size_t width =
          std::max<std::size_t>(last.size(), static_cast<std::size_t>(g.digits));
      if (!valid_device_name(g.prefix + std::string(width, '0'))) {
        bad(at + ".prefix", "prefix + index must be a valid DeviceName (4-32 of [A-Za-z0-9_-@.:])");
      }
    }
    if (const auto st = it->find("status"); st != it->end()) {
      g.status = status_mix(*st, at + ".status");
    }
    g.firmware = text(*it, "firmware", at, "");
    if (const auto nk = it->find("nicknames"); nk != it->end()) {
      const std::string nat = at + ".nicknames";
      if (!nk->is_object() || nk->empty()) {
        bad(nat, "expected an object of nickname: weight");
      }
      double sum = 0;
      for (const auto& item : nk->items()) {
        if (!valid_nickname(item.key())) {
          bad(nat + "." + item.key(), "must be 4-64 units of letters, digits, _ or CJK (2 units)");
        }
        if (!item.value().is_number() || item.value().get<double>() < 0) {
          bad(nat + "." + item.key(), "expected a weight >= 0");
        }
        sum += item.value().get<double>();
        g.nicknames.push_back(NicknameWeight{item.key(), item.value().get<double>()});
      }
      if (sum <= 0) {
        bad(nat, "at least one weight must be > 0");
      }
    }
  }
  return p;
}

double number(const json& obj,
              const std::string& key,
              const std::string& path,
              double fallback,
              double min,
              double max) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_number()) {
    bad(path + "." + key, "expected a number");
  }
  const double v = it->get<double>();
  if (!(v >= min && v <= max)) {
    auto text = [](double x) {
      std::ostringstream out;
      out << x;
      return out.str();
    };
    bad(path + "." + key, "must be " + text(min) + ".." + text(max));
  }
  return v;
}

OtaScenario ota_scenario(const json& j, const std::string& path) {
  only_keys(j, path, {"speed", "failure_rate", "offline_rate", "failure"});
  OtaScenario o;
  if (const auto sp = j.find("speed"); sp != j.end()) {
    const std::string at = path + ".speed";
    only_keys(*sp, at, {"pickup_s", "download_s", "verify_s", "burn_s", "jitter"});
    constexpr double k_day = 86400;
    o.pickup_s = number(*sp, "pickup_s", at, o.pickup_s, 0, k_day);
    o.download_s = number(*sp, "download_s", at, o.download_s, 0, k_day);
    o.verify_s = number(*sp, "verify_s", at, o.verify_s, 0, k_day);
    o.burn_s = number(*sp, "burn_s", at, o.burn_s, 0, k_day);
    o.jitter = number(*sp, "jitter", at, o.jitter, 0, 1);
  }
  o.failure_rate = number(j, "failure_rate", path, 0, 0, 1);
  o.offline_rate = number(j, "offline_rate", path, 0, 0, 1);
  if (const auto fs = j.find("failure"); fs != j.end()) {
    if (!fs->is_array()) {
      bad(path + ".failure", "expected a list");
    }
    for (std::size_t i = 0; i < fs->size(); ++i) {
      const json& f = (*fs)[i];
      const std::string at = path + ".failure[" + std::to_string(i) + "]";
      only_keys(f, at, {"match", "rate", "step", "desc"});
      OtaFailureGroup g;
      if (const auto m = f.find("match"); m != f.end()) {
        const std::string mat = at + ".match";
        only_keys(*m, mat, {"name_prefix", "nickname_prefix", "firmware", "product_key"});
        g.name_prefix = text(*m, "name_prefix", mat, "");
        g.nickname_prefix = text(*m, "nickname_prefix", mat, "");
        g.has_firmware = m->contains("firmware");
        g.firmware = text(*m, "firmware", mat, "");
        g.product_key = text(*m, "product_key", mat, "");
      }
      if (!f.contains("rate")) {
        bad(at + ".rate", "required");
      }
      g.rate = number(f, "rate", at, 0, 0, 1);
      const std::string step = text(f, "step", at, "any");
      if (step == "any") {
        g.step = OtaFailStep::any;
      } else if (step == "upgrade") {
        g.step = OtaFailStep::upgrade;
      } else if (step == "download") {
        g.step = OtaFailStep::download;
      } else if (step == "verify") {
        g.step = OtaFailStep::verify;
      } else if (step == "burn") {
        g.step = OtaFailStep::burn;
      } else {
        bad(at + ".step", "must be any, upgrade, download, verify or burn");
      }
      g.desc = text(f, "desc", at, "");
      if (g.desc.size() > 256) {
        bad(at + ".desc", "at most 256 characters");
      }
      o.failure.push_back(std::move(g));
    }
  }
  o.json_text = j.dump();
  return o;
}

Scenario scenario(const json& j) {
  only_keys(
      j, "$", {"region", "iot_instance_id", "epoch", "access_keys", "products", "groups", "ota"});
  Scenario s;
  s.region = text(j, "region", "$", "cn-shanghai");
  s.iot_instance_id = text(j, "iot_instance_id", "$", "");
  if (const std::string epoch = text(j, "epoch", "$", ""); !epoch.empty()) {
    const auto ms = parse_iso_utc(epoch);
    if (!ms) {
      bad("$.epoch", "expected YYYY-MM-DDThh:mm:ss[.fff]Z");
    }
    s.epoch_ms = *ms;
  }
  const auto aks = j.find("access_keys");
  if (aks == j.end() || !aks->is_array() || aks->empty()) {
    bad("$.access_keys", "expected a non-empty list");
  }
  std::set<std::string> ak_ids;
  for (std::size_t i = 0; i < aks->size(); ++i) {
    const std::string at = "$.access_keys[" + std::to_string(i) + "]";
    only_keys((*aks)[i], at, {"id", "secret", "account"});
    ScenarioAccessKey ak;
    ak.id = text((*aks)[i], "id", at, "");
    ak.secret = text((*aks)[i], "secret", at, "");
    if (ak.id.empty() || ak.secret.empty()) {
      bad(at, "id and secret are required");
    }
    ak.account = text((*aks)[i], "account", at, ak.id);
    if (!ak_ids.insert(ak.id).second) {
      bad(at + ".id", "duplicate AccessKeyId " + ak.id);
    }
    s.access_keys.push_back(std::move(ak));
  }
  if (const auto ps = j.find("products"); ps != j.end()) {
    if (!ps->is_array()) {
      bad("$.products", "expected a list");
    }
    std::set<std::string> keys;
    for (std::size_t i = 0; i < ps->size(); ++i) {
      const std::string at = "$.products[" + std::to_string(i) + "]";
      ScenarioProduct p = product((*ps)[i], at);
      if (!keys.insert(p.product_key).second) {
        bad(at + ".product_key", "duplicate ProductKey " + p.product_key);
      }
      std::set<std::string> names;
      for (const ScenarioDevice& d : p.devices) {
        if (!names.insert(d.name).second) {
          bad(at + ".devices", "duplicate DeviceName " + d.name);
        }
      }
      s.products.push_back(std::move(p));
    }
  }
  if (const auto gs = j.find("groups"); gs != j.end()) {
    if (!gs->is_array()) {
      bad("$.groups", "expected a list");
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < gs->size(); ++i) {
      const std::string at = "$.groups[" + std::to_string(i) + "]";
      only_keys((*gs)[i], at, {"name", "description", "dynamic_tag"});
      ScenarioGroup g;
      g.name = text((*gs)[i], "name", at, "");
      if (g.name.empty() || g.name.size() > 30) {
        bad(at + ".name", "1-30 characters");
      }
      if (!names.insert(g.name).second) {
        bad(at + ".name", "duplicate group name " + g.name);
      }
      g.description = text((*gs)[i], "description", at, "");
      if (const std::string rule = text((*gs)[i], "dynamic_tag", at, ""); !rule.empty()) {
        const auto eq = rule.find('=');
        if (eq == std::string::npos || eq == 0) {
          bad(at + ".dynamic_tag", "expected KEY=VALUE (the tag its devices carry)");
        }
        g.rule_key = rule.substr(0, eq);
        g.rule_value = rule.substr(eq + 1);
      }
      s.groups.push_back(std::move(g));
    }
  }
  for (std::size_t pi = 0; pi < s.products.size(); ++pi) {
    for (const ScenarioDevice& d : s.products[pi].devices) {
      for (const std::string& name : d.groups) {
        const auto it = std::find_if(
            s.groups.begin(), s.groups.end(), [&](const auto& g) { return g.name == name; });
        if (it == s.groups.end()) {
          bad("$.products[" + std::to_string(pi) + "].devices (" + d.name + ").groups",
              "no group " + name + " in $.groups");
        }
        if (it->dynamic()) {
          bad("$.products[" + std::to_string(pi) + "].devices (" + d.name + ").groups",
              "group " + name + " is dynamic: its devices are those with tag " + it->rule_key +
                  "=" + it->rule_value);
        }
      }
    }
  }
  if (const auto ota = j.find("ota"); ota != j.end()) {
    s.ota = ota_scenario(*ota, "$.ota");
  }
  return s;
}

} // namespace

Result<Scenario> parse_scenario(std::string_view json_text) {
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) {
    return fail(ErrorKind::usage, "scenario: not valid JSON");
  }
  try {
    return scenario(j);
  } catch (const Bad& e) {
    return fail(ErrorKind::usage, "scenario: " + e.message);
  }
}

Result<OtaScenario> parse_ota_scenario(std::string_view json_text) {
  if (json_text.empty()) {
    return OtaScenario{};
  }
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) {
    return fail(ErrorKind::usage, "ota options: not valid JSON");
  }
  try {
    return ota_scenario(j, "$.ota");
  } catch (const Bad& e) {
    return fail(ErrorKind::usage, "scenario: " + e.message);
  }
}

Result<Scenario> load_scenario(const std::filesystem::path& path) {
  const auto text = IOT_TRY(core::read_file(path, "scenario"));
  return IOT_TRY_CTX(parse_scenario(text), path.string());
}

} // namespace iot::sim::cloud
