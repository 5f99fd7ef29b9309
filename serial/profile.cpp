// SPDX-License-Identifier: MIT
#include "serial/profile.hpp"

#include "core/file.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace iot::serial {
namespace {

using nlohmann::json;

// Thrown inside the parser only, turned into a config Error at the boundary.
struct ProfileError {
  std::string message;
};

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw ProfileError{where + ": " + what};
}

const std::set<std::string, std::less<>> k_placeholders = {"pk", "dn", "ds", "ps", "value", "len"};
const std::set<std::string, std::less<>> k_fields = {"pk", "dn", "ds", "ps"};
const std::set<std::string, std::less<>> k_identity = {
    "imei", "mac", "iccid", "firmware", "manufacturer", "model", "sn"};

std::string get_string(const json& j,
                       const char* key,
                       const std::string& where,
                       bool required,
                       std::string fallback = {}) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) {
      bad(where, std::string("missing \"") + key + "\"");
    }
    return fallback;
  }
  if (!it->is_string()) {
    bad(where + "." + key, "must be a string");
  }
  return it->get<std::string>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end()) {
    return fallback;
  }
  if (!it->is_boolean()) {
    bad(where + "." + key, "must be true or false");
  }
  return it->get<bool>();
}

long long get_int(const json& j,
                  const char* key,
                  const std::string& where,
                  long long fallback,
                  long long lo,
                  long long hi) {
  auto it = j.find(key);
  if (it == j.end()) {
    return fallback;
  }
  if (!it->is_number_integer() || it->get<long long>() < lo || it->get<long long>() > hi) {
    bad(where + "." + key,
        "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return it->get<long long>();
}

std::regex compile(const std::string& pattern, const std::string& where) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    bad(where, "invalid regular expression \"" + pattern + "\": " + e.what());
  }
}

void check_template(const std::string& tmpl, const std::string& where) {
  std::size_t pos = 0;
  while ((pos = tmpl.find('{', pos)) != std::string::npos) {
    const auto close = tmpl.find('}', pos);
    if (close == std::string::npos) {
      bad(where, "unclosed '{' in \"" + tmpl + "\"");
    }
    const std::string name = tmpl.substr(pos + 1, close - pos - 1);
    if (!k_placeholders.contains(name)) {
      bad(where, "unknown placeholder {" + name + "}; known: {pk} {dn} {ds} {ps} {value} {len}");
    }
    pos = close + 1;
  }
  for (char c : tmpl) {
    if (static_cast<unsigned char>(c) < 0x20) {
      bad(where, "control character in template (the line ending is added by the channel)");
    }
  }
}

ProfileQuery parse_query(const json& j, const std::string& where, long long default_timeout) {
  if (!j.is_object()) {
    bad(where, "must be an object with \"command\" and \"pattern\"");
  }
  ProfileQuery q;
  q.command = get_string(j, "command", where, true);
  check_template(q.command, where + ".command");
  if (auto it = j.find("prefix"); it != j.end()) {
    if (!it->is_string()) {
      bad(where + ".prefix", "must be a string (\"\" for replies without a prefix)");
    }
    q.prefix = it->get<std::string>();
  }
  q.strict = get_bool(j, "strict", where, false);
  q.pattern = get_string(j, "pattern", where, true);
  q.pattern_re = compile(q.pattern, where + ".pattern");
  q.absent = get_string(j, "absent", where, false);
  if (!q.absent.empty()) {
    q.absent_re = compile(q.absent, where + ".absent");
  }
  q.timeout =
      std::chrono::milliseconds(get_int(j, "timeout_ms", where, default_timeout, 10, 600000));
  q.secret = get_bool(j, "secret", where, false);
  q.optional = get_bool(j, "optional", where, true);
  return q;
}

std::vector<ProfileQuery> parse_query_list(const json& j, const std::string& where, long long t) {
  std::vector<ProfileQuery> out;
  if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) {
      out.push_back(parse_query(j[i], where + "[" + std::to_string(i) + "]", t));
    }
  } else {
    out.push_back(parse_query(j, where, t));
  }
  return out;
}

ProfileSlot
parse_slot(const json& j, const std::string& where, long long query_t, long long write_t) {
  if (!j.is_object()) {
    bad(where, "must be an object");
  }
  ProfileSlot s;
  s.name = get_string(j, "name", where, true);
  s.value = get_string(j, "value", where, false);
  check_template(s.value, where + ".value");
  if (s.value.find("{value}") != std::string::npos || s.value.find("{len}") != std::string::npos) {
    bad(where + ".value", "may use only {pk} {dn} {ds} {ps}");
  }
  s.max_bytes = static_cast<std::size_t>(get_int(j, "max_bytes", where, 0, 0, 1 << 20));
  s.too_long_hint = get_string(j, "too_long_hint", where, false);
  s.optional = get_bool(j, "optional", where, false);
  s.write = get_string(j, "write", where, true);
  check_template(s.write, where + ".write");
  const std::string method = get_string(j, "method", where, false, "plain");
  if (method == "plain") {
    s.method = WriteMethod::plain;
  } else if (method == "prompt") {
    s.method = WriteMethod::prompt;
    if (s.value.empty()) {
      bad(where + ".value", "a prompt-mode slot needs a value template (the bytes sent after >)");
    }
  } else {
    bad(where + ".method", "must be \"plain\" or \"prompt\", not \"" + method + "\"");
  }
  s.write_timeout = std::chrono::milliseconds(get_int(j, "timeout_ms", where, write_t, 10, 600000));
  auto read = j.find("read");
  if (read == j.end()) {
    bad(where, "missing \"read\" (every write is verified by reading it back)");
  }
  s.read = parse_query(*read, where + ".read", query_t);
  s.read.secret = true; // read-backs carry credentials
  auto fields = j.find("fields");
  if (fields == j.end() || !fields->is_object() || fields->empty()) {
    bad(where + ".fields", "must map credential fields to capture groups, e.g. {\"ds\": 1}");
  }
  const auto groups = s.read.pattern_re.mark_count();
  for (const auto& [k, v] : fields->items()) {
    if (!k_fields.contains(k)) {
      bad(where + ".fields", "unknown field \"" + k + "\"; known: pk dn ds ps");
    }
    if (!v.is_number_integer() || v.get<long long>() < 1 ||
        static_cast<std::size_t>(v.get<long long>()) > groups) {
      bad(where + ".fields." + k,
          "must be a capture group of read.pattern (1.." + std::to_string(groups) + ")");
    }
    s.fields[k] = v.get<int>();
  }
  return s;
}

ProfileSecretCopy parse_secret_copy(const json& j, const std::string& where, long long query_t) {
  if (!j.is_object()) {
    bad(where,
        "must be an object like {\"name\": \"NVM copy\", \"read\": {…}, \"fields\": {\"ds\": 1}}");
  }
  if (j.contains("write")) {
    bad(where + ".write",
        "a secret copy is written by the module's own software after it connects; iotfleet only "
        "reads it — remove \"write\"");
  }
  ProfileSecretCopy c;
  c.name = get_string(j, "name", where, true);
  if (c.name.empty()) {
    bad(where + ".name", "must not be empty (it names the copy in messages, e.g. \"NVM copy\")");
  }
  auto read = j.find("read");
  if (read == j.end()) {
    bad(where, "missing \"read\" (the query that reads the copy)");
  }
  c.read = parse_query(*read, where + ".read", query_t);
  c.read.secret = true; // the copy is a DeviceSecret
  auto fields = j.find("fields");
  if (fields == j.end() || !fields->is_object() || fields->size() != 1 || !fields->contains("ds")) {
    bad(where + ".fields",
        "must be {\"ds\": N}: the capture group of read.pattern holding the DeviceSecret");
  }
  const auto groups = c.read.pattern_re.mark_count();
  const auto& ds = fields->at("ds");
  if (!ds.is_number_integer() || ds.get<long long>() < 1 ||
      static_cast<std::size_t>(ds.get<long long>()) > groups) {
    bad(where + ".fields.ds",
        "must be a capture group of read.pattern (1.." + std::to_string(groups) + ")");
  }
  c.ds_group = ds.get<int>();
  return c;
}

ModuleProfile parse(const json& j) {
  if (!j.is_object()) {
    bad("(top level)", "must be a JSON object");
  }
  ModuleProfile p;
  p.name = get_string(j, "name", "(top level)", true);
  if (p.name.empty() || p.name == "auto") {
    bad("name", "must be a non-empty name other than \"auto\"");
  }
  p.description = get_string(j, "description", "(top level)", false);
  p.kind = get_string(j, "kind", "(top level)", false, "cellular");
  if (p.kind != "cellular" && p.kind != "wifi") {
    bad("kind", "must be \"cellular\" or \"wifi\"");
  }
  p.line_ending = get_string(j, "line_ending", "(top level)", false, "\r");
  if (p.line_ending != "\r" && p.line_ending != "\r\n") {
    bad("line_ending", "must be \"\\r\" or \"\\r\\n\"");
  }
  if (auto d = j.find("detect"); d != j.end()) {
    if (!d->is_array()) {
      bad("detect", "must be an array of regular expressions");
    }
    for (std::size_t i = 0; i < d->size(); ++i) {
      const std::string where = "detect[" + std::to_string(i) + "]";
      if (!(*d)[i].is_string()) {
        bad(where, "must be a string");
      }
      p.detect.push_back((*d)[i].get<std::string>());
      p.detect_re.push_back(compile(p.detect.back(), where));
    }
  }
  p.max_command_bytes =
      static_cast<std::size_t>(get_int(j, "max_command_bytes", "(top level)", 0, 0, 1 << 20));
  long long query_t = 2000;
  long long write_t = 5000;
  if (auto t = j.find("timeouts_ms"); t != j.end()) {
    query_t = get_int(*t, "query", "timeouts_ms", query_t, 10, 600000);
    write_t = get_int(*t, "write", "timeouts_ms", write_t, 10, 600000);
  }
  if (auto id = j.find("identity"); id != j.end()) {
    if (!id->is_object()) {
      bad("identity", "must be an object");
    }
    for (const auto& [k, v] : id->items()) {
      if (!k_identity.contains(k)) {
        bad("identity." + k,
            "unknown identity field; known: imei mac iccid firmware "
            "manufacturer model sn");
      }
      p.identity[k] = parse_query_list(v, "identity." + k, query_t);
    }
  }
  auto layouts = j.find("layouts");
  if (layouts == j.end() || !layouts->is_object() || layouts->empty()) {
    bad("layouts", "must define at least one layout (e.g. \"triplet\")");
  }
  for (const auto& [k, v] : layouts->items()) {
    const std::string where = "layouts." + k;
    if (k != "secret" && k != "triplet") {
      bad(where, "layout names are \"secret\" and \"triplet\"");
    }
    ProfileLayout l;
    l.name = k;
    l.dn_is_imei = get_bool(v, "dn_is_imei", where, false);
    if (l.dn_is_imei && !p.identity.contains("imei")) {
      bad(where + ".dn_is_imei", "needs identity.imei to read the IMEI");
    }
    auto slots = v.find("slots");
    if (slots == v.end() || !slots->is_array() || slots->empty()) {
      bad(where + ".slots", "must be a non-empty array");
    }
    for (std::size_t i = 0; i < slots->size(); ++i) {
      l.slots.push_back(
          parse_slot((*slots)[i], where + ".slots[" + std::to_string(i) + "]", query_t, write_t));
    }
    if (auto copy = v.find("secret_copy"); copy != v.end()) {
      l.secret_copy = parse_secret_copy(*copy, where + ".secret_copy", query_t);
    }
    p.layouts.push_back(std::move(l));
  }
  p.default_layout = get_string(j, "default_layout", "(top level)", false, p.layouts.front().name);
  if (p.layout(p.default_layout) == nullptr) {
    bad("default_layout", "\"" + p.default_layout + "\" is not one of the defined layouts");
  }
  if (auto h = j.find("health"); h != j.end()) {
    if (!h->is_object()) {
      bad("health", "must be an object like {\"type\": \"3gpp\"}");
    }
    p.health = get_string(*h, "type", "health", false, "3gpp");
    if (p.health != "3gpp" && p.health != "esp-wifi" && p.health != "none") {
      bad("health.type", "must be \"3gpp\", \"esp-wifi\" or \"none\"");
    }
    if (auto r = h->find("registration"); r != h->end()) {
      if (!r->is_array() || r->empty()) {
        bad("health.registration", "must be a non-empty array of commands");
      }
      p.registration_commands.clear();
      for (const auto& c : *r) {
        if (!c.is_string()) {
          bad("health.registration", "must contain strings");
        }
        p.registration_commands.push_back(c.get<std::string>());
      }
    }
  }
  return p;
}

} // namespace

const ProfileLayout* ModuleProfile::layout(std::string_view layout_name) const {
  for (const auto& l : layouts) {
    if (l.name == layout_name) {
      return &l;
    }
  }
  return nullptr;
}

Result<ModuleProfile> parse_profile(std::string_view text, std::string_view source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return fail(ErrorKind::config,
                std::string(source) + ": not valid JSON: " + e.what() +
                    " — see docs/module-profiles.md for the format");
  }
  try {
    return parse(doc);
  } catch (const ProfileError& e) {
    return fail(ErrorKind::config,
                std::string(source) + ": " + e.message + " (see docs/module-profiles.md)");
  } catch (const json::exception& e) {
    return fail(ErrorKind::config, std::string(source) + ": " + e.what());
  }
}

Result<ModuleProfile> load_profile(const std::filesystem::path& path) {
  constexpr std::uintmax_t k_max_profile_bytes = 1 << 20;
  const auto text = IOT_TRY(core::read_file(
      path, "module profile", {.kind = ErrorKind::config, .max_bytes = k_max_profile_bytes}));
  return parse_profile(text, "profile " + path.string());
}

Result<ModuleProfile> builtin_profile(std::string_view name) {
  const auto text = builtin_profile_json(name);
  if (text.empty()) {
    std::string known;
    for (const auto& n : builtin_profile_names()) {
      known += (known.empty() ? "" : ", ") + n;
    }
    return fail(ErrorKind::usage,
                "unknown module \"" + std::string(name) + "\"; built-in: " + known +
                    ", or auto, or --module-profile FILE");
  }
  return parse_profile(text, "built-in profile " + std::string(name));
}

std::string render_template(std::string_view tmpl,
                            const std::map<std::string, std::string>& values) {
  std::string out;
  std::size_t pos = 0;
  while (pos < tmpl.size()) {
    const auto open = tmpl.find('{', pos);
    if (open == std::string_view::npos) {
      break;
    }
    const auto close = tmpl.find('}', open);
    if (close == std::string_view::npos) {
      break;
    }
    out.append(tmpl.substr(pos, open - pos));
    const std::string key(tmpl.substr(open + 1, close - open - 1));
    if (auto it = values.find(key); it != values.end()) {
      out += it->second;
    } else {
      out.append(tmpl.substr(open, close - open + 1));
    }
    pos = close + 1;
  }
  out.append(tmpl.substr(std::min(pos, tmpl.size())));
  return out;
}

} // namespace iot::serial
