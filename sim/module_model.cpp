// SPDX-License-Identifier: MIT
#include "sim/module_model.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

namespace iot::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t k_max_line = 2048;      // longer command lines are answered with an error
constexpr std::size_t k_esp_max_line = 256;   // ESP-AT: "the whole command must be under 256 bytes"
constexpr std::size_t k_luat_sn_max = 64;     // at-modules.md §1.1
constexpr std::size_t k_quectel_pk_max = 256; // at-modules.md §2.1 (atat driver, UNVERIFIED)
constexpr std::size_t k_quectel_dn_max = 128;
constexpr std::size_t k_quectel_ds_max = 128;
constexpr std::size_t k_nvs_name_max = 15;       // ESP-IDF NVS namespace / key length
constexpr std::size_t k_sysmfg_value_max = 4000; // NVS string / blob size we accept
constexpr Duration k_line_gap = 1ms;             // between the lines of one reply

// Firmware identity strings (ATI / AT+CGMR / AT+GMR). UNVERIFIED details are listed in
// docs/simulator.md.
constexpr std::string_view k_luat_revision = "AirM2M_Air724UG_V409_LTE_AT";
constexpr std::string_view k_quectel_revision = "EC200UCNAAR02A09M08";

struct Arg {
  std::string text;
  bool quoted = false;
};

// Splits a parameter list. Quoted strings run to the next '"' (Luat, Quectel: no escape rule is
// documented) or honour ESP-AT's \" \\ \, escapes. After a closing quote only ',' or the end may
// follow. Unquoted values run to the next ',' and lose surrounding spaces. nullopt = malformed.
std::optional<std::vector<Arg>> split_args(std::string_view s, bool esp_escapes) {
  std::vector<Arg> args;
  std::size_t i = 0;
  while (true) {
    while (i < s.size() && s[i] == ' ') {
      ++i;
    }
    Arg arg;
    if (i < s.size() && s[i] == '"') {
      arg.quoted = true;
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (esp_escapes && c == '\\' && i < s.size()) {
          arg.text.push_back(s[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          arg.text.push_back(c);
        }
      }
      if (!closed) {
        return std::nullopt;
      }
      while (i < s.size() && s[i] == ' ') {
        ++i;
      }
      if (i < s.size() && s[i] != ',') {
        return std::nullopt;
      }
    } else {
      const std::size_t end = std::min(s.find(',', i), s.size());
      std::string_view raw = s.substr(i, end - i);
      while (!raw.empty() && raw.back() == ' ') {
        raw.remove_suffix(1);
      }
      if (raw.find('"') != std::string_view::npos) {
        return std::nullopt;
      }
      arg.text = std::string(raw);
      i = end;
    }
    args.push_back(std::move(arg));
    if (i >= s.size()) {
      return args;
    }
    ++i; // the ','
  }
}

std::optional<long long> parse_int(std::string_view s) {
  long long value = 0;
  const auto* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (ec != std::errc() || ptr != end || s.empty()) {
    return std::nullopt;
  }
  return value;
}

std::string_view cme_text(int code) {
  switch (code) {
  case 3:
    return "operation not allowed";
  case 4:
    return "operation not supported";
  case 10:
    return "SIM not inserted";
  case 23:
    return "memory failure";
  case 24:
    return "text string too long";
  case 25:
    return "invalid characters in text string";
  case 50:
    return "Incorrect parameters";
  default:
    return "unknown";
  }
}

constexpr int k_cme_not_allowed = 3;
constexpr int k_cme_not_supported = 4;
constexpr int k_cme_memory_failure = 23;
constexpr int k_cme_too_long = 24;
constexpr int k_cme_bad_param = 50;

std::vector<std::string_view> boot_banner(ModuleKind kind) {
  switch (kind) {
  case ModuleKind::luat:
    return {"RDY", "+CPIN: READY", "SMS Ready"};
  case ModuleKind::quectel:
    return {"RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"};
  case ModuleKind::esp_at:
    return {"ready"};
  }
  return {};
}

std::vector<std::string_view> random_urcs(ModuleKind kind) {
  switch (kind) {
  case ModuleKind::luat:
    return {"+CGEV: ME PDN ACT 1",
            "^MODE: 17,17",
            "+E_UTRAN Service",
            "+NITZ: 2024/05/01,08:00:00+32,0",
            "+CPIN: READY"};
  case ModuleKind::quectel:
    return {"+CGEV: ME PDN ACT 1", "+QIND: \"csq\",20,99", "+QUSIM: 1", "+CPIN: READY"};
  case ModuleKind::esp_at:
    return {"WIFI CONNECTED", "WIFI GOT IP", "WIFI DISCONNECT"};
  }
  return {};
}

std::string framed(std::string_view line) {
  std::string out = "\r\n";
  out += line;
  out += "\r\n";
  return out;
}

} // namespace

int ModuleModel::default_cmee(ModuleKind kind) {
  return kind == ModuleKind::quectel ? 1 : 0;
}

ModuleModel::ModuleModel(ModelConfig config, Nvm nvm, std::uint64_t seed, PersistFn persist)
    : m_config(config), m_nvm(std::move(nvm)), m_rng(seed), m_persist(std::move(persist)) {
  m_cmee = default_cmee(m_config.kind);
  m_rssi = std::uniform_int_distribution<int>(16, 28)(m_rng);
}

// ---- time and scheduling -------------------------------------------------------------------

Duration ModuleModel::uniform(Duration lo, Duration hi) {
  if (hi <= lo) {
    return lo;
  }
  std::uniform_int_distribution<Duration::rep> dist(lo.count(), hi.count());
  return Duration(dist(m_rng));
}

Duration ModuleModel::nvm_latency() {
  return uniform(m_config.nvm_latency_min, m_config.nvm_latency_max);
}

void ModuleModel::schedule(TimePoint at, std::string bytes) {
  if (bytes.empty()) {
    return;
  }
  // Stable insertion by time: a URC or an echo lands between the lines of a reply that is
  // still being produced, never inside a line.
  const auto pos = std::upper_bound(
      m_out.begin(), m_out.end(), at, [](TimePoint t, const Chunk& c) { return t < c.at; });
  m_out.insert(pos, Chunk{at, std::move(bytes)});
}

void ModuleModel::schedule_urc_timer(TimePoint from) {
  if (m_config.urcs_per_minute <= 0) {
    m_next_urc.reset();
    return;
  }
  std::exponential_distribution<double> gap(m_config.urcs_per_minute / 60.0);
  const double seconds = std::min(gap(m_rng), 24.0 * 3600.0);
  m_next_urc = from + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

void ModuleModel::power_on(TimePoint now, Duration boot_delay) {
  m_power = Power::off;
  m_power_at = now + boot_delay;
  m_busy_until = m_power_at;
  m_next_urc.reset();
}

void ModuleModel::boot(TimePoint at) {
  m_power = Power::running;
  m_echo = true;
  m_cmee = default_cmee(m_config.kind);
  m_line.clear();
  m_line_overflow = false;
  m_pending.clear();
  m_prompt.reset();
  m_busy_until = at;
  if (m_config.volatile_aliauth) {
    m_nvm.aliauth.clear(); // RAM only: gone at power-on, the file keeps nothing to reload
  }
  // The banner comes out over the first second or so, like a real module's init sequence; the
  // module already answers commands meanwhile.
  const auto banner = boot_banner(m_config.kind);
  for (std::size_t i = 0; i < banner.size(); ++i) {
    schedule(at + std::chrono::milliseconds(250) * static_cast<int>(i), framed(banner[i]));
  }
  schedule_urc_timer(at);
}

void ModuleModel::reboot(TimePoint at, Duration delay) {
  m_power = Power::off;
  m_power_at = at + delay;
  m_busy_until = m_power_at;
  m_line.clear();
  m_pending.clear();
  m_prompt.reset();
  // A module that resets stops talking: whatever it had not yet sent is lost.
  std::erase_if(m_out, [at](const Chunk& c) { return c.at > at; });
}

// ---- input --------------------------------------------------------------------------------

void ModuleModel::feed(std::string_view bytes, TimePoint now) {
  advance(now);
  std::string echo;
  for (const char c : bytes) {
    if (m_power != Power::running) {
      continue; // not listening: the byte is lost
    }
    if (m_prompt) {
      // Raw data after '>': no echo, no escaping, exactly `length` bytes.
      m_prompt->data.push_back(c);
      if (m_prompt->data.size() >= m_prompt->length) {
        schedule(now, std::move(echo));
        echo.clear();
        finish_prompt(std::max(now, m_busy_until));
      }
      continue;
    }
    if (m_echo) {
      echo.push_back(c);
    }
    if (c == '\r') {
      if (m_line_overflow) {
        m_pending.push_back(PendingLine{now, std::string("AT\x01overflow")});
      } else {
        m_pending.push_back(PendingLine{now, m_line});
      }
      m_line.clear();
      m_line_overflow = false;
    } else if (c == '\n') {
      // S3 (CR) ends a command; a following LF is not part of the next one.
    } else if (c == '\b' || c == 0x7f) {
      if (!m_line.empty()) {
        m_line.pop_back();
      }
    } else if (m_line.size() < k_max_line) {
      m_line.push_back(c);
    } else {
      m_line_overflow = true;
    }
  }
  schedule(now, std::move(echo));
  advance(now);
}

void ModuleModel::advance(TimePoint now) {
  if (m_power == Power::off && now >= m_power_at) {
    boot(m_power_at);
  }
  if (m_power == Power::stuck && now >= m_power_at) {
    m_power = Power::running;
    m_busy_until = m_power_at;
  }
  while (m_power == Power::running && !m_prompt && !m_pending.empty()) {
    const PendingLine& next = m_pending.front();
    const TimePoint at = std::max(m_busy_until, next.arrived);
    if (at > now) {
      break;
    }
    PendingLine line = std::move(m_pending.front());
    m_pending.pop_front();
    if (m_config.kind == ModuleKind::esp_at && line.arrived < m_busy_until) {
      // ESP-AT does not queue: input during a command is refused with "busy p...".
      schedule(line.arrived, framed("busy p..."));
      continue;
    }
    process_line(line.text, at);
    if (m_power == Power::off && now >= m_power_at) {
      boot(m_power_at);
    }
  }
  while (m_next_urc && *m_next_urc <= now) {
    const TimePoint at = *m_next_urc;
    if (m_power == Power::running && !m_prompt) {
      const auto urcs = random_urcs(m_config.kind);
      std::uniform_int_distribution<std::size_t> pick(0, urcs.size() - 1);
      schedule(at, framed(urcs[pick(m_rng)]));
      ++m_stats.urcs;
    }
    schedule_urc_timer(at);
  }
}

std::string ModuleModel::take_due(TimePoint now) {
  advance(now);
  std::string out;
  while (!m_out.empty() && m_out.front().at <= now) {
    out += m_out.front().bytes;
    m_out.pop_front();
  }
  return out;
}

std::optional<TimePoint> ModuleModel::next_deadline() const {
  std::optional<TimePoint> best;
  auto consider = [&best](TimePoint t) {
    if (!best || t < *best) {
      best = t;
    }
  };
  if (!m_out.empty()) {
    consider(m_out.front().at);
  }
  if (m_power == Power::off || m_power == Power::stuck) {
    consider(m_power_at);
  }
  if (m_power == Power::running && !m_prompt && !m_pending.empty()) {
    consider(std::max(m_busy_until, m_pending.front().arrived));
  }
  if (m_next_urc) {
    consider(*m_next_urc);
  }
  return best;
}

// ---- faults and replies --------------------------------------------------------------------

ModuleModel::FaultDraw ModuleModel::draw_faults() {
  // Always five draws, so the RNG stream (and every later decision) depends only on the seed
  // and the sequence of commands, not on which rates are set.
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const FaultRates& r = m_config.faults;
  FaultDraw f;
  f.reboot = u(m_rng) < r.reboot;
  f.stuck = u(m_rng) < r.stuck;
  f.drop = u(m_rng) < r.drop;
  f.slow = u(m_rng) < r.slow;
  f.garble = u(m_rng) < r.garble;
  return f;
}

bool ModuleModel::swallowed_by_fault(const FaultDraw& f, TimePoint at) {
  if (f.reboot) {
    ++m_stats.reboots;
    reboot(at, uniform(900ms, 1100ms));
    return true;
  }
  if (f.stuck) {
    ++m_stats.stuck;
    m_power = Power::stuck;
    m_power_at = at + uniform(3s, 8s);
    m_pending.clear();
    m_line.clear();
    return true;
  }
  return false;
}

void ModuleModel::process_line(const std::string& line, TimePoint at) {
  if (line.size() < 2 || !core::iequals(line.substr(0, 2), "AT")) {
    return; // V.250: everything up to "AT" is ignored (also empty lines, a stray LF/CR)
  }
  ++m_stats.commands;
  const FaultDraw f = draw_faults();
  if (swallowed_by_fault(f, at)) {
    return;
  }
  const Reply reply = execute(line);
  Duration delay = uniform(2ms, 8ms);
  if (reply.nvm_write) {
    delay += nvm_latency();
  }
  if (f.slow) {
    ++m_stats.slow;
    delay += uniform(1s, 3s);
  }
  const TimePoint reply_at = at + delay;
  m_busy_until = reply_at + k_line_gap * static_cast<int>(reply.lines.size());
  if (f.drop) {
    ++m_stats.dropped;
  } else {
    emit_reply(reply, reply_at, f.garble);
  }
  if (reply.reboot_after) {
    reboot(m_busy_until + 1ms, uniform(900ms, 1100ms)); // asked for by the host, not a fault
  }
}

void ModuleModel::finish_prompt(TimePoint at) {
  PromptWrite write = std::move(*m_prompt);
  m_prompt.reset();
  const FaultDraw f = draw_faults();
  if (swallowed_by_fault(f, at)) {
    return;
  }
  Nvm next = m_nvm;
  next.sysmfg[write.ns][write.key] = MfgValue{write.type, std::move(write.data)};
  const Reply reply = commit(std::move(next));
  Duration delay = uniform(2ms, 8ms) + (reply.nvm_write ? nvm_latency() : Duration(0));
  if (f.slow) {
    ++m_stats.slow;
    delay += uniform(1s, 3s);
  }
  m_busy_until = at + delay;
  if (f.drop) {
    ++m_stats.dropped;
  } else {
    emit_reply(reply, at + delay, f.garble);
  }
}

void ModuleModel::emit_reply(const Reply& reply, TimePoint at, bool garble) {
  std::vector<std::string> chunks;
  for (const auto& line : reply.lines) {
    chunks.push_back(framed(line));
  }
  if (reply.final == Final::ok) {
    chunks.push_back(framed("OK"));
  } else if (reply.final == Final::error) {
    chunks.push_back(framed(reply.error_line));
  }
  if (reply.prompt) {
    chunks.emplace_back("\r\n>");
  }
  if (garble) {
    ++m_stats.garbled;
    std::size_t total = 0;
    for (const auto& c : chunks) {
      total += c.size();
    }
    const int edits = std::uniform_int_distribution<int>(1, 3)(m_rng);
    for (int e = 0; e < edits && total > 0; ++e) {
      std::size_t pos = std::uniform_int_distribution<std::size_t>(0, total - 1)(m_rng);
      std::size_t idx = 0;
      while (pos >= chunks[idx].size()) {
        pos -= chunks[idx].size();
        ++idx;
      }
      const auto random_byte = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(m_rng));
      if (std::uniform_int_distribution<int>(0, 1)(m_rng) == 0) {
        const int bit = std::uniform_int_distribution<int>(0, 7)(m_rng);
        chunks[idx][pos] = static_cast<char>(chunks[idx][pos] ^ (1 << bit));
      } else {
        chunks[idx].insert(chunks[idx].begin() + static_cast<std::ptrdiff_t>(pos), random_byte);
        ++total;
      }
    }
  }
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    schedule(at + k_line_gap * static_cast<int>(i), std::move(chunks[i]));
  }
}

ModuleModel::Reply ModuleModel::ok(std::vector<std::string> lines) const {
  Reply r;
  r.lines = std::move(lines);
  return r;
}

ModuleModel::Reply ModuleModel::cme_error(int code) const {
  Reply r;
  r.final = Final::error;
  if (m_config.kind == ModuleKind::esp_at || m_cmee == 0) {
    r.error_line = "ERROR";
  } else if (m_cmee == 1) {
    r.error_line = "+CME ERROR: " + std::to_string(code);
  } else {
    r.error_line = "+CME ERROR: " + std::string(cme_text(code));
  }
  return r;
}

ModuleModel::Reply ModuleModel::commit(Nvm next) {
  if (m_persist) {
    if (const Status saved = m_persist(next); !saved) {
      return cme_error(k_cme_memory_failure);
    }
  }
  m_nvm = std::move(next);
  ++m_stats.nvm_writes;
  Reply r = ok();
  r.nvm_write = true;
  return r;
}

Status ModuleModel::overwrite_sn_storage(std::string value) {
  std::size_t limit = k_luat_sn_max;
  if (m_config.kind == ModuleKind::quectel) {
    limit = k_quectel_ds_max;
  } else if (m_config.kind == ModuleKind::esp_at) {
    limit = k_sysmfg_value_max;
  }
  if (value.empty() || value.size() > limit) {
    return fail(ErrorKind::usage,
                "the " + std::string(to_string(m_config.kind)) + " SN storage holds 1-" +
                    std::to_string(limit) + " bytes, got " + std::to_string(value.size()));
  }
  Nvm next = m_nvm;
  switch (m_config.kind) {
  case ModuleKind::luat:
    next.sn = std::move(value);
    break;
  case ModuleKind::quectel:
    next.aliauth[0].device_secret = std::move(value);
    break;
  case ModuleKind::esp_at:
    next.sysmfg["aliyun-key"]["DeviceSecret"] = MfgValue{7, std::move(value)};
    break;
  }
  if (m_persist) {
    IOT_TRY(m_persist(next));
  }
  m_nvm = std::move(next);
  return {};
}

Status ModuleModel::simulate_connection() {
  if (m_config.kind != ModuleKind::luat) {
    return fail(ErrorKind::usage,
                "the secret copy (AT+NVMDS?) is modelled on luat modules only, not " +
                    std::string(to_string(m_config.kind)));
  }
  if (!m_nvm.sn || m_nvm.sn->empty()) {
    return fail(ErrorKind::usage,
                "the module holds no SN, so it has no DeviceSecret to connect with — provision "
                "it or set-sn first");
  }
  std::string secret = *m_nvm.sn;
  if (std::count(secret.begin(), secret.end(), '|') == 2) {
    secret = secret.substr(secret.rfind('|') + 1); // layout triplet: PK|DN|DS
  }
  Nvm next = m_nvm;
  next.secret_copy = std::move(secret);
  if (m_persist) {
    IOT_TRY(m_persist(next));
  }
  m_nvm = std::move(next);
  return {};
}

Status ModuleModel::overwrite_secret_copy(std::string value) {
  if (m_config.kind != ModuleKind::luat) {
    return fail(ErrorKind::usage,
                "the secret copy (AT+NVMDS?) is modelled on luat modules only, not " +
                    std::string(to_string(m_config.kind)));
  }
  if (value.empty() || value.size() > k_luat_sn_max) {
    return fail(ErrorKind::usage,
                "the secret copy holds 1-" + std::to_string(k_luat_sn_max) + " bytes, got " +
                    std::to_string(value.size()));
  }
  Nvm next = m_nvm;
  next.secret_copy = std::move(value);
  if (m_persist) {
    IOT_TRY(m_persist(next));
  }
  m_nvm = std::move(next);
  return {};
}

// ---- command dispatch ----------------------------------------------------------------------

ModuleModel::Reply ModuleModel::execute(std::string_view line) {
  const bool esp = m_config.kind == ModuleKind::esp_at;
  if (line == "AT\x01overflow" || (esp && line.size() >= k_esp_max_line)) {
    return cme_error(k_cme_too_long);
  }
  const std::string_view rest = line.substr(2);
  if (rest.empty()) {
    return ok();
  }
  if (rest.front() != '+' && rest.front() != '^' && rest.front() != '*') {
    // Basic (V.250) commands.
    const std::string cmd = core::to_upper(rest);
    if (cmd == "E0" || cmd == "E") {
      m_echo = false;
      return ok();
    }
    if (cmd == "E1") {
      m_echo = true;
      return ok();
    }
    if (cmd == "&F" || cmd == "&F0" || cmd == "Z" || cmd == "Z0") {
      m_echo = true;
      m_cmee = default_cmee(m_config.kind);
      return ok();
    }
    if (cmd == "&W" || cmd == "&W0" || cmd == "V1" || cmd == "Q0") {
      return ok();
    }
    if (!esp && (cmd == "I" || cmd == "I0")) {
      if (m_config.kind == ModuleKind::luat) {
        return ok({"AirM2M", "Air724UG", "Revision:" + std::string(k_luat_revision)});
      }
      return ok({"Quectel", "EC200U", "Revision: " + std::string(k_quectel_revision)});
    }
    return cme_error(k_cme_not_supported);
  }
  // Extended commands: NAME, NAME?, NAME=?, NAME=<args>.
  const std::size_t pos = rest.find_first_of("=?");
  const std::string name = core::to_upper(rest.substr(0, pos));
  char form = 'x';
  std::string_view args;
  if (pos != std::string_view::npos) {
    const std::string_view tail = rest.substr(pos);
    if (tail == "?") {
      form = '?';
    } else if (tail == "=?") {
      form = 't';
    } else if (tail.front() == '=') {
      form = '=';
      args = tail.substr(1);
    } else {
      return cme_error(k_cme_bad_param);
    }
  }
  bool handled = false;
  Reply r = execute_common(name, form, args, handled);
  if (handled) {
    return r;
  }
  switch (m_config.kind) {
  case ModuleKind::luat:
    r = execute_luat(name, form, args, handled);
    break;
  case ModuleKind::quectel:
    r = execute_quectel(name, form, args, handled);
    break;
  case ModuleKind::esp_at:
    r = execute_esp(name, form, args, handled);
    break;
  }
  if (handled) {
    return r;
  }
  return cme_error(k_cme_not_supported);
}

ModuleModel::Reply ModuleModel::execute_common(std::string_view name,
                                               char form,
                                               std::string_view args,
                                               bool& handled) {
  handled = true;
  if (m_config.kind == ModuleKind::esp_at) {
    handled = false;
    return {};
  }
  const bool luat = m_config.kind == ModuleKind::luat;
  if (name == "+CMEE") {
    if (form == '?') {
      return ok({"+CMEE: " + std::to_string(m_cmee)});
    }
    if (form == 't') {
      return ok({"+CMEE: (0-2)"});
    }
    if (form == '=') {
      const auto n = parse_int(args);
      if (!n || *n < 0 || *n > 2) {
        return cme_error(k_cme_bad_param);
      }
      m_cmee = static_cast<int>(*n);
      return ok();
    }
    return cme_error(k_cme_bad_param);
  }
  if (name == "+CGSN" || name == "+GSN") {
    if (form == 'x') {
      return ok({m_nvm.imei}); // bare 15 digits
    }
    if (form == 't') {
      return ok(name == "+CGSN" ? std::vector<std::string>{"+CGSN: (0-3)"}
                                : std::vector<std::string>{});
    }
    if (form == '=' && name == "+CGSN" && args == "1") {
      return ok({"+CGSN: \"" + m_nvm.imei + "\""});
    }
    return cme_error(k_cme_bad_param);
  }
  if (name == "+CIMI" && form == 'x') {
    return ok({m_nvm.imsi});
  }
  if (name == "+CPIN" && form == '?') {
    return ok({"+CPIN: READY"});
  }
  if (name == "+CSQ" && form == 'x') {
    const int rssi = std::clamp(m_rssi + std::uniform_int_distribution<int>(-1, 1)(m_rng), 0, 31);
    return ok({"+CSQ: " + std::to_string(rssi) + ",99"});
  }
  if (name == "+CSQ" && form == 't') {
    return ok({"+CSQ: (0-31,99),(0-7,99)"});
  }
  if (name == "+CREG" || name == "+CGREG" || name == "+CEREG") {
    if (form == '?') {
      return ok({std::string(name) + ": 0,1"});
    }
    if (form == '=' && parse_int(args).has_value()) {
      return ok(); // URC mode accepted; the simulated network never changes registration
    }
    if (form == 't') {
      return ok({std::string(name) + ": (0-2)"});
    }
    return cme_error(k_cme_bad_param);
  }
  if (name == "+CGATT" && form == '?') {
    return ok({"+CGATT: 1"});
  }
  if (name == "+COPS" && form == '?') {
    return ok({"+COPS: 0,0,\"CHINA MOBILE\",7"});
  }
  if (name == "+CFUN") {
    if (form == '?') {
      return ok({"+CFUN: 1"});
    }
    if (form == '=') {
      const auto parsed = split_args(args, false);
      if (!parsed || parsed->empty() || parsed->size() > 2) {
        return cme_error(k_cme_bad_param);
      }
      const auto fun = parse_int((*parsed)[0].text);
      if (!fun || (*fun != 0 && *fun != 1 && *fun != 4)) {
        return cme_error(k_cme_bad_param);
      }
      Reply r = ok();
      if (parsed->size() == 2 && (*parsed)[1].text == "1") {
        r.reboot_after = true; // AT+CFUN=1,1: reset after OK
      }
      return r;
    }
    return cme_error(k_cme_bad_param);
  }
  if ((name == "+CGMI" || name == "+GMI") && form == 'x') {
    return ok({luat ? "AirM2M" : "Quectel"});
  }
  if ((name == "+CGMM" || name == "+GMM") && form == 'x') {
    return ok({luat ? "Air724UG" : "EC200U"});
  }
  if (name == "+CGMR" && form == 'x') {
    if (luat) {
      return ok({"+CGMR: \"" + std::string(k_luat_revision) + "\""});
    }
    return ok({std::string(k_quectel_revision)});
  }
  handled = false;
  return {};
}

ModuleModel::Reply
ModuleModel::execute_luat(std::string_view name, char form, std::string_view args, bool& handled) {
  handled = true;
  if (name == "+CCID" && (form == 'x' || form == '?')) {
    return ok({m_nvm.iccid});
  }
  if (name == "+ICCID" && (form == 'x' || form == '?')) {
    return ok({"+ICCID: " + m_nvm.iccid});
  }
  if (name == "+WISN") {
    if (form == '?') {
      if (!m_nvm.sn || m_nvm.sn->empty()) {
        // An info line, not a final result: OK follows (at-modules.md §1.1).
        return ok({"*CME ERROR: Missing SN"});
      }
      return ok({*m_nvm.sn});
    }
    if (form == 't') {
      return ok();
    }
    if (form == '=') {
      std::string value;
      if (!args.empty() && args.front() == '"') {
        // Quoted: exactly one pair of quotes around the whole value (no escape rule is
        // documented; a '"' inside makes the line malformed here).
        if (args.size() < 2 || args.back() != '"' ||
            args.substr(1, args.size() - 2).find('"') != std::string_view::npos) {
          return cme_error(k_cme_bad_param);
        }
        value = std::string(args.substr(1, args.size() - 2));
      } else {
        value = std::string(args); // unquoted, as one third-party tool sends it
      }
      if (value.empty()) {
        return cme_error(k_cme_bad_param);
      }
      if (value.size() > k_luat_sn_max) {
        return cme_error(k_cme_too_long);
      }
      Nvm next = m_nvm;
      next.sn = std::move(value);
      return commit(std::move(next));
    }
    return cme_error(k_cme_bad_param);
  }
  if (name == "+NVMDS") {
    // The assumed device script's copy of the DeviceSecret (seed FAQ §3.2, docs/simulator.md):
    // read-only over AT, the script writes it after connecting.
    if (form == '?') {
      return ok({"+NVMDS: \"" + m_nvm.secret_copy.value_or("") + "\""});
    }
    if (form == 't') {
      return ok();
    }
    return cme_error(k_cme_not_allowed);
  }
  if (name == "+WIMEI" && form == '=') {
    const auto parsed = split_args(args, false);
    if (!parsed || parsed->size() != 1 || !is_imei_shaped((*parsed)[0].text) ||
        !luhn_valid((*parsed)[0].text)) {
      return cme_error(k_cme_bad_param); // 4G firmware rejects a bad check digit
    }
    Nvm next = m_nvm;
    next.imei = (*parsed)[0].text;
    return commit(std::move(next));
  }
  handled = false;
  return {};
}

ModuleModel::Reply ModuleModel::execute_quectel(std::string_view name,
                                                char form,
                                                std::string_view args,
                                                bool& handled) {
  handled = true;
  if (name == "+QCCID" && form == 'x') {
    return ok({"+QCCID: " + m_nvm.iccid});
  }
  if (name == "+GMR" && form == 'x') {
    return ok({std::string(k_quectel_revision)});
  }
  if (name == "+QMTCFG") {
    if (form == 't') {
      return ok({"+QMTCFG: \"aliauth\",(0-5),\"product key\",\"device name\",\"device secret\""});
    }
    if (form != '=') {
      return cme_error(k_cme_bad_param);
    }
    const auto parsed = split_args(args, false);
    if (!parsed || parsed->size() < 2 || !core::iequals((*parsed)[0].text, "aliauth")) {
      return cme_error(k_cme_bad_param);
    }
    const auto index = parse_int((*parsed)[1].text);
    if (!index || *index < 0 || *index > 5 || (*parsed)[1].quoted) {
      return cme_error(k_cme_bad_param);
    }
    const int idx = static_cast<int>(*index);
    if (parsed->size() == 2) {
      const auto it = m_nvm.aliauth.find(idx);
      if (it == m_nvm.aliauth.end()) {
        return ok(); // nothing configured: no information line
      }
      const AliAuth& a = it->second;
      return ok({"+QMTCFG: \"aliauth\",\"" + a.product_key + "\",\"" + a.device_name + "\",\"" +
                 a.device_secret + "\""});
    }
    if (parsed->size() != 5) {
      return cme_error(k_cme_bad_param);
    }
    AliAuth a{(*parsed)[2].text, (*parsed)[3].text, (*parsed)[4].text};
    if (a.product_key.size() > k_quectel_pk_max || a.device_name.size() > k_quectel_dn_max ||
        a.device_secret.size() > k_quectel_ds_max) {
      return cme_error(k_cme_too_long);
    }
    Nvm next = m_nvm;
    next.aliauth[idx] = std::move(a);
    return commit(std::move(next));
  }
  if (name == "+EGMR" && form == '=') {
    const auto parsed = split_args(args, false);
    if (!parsed || parsed->size() < 2) {
      return cme_error(k_cme_bad_param);
    }
    const std::string& mode = (*parsed)[0].text;
    const std::string& field = (*parsed)[1].text;
    if (mode == "0" && parsed->size() == 2) {
      if (field == "5") {
        return ok({"+EGMR: \"" + m_nvm.sn.value_or("") + "\""});
      }
      if (field == "7") {
        return ok({"+EGMR: \"" + m_nvm.imei + "\""});
      }
    }
    if (mode == "1" && field == "5" && parsed->size() == 3) {
      // MTK convention, UNVERIFIED on EC/EG (at-modules.md §2.2).
      if ((*parsed)[2].text.size() > k_luat_sn_max) {
        return cme_error(k_cme_too_long);
      }
      Nvm next = m_nvm;
      next.sn = (*parsed)[2].text;
      return commit(std::move(next));
    }
    return cme_error(k_cme_bad_param);
  }
  handled = false;
  return {};
}

ModuleModel::Reply
ModuleModel::execute_esp(std::string_view name, char form, std::string_view args, bool& handled) {
  handled = true;
  if (name == "+GMR" && form == 'x') {
    return ok({"AT version:2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)",
               "SDK version:v4.2.2-76-gefa6eca",
               "compile time(3a696ba):Jul  2 2021 11:54:43",
               "Bin version:2.2.0(WROOM-32)"});
  }
  if (name == "+RST" && form == 'x') {
    Reply r = ok();
    r.reboot_after = true;
    return r;
  }
  if (name == "+CIPSTAMAC" && form == '?') {
    return ok({"+CIPSTAMAC:\"" + m_nvm.mac + "\""});
  }
  if (name == "+SYSMFG") {
    if (form == '?') {
      std::vector<std::string> lines;
      std::vector<std::string> names = {"factory_param",
                                        "client_cert",
                                        "client_key",
                                        "client_ca",
                                        "mqtt_cert",
                                        "mqtt_key",
                                        "mqtt_ca",
                                        "aliyun-key"};
      for (const auto& [ns, keys] : m_nvm.sysmfg) {
        if (std::find(names.begin(), names.end(), ns) == names.end()) {
          names.push_back(ns);
        }
      }
      for (const auto& ns : names) {
        lines.push_back("+SYSMFG:\"" + ns + "\"");
      }
      return ok(std::move(lines));
    }
    if (form != '=') {
      return cme_error(k_cme_bad_param);
    }
    const auto parsed = split_args(args, true);
    if (!parsed || parsed->empty()) {
      return cme_error(k_cme_bad_param);
    }
    const auto& a = *parsed;
    const auto op = parse_int(a[0].text);
    if (!op || *op < 0 || *op > 2) {
      return cme_error(k_cme_bad_param);
    }
    auto valid_name = [](const Arg& arg) {
      return !arg.text.empty() && arg.text.size() <= k_nvs_name_max;
    };
    if (a.size() >= 2 && !valid_name(a[1])) {
      return cme_error(k_cme_bad_param);
    }
    if (a.size() >= 3 && !valid_name(a[2])) {
      return cme_error(k_cme_bad_param);
    }
    if (*op == 0) { // erase namespace or key
      if (a.size() < 2 || a.size() > 3) {
        return cme_error(k_cme_bad_param);
      }
      Nvm next = m_nvm;
      const auto ns = next.sysmfg.find(a[1].text);
      if (ns == next.sysmfg.end()) {
        return cme_error(k_cme_not_allowed);
      }
      if (a.size() == 2) {
        next.sysmfg.erase(ns);
      } else if (ns->second.erase(a[2].text) == 0) {
        return cme_error(k_cme_not_allowed);
      } else if (ns->second.empty()) {
        next.sysmfg.erase(ns);
      }
      return commit(std::move(next));
    }
    if (*op == 1) { // read
      if (a.size() == 1) {
        std::vector<std::string> lines;
        for (const auto& [ns, keys] : m_nvm.sysmfg) {
          for (const auto& [key, value] : keys) {
            lines.push_back("+SYSMFG:\"" + ns + "\",\"" + key + "\"," + std::to_string(value.type));
          }
        }
        return ok(std::move(lines));
      }
      const auto ns = m_nvm.sysmfg.find(a[1].text);
      if (ns == m_nvm.sysmfg.end()) {
        return cme_error(k_cme_not_allowed);
      }
      if (a.size() == 2) {
        std::vector<std::string> lines;
        for (const auto& [key, value] : ns->second) {
          lines.push_back("+SYSMFG:\"" + ns->first + "\",\"" + key + "\"," +
                          std::to_string(value.type));
        }
        return ok(std::move(lines));
      }
      const auto key = ns->second.find(a[2].text);
      if (key == ns->second.end() || (a.size() != 3 && a.size() != 5)) {
        return cme_error(k_cme_not_allowed);
      }
      std::string value = key->second.data;
      if (a.size() == 5) {
        const auto offset = parse_int(a[3].text);
        const auto length = parse_int(a[4].text);
        if (!offset || !length || *offset < 0 || *length <= 0 ||
            static_cast<std::size_t>(*offset) >= value.size()) {
          return cme_error(k_cme_bad_param);
        }
        value = value.substr(static_cast<std::size_t>(*offset), static_cast<std::size_t>(*length));
      }
      return ok({"+SYSMFG:\"" + ns->first + "\",\"" + key->first + "\"," +
                 std::to_string(key->second.type) + "," + std::to_string(value.size()) + "," +
                 value});
    }
    // *op == 2: write.
    if (a.size() != 5) {
      return cme_error(k_cme_bad_param);
    }
    const auto type = parse_int(a[3].text);
    const auto value = parse_int(a[4].text);
    if (!type || *type < 1 || *type > 8 || !value || a[4].quoted) {
      return cme_error(k_cme_bad_param);
    }
    if (*type >= 7) {
      if (*value <= 0 || static_cast<std::size_t>(*value) > k_sysmfg_value_max) {
        return cme_error(k_cme_bad_param);
      }
      m_prompt = PromptWrite{
          a[1].text, a[2].text, static_cast<int>(*type), static_cast<std::size_t>(*value), {}};
      Reply r = ok();
      r.prompt = true;
      return r;
    }
    static constexpr std::array<std::pair<long long, long long>, 6> k_ranges = {{
        {0, 255},
        {-128, 127},
        {0, 65535},
        {-32768, 32767},
        {0, 4294967295LL},
        {-2147483648LL, 2147483647LL},
    }};
    const auto [lo, hi] = k_ranges[static_cast<std::size_t>(*type - 1)];
    if (*value < lo || *value > hi) {
      return cme_error(k_cme_bad_param);
    }
    Nvm next = m_nvm;
    next.sysmfg[a[1].text][a[2].text] = MfgValue{static_cast<int>(*type), std::to_string(*value)};
    return commit(std::move(next));
  }
  handled = false;
  return {};
}

} // namespace iot::sim
