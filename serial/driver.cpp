// SPDX-License-Identifier: MIT
#include "serial/driver.hpp"

#include "core/mask.hpp"
#include "core/validate.hpp"

#include <array>
#include <charconv>
#include <regex>
#include <set>

namespace iot::serial {
namespace {

using std::chrono::milliseconds;

constexpr std::array<std::string_view, 7> k_identity_order = {
    "imei", "mac", "iccid", "firmware", "manufacturer", "model", "sn"};

std::string field_label(std::string_view field) {
  if (field == "pk") {
    return "ProductKey";
  }
  if (field == "dn") {
    return "DeviceName";
  }
  if (field == "ds") {
    return "DeviceSecret";
  }
  return "ProductSecret";
}

bool field_is_secret(std::string_view field) {
  return field == "ds" || field == "ps";
}

std::set<std::string> placeholders_in(std::string_view tmpl) {
  std::set<std::string> out;
  std::size_t pos = 0;
  while ((pos = tmpl.find('{', pos)) != std::string_view::npos) {
    const auto close = tmpl.find('}', pos);
    if (close == std::string_view::npos) {
      break;
    }
    out.emplace(tmpl.substr(pos + 1, close - pos - 1));
    pos = close + 1;
  }
  return out;
}

std::optional<int> to_int(std::string_view s) {
  while (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
  }
  while (!s.empty() && s.back() == ' ') {
    s.remove_suffix(1);
  }
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

struct QueryOutcome {
  bool absent = false;             // the absent pattern matched
  bool failed = false;             // non-OK answer or no line matched (optional query)
  std::string problem;             // why it failed, masked
  std::vector<std::string> groups; // [0] whole line, [1..] captures
  [[nodiscard]] std::string value() const {
    return groups.size() > 1 ? groups[1] : (groups.empty() ? std::string() : groups[0]);
  }
};

class ProfileDriver final : public ModuleDriver {
public:
  ProfileDriver(ModuleProfile profile, AtChannel& channel)
      : m_profile(std::move(profile)), m_channel(channel) {
    m_channel.set_line_ending(m_profile.line_ending);
  }

  std::string_view name() const override { return m_profile.name; }

  std::vector<Layout> layouts() const override {
    std::vector<Layout> out;
    for (const auto& l : m_profile.layouts) {
      if (auto p = parse_layout(l.name)) {
        out.push_back(*p);
      }
    }
    return out;
  }

  Layout default_layout() const override {
    return parse_layout(m_profile.default_layout).value_or(Layout::triplet);
  }

  Result<Identity> identify() override { return identify_fields(k_identity_order); }

  Result<Identity> identify_brief() override {
    constexpr std::array<std::string_view, 3> k_brief = {"imei", "mac", "iccid"};
    return identify_fields(k_brief);
  }

  template <std::size_t N>
  Result<Identity> identify_fields(const std::array<std::string_view, N>& fields) {
    Identity id;
    id.module = m_profile.name;
    for (auto field : fields) {
      auto it = m_profile.identity.find(std::string(field));
      if (it == m_profile.identity.end()) {
        continue;
      }
      for (const auto& q : it->second) {
        auto out = run_query(q);
        if (!out) {
          if (q.optional && out.error().kind == ErrorKind::module) {
            continue; // an optional query that timed out: try the next, keep going
          }
          return fail(out.error().context("identify " + std::string(field)));
        }
        if (out->absent) {
          break; // a definite "not set" (Luat: *CME ERROR: Missing SN)
        }
        if (out->failed) {
          continue;
        }
        assign(id, field, out->value());
        break;
      }
    }
    m_identified_imei = id.imei;
    return id;
  }

  Result<std::optional<Credentials>> read_credentials(Layout layout) override {
    auto spec = IOT_TRY(find_layout(layout));
    Credentials c;
    bool any = false;
    for (const auto& slot : spec->slots) {
      auto out = IOT_TRY_CTX(run_query(slot.read), "read " + slot.name);
      if (out.absent || out.failed) {
        continue;
      }
      for (const auto& [field, group] : slot.fields) {
        const std::string& v = out.groups[static_cast<std::size_t>(group)];
        any = any || !v.empty();
        field_ref(c, field) = v;
      }
    }
    if (!any) {
      return std::optional<Credentials>{};
    }
    if (spec->dn_is_imei) {
      auto imei = IOT_TRY(read_imei());
      c.device_name = imei;
    }
    return std::optional<Credentials>(std::move(c));
  }

  Result<std::optional<std::string>> read_secret_copy(Layout layout) override {
    auto spec = IOT_TRY(find_layout(layout));
    if (!spec->secret_copy) {
      return std::optional<std::string>{};
    }
    const ProfileSecretCopy& copy = *spec->secret_copy;
    auto out = IOT_TRY_CTX(run_query(copy.read), "read " + copy.name);
    if (out.absent || out.failed) {
      return std::optional<std::string>(std::string());
    }
    return std::optional<std::string>(out.groups[static_cast<std::size_t>(copy.ds_group)]);
  }

  Result<std::vector<PlannedCommand>> plan_write(const Credentials& creds, Layout layout) override {
    // The IMEI of the last identification will do for a plan; the write itself reads it again.
    auto plan = IOT_TRY(make_plan(creds, layout, ImeiSource::identified));
    std::vector<PlannedCommand> out;
    for (const auto& p : plan.steps) {
      const bool prompt = p.slot->method == WriteMethod::prompt;
      out.push_back({p.command, prompt ? p.value : std::string(), "write " + p.slot->name});
    }
    for (const auto& p : plan.steps) {
      out.push_back({p.slot->read.command, "", "read back " + p.slot->name});
    }
    return out;
  }

  Status write_credentials(const Credentials& creds, Layout layout) override {
    // Read right before writing: the module in the fixture must be the one the DN belongs to.
    auto plan = IOT_TRY(make_plan(creds, layout, ImeiSource::module));
    m_channel.add_secret(creds.device_secret);
    m_channel.add_secret(creds.product_secret);
    for (const auto& p : plan.steps) {
      IOT_TRY_CTX(p.slot->method == WriteMethod::prompt
                      ? m_channel.send_prompt_data(p.command, p.value, p.slot->write_timeout)
                      : m_channel.command_ok(p.command, p.slot->write_timeout),
                  "write " + p.slot->name);
    }
    for (const auto& p : plan.steps) {
      IOT_TRY(verify(*p.slot, plan.values));
    }
    return {};
  }

  Result<std::string> read_identity_key() override {
    if (m_profile.identity.contains("imei")) {
      return read_imei();
    }
    return read_identity_field("mac", "MAC");
  }

  Result<Health> health() override {
    Health h;
    if (m_profile.health == "none") {
      h.notes.emplace_back("module " + m_profile.name + " has no health queries");
      return h;
    }
    if (m_profile.health == "esp-wifi") {
      return wifi_health();
    }
    auto cpin = IOT_TRY(ask(h, "AT+CPIN?", "+CPIN:"));
    if (cpin) {
      h.sim = decode_cpin(*cpin);
    }
    auto csq = IOT_TRY(ask(h, "AT+CSQ", "+CSQ:"));
    if (csq && csq->ok()) {
      if (auto line = csq->line_with("+CSQ:")) {
        h.csq_rssi = parse_csq(*line);
        if (h.csq_rssi) {
          h.rssi_dbm = csq_to_dbm(*h.csq_rssi);
        }
      }
    }
    for (const auto& cmd : m_profile.registration_commands) {
      const std::string prefix = derive_prefix(cmd);
      auto reg = IOT_TRY(ask(h, cmd, prefix));
      if (!reg || !reg->ok()) {
        continue;
      }
      auto line = reg->line_with(prefix);
      auto stat = line ? parse_registration(*line) : std::nullopt;
      if (!stat) {
        continue;
      }
      if (!h.reg_stat || *stat == 1 || *stat == 5) {
        h.reg_stat = stat;
        h.reg_command = cmd;
      }
      if (*stat == 1 || *stat == 5) {
        break;
      }
    }
    if (h.reg_stat) {
      h.reg_status = reg_status_text(*h.reg_stat);
    }
    auto cgatt = IOT_TRY(ask(h, "AT+CGATT?", "+CGATT:"));
    if (cgatt && cgatt->ok()) {
      if (auto line = cgatt->line_with("+CGATT:")) {
        if (auto v = to_int(line->substr(7))) {
          h.attached = *v == 1;
        }
      }
    }
    auto cops = IOT_TRY(ask(h, "AT+COPS?", "+COPS:"));
    if (cops && cops->ok()) {
      if (auto line = cops->line_with("+COPS:")) {
        static const std::regex k_re(R"re(^\+COPS: *\d+(?:,\d+,"([^"]*)")?.*$)re");
        std::match_results<std::string_view::const_iterator> m;
        if (std::regex_match(line->begin(), line->end(), m, k_re) && m[1].matched) {
          h.operator_name = m[1].str();
        }
      }
    }
    return h;
  }

private:
  struct PlannedSlot {
    const ProfileSlot* slot;
    std::string value;
    std::string command;
  };
  struct WritePlan {
    std::map<std::string, std::string> values;
    std::vector<PlannedSlot> steps;
  };

  // Validates the values and renders every write command. Writes nothing (layouts whose
  // DeviceName is the IMEI read the IMEI to check it).
  enum class ImeiSource { module, identified };

  Result<WritePlan> make_plan(const Credentials& creds, Layout layout, ImeiSource imei_source) {
    auto spec = IOT_TRY(find_layout(layout));
    const ProfileLayout& l = *spec;
    WritePlan plan;
    plan.values = {{"pk", creds.product_key},
                   {"dn", creds.device_name},
                   {"ds", creds.device_secret},
                   {"ps", creds.product_secret}};
    const auto& vals = plan.values;
    IOT_TRY(validate(creds, l));
    if (l.dn_is_imei) {
      IOT_TRY(check_dn_is_imei(creds.device_name, imei_source));
    }
    for (const auto& slot : l.slots) {
      if (slot.optional && slot_fields_empty(slot, vals)) {
        continue;
      }
      PlannedSlot p{&slot, render_template(slot.value, vals), {}};
      if (slot.max_bytes != 0 && p.value.size() > slot.max_bytes) {
        std::string msg = "layout " + l.name + " of module " + m_profile.name + ": " + slot.name +
                          " would need " + std::to_string(p.value.size()) +
                          " bytes but holds at most " + std::to_string(slot.max_bytes);
        const auto used = placeholders_in(slot.value);
        if (used.size() > 1) {
          msg += " (";
          bool first = true;
          for (const auto& f : used) {
            msg += (first ? "" : " + ") + field_label(f) + " " + std::to_string(vals.at(f).size());
            first = false;
          }
          msg += " + separators)";
        }
        if (!slot.too_long_hint.empty()) {
          msg += " — " + slot.too_long_hint;
        }
        return fail(ErrorKind::usage, std::move(msg));
      }
      auto cmd_vals = vals;
      cmd_vals["value"] = p.value;
      cmd_vals["len"] = std::to_string(p.value.size());
      p.command = render_template(slot.write, cmd_vals);
      if (m_profile.max_command_bytes != 0 &&
          p.command.size() + m_profile.line_ending.size() > m_profile.max_command_bytes) {
        return fail(ErrorKind::usage,
                    "the command writing " + slot.name + " would be " +
                        std::to_string(p.command.size()) + " bytes; module " + m_profile.name +
                        " accepts at most " + std::to_string(m_profile.max_command_bytes) +
                        " — shorten the values");
      }
      IOT_TRY(check_no_control_bytes(p.command, "the command writing " + slot.name));
      plan.steps.push_back(std::move(p));
    }

    return plan;
  }

  Result<const ProfileLayout*> find_layout(Layout layout) const {
    const ProfileLayout* l = m_profile.layout(to_string(layout));
    if (l == nullptr) {
      std::string known;
      for (const auto& x : m_profile.layouts) {
        known += (known.empty() ? "" : ", ") + x.name;
      }
      return fail(ErrorKind::usage,
                  "module " + m_profile.name + " has no layout \"" +
                      std::string(to_string(layout)) + "\"; it supports: " + known);
    }
    return l;
  }

  static std::string& field_ref(Credentials& c, std::string_view field) {
    if (field == "pk") {
      return c.product_key;
    }
    if (field == "dn") {
      return c.device_name;
    }
    if (field == "ds") {
      return c.device_secret;
    }
    return c.product_secret;
  }

  static void assign(Identity& id, std::string_view field, std::string value) {
    if (field == "imei") {
      id.imei = std::move(value);
    } else if (field == "mac") {
      id.mac = std::move(value);
    } else if (field == "iccid") {
      id.iccid = std::move(value);
    } else if (field == "firmware") {
      id.firmware = std::move(value);
    } else if (field == "manufacturer") {
      id.manufacturer = std::move(value);
    } else if (field == "model") {
      id.model = std::move(value);
    } else if (field == "sn") {
      id.sn = std::move(value);
    }
  }

  static bool slot_fields_empty(const ProfileSlot& slot,
                                const std::map<std::string, std::string>& vals) {
    auto used = placeholders_in(slot.value);
    used.merge(placeholders_in(slot.write));
    for (const auto& f : used) {
      if (auto it = vals.find(f); it != vals.end() && !it->second.empty()) {
        return false;
      }
    }
    return true;
  }

  Status validate(const Credentials& c, const ProfileLayout& l) const {
    std::set<std::string> required;
    for (const auto& slot : l.slots) {
      if (slot.optional) {
        continue;
      }
      required.merge(placeholders_in(slot.value));
      required.merge(placeholders_in(slot.write));
    }
    if (l.dn_is_imei) {
      required.insert("dn");
    }
    const std::array<std::pair<const char*, const std::string*>, 4> fields = {
        {{"pk", &c.product_key},
         {"dn", &c.device_name},
         {"ds", &c.device_secret},
         {"ps", &c.product_secret}}};
    for (const auto& [key, value] : fields) {
      if (value->empty()) {
        if (required.contains(key)) {
          return fail(ErrorKind::usage,
                      field_label(key) + " is required for layout " + l.name + " of module " +
                          m_profile.name);
        }
        continue;
      }
      Status ok;
      const std::string_view k(key);
      if (k == "pk") {
        ok = core::validate_product_key(*value);
      } else if (k == "dn") {
        ok = core::validate_device_name(*value);
      } else if (k == "ds") {
        ok = core::validate_device_secret(*value);
      } else {
        ok = core::validate_product_secret(*value);
      }
      if (!ok) {
        return ok;
      }
    }
    return {};
  }

  Result<std::string> read_imei() { return read_identity_field("imei", "IMEI"); }

  Result<std::string> read_identity_field(const std::string& field, const std::string& label) {
    auto it = m_profile.identity.find(field);
    if (it == m_profile.identity.end() || it->second.empty()) {
      return fail(ErrorKind::config,
                  "profile " + m_profile.name + " has no identity." + field + " query");
    }
    for (const auto& q : it->second) {
      const auto out = IOT_TRY_CTX(run_query(q), "read " + label);
      if (!out.failed && !out.absent) {
        return out.value();
      }
    }
    return fail(ErrorKind::module,
                "read " + label + ": the module gave no " + label + " — check the module");
  }

  Status check_dn_is_imei(const std::string& dn, ImeiSource source) {
    const auto imei = IOT_TRY(source == ImeiSource::identified && !m_identified_imei.empty()
                                  ? Result<std::string>(m_identified_imei)
                                  : read_imei());
    if (auto ok = core::validate_imei(imei, "module IMEI"); !ok) {
      return fail(ErrorKind::module,
                  ok.error().message +
                      " (layout secret uses the IMEI as DeviceName, so it must be real and final "
                      "before the secret is written; or use --layout triplet)");
    }
    if (dn != imei) {
      return fail(ErrorKind::usage,
                  "DeviceName " + dn + " is not this module's IMEI " + imei +
                      ": layout secret stores only the DeviceSecret and the firmware uses the "
                      "IMEI as DeviceName — use the triplet registered for DeviceName " +
                      imei + ", or --layout triplet");
    }
    return {};
  }

  Status verify(const ProfileSlot& slot, const std::map<std::string, std::string>& vals) {
    ProfileQuery q = slot.read;
    q.optional = true;
    auto out = IOT_TRY_CTX(run_query(q), "read back " + slot.name);
    if (out.absent) {
      return fail(ErrorKind::module,
                  "read back " + slot.name +
                      ": the module reports it unset right after the write — "
                      "not burned; retry, or check the firmware");
    }
    if (out.failed) {
      return fail(ErrorKind::module,
                  "read back " + slot.name + ": " + out.problem +
                      " — not burned; retry, or check --module / the profile");
    }
    for (const auto& [field, group] : slot.fields) {
      const std::string& want = vals.at(field);
      const std::string& got = out.groups[static_cast<std::size_t>(group)];
      if (want == got) {
        continue;
      }
      const bool secret = field_is_secret(field);
      const auto show = [&](const std::string& v) {
        return "\"" + (secret ? core::mask_secret(v) : v) + "\" (" + std::to_string(v.size()) +
               " bytes)";
      };
      return fail(ErrorKind::module,
                  "read-back mismatch in " + slot.name + ": " + field_label(field) + " written " +
                      show(want) + " but the module holds " + show(got) +
                      " — not burned; retry, and if it persists replace the "
                      "module or check its firmware");
    }
    return {};
  }

  Result<QueryOutcome> run_query(const ProfileQuery& q) {
    CommandOptions opts;
    opts.expected_prefix = q.prefix;
    opts.strict = q.strict;
    opts.secret_response = q.secret;
    const auto r = IOT_TRY(m_channel.command(q.command, q.timeout, opts));
    QueryOutcome out;
    if (!r.ok()) {
      if (!q.optional) {
        return fail(ErrorKind::module, m_channel.mask(q.command) + ": " + r.final_line);
      }
      out.failed = true;
      out.problem = r.final_line;
      return out;
    }
    for (const auto& line : r.lines) {
      if (q.absent_re && std::regex_match(line, *q.absent_re)) {
        out.absent = true;
        return out;
      }
    }
    for (const auto& line : r.lines) {
      std::smatch m;
      if (std::regex_match(line, m, q.pattern_re)) {
        for (const auto& g : m) {
          out.groups.push_back(g.str());
        }
        return out;
      }
    }
    std::string answer;
    for (const auto& line : r.lines) {
      answer += (answer.empty() ? "" : " | ") + (q.secret ? core::mask_secret(line) : line);
    }
    out.failed = true;
    out.problem =
        "unexpected answer \"" + m_channel.mask(answer) + "\" to " + m_channel.mask(q.command);
    if (!q.optional) {
      return fail(ErrorKind::module, out.problem + " — is this the right --module?");
    }
    return out;
  }

  // A health query: port failures are errors, everything else becomes a note.
  Result<std::optional<AtResponse>>
  ask(Health& h, const std::string& cmd, const std::string& prefix) {
    CommandOptions opts;
    opts.expected_prefix = prefix;
    auto r = m_channel.command(cmd, milliseconds(3000), opts);
    if (!r) {
      if (r.error().kind != ErrorKind::module) {
        return fail(r.error().context("health"));
      }
      h.notes.push_back(r.error().message);
      return std::optional<AtResponse>{};
    }
    if (!r->ok()) {
      h.notes.push_back(cmd + ": " + r->final_line);
    }
    return std::optional<AtResponse>(std::move(*r));
  }

  Result<Health> wifi_health() {
    Health h;
    h.sim = "n/a";
    auto r = IOT_TRY(ask(h, "AT+CWJAP?", "+CWJAP:"));
    h.attached = false;
    h.reg_status = "not connected";
    h.reg_command = "AT+CWJAP?";
    if (r && r->ok()) {
      if (auto line = r->line_with("+CWJAP:")) {
        static const std::regex k_re(R"re(^\+CWJAP: *"([^"]*)","[^"]*",\d+,(-?\d+).*$)re");
        std::match_results<std::string_view::const_iterator> m;
        if (std::regex_match(line->begin(), line->end(), m, k_re)) {
          h.operator_name = m[1].str();
          h.rssi_dbm = to_int(m[2].str());
          h.attached = true;
          h.reg_status = "connected";
        }
      }
    }
    return h;
  }

  ModuleProfile m_profile;
  std::string m_identified_imei; // from the last identify(): plan_write checks against it
  AtChannel& m_channel;
};

} // namespace

std::string_view to_string(Layout layout) {
  return layout == Layout::secret ? "secret" : "triplet";
}

Result<Layout> parse_layout(std::string_view text) {
  if (text == "secret") {
    return Layout::secret;
  }
  if (text == "triplet") {
    return Layout::triplet;
  }
  return fail(ErrorKind::usage,
              "unknown layout \"" + std::string(text) + "\"; use secret or triplet");
}

std::optional<int> parse_csq(std::string_view line) {
  if (!line.starts_with("+CSQ:")) {
    return std::nullopt;
  }
  line.remove_prefix(5);
  const auto comma = line.find(',');
  return to_int(line.substr(0, comma));
}

std::optional<int> csq_to_dbm(int rssi) {
  if (rssi < 0 || rssi > 31) {
    return std::nullopt;
  }
  return -113 + 2 * rssi;
}

std::optional<int> parse_registration(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || line.empty() || line.front() != '+') {
    return std::nullopt;
  }
  std::string_view rest = line.substr(colon + 1);
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (parts.size() < 3) {
    const auto comma = rest.find(',', start);
    parts.push_back(
        rest.substr(start, comma == std::string_view::npos ? rest.npos : comma - start));
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  if (parts.size() == 1) {
    return to_int(parts[0]); // URC form "+CEREG: <stat>"
  }
  // Read form "<n>,<stat>[,…]". (A URC "<stat>,<tac>,…" has a quoted 2nd field: no int.)
  if (auto stat = to_int(parts[1])) {
    return stat;
  }
  return to_int(parts[0]);
}

std::string reg_status_text(int stat) {
  switch (stat) {
  case 0:
    return "not registered";
  case 1:
    return "home";
  case 2:
    return "searching";
  case 3:
    return "denied";
  case 4:
    return "unknown";
  case 5:
    return "roaming";
  case 6:
    return "home (SMS only)";
  case 7:
    return "roaming (SMS only)";
  case 8:
    return "emergency only";
  default:
    return "stat " + std::to_string(stat);
  }
}

std::string decode_cpin(const AtResponse& response) {
  if (response.ok()) {
    if (auto line = response.line_with("+CPIN:")) {
      std::string_view v = line->substr(6);
      while (!v.empty() && v.front() == ' ') {
        v.remove_prefix(1);
      }
      return std::string(v);
    }
    return {};
  }
  const std::string& t = response.error_text;
  if (t == "10" || t == "SIM not inserted") {
    return "NOT INSERTED";
  }
  if (t == "13" || t == "SIM failure") {
    return "FAILURE";
  }
  if (t == "14" || t == "SIM busy") {
    return "BUSY";
  }
  return t.empty() ? response.final_line : t;
}

std::unique_ptr<ModuleDriver> make_profile_driver(ModuleProfile profile, AtChannel& channel) {
  return std::make_unique<ProfileDriver>(std::move(profile), channel);
}

Result<std::string> detect_module(AtChannel& channel) {
  std::string text;
  bool answered = false;
  for (const char* cmd : {"ATI", "AT+CGMR", "AT+GMR"}) {
    CommandOptions opts;
    opts.expected_prefix = "";
    auto r = channel.command(cmd, milliseconds(2000), opts);
    if (!r) {
      if (r.error().kind != ErrorKind::module) {
        return fail(r.error().context("identify module"));
      }
      continue;
    }
    answered = true;
    if (r->ok()) {
      for (const auto& l : r->lines) {
        text += l;
        text += '\n';
      }
    }
  }
  if (!answered) {
    return fail(ErrorKind::module,
                "identify module: no answer to ATI, AT+CGMR or AT+GMR — "
                "check power, cable and baud rate, or pass --module");
  }
  for (const auto& name : builtin_profile_names()) {
    auto p = IOT_TRY(builtin_profile(name));
    for (const auto& re : p.detect_re) {
      if (std::regex_search(text, re)) {
        return name;
      }
    }
  }
  std::string shown = text;
  for (auto& c : shown) {
    c = c == '\n' ? '|' : c;
  }
  if (shown.size() > 160) {
    shown.resize(160);
  }
  return fail(ErrorKind::module,
              "identify module: did not recognise \"" + shown +
                  "\" — pass --module luat|quectel|esp-at or --module-profile FILE");
}

Result<std::unique_ptr<ModuleDriver>>
make_driver(std::string_view name_or_auto,
            AtChannel& channel,
            const std::optional<std::filesystem::path>& profile_file) {
  if (profile_file) {
    auto p = IOT_TRY(load_profile(*profile_file));
    if (name_or_auto != "auto" && !name_or_auto.empty() && name_or_auto != p.name) {
      return fail(ErrorKind::usage,
                  "--module " + std::string(name_or_auto) + " conflicts with profile " +
                      profile_file->string() + " (name \"" + p.name + "\") — drop one of them");
    }
    return make_profile_driver(std::move(p), channel);
  }
  std::string name(name_or_auto);
  if (name.empty() || name == "auto") {
    auto detected = IOT_TRY(detect_module(channel));
    name = detected;
  }
  auto p = IOT_TRY(builtin_profile(name));
  return make_profile_driver(std::move(p), channel);
}

} // namespace iot::serial
